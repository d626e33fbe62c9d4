r"""Precision plans: which accumulation model each GEMM of the GPT-2 forward pass runs under.

GPT-2's forward pass has seven matrix-product *sites* (:data:`SITES`), six in every block and the
language-model head:

=================  =============================================  ==========================
site               product                                        shapes (one sequence)
=================  =============================================  ==========================
``attn.qkv``       ``ln_1(x) @ c_attn.w + c_attn.b``              ``[T, C] @ [C, 3C]``
``attn.score``     ``q @ k^T`` per head, then ``/ sqrt(d)``       ``[H, T, d] @ [H, d, T]``
``attn.value``     ``softmax(scores) @ v`` per head               ``[H, T, T] @ [H, T, d]``
``attn.proj``      ``attn @ c_proj.w + c_proj.b``                 ``[T, C] @ [C, C]``
``mlp.fc``         ``ln_2(x) @ c_fc.w + c_fc.b``                  ``[T, C] @ [C, 4C]``
``mlp.proj``       ``gelu(h) @ c_proj.w + c_proj.b``              ``[T, 4C] @ [4C, C]``
``lm_head``        ``ln_f(x) @ wte^T``                            ``[T, C] @ [C, V]``
=================  =============================================  ==========================

A :class:`PrecisionPlan` maps each site, optionally per layer, to an
:class:`~lampref.accumulate.Accumulator` (or ``None``: float32 BLAS), or to a
:class:`~lampref.accumulate.MatmulModel` such as a GPU tensor core
(:func:`lampref.hardware.tensor_core`). Everything that is not a GEMM
(embedding sums, LayerNorm, GELU, softmax, residual additions) runs in float32, or in float64 under
:meth:`PrecisionPlan.reference`.

The ``attn.score`` site may also hold a :class:`ScoreRule`: an object that computes the attention
probabilities itself (the extension point for LAMP, which recomputes selected scores in higher precision).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .._validate import is_int
from ..accumulate import Accumulator, MatmulModel, ProductModel
from ..errors import InputValueError, PlanError, expected_one_of

__all__ = ["SITES", "AttentionProbs", "PrecisionPlan", "ScoreRule", "ScoreStats", "SiteSpec", "resolve_plan"]

SITES: tuple[str, ...] = (
    "attn.qkv",
    "attn.score",
    "attn.value",
    "attn.proj",
    "mlp.fc",
    "mlp.proj",
    "lm_head",
)
"""The GEMM sites of the forward pass, in execution order."""


@dataclass(frozen=True, slots=True, eq=False)
class ScoreStats(Mapping[str, Any]):
    """The statistics a :class:`ScoreRule` reports for one layer (or for one chunk of its query rows).

    Two parts, merged differently:

    Attributes
    ----------
    totals : mapping of str to ndarray
        Additive statistics (counts, sums): summed over the chunks of rows of a layer
        (:meth:`merge_chunks`) and over sequences (:meth:`sum_totals`).
    per_row : mapping of str to ndarray, shape (H, rows)
        Row statistics, one value per head and query row: concatenated along the rows, in position order,
        over the chunks of a layer; dropped when statistics are summed over sequences.

    Notes
    -----
    Read access by name reaches both parts, as a read-only mapping (a name lives in one part only):
    ``stats["selected"]``, ``"row_kappa" in stats``, ``stats.keys()``. :meth:`empty` (what a layer without
    a score rule reports) is falsy and equals ``{}``. The part a statistic lives in decides how it merges,
    not its name: LAMP's row statistic keeps its name ``row_kappa``.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.gpt2.plan import ScoreStats
    >>> a = ScoreStats({"rows": np.array([2])}, {"row_kappa": np.array([[1.0, 1.5]])})
    >>> b = ScoreStats({"rows": np.array([1])}, {"row_kappa": np.array([[1.25]])})
    >>> layer = ScoreStats.merge_chunks([a, b])
    >>> layer["rows"], layer["row_kappa"]
    (array([3]), array([[1.  , 1.5 , 1.25]]))
    >>> dict(ScoreStats.sum_totals([layer, layer]))
    {'rows': array([6])}
    >>> bool(ScoreStats.empty()), ScoreStats.empty() == {}
    (False, True)
    """

    totals: Mapping[str, Any] = field(default_factory=dict)
    per_row: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        totals, per_row = dict(self.totals), dict(self.per_row)
        both = sorted(totals.keys() & per_row.keys())
        if both:
            raise InputValueError(
                f"ScoreStats names {both} in both totals and per_row; expected each name in one part"
            )
        object.__setattr__(self, "totals", totals)
        object.__setattr__(self, "per_row", per_row)

    def __getitem__(self, name: str) -> Any:
        return self.totals[name] if name in self.totals else self.per_row[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.totals
        yield from self.per_row

    def __len__(self) -> int:
        return len(self.totals) + len(self.per_row)

    def __repr__(self) -> str:
        return f"ScoreStats(totals={self.totals!r}, per_row={self.per_row!r})"

    @classmethod
    def empty(cls) -> ScoreStats:
        """No statistics (a layer whose score site holds an accumulator or nothing)."""
        return cls()

    @classmethod
    def from_mapping(cls, stats: Mapping[str, Any]) -> ScoreStats:
        """A ScoreStats as it is, or one from a flat dict where names starting with ``row_`` are row
        statistics and every other name is a total (the form a :class:`ScoreRule` may also return)."""
        if isinstance(stats, ScoreStats):
            return stats
        per_row = {k: v for k, v in stats.items() if k.startswith("row_")}
        return cls({k: v for k, v in stats.items() if k not in per_row}, per_row)

    @classmethod
    def merge_chunks(cls, parts: Iterable[Mapping[str, Any]]) -> ScoreStats:
        """The statistics of one layer from those of its chunks of rows, given in position order: totals
        summed, row statistics concatenated along the rows (axis 1)."""
        totals: dict[str, Any] = {}
        rows: dict[str, list[Any]] = {}
        for part in map(cls.from_mapping, parts):
            _add_into(totals, part.totals)
            for name, value in part.per_row.items():
                rows.setdefault(name, []).append(value)
        return cls(totals, {k: v[0] if len(v) == 1 else np.concatenate(v, axis=1) for k, v in rows.items()})

    @classmethod
    def sum_totals(cls, parts: Iterable[Mapping[str, Any]]) -> ScoreStats:
        """The totals of one layer summed over runs (sequences); row statistics are dropped."""
        totals: dict[str, Any] = {}
        for part in map(cls.from_mapping, parts):
            _add_into(totals, part.totals)
        return cls(totals)


def _add_into(out: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Add ``part``'s totals into ``out`` (a name seen first is taken as it is)."""
    for name, value in part.items():
        out[name] = out[name] + value if name in out else value


