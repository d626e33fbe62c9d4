r"""First-order error analysis of a composition $f(g(x))$ and the look-ahead selection problem.

$g$ is computed cheaply as $\hat z = z + \delta$ with $|\delta_j| \le \epsilon_j$, and the components
$j \in S$ are recomputed accurately ($\delta_j = 0$). To first order, $(f(\hat z) - f(z))_i \approx
\sum_j \partial_j f_i(z)\, \delta_j$, so the relative error of each output component satisfies

$$ \frac{|f_i(\hat z) - f_i(z)|}{|f_i(z)|} \lesssim \sum_{j \notin S} K_{ij}, \qquad
K_{ij} = \frac{|\partial_j f_i(z)|\, \epsilon_j}{|f_i(z)|}. \tag{1} $$

$K$ is the **amplification matrix**: how much an error in component $j$ of $g$ hurts component $i$ of $f$.
The look-ahead (LAMP) problem is to find the smallest $S$ with $\max_i \sum_{j \notin S} K_{ij} \le \tau$,
a covering problem: :func:`select_greedy` is a heuristic, :func:`select_exact` searches all subsets of a
small problem. For $f$ = softmax the problem has structure that :func:`lampref.analysis.lamp_select`
solves exactly in $O(n \log n)$.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import AnalysisError
from ._checks import bool_mask, finite_array, nonnegative_int, real_array, real_scalar

__all__ = [
    "RelativeErrorBound",
    "amplification_matrix",
    "relative_error_bound",
    "select_exact",
    "select_greedy",
]

_EXACT_HARD_LIMIT = 26
_EXACT_CHUNK = 1 << 15


def amplification_matrix(jacobian: ArrayLike, f_values: ArrayLike, eps: ArrayLike) -> NDArray[np.float64]:
    r"""The amplification matrix $K_{ij} = |J_{ij}|\, \epsilon_j / |f_i|$ of eq. (1).

    Parameters
    ----------
    jacobian : array_like, shape (..., m, n)
        $J_{ij} = \partial f_i / \partial z_j$ at the point of interest.
    f_values : array_like, shape (..., m)
        The values $f_i(z)$ (broadcast against the leading axes of ``jacobian``).
    eps : float or array_like, shape (..., n)
        Absolute error bounds $\epsilon_j \ge 0$ of the inputs $z_j$: one number for all, or one per
        component.

    Returns
    -------
    numpy.ndarray, shape (..., m, n)
        $K$ in float64. Where $f_i = 0$ the relative error is undefined: $K_{ij} = \infty$ if
        $|J_{ij}|\epsilon_j > 0$ and $0$ otherwise.

    Raises
    ------
    AnalysisError
        Non-finite or mismatched inputs, negative ``eps``.

    Notes
    -----
    To first order in $\epsilon$, a perturbation $|\delta_j| \le \epsilon_j$ changes $f_i$ by a relative
    amount at most $\sum_j K_{ij}$, and the sign pattern $\delta_j = \epsilon_j \operatorname{sign} J_{ij}$
    attains it (for each $i$ separately). This is the componentwise condition number of $f$
    (Higham 2002, section 7.1) in absolute input perturbations.

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3 and 7.
    M. El Arar, S. Filip, T. Mary and E. Riccietti, arXiv:2503.15568 (compute, estimate, recompute).
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import amplification_matrix
    >>> J = np.array([[1.0, -2.0], [0.5, 0.0]])       # f(z) = (z0 - 2 z1, z0 / 2) at z = (4, 1)
    >>> amplification_matrix(J, [2.0, 2.0], 1e-3)
    array([[0.0005 , 0.001  ],
           [0.00025, 0.     ]])
    """
    J = finite_array(jacobian, "jacobian")
    if J.ndim < 2:
        raise AnalysisError(f"jacobian must have shape (..., m, n); got shape {J.shape}")
    f = finite_array(f_values, "f_values")
    e = finite_array(eps, "eps")
    if np.any(e < 0):
        raise AnalysisError("eps holds negative values; expected absolute error bounds eps >= 0")
    m, n = J.shape[-2:]
    try:
        np.broadcast_shapes(f.shape, J.shape[:-1])
        np.broadcast_shapes(e.shape, (*J.shape[:-2], n))
    except ValueError:
        raise AnalysisError(
            f"shapes do not match: jacobian {J.shape} (..., m={m}, n={n}) needs f_values of shape (..., {m}) "
            f"and eps a scalar or of shape (..., {n}); got f_values {f.shape} and eps {e.shape}"
        ) from None
    num = np.abs(J) * (e[..., None, :] if e.ndim else e)
    den = np.abs(f)[..., :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        K = np.where(num == 0.0, 0.0, num / den)
    return K


class RelativeErrorBound(NamedTuple):
    """The first-order relative error bound of eq. (1): its maximum and each output component's share."""

    bound: Any
    """$\\max_i \\sum_{j \\notin S} K_{ij}$ (float, or an array over the leading axes)."""
    componentwise: NDArray[np.float64]
    """$\\sum_{j \\notin S} K_{ij}$ for each output component $i$, shape (..., m)."""


