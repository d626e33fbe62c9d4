r"""Error amplification of softmax and the LAMP selection rule for attention rows.

Scores $z_j = q^T k_j$ are computed in low precision with absolute errors $|\delta_j| \le \epsilon$, and
$s = \operatorname{softmax}(z)$. Since $\partial s_i / \partial z_j = s_i (1[i = j] - s_j)$,

$$ \frac{\hat s_i}{s_i} - 1 \approx (1 - s_i)\,\delta_i - \sum_{j \ne i} s_j \delta_j. \tag{2} $$

If the scores $j \in S$ are recomputed exactly ($\delta_j = 0$), with $P_S = \sum_{j \in S} s_j$ the
selected probability mass (and $1 - P_S$ the unselected mass), the amplification of component $i$ is

$$ a_i(S) = \begin{cases} 2 - P_S - 2 s_i, & i \notin S,\\
1 - P_S, & i \in S, \end{cases} \tag{3} $$

attained by the sign pattern $\delta_i = \epsilon$, $\delta_j = -\epsilon$ ($j \notin S$, $j \ne i$), and

$$ \kappa(S) = \max_i a_i(S), \qquad
   \max_i \frac{|\hat s_i - s_i|}{s_i} \le \kappa(S)\,\epsilon + O(\epsilon^2). $$

With nothing recomputed $\kappa = 2(1 - \min_i s_i) \le 2$: a threshold $\tau = 2$ recomputes nothing. LAMP
recomputes a small set $S$ with $\kappa(S) \le \tau$ (:func:`lamp_select`).

These formulas are standard first-order analysis (the paper's theorem statements were not available to
lampref); they reproduce the authors' selection rule exactly (:func:`lamp_select` with ``rule="authors"``).
Rows are taken as exactly normalised (the unselected mass is $1 - P_S$, not the sum of the unselected
entries), as in the authors' rule: a row of float32 probabilities summing to $1 + 10^{-7}$ still has
$\kappa(\emptyset) \le 2$, so $\tau = 2$ selects nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import as_array, check_choice
from ..errors import AnalysisError
from ._checks import bool_mask, check_tau, real_array

__all__ = ["RULES", "lamp_select", "softmax_amplification", "softmax_kappa"]

RULES: tuple[str, ...] = ("prefix", "optimal", "authors")
"""The selection rules of :func:`lamp_select`: the top-$k$ prefix, the exact optimum, the authors' code."""
SCANS = ("cuda", "cpu", "sequential")  # the float32 prefix-sum orders of rule="authors"


# ------------------------------------------------------------------------------------------ validation
def _sum_tolerance(n: int, dtype: np.dtype[Any]) -> float:
    """Tolerance on |sum of a row - 1|: max(2**-20, 4 n u) with u the unit roundoff of the input dtype."""
    u = float(np.finfo(dtype).eps) / 2.0 if dtype.kind == "f" else 2.0**-53
    return max(2.0**-20, 4.0 * n * u)


def _check_probs(
    probs: ArrayLike, valid: ArrayLike | None, *, dtype: Any = np.float64
) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
    """Validate probability rows (last axis); return them in ``dtype`` with invalid entries set to 0."""
    raw = as_array(probs, "probs")
    arr = real_array(raw, "probs")
    if arr.ndim == 0:
        raise AnalysisError("probs must have at least one axis (rows along the last axis); got a scalar")
    if arr.shape[-1] == 0:
        raise AnalysisError(f"probs has shape {arr.shape}; expected at least one entry per row")
    mask = None if valid is None else bool_mask(valid, "valid", arr.shape)
    live = arr if mask is None else np.where(mask, arr, 0.0)
    if np.any(np.isnan(live)):
        raise AnalysisError("probs holds NaN where valid; expected probabilities in [0, 1]")
    n = arr.shape[-1]
    tol = _sum_tolerance(n, raw.dtype)
    if np.any(live < 0) or np.any(live > 1 + tol):
        raise AnalysisError("probs holds values outside [0, 1] where valid; expected probabilities")
    total = live.sum(axis=-1, dtype=np.float64)
    rows_with_entries = np.ones(total.shape, dtype=bool) if mask is None else mask.any(axis=-1)
    bad = rows_with_entries & ~(np.abs(total - 1.0) <= tol)
    if np.any(bad):
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" (row {first})" if first else ""
        raise AnalysisError(
            f"a row of probs sums to {float(total[first])!r}{where}; every row (its valid entries) must sum "
            f"to 1 within {tol:.3g} = max(2**-20, 4*n*u) for n={n} and the unit roundoff u of {raw.dtype}"
        )
    return live.astype(dtype, copy=False), mask


