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
The dense sites followed by a nonlinearity (:data:`DENSE_RULE_SITES`: ``mlp.fc`` feeds GELU, ``attn.proj``
and ``mlp.proj`` feed the residual sum and the next LayerNorm, ``lm_head`` the softmax of the next-token
distribution) may hold a :class:`DenseRule`, which computes
the layer's output itself (look-ahead recomputation beyond softmax, :mod:`lampref.lamp_sites`).

A plan may also give a site an operand *storage format* (:meth:`PrecisionPlan.with_storage`): both operands
of the site's product are rounded to a :class:`~lampref.formats.FloatFormat` (nearest-even), or quantised
and dequantised by a block format (anything with ``quantize_dequantize(x, axis)``, such as an MX spec, its
blocks along the reduction axis), before the product.
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
from ..formats import FloatFormat

__all__ = [
    "DENSE_RULE_SITES",
    "SITES",
    "After",
    "AttentionProbs",
    "DenseOutput",
    "DenseRule",
    "PrecisionPlan",
    "ScoreRule",
    "ScoreStats",
    "SiteSpec",
    "StorageSpec",
    "resolve_plan",
]

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

DENSE_RULE_SITES: tuple[str, ...] = ("attn.proj", "mlp.fc", "mlp.proj", "lm_head")
"""The sites that may hold a :class:`DenseRule`: ``mlp.fc`` (GELU follows), the two output projections
(the residual sum and a LayerNorm follow) and ``lm_head`` (the softmax of the next-token distribution
follows)."""


