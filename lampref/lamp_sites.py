r"""Look-ahead recomputation beyond softmax: LAMP at the dense sites of a transformer block.

The LAMP paper (arXiv:2601.21623) analyses the composition softmax(q.k) only and names "LAMP for all
nonlinearities" as future work. This module applies the same look-ahead pattern (compute cheaply,
evaluate the amplification of what follows at the cheap result, recompute the few components it
amplifies most) at the two other places of a GPT-2 block where a low-precision product feeds a
nonlinearity:

* :class:`GeluLamp` at ``mlp.fc``, whose outputs enter GELU: component $i$ is recomputed unless GELU's
  condition number at the computed input, $\kappa(z_i) = |z_i \phi'(z_i) / \phi(z_i)|$, is below $\tau$
  (:func:`lampref.analysis.elementwise_select`);
* :class:`NormLamp` at ``attn.proj`` and ``mlp.proj``, whose outputs enter the residual sum and then a
  LayerNorm: the inputs whose error the LayerNorm amplifies most are recomputed until every output's
  first-order relative error bound, in units of the accumulation format's unit roundoff, is at most
  $\tau$ (:func:`lampref.analysis.layernorm_select`);
* :class:`HeadLamp` at ``lm_head``, whose logits enter the softmax of the next-token distribution: the same
  composition as attention's, so the same selection (:func:`lampref.analysis.lamp_select`) and threshold.

Both are :class:`~lampref.gpt2.plan.DenseRule`\ s: put them at their site of a
:class:`~lampref.gpt2.plan.PrecisionPlan`, next to a :class:`~lampref.lamp.LampConfig` at ``attn.score``,
each with its own $\tau$ (joint LAMP). A recomputed component takes the value of the float32 product of the
forward pass (the same fixed-shape row blocks as a site without an accumulator), plus the bias.

Statistics
----------
Each rule reports, per layer, statistics named ``"<site>:<name>"`` (so that several sites share a layer's
:class:`~lampref.gpt2.plan.ScoreStats` next to the softmax's unprefixed ones): ``selected`` and ``valid``
(recomputed and all outputs), ``amp_sum`` and ``amp_count`` (the sum and the number of the achieved
first-order amplifications: for GELU one per output, $\kappa$ of an unselected component and 0 for a
recomputed one; for a LayerNorm one per row, the bound $\max_i b_i$ in units of $u$; for the vocabulary
softmax one per row, $\kappa(S)$) and ``amp_max`` (their largest value). The statistics of ``lm_head`` join
the last layer's. :func:`site_fractions` reads them, and the attention softmax's, per site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._validate import check_choice, is_int
from .accumulate import Accumulator, linear
from .analysis import (
    condition_number,
    elementwise_select,
    lamp_select,
    layernorm_amplification,
    layernorm_select,
    softmax_kappa,
)
from .analysis._checks import check_tau, real_scalar
from .errors import AnalysisError, InputTypeError, PlanError
from .gpt2.plan import SITES, After, DenseOutput
from .lamp import KAPPA_BINS, first_of_permutation, recompute_fraction
from .nn import softmax

__all__ = ["DENSE_BASELINES", "GeluLamp", "HeadLamp", "NormLamp", "SiteFraction", "site_fractions"]

DENSE_BASELINES: tuple[str | None, ...] = (None, "random")
"""None (LAMP) or ``"random"``: as many outputs per row as LAMP selects, at uniformly random positions."""

Array = NDArray[Any]
_CHUNK = 16  # rows of a LayerNorm amplification computed at once ([rows, C, C] float64)


def _check_common(rule: Any, tau: Any) -> None:
    """Validate the fields shared by the dense rules (``acc``, ``tau``, ``baseline``, ``seed``)."""
    if not isinstance(rule.acc, Accumulator):
        raise InputTypeError(f"acc must be an Accumulator, got {type(rule.acc).__name__}")
    t = real_scalar(tau, "tau")
    if t < 0:
        raise AnalysisError(f"tau={tau!r} is negative; expected 0 <= tau <= inf (0 recomputes everything)")
    object.__setattr__(rule, "tau", t)
    check_choice(rule.baseline, "baseline", DENSE_BASELINES, AnalysisError)
    if not is_int(rule.seed) or rule.seed < 0:
        raise AnalysisError(f"seed={rule.seed!r} is not valid; expected a non-negative integer")
    object.__setattr__(rule, "seed", int(rule.seed))


def _random_like(sel: NDArray[np.bool_], seed: int, site: str, layer: int, start: int) -> NDArray[np.bool_]:
    """As many positions per row as ``sel`` has, drawn uniformly; row ``t`` (absolute position) of ``layer``
    uses ``default_rng([seed, layer, site index, t])``, so a row draws the same in a full pass and a
    cached step."""
    n, N = sel.shape
    keys = np.stack(
        [np.random.default_rng([seed, layer, SITES.index(site), start + i]).random(N) for i in range(n)]
    )  # [n, N]
    return first_of_permutation(keys, sel.sum(axis=-1))


def _recompute(low: Array, sel: NDArray[np.bool_], x: Array, w: Array, b: Array, blas: Any) -> Array:
    """``low`` with the selected entries replaced by the float32 product of the forward pass plus bias."""
    if not sel.any():
        return low
    full = np.asarray(blas(x, w), dtype=np.float32) + b  # [n, K] @ [K, N] + [N]
    return np.where(sel, full, low)


def _stats(site: str, sel: NDArray[np.bool_], amp: Array) -> dict[str, Any]:
    """The statistics of the module notes for one call, named ``"<site>:<name>"``."""
    return {
        f"{site}:selected": np.int64(sel.sum()),
        f"{site}:valid": np.int64(sel.size),
        f"{site}:amp_sum": np.float64(amp.sum()),
        f"{site}:amp_count": np.int64(amp.size),
        f"{site}:amp_max": np.float64(amp.max() if amp.size else 0.0),
    }


def _gelu_name(after: After) -> str:
    """The analysis name of the GELU form that follows (``after.gelu``)."""
    return "gelu_tanh" if after.gelu == "tanh" else "gelu_erf"


@dataclass(frozen=True)
class _DenseLamp:
    """What the dense rules share: the fields, their checks, and the look-ahead pattern of
    :meth:`dense_output` (compute in low precision, select, recompute the selection, report)."""

    acc: Accumulator
    tau: float
    baseline: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check_common(self, self.tau)

    def _check_after(self, site: str, after: After) -> None:
        """Raise PlanError unless what follows ``site`` is what the rule looks ahead at."""
        raise NotImplementedError

    def _select(
        self, x: Array, w: Array, b: Array, low: Array, after: After
    ) -> tuple[NDArray[np.bool_], Any]:
        """LAMP's selection ``[n, N]`` at the low-precision output ``low``, and the amplification it achieves
        (or None to have :meth:`_achieved` compute it)."""
        raise NotImplementedError

    def _achieved(
        self, x: Array, w: Array, b: Array, low: Array, after: After, sel: NDArray[np.bool_]
    ) -> Array:
        """The first-order amplification left with the selection ``sel`` (the statistics' ``amp_*``)."""
        raise NotImplementedError

    def dense_output(
        self,
        x: Array,
        w: Array,
        b: Array,
        *,
        site: str,
        layer: int,
        start: int,
        rng: Any,
        blas: Any,
        after: After,
    ) -> DenseOutput:
        """The layer's output ``[n, N]`` with the selected entries recomputed in float32 (the
        :class:`~lampref.gpt2.plan.DenseRule` protocol); ``after`` says what follows the site."""
        self._check_after(site, after)
        low = np.asarray(linear(x, w, b, self.acc, rng=rng), dtype=np.float32)  # [n, K] -> [n, N]
        sel, amp = self._select(x, w, b, low, after)
        if self.baseline is not None:
            sel, amp = _random_like(sel, self.seed, site, layer, start), None
        out = _recompute(low, sel, x, w, b, blas)
        if amp is None:
            amp = self._achieved(x, w, b, low, after, sel)
        return DenseOutput(out, _stats(site, sel, amp))


@dataclass(frozen=True)
class GeluLamp(_DenseLamp):
    r"""LAMP at ``mlp.fc``: the pre-activations whose error GELU amplifies by $\tau$ or more are recomputed
    in float32 (a :class:`~lampref.gpt2.plan.DenseRule`, frozen and hashable).

    Parameters
    ----------
    acc : Accumulator
        The low-precision accumulation of the layer (bias added and rounded as :func:`lampref.linear`).
    tau : float
        The bound on GELU's condition number $\kappa(z) = |z\phi'(z)/\phi(z)|$ of the components left in low
        precision, $0 \le \tau \le \infty$: ``inf`` recomputes nothing, ``0`` everything. $\kappa$ is about
        1 for $z > 0$, 0 at GELU's minimum ($z \approx -0.75$), 3.8 at $z = -2$ and 19 at $z = -4$ (tanh
        form; the erf form: 3.75 and 15.9).
    baseline : {None, "random"}, default None
        ``"random"``: as many outputs per row as LAMP selects, at random positions.
    seed : int, default 0
        Seed of the random baseline (row ``t`` of layer ``l`` draws from ``[seed, l, site, t]``).

    Notes
    -----
    Derivation and the meaning of $\tau$: ``docs/lamp-beyond.md``. For $y_i = \phi(z_i)$, to first order
    $\mathrm{relerr}(y_i) = \kappa(z_i)\, \mathrm{relerr}(z_i)$, so after the selection every GELU output
    left in low precision has at most $\tau$ times the relative error of its pre-activation. $\tau$ plays
    the part of softmax's $\tau$, but $\kappa$ is unbounded (near GELU's zero at $-\infty$), so there is no
    finite "recompute nothing" value.

    Examples
    --------
    On the embedded model, with the pre-activations accumulated with 4 mantissa bits:

    >>> import numpy as np
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.gpt2 import PrecisionPlan, default_model
    >>> from lampref.lamp_sites import GeluLamp, site_fractions
    >>> plan = PrecisionPlan.only("mlp.fc", GeluLamp(Accumulator(fp32_mantissa(4)), tau=2.0))
    >>> frac = site_fractions(default_model().logits_and_stats(np.arange(12), plan)[1])["mlp.fc"]
    >>> bool(0 < frac.recomputed < 1), bool(frac.amp_max < 2.0)
    (True, True)
    """

    def _check_after(self, site: str, after: After) -> None:
        if after.gelu is None:
            raise PlanError(f"GeluLamp looks ahead at GELU, which does not follow site {site!r}; use mlp.fc")

    def _select(
        self, x: Array, w: Array, b: Array, low: Array, after: After
    ) -> tuple[NDArray[np.bool_], Any]:
        return elementwise_select(_gelu_name(after), low, self.tau), None

    def _achieved(
        self, x: Array, w: Array, b: Array, low: Array, after: After, sel: NDArray[np.bool_]
    ) -> Array:
        return np.where(sel, 0.0, condition_number(_gelu_name(after), low))  # [n, N]


@dataclass(frozen=True)
class NormLamp(_DenseLamp):
    r"""LAMP at ``attn.proj`` or ``mlp.proj``: the outputs whose error the residual sum and the next
    LayerNorm amplify most are recomputed in float32 (a :class:`~lampref.gpt2.plan.DenseRule`).

    Parameters
    ----------
    acc : Accumulator
        The low-precision accumulation of the layer.
    tau : float
        The bound on every LayerNorm output's first-order relative error, in units of the accumulation
        format's unit roundoff $u$, $0 \le \tau \le \infty$ (``inf`` recomputes nothing).
    baseline, seed
        As :class:`GeluLamp`.

    Notes
    -----
    The output $a_j$ of the projection, computed with an absolute error of at most
    $\epsilon_j = K u\,(|x|\,|W| + |b|)_j$ (first order in $u$; the look-ahead evaluates it with a float32
    product of absolute values), is added to the residual $r$; the LayerNorm of $r + a$ has the
    amplification matrix $K$ of :func:`~lampref.analysis.layernorm_amplification`, and
    :func:`~lampref.analysis.layernorm_select` picks the inputs to recompute so that
    $\max_i \sum_{j \notin S} K_{ij} \le \tau u$. LayerNorm couples every input to every output, so the
    selection is not sparse for small $\tau$ (``docs/lamp-beyond.md`` has the measurement).
    The final LayerNorm (``ln_f``) sees the last block's ``mlp.proj``; without LayerNorm parameters in
    ``after`` the rule uses $\gamma = 1$, $\beta = 0$.
    """

    def _bounds(
        self, x: Array, w: Array, b: Array, low: Array, after: After, sel: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.bool_], Array]:
        """LAMP's selection ``[n, N]`` (or ``sel`` as given) and the bound it achieves per row ``[n]`` (in
        units of ``u``)."""
        assert after.residual is not None
        u = float(self.acc.fmt.unit_roundoff)
        eps = x.shape[-1] * u * (np.abs(x) @ np.abs(w) + np.abs(b)).astype(np.float64)  # first order
        r = after.residual.astype(np.float64) + low  # [n, N]: the LayerNorm's input
        kw: dict[str, Any] = {"gamma": after.ln_g, "beta": after.ln_b, "norm_eps": after.ln_eps}
        out = np.zeros(low.shape, dtype=bool) if sel is None else sel
        bound = np.zeros(low.shape[0])
        for i in range(0, low.shape[0], _CHUNK):  # [rows, N, N] amplification matrices, a chunk at a time
            rows = slice(i, i + _CHUNK)
            if sel is None:
                out[rows] = layernorm_select(r[rows], eps[rows], self.tau * u, **kw)
            K = layernorm_amplification(r[rows], np.where(out[rows], 0.0, eps[rows]), **kw)
            bound[rows] = K.sum(axis=-1).max(axis=-1) / u
        return out, bound

    def _check_after(self, site: str, after: After) -> None:
        if after.residual is None:
            raise PlanError(f"NormLamp looks ahead at a residual sum and a LayerNorm; site {site!r} has none")

    def _select(
        self, x: Array, w: Array, b: Array, low: Array, after: After
    ) -> tuple[NDArray[np.bool_], Any]:
        return self._bounds(x, w, b, low, after, None)

    def _achieved(
        self, x: Array, w: Array, b: Array, low: Array, after: After, sel: NDArray[np.bool_]
    ) -> Array:
        return self._bounds(x, w, b, low, after, sel)[1]