# ---------------------------------------------------------------------------------- amplification
def softmax_amplification(
    probs: ArrayLike, selected: ArrayLike | None = None, *, valid: ArrayLike | None = None
) -> NDArray[np.float64]:
    r"""The per-component amplification $a_i(S)$ of eq. (3) for softmax rows.

    Parameters
    ----------
    probs : array_like, shape (..., n)
        Softmax probabilities, one row per last axis; each row (its valid entries) sums to 1.
    selected : array_like of bool, optional
        The recomputed entries $S$ (same shape as ``probs``, or broadcastable to it). Default: none.
    valid : array_like of bool, optional
        Entries that belong to the row (for example a causal mask). Entries outside it are ignored: they do
        not count in $P_S$ and get $a_i = 0$.

    Returns
    -------
    numpy.ndarray, shape (..., n)
        $a_i(S)$ in float64: relative error of $s_i$ per unit of score error $\epsilon$, to first order.

    Raises
    ------
    AnalysisError
        If ``probs`` is not a probability distribution along the last axis (negative or NaN entries, or
        entries above 1 or row sums off 1 by more than $\max(2^{-20}, 4 n u)$ with $u$ the unit roundoff of
        its dtype), or a mask has the wrong dtype or shape.

    Notes
    -----
    With $P_S = \sum_{j \in S} s_j$ (the selected valid mass), eq. (3):
    $a_i(S) = 2 - P_S - 2 s_i$ for $i \notin S$ and $a_i(S) = 1 - P_S$ for $i \in S$ (clipped at 0, which
    matters only through the rounding of a row sum). From eq. (2), $1 - s_i = \sum_{j \ne i} s_j$ and the
    unselected mass is $1 - P_S$; each $a_i$ is attained: the sign pattern $\delta_i = \epsilon$,
    $\delta_j = -\epsilon$ for the other unselected $j$ gives $|\hat s_i / s_i - 1| = a_i(S)\,\epsilon +
    O(\epsilon^2)$.

    References
    ----------
    P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41(4), 2311-2330, 2021.
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import softmax_amplification
    >>> s = np.array([0.5, 0.3, 0.2])
    >>> softmax_amplification(s)
    array([1. , 1.4, 1.6])
    >>> softmax_amplification(s, np.array([False, False, True]))
    array([0.8, 1.2, 0.8])
    """
    p, mask = _check_probs(probs, valid)
    sel = np.zeros(p.shape, dtype=bool) if selected is None else bool_mask(selected, "selected", p.shape)
    live = np.ones(p.shape, dtype=bool) if mask is None else mask
    sel = sel & live
    P = np.where(sel, p, 0.0).sum(axis=-1, keepdims=True)
    a = np.maximum(np.where(sel, 1.0 - P, 2.0 - P - 2.0 * p), 0.0)
    return np.where(live, a, 0.0)


def softmax_kappa(
    probs: ArrayLike, selected: ArrayLike | None = None, *, valid: ArrayLike | None = None
) -> Any:
    r"""The softmax amplification factor $\kappa(S) = \max_i a_i(S)$ of each row.

    Parameters
    ----------
    probs : array_like, shape (..., n)
        Softmax probabilities along the last axis.
    selected : array_like of bool, optional
        The recomputed entries $S$. Default: none ($\kappa = 2(1 - \min_i s_i)$).
    valid : array_like of bool, optional
        Entries that belong to the row; the others are ignored.

    Returns
    -------
    float or numpy.ndarray, shape (...)
        $\kappa(S)$ in float64 (a Python float for a single row); 0 for a row with no valid entry.

    Raises
    ------
    AnalysisError
        As :func:`softmax_amplification`.

    Notes
    -----
    $\max_i |\hat s_i - s_i| / s_i \le \kappa(S)\,\epsilon + O(\epsilon^2)$ when the unselected scores have
    absolute errors at most $\epsilon$ and the selected ones are exact, and the bound is attained to first
    order. Whenever $\kappa(S) \ge 1$ (always when two or more entries are unselected),
    $\kappa(S) = 2 - P_S - 2 \min_{i \notin S} s_i$; with nothing selected, $\kappa = 2 - 2\min_i s_i$.

    References
    ----------
    P. Blanchard, D. J. Higham and N. J. Higham, IMA J. Numer. Anal. 41(4), 2021.
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import softmax_kappa
    >>> s = np.array([0.537, 0.376, 0.087])
    >>> round(softmax_kappa(s), 6), round(softmax_kappa(s, np.array([False, False, True])), 6)
    (1.826, 1.161)
    """
    a = softmax_amplification(probs, selected, valid=valid)
    k = a.max(axis=-1)
    return float(k) if k.ndim == 0 else k