class AttentionProbs(NamedTuple):
    """What the score step of attention produces for a chunk of query rows.

    Attributes
    ----------
    scores : ndarray, shape (H, n, L)
        Scaled scores ``q k^T / sqrt(d)`` before the causal mask (entries of future positions included).
    probs : ndarray, shape (H, n, L)
        Attention probabilities after the mask and the softmax.
    stats : ScoreStats
        The statistics a :class:`ScoreRule` reports for the chunk (for example how many scores it
        recomputed), merged over the chunks of a layer by :meth:`ScoreStats.merge_chunks`; empty for an
        :class:`~lampref.accumulate.Accumulator`. :meth:`~lampref.gpt2.model.GPT2.trace` returns them per
        layer. A rule may also give a flat dict (:meth:`ScoreStats.from_mapping`).
    """

    scores: NDArray[Any]
    probs: NDArray[Any]
    stats: ScoreStats | Mapping[str, Any]


@runtime_checkable
class ScoreRule(Protocol):
    """A rule that computes attention probabilities at the ``attn.score`` site (the LAMP extension point).

    ``attention_probs(q, k, *, start, layer, rng, visible=None)`` receives the queries ``q`` ``[H, n, d]``
    of one chunk of rows, at absolute positions ``start .. start + n - 1``, and the keys ``k`` ``[H, N, d]``
    of positions ``0 .. N - 1``, float32; it returns :class:`AttentionProbs` of shape ``[H, n, N]``.
    ``visible`` ``[n, N]`` (bool) says which keys each row sees; None means the causal mask of a decoder
    (query row ``i`` sees keys ``j <= start + i``, as :func:`~lampref.nn.causal_mask` gives). GPT-2 passes
    None, with ``N >= start + n`` the end of the row block of ``row_block`` positions (keys beyond the
    sequence are zero); BERT passes its padding mask, every row seeing every real token. The rule must
    apply the mask and treat every row independently of the others, so
    that the cached generation path gives the same bits as a full recomputation. ``rng`` is the forward pass's
    ``numpy.random.Generator`` (or None). Implementations must be hashable (frozen dataclasses) so that
    plans stay hashable; the statistics they return are a :class:`ScoreStats`, whose totals the forward pass
    sums over the chunks of rows of a layer and whose row statistics it concatenates.
    """

    def attention_probs(
        self,
        q: NDArray[Any],
        k: NDArray[Any],
        *,
        start: int,
        layer: int,
        rng: Any,
        visible: NDArray[np.bool_] | None = None,
    ) -> AttentionProbs: ...