def _check_k(K: ArrayLike) -> NDArray[np.float64]:
    arr = real_array(K, "K")
    if arr.ndim < 2:
        raise AnalysisError(f"K must have shape (..., m, n); got shape {arr.shape}")
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise AnalysisError("K must hold non-negative numbers (no NaN); it is built from absolute values")
    return arr


def _row_sums(K: NDArray[np.float64], unselected: NDArray[np.bool_]) -> NDArray[np.float64]:
    """sum_j K[..., i, j] * unselected[..., s, j] for every subset s: shape (..., m, s); inf-safe."""
    inf = np.isinf(K)
    finite_part = np.where(inf, 0.0, K) @ np.swapaxes(unselected, -1, -2).astype(np.float64)
    hits = inf.astype(np.float64) @ np.swapaxes(unselected, -1, -2).astype(np.float64)
    return np.where(hits > 0, np.inf, finite_part)


def relative_error_bound(K: ArrayLike, selected: ArrayLike | None = None) -> RelativeErrorBound:
    r"""The first-order relative error bound $\max_i \sum_{j \notin S} K_{ij}$ of eq. (1).

    Parameters
    ----------
    K : array_like, shape (..., m, n)
        An amplification matrix (:func:`amplification_matrix`).
    selected : array_like of bool, shape (..., n), optional
        The recomputed components $S$ (their errors are removed). Default: none.

    Returns
    -------
    RelativeErrorBound
        ``bound``: the maximum over $i$ (a float for a 2-d ``K``), and ``componentwise``: the vector
        $\sum_{j \notin S} K_{ij}$, shape (..., m).

    Raises
    ------
    AnalysisError
        If ``K`` is not a non-negative matrix or ``selected`` does not match its last axis.

    Notes
    -----
    With $|\delta_j| \le \epsilon_j$ for $j \notin S$ and $\delta_j = 0$ for $j \in S$,
    $|f_i(\hat z) - f_i(z)| / |f_i(z)| \le \sum_{j \notin S} K_{ij} + O(\epsilon^2)$ (eq. 1).

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import relative_error_bound
    >>> K = np.array([[0.5, 0.25], [0.1, 0.0]])
    >>> relative_error_bound(K)
    RelativeErrorBound(bound=0.75, componentwise=array([0.75, 0.1 ]))
    >>> relative_error_bound(K, np.array([True, False])).bound
    0.25
    """
    Ka = _check_k(K)
    n = Ka.shape[-1]
    if selected is None:
        unsel = np.ones((*Ka.shape[:-2], n), dtype=bool)
    else:
        unsel = ~bool_mask(selected, "selected", (*Ka.shape[:-2], n))
    comp = _row_sums(Ka, unsel[..., None, :])[..., 0]
    best = comp.max(axis=-1) if comp.shape[-1] else np.zeros(comp.shape[:-1])
    return RelativeErrorBound(float(best) if np.ndim(best) == 0 else best, comp)


def _check_tau_general(tau: object) -> float:
    t = real_scalar(tau, "tau")
    if t < 0:
        raise AnalysisError(f"tau={tau!r} is negative; expected a relative error target tau >= 0")
    return t


def _check_k2(K: ArrayLike) -> NDArray[np.float64]:
    Ka = _check_k(K)
    if Ka.ndim != 2:
        raise AnalysisError(f"K must be a single (m, n) matrix here; got shape {Ka.shape}")
    return Ka