# -------------------------------------------------------------------------------------- selection
def _sort_desc(p: NDArray[Any], live: NDArray[np.bool_] | None) -> NDArray[np.intp]:
    """Stable descending order along the last axis, valid entries first (ties: lower index first)."""
    if live is None:
        return np.argsort(-p, axis=-1, kind="stable")
    return np.lexsort((-p, ~live), axis=-1)


def _count_below(C: NDArray[np.float64], thr: NDArray[np.float64]) -> NDArray[np.intp]:
    """For each threshold thr[..., r], the number of j with C[..., j] < thr[..., r] (C nondecreasing).

    A batched searchsorted(side="left") by merging: O(n log n) per row, no Python loop over rows.
    """
    nq = thr.shape[-1]
    if nq == 1:  # a single threshold per row (the prefix rule): count directly
        counts: NDArray[np.intp] = np.sum(thr > C, axis=-1, keepdims=True, dtype=np.intp)
        return counts
    keys = np.concatenate([thr, C], axis=-1)  # [..., nq + nc]; on ties a query sorts first (stable)
    order = np.argsort(keys, axis=-1, kind="stable")
    is_c = order >= nq
    before = np.cumsum(is_c, axis=-1) - is_c  # C entries strictly before each merged position
    out = np.empty(keys.shape, dtype=np.intp)
    np.put_along_axis(out, order, before, axis=-1)
    return out[..., :nq]


def _solve(
    p: NDArray[np.float64], live: NDArray[np.bool_] | None, tau: float, optimal: bool
) -> NDArray[np.bool_]:
    """Prefix rule (optimal=False) or exact optimum (optimal=True), vectorised over all rows."""
    n = p.shape[-1]
    order = _sort_desc(p, live)
    s = np.take_along_axis(p, order, axis=-1)  # [..., n] descending, invalid (zeros) last
    nv = np.full(p.shape[:-1], n) if live is None else live.sum(axis=-1)  # [...]
    zero = np.zeros((*p.shape[:-1], 1))
    C = np.concatenate([zero, np.cumsum(s, axis=-1)], axis=-1)  # [..., n+1] C_j: sum of the top j
    D = np.concatenate([np.cumsum(s[..., ::-1], axis=-1)[..., ::-1][..., 1:], zero], axis=-1)  # [..., n]
    # D[..., r-1]: sum of the positions after r (1-based); 0 from the last valid position on.
    # Candidate r (1-based position of the last unselected entry in sorted order): unselected are positions
    # j+1..r, selected are the top j and every position after r, with mass P = C_j + D_r. The bound
    # max(2 - P - 2 s_r, 1 - P) <= tau holds iff C_j >= max(2 - 2 s_r - tau, 1 - tau) - D_r.
    r = np.arange(1, n + 1)
    if optimal:
        s_r = s
        D_r = D
    else:  # only r = nv (nothing after the last valid entry is selected): the top-k prefixes
        idx = np.maximum(nv - 1, 0)[..., None]
        s_r = np.take_along_axis(s, idx, axis=-1)
        D_r = np.take_along_axis(D, idx, axis=-1)  # exactly 0
        r = np.maximum(nv, 1)[..., None]
    need = np.maximum(2.0 - 2.0 * s_r - tau, 1.0 - tau)
    j = _count_below(C, need - D_r)  # smallest j with C_j >= threshold
    feasible = (j <= r - 1) & (r <= nv[..., None])
    count = np.where(feasible, j + (nv[..., None] - r), n + 1)
    P = np.take_along_axis(C, np.minimum(j, n), axis=-1) + D_r
    kappa = np.where(feasible, np.maximum(2.0 - P - 2.0 * s_r, 1.0 - P), np.inf)
    # The empty set has no selected entry, so only 2 - 2 s_min counts (1 - P = 1 would matter for a row with
    # a single valid entry); it is the smallest possible set whenever it qualifies.
    last = np.maximum(nv - 1, 0)[..., None]
    s_min = np.take_along_axis(s, last, axis=-1)[..., 0]
    empty_ok = (nv > 0) & (2.0 - 2.0 * s_min <= tau)
    # Best candidate: fewest entries, then smallest kappa, then the largest r (the prefix rule on ties).
    best_count = count.min(axis=-1, keepdims=True)
    k_masked = np.where(count == best_count, kappa, np.inf)
    best_kappa = k_masked.min(axis=-1, keepdims=True)
    tie = (count == best_count) & (k_masked == best_kappa)
    pick = (tie.shape[-1] - 1) - np.argmax(tie[..., ::-1], axis=-1)[..., None]  # last tie = largest r
    any_feasible = np.take_along_axis(feasible, pick, axis=-1)[..., 0]
    r_best = np.take_along_axis(np.broadcast_to(r, count.shape), pick, axis=-1)[..., 0]
    j_best = np.take_along_axis(j, pick, axis=-1)[..., 0]
    pos = np.arange(n)
    chosen = (pos < j_best[..., None]) | (pos >= r_best[..., None])
    chosen &= pos < nv[..., None]
    chosen = np.where(any_feasible[..., None], chosen, pos < nv[..., None])  # none feasible: take all
    chosen &= ~empty_ok[..., None]
    out = np.empty(p.shape, dtype=bool)
    np.put_along_axis(out, order, chosen, axis=-1)
    return out