SiteSpec: TypeAlias = Accumulator | MatmulModel | ScoreRule | None
"""What a plan holds for a site: an Accumulator or a :class:`~lampref.accumulate.MatmulModel` (a tensor
core), a ScoreRule (``attn.score`` only), or None (BLAS)."""

PlanEntry: TypeAlias = tuple[str, int | None, SiteSpec]
"""One setting of a plan: (site, layer or None for every layer, spec)."""


def _check_site(site: object) -> str:
    if site not in SITES:
        raise PlanError(expected_one_of("site", site, SITES))
    return str(site)


def _check_spec(site: str, spec: object) -> SiteSpec:
    if spec is None or isinstance(spec, Accumulator):
        return spec
    if isinstance(spec, MatmulModel) and not isinstance(spec, ScoreRule):
        try:
            hash(spec)
        except TypeError:
            raise PlanError(f"the matmul model {spec!r} must be hashable (a frozen dataclass)") from None
        return spec
    if site == "attn.score" and isinstance(spec, ScoreRule):
        try:
            hash(spec)
        except TypeError:
            raise PlanError(f"the score rule {spec!r} must be hashable (a frozen dataclass)") from None
        return spec
    what = "an Accumulator, a MatmulModel, a ScoreRule or None"
    if site != "attn.score":
        what = "an Accumulator, a MatmulModel or None"
    raise PlanError(f"site {site!r} was given {spec!r}; expected {what}")


def _check_layers(site: str, layers: Iterable[int] | int | None) -> tuple[int | None, ...]:
    if layers is None:
        return (None,)
    if site == "lm_head":
        raise PlanError("site 'lm_head' occurs once, after the last block; it takes no layers")
    if isinstance(layers, (bool, np.bool_)):
        raise PlanError(
            f"layers={layers!r} is not valid; expected a layer index, an iterable of them, or None"
        )
    given: Iterable[object] = layers if isinstance(layers, Iterable) else (layers,)  # one index or many
    out = []
    for layer in given:
        if not is_int(layer) or layer < 0:
            raise PlanError(f"layers holds {layer!r}; expected non-negative integers")
        out.append(int(layer))
    if not out:
        raise PlanError("layers is empty; pass None for every layer")
    return tuple(sorted(set(out)))


def _key(entry: PlanEntry) -> tuple[int, int]:
    site, layer, _ = entry
    return (SITES.index(site), -1 if layer is None else layer)


