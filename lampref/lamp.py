r"""LAMP attention: low-precision scores, with the scores that matter recomputed in float32.

LAMP (look-ahead mixed-precision inference, arXiv:2601.21623) computes the attention scores
$z = q k^T / \sqrt d$ in low precision, takes the softmax, and recomputes in higher precision the scores
of a small set $S$ of each row chosen so that the softmax's error amplification $\kappa(S)$ is at most
$\tau$ (:func:`lampref.analysis.lamp_select`). The row is then masked and softmaxed again.

:class:`LampConfig` is a :class:`~lampref.gpt2.plan.ScoreRule`: put it at the ``attn.score`` site of a
:class:`~lampref.gpt2.plan.PrecisionPlan` and the GPT-2 forward pass (full, traced, or cached generation)
runs LAMP attention; so does the BERT encoder (:mod:`lampref.bert`), whose rows are bidirectional: each
sees every real token of its sequence, the keys of padding positions excluded. Per chunk of query rows it
does:

1. low-precision scores exactly as the score site does under an accumulator: ``matmul(q, k^T, score)``,
   divided by $\sqrt d$ in float32, rounded again to ``score.fmt`` with ``score.mode``;
2. the softmax of these scores over the keys each row sees (:func:`~lampref.nn.masked_softmax`: the causal
   mask of a decoder, or an encoder's padding mask);
3. the selection (``lamp_select(probs, tau, valid=visible, rule=rule)``), or a random baseline with the same
   number of entries per row;
4. the selected scores recomputed: ``q.k`` in float32 (products and a pairwise sum in float32, per entry, so
   the bits do not depend on the other rows), or under the ``recompute`` accumulator (then divided and
   rounded as in step 1), divided by $\sqrt d$ in float32; they replace the low-precision scores;
5. the masked softmax again.

Statistics
----------
A :class:`~lampref.gpt2.plan.ScoreStats` per layer, merged over the chunks of rows by
:meth:`~lampref.gpt2.model.GPT2.trace` and :meth:`~lampref.gpt2.model.GPT2.logits_and_stats`. Its totals:

``selected``
    int64 ``[H]``: recomputed entries per head (valid entries only; a masked position the authors'
    random baseline draws is not counted).
``valid``
    int64 ``[H]``: valid (visible) entries per head: the causal entries of a decoder (``sum_t (t + 1)``
    over the rows), ``rows x real tokens`` for an encoder (padding keys excluded).
``rows``
    int64 ``[H]``: rows per head.
``kappa_sum``
    float64 ``[H]``: the sum over rows of the achieved $\kappa(S)$ (:func:`~lampref.analysis.softmax_kappa`
    of the low-precision probabilities with the recomputed set).
``kappa_hist``
    int64 ``[H, len(KAPPA_BINS) - 1]``: a histogram of the achieved $\kappa(S)$ per row on the bins
    :data:`KAPPA_BINS` (the upper edge of the last non-empty bin bounds the maximum).

All are counts or sums, so they add over chunks of rows. Its row statistic (``per_row``):

``row_kappa``
    float64 ``[H, rows]``: the achieved $\kappa(S)$ of every row (chunks of rows are concatenated in
    position order, not summed; dropped when statistics are summed over sequences).

Every statistic reads by name, ``stats["selected"]`` or ``stats["row_kappa"]``. :func:`recompute_fraction`
turns them into recomputed fractions (selected / valid) per layer and per head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._backend import f32_scores_where
from ._validate import check_choice, check_rng, is_int
from .accumulate import Accumulator
from .analysis import RULES as RULES  # the selection rules of lamp_select, importable from here too
from .analysis import lamp_select, softmax_kappa
from .analysis._checks import check_tau
from .errors import AnalysisError, InputTypeError, InputValueError, ShapeError
from .gpt2.plan import AttentionProbs, ScoreStats
from .nn import attention_scores, causal_mask, masked_softmax

__all__ = ["BASELINES", "KAPPA_BINS", "LampConfig", "RecomputeFraction", "recompute_fraction"]

BASELINES: tuple[str | None, ...] = (None, "random", "random_authors")
"""None (LAMP) or a random baseline ("fake LAMP") with the same number of recomputed entries per row."""

KAPPA_BINS: NDArray[np.float64] = np.linspace(0.0, 2.0, 41)
"""Bin edges of the ``kappa_hist`` statistic: 40 bins of width 0.05 on [0, 2] (the last bin closed)."""

Array = NDArray[Any]


def first_of_permutation(keys: Array, count: NDArray[np.intp]) -> NDArray[np.bool_]:
    """The first ``count[...]`` positions of each row ``[..., N]`` in the order of the uniform random
    ``keys``: a uniformly random choice of ``count`` positions per row (the random baselines)."""
    order = np.argsort(keys, axis=-1, kind="stable")  # a uniformly random permutation of each row
    take = np.arange(keys.shape[-1]) < count[..., None]  # the first `count` of the permutation
    out = np.zeros(keys.shape, dtype=bool)
    np.put_along_axis(out, order, take, axis=-1)
    return out


def _f32_dots(q: Array, kT: Array) -> Array:
    """``[S, 1, d] @ [S, d, 1] -> [S, 1, 1]`` entry by entry: float32 products and a float32 pairwise sum
    along the contiguous last axis, so the bits of an entry do not depend on the others."""
    dots: Array = np.multiply(q[:, 0, :], kT[:, :, 0], dtype=np.float32).sum(axis=-1, dtype=np.float32)
    return dots[:, None, None]  # [S] -> [S, 1, 1]


def _entry_scores(qs: Array, ks: Array, acc: Accumulator | None, rng: Any) -> Array:
    """The score site for individual entries: ``qs``, ``ks`` ``[S, d]`` -> ``[S]``, each entry on its own
    (:func:`lampref.nn.attention_scores` on ``[S, 1, d]`` queries and keys)."""
    s = attention_scores(qs[:, None, :], ks[:, None, :], acc, rng=rng, blas=_f32_dots)  # [S, 1, 1]
    return np.asarray(s[:, 0, 0], dtype=np.float32)


@dataclass(frozen=True)
class LampConfig:
    r"""LAMP attention at the ``attn.score`` site: a :class:`~lampref.gpt2.plan.ScoreRule` (frozen, hashable).

    Parameters
    ----------
    score : Accumulator
        The low-precision accumulation of ``q.k`` (for example ``Accumulator(fp32_mantissa(m))`` or
        ``Accumulator.authors(m)``).
    tau : float
        Target amplification, $0 < \tau \le 2$: $\tau = 2$ recomputes nothing (plain low precision),
        $\tau \to 1$ recomputes almost everything.
    rule : {"prefix", "optimal", "authors"}, default "prefix"
        The selection rule of :func:`~lampref.analysis.lamp_select`. ``"authors"`` runs over the whole
        row, masked zeros included, with the ``"cpu"`` prefix-sum order (a float64 running sum rounded to
        float32), which does not depend on the number of rows, so the cached path keeps its bits.
    baseline : {None, "random", "random_authors"}, default None
        None: LAMP. ``"random"``: in each row, recompute as many entries as LAMP selects, at positions
        drawn uniformly among the row's valid (visible: causal, or not padding) entries.
        ``"random_authors"``: the authors' "fake LAMP", which permutes all ``N`` positions of the row
        (masked ones included, whose recomputation has no effect), so it recomputes fewer valid entries on
        average.
    recompute : Accumulator, optional
        How the selected scores are recomputed. None: float32 (products and sum in float32). An
        accumulator: "higher but not full" precision; the result is divided by $\sqrt d$ and rounded
        again, as at the score site.
    seed : int, default 0
        Seed of the random baselines when the forward pass has no ``rng``: row ``t`` of layer ``l`` uses
        ``numpy.random.default_rng([seed, l, t])``, so a row draws the same positions whether it is computed
        in a full pass or in a cached generation step. With the forward pass's ``rng`` the draws come from
        it instead (and the cached path no longer reproduces the full pass's bits).

    Raises
    ------
    AnalysisError
        ``tau`` outside $(0, 2]$ or not a real number, an unknown ``rule`` or ``baseline``, a negative
        ``seed``.
    InputTypeError
        ``score`` or ``recompute`` is not an :class:`~lampref.accumulate.Accumulator`.

    Notes
    -----
    Rows of a block attend over ``N`` keys, ``N`` a multiple of the model's ``row_block``
    (:mod:`lampref.gpt2.model`); keys beyond the sequence are zero and masked. They are part of "the whole
    row" of ``rule="authors"`` and of ``baseline="random_authors"``, where the authors' rows have exactly
    ``T`` entries: the two differ only in the last row of a sequence whose length is not a multiple of
    ``row_block`` (authors' rule) and in how many draws land on masked positions (authors' baseline).

    Statistics: see the module notes (totals ``selected``, ``valid``, ``rows``, ``kappa_sum``,
    ``kappa_hist``; row statistic ``row_kappa``).

    References
    ----------
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623, and the authors' code
    (``get_lamp_softmax_mask``, the "fake LAMP" baseline).

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.gpt2 import GPT2, GPT2Config, PrecisionPlan, random_params
    >>> from lampref.lamp import LampConfig, recompute_fraction
    >>> cfg = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=16, vocab_size=32)
    >>> model = GPT2(random_params(cfg, rng=0, std=0.5), cfg, row_block=8)
    >>> tokens = np.arange(12) % 32
    >>> lamp = LampConfig(Accumulator(fp32_mantissa(4)), tau=1.2)
    >>> tr = model.trace(tokens, PrecisionPlan.only("attn.score", lamp))
    >>> frac = recompute_fraction(tr.stats)
    >>> frac.per_layer.shape, frac.per_head.shape, bool(0 < frac.total < 1)
    ((2,), (2, 2), True)
    >>> nothing = LampConfig(Accumulator(fp32_mantissa(4)), tau=2.0)
    >>> recompute_fraction(model.trace(tokens, PrecisionPlan.only("attn.score", nothing)).stats).total
    0.0
    >>> LampConfig(Accumulator(fp32_mantissa(4)), tau=2.5)
    Traceback (most recent call last):
    ...
    lampref.errors.AnalysisError: tau=2.5 is out of range; expected 0 < tau <= 2 (tau = 2 recomputes nothing,
    tau -> 1 recomputes almost everything)
    """

    score: Accumulator
    tau: float
    rule: str = "prefix"
    baseline: str | None = None
    recompute: Accumulator | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.score, Accumulator):
            raise InputTypeError(f"score must be an Accumulator, got {type(self.score).__name__}")
        if self.recompute is not None and not isinstance(self.recompute, Accumulator):
            raise InputTypeError(
                f"recompute must be an Accumulator or None, got {type(self.recompute).__name__}"
            )
        object.__setattr__(self, "tau", check_tau(self.tau))
        check_choice(self.rule, "rule", RULES, AnalysisError)
        check_choice(self.baseline, "baseline", BASELINES, AnalysisError)
        seed = self.seed
        if not is_int(seed) or seed < 0:
            raise AnalysisError(f"seed={seed!r} is not valid; expected a non-negative integer")
        object.__setattr__(self, "seed", int(seed))

    # ------------------------------------------------------------------------------ selection
    def _select(self, probs: Array, valid: NDArray[np.bool_]) -> NDArray[np.bool_]:
        if self.rule == "authors":
            return lamp_select(probs, self.tau, valid=valid, rule="authors", scan="cpu")
        return lamp_select(probs, self.tau, valid=valid, rule=self.rule)

    def _random(
        self, count: NDArray[np.intp], valid: NDArray[np.bool_], start: int, layer: int, rng: Any
    ) -> NDArray[np.bool_]:
        """``count`` ``[H, n]`` positions per row drawn uniformly (among valid ones for ``"random"``)."""
        H, n, N = valid.shape
        if rng is not None:
            keys = rng.random((H, n, N))
        else:
            keys = np.empty((H, n, N))
            for i in range(n):  # one generator per row: the same draws in a full pass and a cached step
                keys[:, i, :] = np.random.default_rng([self.seed, layer, start + i]).random((H, N))
        if self.baseline == "random":
            keys = np.where(valid, keys, 2.0)  # invalid positions sort last
        return first_of_permutation(keys, count)

    # ------------------------------------------------------------------------------ ScoreRule
    def _low_and_selection(
        self,
        q: Array,
        k: Array,
        start: int,
        layer: int,
        rng: np.random.Generator | None,
        visible: NDArray[np.bool_] | None,
    ) -> tuple[Array, Array, NDArray[np.bool_], NDArray[np.bool_]]:
        """Steps 1 to 3 of the module notes: low-precision scores, their masked softmax, the mask ``[n, N]``
        (causal when ``visible`` is None) and the entries to recompute ``[H, n, N]``."""
        n, N = q.shape[1], k.shape[1]
        visible = causal_mask(start, n, N) if visible is None else _check_visible(visible, n, N)  # [n, N]
        low = attention_scores(q, k, self.score, rng=rng)  # [H, n, d], [H, N, d] -> [H, n, N]
        probs_low = masked_softmax(low, visible)  # [H, n, N]
        valid = np.broadcast_to(visible, low.shape)  # [H, n, N]
        sel = self._select(probs_low, valid)
        if self.baseline is not None:
            sel = self._random(sel.sum(axis=-1), valid, start, layer, rng) & valid
        return low, probs_low, visible, sel

    def select(
        self,
        q: Array,
        k: Array,
        *,
        start: int,
        layer: int = 0,
        rng: Any = None,
        visible: NDArray[np.bool_] | None = None,
    ) -> tuple[Array, Array, NDArray[np.bool_]]:
        """Steps 1 to 3 of the module notes for a chunk of query rows: the low-precision scores, their
        masked softmax, and the entries to recompute (LAMP's or the baseline's), all ``[H, n, N]``.

        ``visible`` as for :meth:`attention_probs`. The returned mask covers valid (visible) entries only;
        with ``baseline="random_authors"`` the draws that land on masked positions are dropped from it.
        """
        low, probs_low, _, sel = self._low_and_selection(q, k, start, layer, check_rng(rng), visible)
        return low, probs_low, sel

    def attention_probs(
        self,
        q: Array,
        k: Array,
        *,
        start: int,
        layer: int,
        rng: Any,
        visible: NDArray[np.bool_] | None = None,
    ) -> AttentionProbs:
        """Scores and probabilities ``[H, n, N]`` of a chunk of query rows (the ScoreRule protocol).

        ``q`` ``[H, n, d]`` holds the rows at positions ``start .. start + n - 1``, ``k`` ``[H, N, d]`` the
        keys of positions ``0 .. N - 1``. ``visible`` ``[n, N]`` (bool) says which keys each row sees:
        None is the causal mask (:func:`~lampref.nn.causal_mask`); an encoder passes its padding mask
        (every row sees every real token). Each row needs a visible key. ``start`` and ``layer`` seed the
        random baselines (row ``start + i`` of ``layer``). Returns the scores after recomputation (before
        the mask), the probabilities, and the statistics of the module notes (over visible entries).
        """
        rng = check_rng(rng)  # one stream for the whole call: selection, baseline and recomputation
        low, probs_low, visible, sel = self._low_and_selection(q, k, start, layer, rng, visible)
        scores = low
        if sel.any():
            compiled = f32_scores_where(q, k, sel, low) if self.recompute is None else None
            if compiled is not None:  # the same bits as the entry-by-entry float32 path below
                scores = compiled
            else:
                h, i, j = np.nonzero(sel)
                qs = np.ascontiguousarray(q[h, i])  # [S, d]
                ks = np.ascontiguousarray(k[h, j])  # [S, d]
                scores = low.copy()
                scores[h, i, j] = _entry_scores(qs, ks, self.recompute, rng)
        probs = masked_softmax(scores, visible)  # [H, n, N]
        return AttentionProbs(scores, probs, _row_stats(probs_low, sel, np.broadcast_to(visible, sel.shape)))


def _check_visible(visible: Any, n: int, N: int) -> NDArray[np.bool_]:
    """A visible-key mask ``[n, N]`` of booleans in which every row sees a key (ShapeError, InputTypeError,
    InputValueError naming ``visible`` otherwise)."""
    arr = np.asarray(visible)
    if arr.dtype != np.bool_:
        raise InputTypeError(f"visible has dtype {arr.dtype}; expected bool (True where a row sees a key)")
    if arr.shape != (n, N):
        raise ShapeError(f"visible has shape {arr.shape}; expected ({n}, {N}): query rows x keys")
    if not arr.any(axis=-1).all():
        row = int(np.argmin(arr.any(axis=-1)))
        raise InputValueError(f"visible row {row} sees no key; expected at least one True per row")
    return arr


def _row_stats(probs_low: Array, sel: NDArray[np.bool_], valid: NDArray[np.bool_]) -> ScoreStats:
    """The statistics of the module notes for a chunk of rows ``[H, n, N]``."""
    H, n, _ = sel.shape
    kappa = np.asarray(softmax_kappa(probs_low, sel, valid=valid), dtype=np.float64).reshape(H, n)
    hist = np.stack([np.histogram(kappa[hh], bins=KAPPA_BINS)[0] for hh in range(H)]).astype(np.int64)
    totals = {
        "selected": sel.sum(axis=(1, 2), dtype=np.int64),
        "valid": valid.sum(axis=(1, 2), dtype=np.int64),
        "rows": np.full(H, n, dtype=np.int64),
        "kappa_sum": kappa.sum(axis=-1),
        "kappa_hist": hist,
    }
    return ScoreStats(totals, {"row_kappa": kappa})


class RecomputeFraction(NamedTuple):
    """Recomputed fractions (selected / valid entries) from :func:`recompute_fraction`.

    Attributes
    ----------
    total : float
        Over every layer that reports LAMP statistics.
    per_layer : ndarray, shape (L,)
        Per layer (NaN for a layer without LAMP statistics).
    per_head : ndarray, shape (L, H)
        Per layer and head (NaN rows for layers without LAMP statistics).
    mean_kappa : ndarray, shape (L,)
        Mean achieved kappa over the rows of each layer (NaN without statistics).
    """

    total: float
    per_layer: NDArray[np.float64]
    per_head: NDArray[np.float64]
    mean_kappa: NDArray[np.float64]


def recompute_fraction(stats: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> RecomputeFraction:
    """Recomputed fractions per layer and per head from LAMP statistics.

    Parameters
    ----------
    stats : sequence of ScoreStats or dict, or one of them
        ``GPT2.trace(...).stats`` (one :class:`~lampref.gpt2.plan.ScoreStats` per layer; layers without
        LAMP give empty ones), or one layer's; a plain dict with the same names reads the same.

    Returns
    -------
    RecomputeFraction
        ``total``, ``per_layer`` ``[L]``, ``per_head`` ``[L, H]`` and ``mean_kappa`` ``[L]``; the reported
        sparsity of the LAMP paper is ``per_layer`` (recomputed entries / causal entries).

    Raises
    ------
    AnalysisError
        No layer holds LAMP statistics, or the layers disagree on the number of heads.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.lamp import recompute_fraction
    >>> st = {"selected": np.array([1, 3]), "valid": np.array([10, 10]), "rows": np.array([4, 4]),
    ...       "kappa_sum": np.array([4.0, 6.0])}
    >>> f = recompute_fraction([st, {}])
    >>> f.total, f.per_layer, f.mean_kappa
    (0.2, array([0.2, nan]), array([1.25, nan]))
    """
    layers = [stats] if isinstance(stats, Mapping) else list(stats)
    have = [i for i, s in enumerate(layers) if "selected" in s and "valid" in s]
    if not have:
        raise AnalysisError("stats holds no LAMP statistics ('selected', 'valid'); use a LampConfig plan")
    heads = {np.asarray(layers[i]["valid"]).shape for i in have}
    if len(heads) != 1:
        raise AnalysisError(f"the layers' statistics have different numbers of heads: {sorted(heads)}")
    (shape,) = heads
    H = shape[0] if shape else 1
    L = len(layers)
    sel = np.full((L, H), np.nan)
    val = np.full((L, H), np.nan)
    kap = np.full(L, np.nan)
    for i in have:
        s = layers[i]
        sel[i] = np.asarray(s["selected"], dtype=np.float64).reshape(H)
        val[i] = np.asarray(s["valid"], dtype=np.float64).reshape(H)
        if "kappa_sum" in s and "rows" in s:
            kap[i] = float(np.sum(s["kappa_sum"])) / max(float(np.sum(s["rows"])), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_head = sel / val
        per_layer = sel.sum(axis=1) / val.sum(axis=1)
    total = float(np.nansum(sel) / np.nansum(val))
    return RecomputeFraction(total, per_layer, per_head, kap)