def select_greedy(K: ArrayLike, tau: float) -> NDArray[np.bool_]:
    r"""A small set $S$ of columns with $\max_i \sum_{j \notin S} K_{ij} \le \tau$, chosen greedily.

    Parameters
    ----------
    K : array_like, shape (m, n)
        An amplification matrix.
    tau : float
        The target relative error bound, $\tau \ge 0$ (in units of the $\epsilon$ built into $K$).

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        The selected columns. Selecting every column gives a bound of 0, so a set always exists.

    Raises
    ------
    AnalysisError
        If ``K`` is not a non-negative (m, n) matrix or ``tau`` is negative or NaN.

    Notes
    -----
    Starting from $S = \emptyset$, while $\max_i \sum_{j \notin S} K_{ij} > \tau$, add the column whose
    removal gives the smallest new maximum; ties go to the column with the largest sum $\sum_i K_{ij}$,
    then to the lowest index. A heuristic: its set can be larger than the optimum (:func:`select_exact`), as
    for any greedy set cover. Cost $O(m n^2)$ per step.

    References
    ----------
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.
    M. El Arar, S. Filip, T. Mary and E. Riccietti, arXiv:2503.15568.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import select_greedy
    >>> K = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.6]])
    >>> select_greedy(K, 0.5)
    array([ True, False,  True])
    """
    Ka = _check_k2(K)
    t = _check_tau_general(tau)
    m, n = Ka.shape
    unsel = np.ones(n, dtype=bool)
    colsum = np.where(np.isinf(Ka), np.inf, Ka).sum(axis=0) if m else np.zeros(n)
    while True:
        current = _row_sums(Ka, unsel[None, :])[:, 0]
        if m == 0 or current.max() <= t or not unsel.any():
            return ~unsel
        cand = np.flatnonzero(unsel)
        trial = np.repeat(unsel[None, :], cand.size, axis=0)
        trial[np.arange(cand.size), cand] = False
        after = _row_sums(Ka, trial).max(axis=0)  # (candidates,)
        best = after.min()
        ties = cand[after == best]
        pick = ties[np.argmax(colsum[ties])]  # first maximum: lowest index among equal sums
        unsel[pick] = False


def select_exact(K: ArrayLike, tau: float, *, max_columns: int = 20) -> NDArray[np.bool_]:
    r"""The smallest set $S$ of columns with $\max_i \sum_{j \notin S} K_{ij} \le \tau$, by exhaustive search.

    Parameters
    ----------
    K : array_like, shape (m, n)
        An amplification matrix.
    tau : float
        The target relative error bound, $\tau \ge 0$.
    max_columns : int, default 20
        Refuse problems with more columns than this (the search visits up to $2^n$ subsets); at most 26.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        A smallest feasible set; among the smallest, the one with the smallest bound, and among those the
        first in lexicographic order of column indices.

    Raises
    ------
    AnalysisError
        If $n$ exceeds ``max_columns``, ``K`` is not a non-negative (m, n) matrix, or ``tau`` is invalid.

    Notes
    -----
    Subsets are visited by increasing size $|S| = 0, 1, \dots, n$, each size in the order of
    :func:`itertools.combinations`, with all bounds of one size computed as one matrix product. This is the
    test oracle for the structured solvers (:func:`lampref.analysis.lamp_select`).

    References
    ----------
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import select_exact
    >>> K = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.6]])
    >>> select_exact(K, 0.5)
    array([ True, False,  True])
    >>> select_exact(np.ones((2, 30)), 1.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lampref.errors.AnalysisError: select_exact searches all 2**n subsets; n=30 columns exceeds ...
    """
    Ka = _check_k2(K)
    t = _check_tau_general(tau)
    limit = nonnegative_int(max_columns, "max_columns")
    if limit > _EXACT_HARD_LIMIT:
        raise AnalysisError(
            f"max_columns={limit} is above the hard limit {_EXACT_HARD_LIMIT} (2**26 subsets)"
        )
    m, n = Ka.shape
    if n > limit:
        raise AnalysisError(
            f"select_exact searches all 2**n subsets; n={n} columns exceeds max_columns={limit} "
            "(use select_greedy, or lamp_select for softmax)"
        )
    for size in range(n + 1):
        best_val, best_set = np.inf, None  # type: float, NDArray[np.bool_] | None
        combos = itertools.combinations(range(n), size)
        while True:
            chunk = list(itertools.islice(combos, _EXACT_CHUNK))
            if not chunk:
                break
            sel = np.zeros((len(chunk), n), dtype=bool)
            if size:
                idx = np.array(chunk)
                sel[np.arange(len(chunk))[:, None], idx] = True
            bounds = _row_sums(Ka, ~sel).max(axis=0) if m else np.zeros(len(chunk))
            ok = bounds <= t
            if ok.any():
                cand = np.flatnonzero(ok)
                k = cand[np.argmin(bounds[cand])]
                if bounds[k] < best_val or best_set is None:
                    best_val, best_set = bounds[k], sel[k]
        if best_set is not None:
            found: NDArray[np.bool_] = best_set.copy()
            return found
    raise AssertionError("unreachable: selecting every column gives a bound of 0")  # pragma: no cover