# ----------------------------------------------------------------------------------- authors' rule
def _log_num_threads_x(num_rows: int, row_size: int) -> int:
    """PyTorch's get_log_num_threads_x_inner_scan<uint32_t> (ScanUtils.cuh), unsigned arithmetic included."""
    lx = max(0, (row_size - 1).bit_length())  # smallest k with 2**k >= row_size
    ly = max(0, (num_rows - 1).bit_length())
    v = ((9 + lx - ly) % (1 << 32)) // 2
    return min(max(4, v), 9)


def _scan_cuda(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Inclusive float32 prefix sums in the order of PyTorch's CUDA innermost-dimension scan.

    Each row is cut into chunks of 2 * 2**L elements (L from _log_num_threads_x); the running total of the
    previous chunks is added to the chunk's first element, then a Sklansky scan: at level m = 0..L, in every
    block of 2 * 2**m elements, each element of the upper half adds the last element of the lower half.
    """
    rows, n = x.shape
    L = _log_num_threads_x(rows, n)
    w = 2 << L
    chunks = -(-n // w)
    buf = np.zeros((rows, chunks * w), dtype=np.float32)
    buf[:, :n] = x
    buf = buf.reshape(rows, chunks, w)
    total = np.zeros(rows, dtype=np.float32)
    for c in range(chunks):  # sequential over chunks (the carry), vectorised over rows
        b = np.ascontiguousarray(buf[:, c, :])
        b[:, 0] = b[:, 0] + total
        for m in range(L + 1):
            s = 1 << m
            v = b.reshape(rows, w // (2 * s), 2, s)  # a view of the contiguous chunk
            v[:, :, 1, :] += v[:, :, 0, s - 1 : s]
        buf[:, c, :] = b
        total = b[:, w - 1].copy()
    return buf.reshape(rows, chunks * w)[:, :n]


def _scan(x: NDArray[np.float32], scan: str) -> NDArray[np.float32]:
    if scan == "cuda":
        return _scan_cuda(x)
    if scan == "cpu":  # ATen's CPU kernel: a float64 running sum, each output cast to float32
        return np.cumsum(x.astype(np.float64), axis=-1).astype(np.float32)
    return np.cumsum(x, axis=-1, dtype=np.float32)  # float32, left to right


def _authors(p32: NDArray[np.float32], tau: float, scan: str) -> NDArray[np.bool_]:
    """get_lamp_softmax_mask(att, 2 - tau) of the authors' code, in float32."""
    shape = p32.shape
    n = shape[-1]
    flat = p32.reshape(-1, n)
    order = np.argsort(-flat, axis=-1, kind="stable")  # torch.sort(descending=True); ties: lower index
    sv = np.take_along_axis(flat, order, axis=-1)
    if flat.shape[0] == 0:
        return np.zeros(shape, dtype=bool)
    incl = _scan(sv, scan)  # sorted_values.cumsum(dim=-1)
    prev = np.concatenate([np.zeros((flat.shape[0], 1), dtype=np.float32), incl[:, :-1]], axis=-1)  # F.pad
    lamp_sums = prev + np.float32(2.0) * sv[:, -1:]  # previous_sums + 2*sorted_values[:, -1:]
    threshold = np.float32(2.0 - tau)  # Python float 2 - tau, cast to the tensor's dtype by the comparison
    cutoff = lamp_sums < threshold
    out = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(out, order, cutoff, axis=-1)
    return out.reshape(shape)


def lamp_select(
    probs: ArrayLike,
    tau: float,
    *,
    valid: ArrayLike | None = None,
    rule: str = "prefix",
    scan: str | None = None,
) -> NDArray[np.bool_]:
    r"""Choose the attention scores to recompute accurately: LAMP's look-ahead selection.

    Parameters
    ----------
    probs : array_like, shape (..., n)
        Softmax probabilities of the low-precision scores, one row per last axis (any leading batch shape).
        Each row, restricted to its valid entries, must sum to 1 within $\max(2^{-20}, 4 n u)$, $u$ the unit
        roundoff of the array's dtype.
    tau : float
        The target amplification, $0 < \tau \le 2$: after recomputing $S$, the relative error of every
        probability is at most $\tau\,\epsilon + O(\epsilon^2)$ ($\epsilon$ bounding the score errors).
    valid : array_like of bool, optional
        Entries that belong to the row (a causal mask, for instance; any shape that broadcasts to
        ``probs``). Invalid entries are never selected and do not take part in the rule (but see
        ``rule="authors"``).
    rule : {"prefix", "optimal", "authors"}, default "prefix"
        ``"prefix"``: the smallest top-$k$ prefix (in the stable descending order) with
        $\kappa(S) \le \tau$. ``"optimal"``: a smallest set with $\kappa(S) \le \tau$ (see Notes).
        ``"authors"``: the authors' code, reproduced in float32 arithmetic (see Notes).
    scan : {"cuda", "cpu", "sequential"}, optional
        Only with ``rule="authors"``: the order of the float32 prefix sum, as PyTorch's ``cumsum`` on a
        CUDA device (default), on the CPU, or plain left to right.

    Returns
    -------
    numpy.ndarray of bool, shape of ``probs``
        True for the entries to recompute.

    Raises
    ------
    AnalysisError
        If ``probs`` is not a distribution along its last axis (as in :func:`softmax_amplification`, on the
        valid entries), ``tau`` is outside $(0, 2]$, ``valid`` is not boolean or does not broadcast to
        ``probs``, or ``rule`` or ``scan`` is unknown (or ``scan`` is given with another rule).

    Notes
    -----
    Entries are ordered by decreasing probability, ties by increasing index (a stable sort). ``"prefix"``
    returns the smallest $k$ whose top-$k$ set has $\kappa \le \tau$; it is optimal among the sets that
    leave the row's minimum unselected. ``"optimal"`` tries every choice of the smallest unselected entry at
    once, in $O(n \log n)$ per row, and never selects more than ``"prefix"``. Both evaluate $\kappa$ in
    float64, so a returned set meets $\kappa(S) \le \tau$ up to a few units of $2^{-53}$; if no set meets
    $\tau$, every valid entry is selected.

    ``"authors"`` selects the $k$-th largest entry iff $P_k + 2 \min(\text{row}) < 2 - \tau$, $P_k$ the
    sum of the $k - 1$ larger entries, in float32 and with the minimum over the whole row (invalid entries
    count as zeros): over the valid entries it selects a superset of ``"prefix"``. The float32 details it
    reproduces (the rounding of $2 - \tau$, the summation orders of ``scan``, ties) are set out in the user
    guide, "Error analysis of compositions", section "The LAMP selection rule".

    References
    ----------
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623; the authors' code
    (LAMP-LLM, ``lamp-inference/gpt2_lamp.py``, ``get_lamp_softmax_mask``).
    P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41(4), 2311-2330, 2021.
    M. El Arar, S. Filip, T. Mary and E. Riccietti, arXiv:2503.15568.
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import lamp_select
    >>> s = np.array([0.537, 0.376, 0.087])
    >>> print(lamp_select(s, 1.2, rule="optimal"))
    [False False  True]
    >>> print(lamp_select(s, 1.2, rule="prefix"))
    [ True  True False]
    >>> print(lamp_select(s.astype(np.float32), 1.2, rule="authors"))
    [ True  True False]
    >>> causal = np.tril(np.ones((3, 3), dtype=bool))
    >>> probs = np.array([[1.0, 0.0, 0.0], [0.75, 0.25, 0.0], [0.5, 0.3, 0.2]])
    >>> lamp_select(probs, 1.5, valid=causal)
    array([[False, False, False],
           [False, False, False],
           [ True, False, False]])
    """
    check_choice(rule, "rule", RULES, AnalysisError)
    if scan is not None and rule != "authors":
        raise AnalysisError(f"scan={scan!r} applies only to rule='authors' (got rule={rule!r})")
    t = check_tau(tau)
    if rule == "authors":
        sc = "cuda" if scan is None else scan
        check_choice(sc, "scan", SCANS, AnalysisError)
        p32, mask = _check_probs(probs, valid, dtype=np.float32)
        out = _authors(np.ascontiguousarray(p32), t, sc)
        return out if mask is None else out & mask
    p, mask = _check_probs(probs, valid)
    return _solve(p, mask, t, optimal=(rule == "optimal"))