@dataclass(frozen=True)
class HeadLamp(_DenseLamp):
    r"""LAMP at ``lm_head``: the logits whose error the softmax of the next-token distribution amplifies
    most are recomputed in float32 (a :class:`~lampref.gpt2.plan.DenseRule`).

    The logits $z = x\,W_{te}^T$ feed a softmax over the vocabulary, the composition the LAMP paper
    analyses for attention: the same first-order analysis, the same selection
    (:func:`~lampref.analysis.lamp_select`, prefix rule) and the same threshold.

    Parameters
    ----------
    acc : Accumulator
        The low-precision accumulation of the logits.
    tau : float
        The softmax amplification bound $\kappa(S) \le \tau$ of every row, $0 < \tau \le 2$ ($\tau = 2$
        recomputes nothing).
    baseline, seed
        As :class:`GeluLamp`.

    Examples
    --------
    On the embedded model, with the logits accumulated with 4 mantissa bits, LAMP recomputes a fraction of
    a percent of them:

    >>> import numpy as np
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.gpt2 import PrecisionPlan, default_model
    >>> from lampref.lamp_sites import HeadLamp, site_fractions
    >>> plan = PrecisionPlan.only("lm_head", HeadLamp(Accumulator(fp32_mantissa(4)), tau=1.5))
    >>> frac = site_fractions(default_model().logits_and_stats(np.arange(10), plan)[1])["lm_head"]
    >>> bool(0 < frac.recomputed < 0.01), bool(frac.amp_max <= 1.5)
    (True, True)
    """

    def __post_init__(self) -> None:
        _check_common(self, self.tau)
        object.__setattr__(self, "tau", check_tau(self.tau))

    def _check_after(self, site: str, after: After) -> None:
        if not after.softmax:
            raise PlanError(
                f"HeadLamp looks ahead at a softmax, which does not follow site {site!r}; use lm_head"
            )

    def _select(
        self, x: Array, w: Array, b: Array, low: Array, after: After
    ) -> tuple[NDArray[np.bool_], Any]:
        probs = softmax(low)  # [n, V]
        sel = lamp_select(probs, self.tau)
        return sel, np.asarray(softmax_kappa(probs, sel), dtype=np.float64).reshape(-1)  # [n]

    def _achieved(
        self, x: Array, w: Array, b: Array, low: Array, after: After, sel: NDArray[np.bool_]
    ) -> Array:
        return np.asarray(softmax_kappa(softmax(low), sel), dtype=np.float64).reshape(-1)  # [n]