@dataclass(frozen=True, slots=True)
class PrecisionPlan:
    r"""The accumulation model of every GEMM site, optionally per layer (frozen and hashable).

    Build plans with the constructors (:meth:`uniform`, :meth:`only`, :meth:`reference`) and refine them
    with :meth:`set`; look a site up with :meth:`get`. A site not mentioned runs in float32 BLAS
    (``None``). A per-layer setting overrides the site's setting for every layer.

    Attributes
    ----------
    entries : tuple of (site, layer or None, spec)
        The settings, in canonical order (site order, then layer).
    is_reference : bool
        True for the float64 reference: every operation of the forward pass in float64 (and no
        accumulators).

    Examples
    --------
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.gpt2.plan import PrecisionPlan
    >>> acc = Accumulator(fp32_mantissa(10))
    >>> plan = PrecisionPlan.only("attn.score", acc, layers=[0, 1])
    >>> plan
    PrecisionPlan(attn.score[0]=Accumulator(fmt=FloatFormat(fp32_m10: p=11, emax=127, emin=-126)),
                  attn.score[1]=Accumulator(fmt=FloatFormat(fp32_m10: p=11, emax=127, emin=-126)))
    >>> plan.get("attn.score", 1) is acc, plan.get("attn.score", 2), plan.get("mlp.fc", 0)
    (True, None, None)
    >>> PrecisionPlan.uniform(acc).get("lm_head") == acc
    True
    >>> PrecisionPlan.only("attn.scores", acc)
    Traceback (most recent call last):
    ...
    lampref.errors.PlanError: site='attn.scores' is not valid; expected one of: 'attn.qkv', 'attn.score',
    'attn.value', 'attn.proj', 'mlp.fc', 'mlp.proj', 'lm_head'
    """

    entries: tuple[PlanEntry, ...] = ()
    is_reference: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.entries, tuple):
            raise PlanError(
                f"entries must be a tuple of (site, layer, spec), got {type(self.entries).__name__}"
            )
        seen: dict[tuple[str, int | None], SiteSpec] = {}
        for entry in self.entries:
            if not isinstance(entry, tuple) or len(entry) != 3:
                raise PlanError(f"plan entry {entry!r} is not a (site, layer, spec) triple")
            site, layer, spec = entry
            _check_site(site)
            (checked,) = _check_layers(site, layer)
            _check_spec(site, spec)
            if (site, checked) in seen:
                raise PlanError(f"site {site!r}, layer {layer!r} is set twice")
            seen[(site, checked)] = spec
        if self.is_reference and any(spec is not None for spec in seen.values()):
            raise PlanError("the reference plan runs every operation in float64; it takes no accumulators")
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=_key)))

    # ---------------------------------------------------------------- constructors
    @classmethod
    def uniform(cls, acc: Accumulator | MatmulModel | None) -> PrecisionPlan:
        """Every site of every layer under the same accumulator."""
        return cls(tuple((site, None, _check_spec(site, acc)) for site in SITES))

    @classmethod
    def only(cls, site: str, spec: SiteSpec, layers: Iterable[int] | int | None = None) -> PrecisionPlan:
        """One site (optionally only in some layers) under ``spec``; every other product in float32 BLAS."""
        return cls().set(site, spec, layers)

    @classmethod
    def reference(cls) -> PrecisionPlan:
        """The float64 reference: every operation of the forward pass (GEMMs included) in float64."""
        return cls((), is_reference=True)

    def set(self, site: str, spec: SiteSpec, layers: Iterable[int] | int | None = None) -> PrecisionPlan:
        """A new plan with ``site`` (in ``layers``, or for every layer) set to ``spec``.

        Setting a site for every layer removes its per-layer settings.
        """
        _check_site(site)
        spec = _check_spec(site, spec)
        if self.is_reference:
            raise PlanError("the reference plan runs every operation in float64; it takes no accumulators")
        chosen = _check_layers(site, layers)
        if chosen == (None,):
            kept = [e for e in self.entries if e[0] != site]
        else:
            kept = [e for e in self.entries if not (e[0] == site and e[1] in chosen)]
        return PrecisionPlan((*kept, *((site, layer, spec) for layer in chosen)))

    # ---------------------------------------------------------------- lookup
    def get(self, site: str, layer: int | None = None) -> SiteSpec:
        """The spec of ``site`` in ``layer`` (None: float32 BLAS, or float64 under the reference plan)."""
        _check_site(site)
        default = None
        for s, lay, spec in self.entries:
            if s == site:
                if lay is not None and lay == layer:
                    return spec
                if lay is None:
                    default = spec
        return default

    def accumulator(self, site: str, layer: int | None = None) -> ProductModel | None:
        """The accumulation model of a product site in ``layer``: an Accumulator or a
        :class:`~lampref.accumulate.MatmulModel` (None: float32 BLAS, or float64 under the reference plan);
        :class:`~lampref.errors.PlanError` if the site holds a :class:`ScoreRule` instead."""
        spec = self.get(site, layer)
        if isinstance(spec, ScoreRule):
            raise PlanError(f"site {site!r} holds the score rule {spec!r}; expected an Accumulator or None")
        return spec

    def check_layers(self, n_layer: int) -> None:
        """Raise :class:`~lampref.errors.PlanError` if a per-layer setting names a layer ``>= n_layer``."""
        bad = sorted({(s, lay) for s, lay, _ in self.entries if lay is not None and lay >= n_layer})
        if bad:
            raise PlanError(f"the plan sets {bad} but the model has {n_layer} layers (0..{n_layer - 1})")

    def __repr__(self) -> str:
        if self.is_reference:
            return "PrecisionPlan.reference()"
        if not self.entries:
            return "PrecisionPlan()"
        parts = [f"{s}{'' if lay is None else f'[{lay}]'}={spec!r}" for s, lay, spec in self.entries]
        return f"PrecisionPlan({', '.join(parts)})"


def resolve_plan(plan: PrecisionPlan | None, n_layer: int) -> PrecisionPlan:
    """The plan a model of ``n_layer`` layers runs under: ``None`` is the float32 plan (every site in float32
    BLAS); anything but a :class:`PrecisionPlan` raises :class:`~lampref.errors.PlanError`, and so does a plan
    that sets a layer the model does not have."""
    if plan is None:
        return PrecisionPlan()
    if not isinstance(plan, PrecisionPlan):
        raise PlanError(f"plan must be a PrecisionPlan or None, got {type(plan).__name__}")
    plan.check_layers(n_layer)
    return plan