@dataclass(frozen=True, slots=True, eq=False)
class ScoreStats(Mapping[str, Any]):
    """The statistics a rule (a :class:`ScoreRule` or a :class:`DenseRule`) reports for one layer (or for
    one chunk of its query rows).

    Three parts, merged differently:

    Attributes
    ----------
    totals : mapping of str to ndarray
        Additive statistics (counts, sums): summed over the chunks of rows of a layer
        (:meth:`merge_chunks`) and over sequences (:meth:`sum_totals`).
    per_row : mapping of str to ndarray, shape (H, rows)
        Row statistics, one value per head and query row: concatenated along the rows, in position order,
        over the chunks of a layer; dropped when statistics are summed over sequences.
    maxima : mapping of str to ndarray
        Statistics merged by their largest value (for example the largest achieved amplification of a
        site), over chunks and over sequences. Their names end with ``_max``.

    Notes
    -----
    Read access by name reaches every part, as a read-only mapping (a name lives in one part only):
    ``stats["selected"]``, ``"row_kappa" in stats``, ``stats.keys()``. :meth:`empty` (what a layer without
    a rule reports) is falsy and equals ``{}``. The part a statistic lives in decides how it merges,
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
    >>> m = ScoreStats.sum_totals([ScoreStats.from_mapping({"amp_max": 2.0}), {"amp_max": 3.0}])
    >>> float(m["amp_max"])
    3.0
    """

    totals: Mapping[str, Any] = field(default_factory=dict)
    per_row: Mapping[str, Any] = field(default_factory=dict)
    maxima: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = [dict(self.totals), dict(self.per_row), dict(self.maxima)]
        names = ("totals", "per_row", "maxima")
        for i, j in ((0, 1), (0, 2), (1, 2)):
            both = sorted(parts[i].keys() & parts[j].keys())
            if both:
                raise InputValueError(
                    f"ScoreStats names {both} in both {names[i]} and {names[j]}; expected each name in one "
                    "part"
                )
        object.__setattr__(self, "totals", parts[0])
        object.__setattr__(self, "per_row", parts[1])
        object.__setattr__(self, "maxima", parts[2])

    def __getitem__(self, name: str) -> Any:
        for part in (self.totals, self.per_row):
            if name in part:
                return part[name]
        return self.maxima[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.totals
        yield from self.per_row
        yield from self.maxima

    def __len__(self) -> int:
        return len(self.totals) + len(self.per_row) + len(self.maxima)

    def __repr__(self) -> str:
        extra = f", maxima={self.maxima!r}" if self.maxima else ""
        return f"ScoreStats(totals={self.totals!r}, per_row={self.per_row!r}{extra})"

    @classmethod
    def empty(cls) -> ScoreStats:
        """No statistics (a layer whose sites hold accumulators or nothing)."""
        return cls()

    @classmethod
    def from_mapping(cls, stats: Mapping[str, Any]) -> ScoreStats:
        """A ScoreStats as it is, or one from a flat dict where names starting with ``row_`` are row
        statistics, names ending with ``_max`` are maxima and every other name is a total (the form a
        rule may also return)."""
        if isinstance(stats, ScoreStats):
            return stats
        per_row = {k: v for k, v in stats.items() if k.startswith("row_")}
        maxima = {k: v for k, v in stats.items() if k.endswith("_max") and k not in per_row}
        totals = {k: v for k, v in stats.items() if k not in per_row and k not in maxima}
        return cls(totals, per_row, maxima)

    @classmethod
    def merge_chunks(cls, parts: Iterable[Mapping[str, Any]]) -> ScoreStats:
        """The statistics of one layer from those of its chunks of rows (or of its sites), given in
        position order: totals summed, row statistics concatenated along the rows (axis 1), maxima
        maximised."""
        totals: dict[str, Any] = {}
        maxima: dict[str, Any] = {}
        rows: dict[str, list[Any]] = {}
        for part in map(cls.from_mapping, parts):
            _add_into(totals, part.totals)
            _max_into(maxima, part.maxima)
            for name, value in part.per_row.items():
                rows.setdefault(name, []).append(value)
        per_row = {k: v[0] if len(v) == 1 else np.concatenate(v, axis=1) for k, v in rows.items()}
        return cls(totals, per_row, maxima)

    @classmethod
    def sum_totals(cls, parts: Iterable[Mapping[str, Any]]) -> ScoreStats:
        """The totals of one layer summed over runs (sequences), maxima maximised; row statistics are
        dropped."""
        totals: dict[str, Any] = {}
        maxima: dict[str, Any] = {}
        for part in map(cls.from_mapping, parts):
            _add_into(totals, part.totals)
            _max_into(maxima, part.maxima)
        return cls(totals, {}, maxima)


def _max_into(out: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Merge ``part``'s maxima into ``out`` by their element-wise largest value."""
    for name, value in part.items():
        out[name] = np.maximum(out[name], value) if name in out else value


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


class After(NamedTuple):
    """What follows a dense site in the forward pass: what a :class:`DenseRule` looks ahead at.

    Attributes
    ----------
    gelu : str or None
        The GELU form applied to the output (``"tanh"`` or ``"erf"``; ``mlp.fc``), or None.
    softmax : bool
        Whether a softmax over the last axis follows (``lm_head``: the next-token distribution).
    residual : ndarray, shape (n, C), or None
        The residual stream the output is added to (``attn.proj`` and ``mlp.proj``); the sum then enters
        a LayerNorm with ``ln_g``, ``ln_b`` and ``ln_eps``.
    ln_g, ln_b : ndarray, shape (C,), or None
        The parameters of the LayerNorm after the residual sum.
    ln_eps : float
        Its epsilon.
    """

    gelu: str | None = None
    softmax: bool = False
    residual: NDArray[Any] | None = None
    ln_g: NDArray[Any] | None = None
    ln_b: NDArray[Any] | None = None
    ln_eps: float = 1e-5


class DenseOutput(NamedTuple):
    """What a :class:`DenseRule` returns: the layer's output ``[n, N]`` (float32) and its statistics."""

    out: NDArray[Any]
    stats: ScoreStats | Mapping[str, Any]


@runtime_checkable
class DenseRule(Protocol):
    """A rule that computes a dense layer's output at a site of :data:`DENSE_RULE_SITES` itself (the
    extension point for look-ahead recomputation beyond softmax, :mod:`lampref.lamp_sites`).

    ``dense_output(x, w, b, *, site, layer, start, rng, blas, after)`` receives the rows ``x`` ``[n, K]``
    (absolute positions ``start ..``), the weights ``w`` ``[K, N]`` and the bias ``b`` ``[N]``, float32;
    ``blas(x, w)`` is the float32 product of the forward pass (fixed-shape row blocks, so a row's bits do
    not depend on the others), and ``after`` (:class:`After`) says what follows the layer. It returns a
    :class:`DenseOutput`. Rows must be treated independently (the cached generation path gives the same
    bits as a full pass), and implementations must be hashable (frozen dataclasses).
    """

    def dense_output(
        self,
        x: NDArray[Any],
        w: NDArray[Any],
        b: NDArray[Any],
        *,
        site: str,
        layer: int,
        start: int,
        rng: Any,
        blas: Any,
        after: After,
    ) -> DenseOutput: ...


SiteSpec: TypeAlias = Accumulator | MatmulModel | ScoreRule | DenseRule | None
"""What a plan holds for a site: an Accumulator or a :class:`~lampref.accumulate.MatmulModel` (a tensor
core), a ScoreRule (``attn.score`` only), a DenseRule (:data:`DENSE_RULE_SITES` only), or None (BLAS)."""

StorageSpec: TypeAlias = Any
"""An operand storage format: a :class:`~lampref.formats.FloatFormat` (both operands rounded to nearest-even)
or a block format with ``quantize_dequantize(x, axis)`` (such as :class:`lampref.mx.MXSpec`)."""

PlanEntry: TypeAlias = tuple[str, int | None, SiteSpec]
"""One setting of a plan: (site, layer or None for every layer, spec)."""


def _check_site(site: object) -> str:
    if site not in SITES:
        raise PlanError(expected_one_of("site", site, SITES))
    return str(site)


def _hashable(spec: object, what: str) -> None:
    try:
        hash(spec)
    except TypeError:
        raise PlanError(f"the {what} {spec!r} must be hashable (a frozen dataclass)") from None


def _check_spec(site: str, spec: object) -> SiteSpec:
    if spec is None or isinstance(spec, Accumulator):
        return spec
    is_rule = isinstance(spec, (ScoreRule, DenseRule))
    if isinstance(spec, MatmulModel) and not is_rule:
        _hashable(spec, "matmul model")
        return spec
    if site == "attn.score" and isinstance(spec, ScoreRule):
        _hashable(spec, "score rule")
        return spec
    if site in DENSE_RULE_SITES and isinstance(spec, DenseRule):
        _hashable(spec, "dense rule")
        return spec
    what = "an Accumulator, a MatmulModel or None"
    if site == "attn.score":
        what = "an Accumulator, a MatmulModel, a ScoreRule or None"
    elif site in DENSE_RULE_SITES:
        what = "an Accumulator, a MatmulModel, a DenseRule or None"
    raise PlanError(f"site {site!r} was given {spec!r}; expected {what}")


def _check_storage(site: object, fmt: object) -> tuple[str, StorageSpec]:
    """A (site, storage format) pair, checked: a known site, a FloatFormat or a hashable block format."""
    name = _check_site(site)
    if not isinstance(fmt, FloatFormat) and not callable(getattr(fmt, "quantize_dequantize", None)):
        raise PlanError(
            f"the storage format of site {name!r} is {fmt!r}; expected a FloatFormat or a block format "
            "with quantize_dequantize(x, axis) (such as lampref.mx.get_spec('mxfp8'))"
        )
    _hashable(fmt, "storage format")
    return name, fmt


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
    storage : tuple of (site, format)
        Operand storage formats (:meth:`with_storage`), in site order.

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
    storage: tuple[tuple[str, StorageSpec], ...] = ()

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
        if not isinstance(self.storage, tuple) or not all(
            isinstance(e, tuple) and len(e) == 2 for e in self.storage
        ):
            raise PlanError(f"storage must be a tuple of (site, format) pairs, got {self.storage!r}")
        store = dict(_check_storage(site, fmt) for site, fmt in self.storage)
        if len(store) != len(self.storage):
            raise PlanError("storage sets a site twice")
        if self.is_reference and store:
            raise PlanError("the reference plan runs every operation in float64; it takes no storage formats")
        object.__setattr__(self, "storage", tuple(sorted(store.items(), key=lambda e: SITES.index(e[0]))))

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
        return PrecisionPlan((*kept, *((site, layer, spec) for layer in chosen)), storage=self.storage)

    def with_storage(self, sites: str | Iterable[str], fmt: StorageSpec | None) -> PrecisionPlan:
        r"""A new plan whose ``sites`` store their operands in ``fmt`` (None: remove the storage format).

        Both operands of the site's product are rounded to ``fmt`` (a
        :class:`~lampref.formats.FloatFormat`, round to nearest-even) or quantised and dequantised by it (a
        block format with ``quantize_dequantize(x, axis)``, such as an MX spec, its blocks along the
        reduction axis: the rows of ``x`` and the columns of ``w`` in a dense layer, ``q`` and ``k`` along
        ``d`` at ``attn.score``), before the product, in every layer.

        Examples
        --------
        >>> from lampref import get_format
        >>> from lampref.gpt2.plan import PrecisionPlan
        >>> plan = PrecisionPlan().with_storage(["mlp.fc", "attn.score"], get_format("bfloat16"))
        >>> [site for site, _ in plan.storage], plan.storage_of("mlp.fc").name, plan.storage_of("lm_head")
        (['attn.score', 'mlp.fc'], 'bf16', None)
        """
        names = [sites] if isinstance(sites, str) else list(sites)
        store = dict(self.storage)
        for site in names:
            if fmt is None:
                store.pop(_check_site(site), None)
            else:
                name, checked = _check_storage(site, fmt)
                store[name] = checked
        return PrecisionPlan(self.entries, self.is_reference, tuple(store.items()))

    def storage_of(self, site: str) -> StorageSpec | None:
        """The operand storage format of ``site`` (None: operands as computed)."""
        _check_site(site)
        return dict(self.storage).get(site)

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
        if isinstance(spec, (ScoreRule, DenseRule)):
            raise PlanError(f"site {site!r} holds the rule {spec!r}; expected an Accumulator or None")
        return spec

    def check_layers(self, n_layer: int) -> None:
        """Raise :class:`~lampref.errors.PlanError` if a per-layer setting names a layer ``>= n_layer``."""
        bad = sorted({(s, lay) for s, lay, _ in self.entries if lay is not None and lay >= n_layer})
        if bad:
            raise PlanError(f"the plan sets {bad} but the model has {n_layer} layers (0..{n_layer - 1})")

    def __repr__(self) -> str:
        if self.is_reference:
            return "PrecisionPlan.reference()"
        parts = [f"{s}{'' if lay is None else f'[{lay}]'}={spec!r}" for s, lay, spec in self.entries]
        parts += [f"storage {s}={fmt!r}" for s, fmt in self.storage]
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