class SiteFraction(NamedTuple):
    r"""One site's recomputation statistics (:func:`site_fractions`).

    Attributes
    ----------
    recomputed : float
        Recomputed outputs / all outputs of the site (for ``attn.score``: recomputed / causal scores).
    per_layer : ndarray, shape (L,)
        The same per layer (NaN for a layer without the site's statistics).
    amp_mean : float
        The mean achieved amplification (``attn.score``: the mean $\kappa(S)$ per row; ``mlp.fc``: the
        mean over outputs; a LayerNorm site: the mean bound per row, in units of ``u``).
    amp_max : float
        The largest achieved amplification (``attn.score``: the upper edge of the last non-empty bin of
        the $\kappa$ histogram).
    """

    recomputed: float
    per_layer: NDArray[np.float64]
    amp_mean: float
    amp_max: float


def _softmax_fraction(layers: Sequence[Mapping[str, Any]]) -> SiteFraction | None:
    if not any("selected" in s for s in layers):
        return None
    frac = recompute_fraction(layers)
    hist = [np.asarray(s["kappa_hist"]).sum(axis=0) for s in layers if "kappa_hist" in s]
    top = float("nan")
    if hist:
        nz = np.nonzero(np.sum(hist, axis=0))[0]
        top = float(KAPPA_BINS[nz[-1] + 1]) if nz.size else 0.0
    return SiteFraction(frac.total, frac.per_layer, float(np.nanmean(frac.mean_kappa)), top)


def site_fractions(stats: Sequence[Mapping[str, Any]]) -> dict[str, SiteFraction]:
    """Per site, the recomputed fraction and the achieved amplification, from a forward pass's per-layer
    statistics (``GPT2.trace(...).stats``, ``GPT2.logits_and_stats``, or their sums over sequences).

    Returns
    -------
    dict of str to SiteFraction
        One entry per site with a rule (``attn.score`` for :class:`~lampref.lamp.LampConfig`, the dense
        sites for :class:`GeluLamp`, :class:`NormLamp` and :class:`HeadLamp`), in site order. The
        statistics of ``lm_head`` are kept with the last layer's.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.lamp_sites import site_fractions
    >>> layer = {"mlp.fc:selected": 3, "mlp.fc:valid": 12, "mlp.fc:amp_sum": 6.0, "mlp.fc:amp_count": 12,
    ...          "mlp.fc:amp_max": 1.5}
    >>> f = site_fractions([layer, layer])["mlp.fc"]
    >>> f.recomputed, f.per_layer, f.amp_mean, f.amp_max
    (0.25, array([0.25, 0.25]), 0.5, 1.5)
    """
    layers = list(stats)
    out: dict[str, SiteFraction] = {}
    for site in SITES:
        if site == "attn.score":
            soft = _softmax_fraction(layers)
            if soft is not None:
                out[site] = soft
            continue
        have = [s for s in layers if f"{site}:selected" in s]
        if not have:
            continue
        sel = np.array([float(s.get(f"{site}:selected", np.nan)) for s in layers])
        val = np.array([float(s.get(f"{site}:valid", np.nan)) for s in layers])
        amp = float(sum(float(s[f"{site}:amp_sum"]) for s in have))
        count = float(sum(float(s[f"{site}:amp_count"]) for s in have))
        with np.errstate(invalid="ignore", divide="ignore"):
            per_layer = sel / val
        total = float(np.nansum(sel) / np.nansum(val))
        amp_mean = amp / count if count else float("nan")
        amp_max = float(max(float(s[f"{site}:amp_max"]) for s in have))
        out[site] = SiteFraction(total, per_layer, amp_mean, amp_max)
    return out
