r"""Rounding error bounds for inner products: Higham's $\gamma_n$ and the probabilistic $\tilde\gamma_n$.

An inner product $s = x^T y$ of length $n$ computed in floating-point arithmetic with unit roundoff $u$
(any order of summation, each product and each addition rounded, or products exact as in a fused
multiply-add) satisfies the deterministic bound

$$ |\hat s - s| \le \gamma_n \sum_{k=1}^n |x_k y_k|, \qquad \gamma_n = \frac{n u}{1 - n u}, $$

valid whenever $n u < 1$ and no underflow or overflow occurs (Higham 2002, section 3.1). Treating the
rounding errors as independent random variables of mean zero, Higham & Mary (2019) replace $\gamma_n$ by
$\tilde\gamma_n(\lambda) = \exp(\lambda\sqrt{n}\,u + n u^2/(1-u)) - 1 \approx \lambda \sqrt n\, u$, a bound
that holds with a stated probability; see :func:`inner_product_error_bound`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import as_array, check_choice
from ..errors import AnalysisError
from ..formats import FloatFormat, get_format
from ._checks import finite_vectors, real_scalar

__all__ = ["dot_condition_number", "gamma", "inner_product_error_bound", "unit_roundoff"]

FormatLike = FloatFormat | str | float

_KINDS = ("deterministic", "probabilistic")


def unit_roundoff(fmt: FormatLike) -> float:
    r"""The unit roundoff $u$ of a format, a format name, or $u$ itself.

    Parameters
    ----------
    fmt : FloatFormat, str or float
        A :class:`~lampref.FloatFormat`, a name :func:`~lampref.get_format` knows (``"fp16"``,
        ``"bf16"``, ``"fp32_m10"``, ...), or the unit roundoff as a number in $(0, 1)$.

    Returns
    -------
    float
        $u = 2^{-p}$ for a format of precision $p$ (round to nearest); the number itself otherwise.

    Raises
    ------
    FormatError
        For an unknown format name.
    AnalysisError
        For a number outside $(0, 1)$ or an argument of another type.

    Notes
    -----
    With round to nearest, every real $x$ in the normal range satisfies
    $\mathrm{fl}(x) = x(1 + \delta)$, $|\delta| \le u$ (Higham 2002, Theorem 2.2). The paper's
    "$m$ mantissa bits" format has $p = m + 1$, so $u = 2^{-(m+1)}$.

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 2.

    Examples
    --------
    >>> from lampref import fp32_mantissa
    >>> from lampref.analysis import unit_roundoff
    >>> unit_roundoff("fp16"), unit_roundoff(fp32_mantissa(7)), unit_roundoff(2.0**-24)
    (0.00048828125, 0.00390625, 5.960464477539063e-08)
    """
    if isinstance(fmt, (FloatFormat, str)):
        return get_format(fmt).unit_roundoff
    try:
        u = real_scalar(fmt, "u")
    except AnalysisError:
        raise AnalysisError(
            f"expected a FloatFormat, a format name or a unit roundoff in (0, 1), got {fmt!r}"
        ) from None
    if not 0.0 < u < 1.0:
        raise AnalysisError(f"unit roundoff u={u!r} is out of range; expected 0 < u < 1")
    return u


def gamma(n: ArrayLike, u: FormatLike) -> Any:
    r"""Higham's constant $\gamma_n = n u / (1 - n u)$.

    Parameters
    ----------
    n : int or array_like of int
        Number of rounding errors (for an inner product or a sum, its length), $n \ge 0$.
    u : FloatFormat, str or float
        The unit roundoff, or a format whose unit roundoff is used (see :func:`unit_roundoff`).

    Returns
    -------
    float or numpy.ndarray
        $\gamma_n$, in float64; a Python float for a scalar ``n``.

    Raises
    ------
    AnalysisError
        If ``n`` is not a non-negative integer, or if $n u \ge 1$ (the bound does not exist).

    Notes
    -----
    If $|\delta_k| \le u$ and $\rho_k = \pm 1$ for $k = 1, \dots, n$ and $n u < 1$, then
    $\prod_{k=1}^n (1 + \delta_k)^{\rho_k} = 1 + \theta_n$ with $|\theta_n| \le \gamma_n$
    (Higham 2002, Lemma 3.1). Hence an inner product of length $n$ has
    $|\hat s - s| \le \gamma_n |x|^T |y|$ (eq. 3.5 there).

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.

    Examples
    --------
    >>> from lampref.analysis import gamma
    >>> gamma(1, 2.0**-11), gamma(64, "fp16")
    (0.0004885197850512946, 0.03225806451612903)
    >>> gamma([1, 2, 4], 0.125)
    array([0.14285714, 0.33333333, 1.        ])
    """
    uu = unit_roundoff(u)
    arr = as_array(n, "n")
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iu":
        raise AnalysisError(f"n must be a non-negative integer (or an array of them), got {n!r}")
    if np.any(arr < 0):
        raise AnalysisError(f"n={n!r} holds negative values; expected n >= 0")
    nu = arr.astype(np.float64) * uu
    if np.any(nu >= 1.0):
        worst = int(arr.max())
        raise AnalysisError(
            f"gamma_n needs n*u < 1, but n={worst} and u={uu!r} give n*u={worst * uu!r}; "
            "the deterministic bound does not exist (use a probabilistic bound or a shorter sum)"
        )
    out = nu / (1.0 - nu)
    return float(out) if out.ndim == 0 else out


def _gamma_tilde(n: int, u: float, delta: float) -> float:
    """Higham & Mary's gamma~_n(lambda) with lambda chosen for failure probability delta."""
    if n == 0:
        return 0.0
    lam = math.sqrt(2.0 * math.log(2.0 * n / delta)) / (1.0 - u)
    return math.expm1(lam * math.sqrt(n) * u + n * u * u / (1.0 - u))


def inner_product_error_bound(
    x: ArrayLike,
    y: ArrayLike,
    fmt_or_u: FormatLike,
    *,
    kind: str = "deterministic",
    delta: float = 1e-6,
) -> Any:
    r"""A bound on the absolute rounding error of the inner products $x^T y$ along the last axis.

    Parameters
    ----------
    x, y : array_like
        Real vectors along the last axis (length $n$); leading axes broadcast.
    fmt_or_u : FloatFormat, str or float
        The format the inner product is accumulated in, or its unit roundoff $u$.
    kind : {"deterministic", "probabilistic"}, default "deterministic"
        ``"deterministic"``: $\gamma_n |x|^T|y|$, always valid (for $n u < 1$, without underflow).
        ``"probabilistic"``: $\tilde\gamma_n(\lambda) |x|^T|y|$, valid with probability at least
        $1 - \delta$ under the model in the Notes.
    delta : float, default 1e-6
        Failure probability of the probabilistic bound, $0 < \delta < 1$ (ignored when deterministic).

    Returns
    -------
    float or numpy.ndarray
        The bound for each inner product, in float64 (a Python float for 1-d inputs).

    Raises
    ------
    AnalysisError
        Unknown ``kind``, ``delta`` outside $(0, 1)$, non-finite inputs, last axes of different lengths, or
        $n u \ge 1$ with ``kind="deterministic"``.

    Notes
    -----
    The deterministic bound is Higham (2002), eq. 3.5. The probabilistic bound is that of Higham & Mary
    (2019). Their model: the relative errors $\delta_k$ of the individual roundings are independent random
    variables of mean zero with $|\delta_k| \le u$. Under it, for any $\lambda > 0$,
    $\prod_{k=1}^n (1 + \delta_k)^{\pm 1} = 1 + \theta_n$ with

    $$ |\theta_n| \le \tilde\gamma_n(\lambda)
       = \exp\Big(\lambda \sqrt{n}\, u + \frac{n u^2}{1 - u}\Big) - 1 $$

    with probability at least $P(\lambda) = 1 - 2\exp(-\lambda^2 (1 - u)^2 / 2)$; an inner product of
    length $n$ involves $n$ such products (one per term), so, by a union bound,
    $|\hat s - s| \le \tilde\gamma_n(\lambda)\, |x|^T |y|$ with probability at least
    $Q(\lambda, n) = 1 - n (1 - P(\lambda)) = 1 - 2 n \exp(-\lambda^2 (1 - u)^2 / 2)$. This function solves
    $Q(\lambda, n) = 1 - \delta$:

    $$ \lambda = \frac{\sqrt{2 \ln(2 n / \delta)}}{1 - u}. $$

    Round to nearest does not satisfy the model (its errors are deterministic functions of the data), but
    the bound describes typical behaviour. Stochastic rounding gives errors of mean zero that are mean
    independent, and Connolly, Higham & Mary (2021) show that the same $\tilde\gamma_n(\lambda)$ bound then
    holds with the same probabilities.

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.
    N. J. Higham and T. Mary, "A new approach to probabilistic rounding error analysis",
    SIAM J. Sci. Comput. 41(5), A2815-A2835, 2019.
    M. P. Connolly, N. J. Higham and T. Mary, "Stochastic rounding and its probabilistic backward error
    analysis", SIAM J. Sci. Comput. 43(1), A566-A585, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import inner_product_error_bound
    >>> x = np.ones(1024)
    >>> inner_product_error_bound(x, x, "fp16")
    1024.0
    >>> round(inner_product_error_bound(x, x, "fp16", kind="probabilistic", delta=1e-6), 3)
    110.654
    """
    check_choice(kind, "kind", _KINDS, AnalysisError)
    u = unit_roundoff(fmt_or_u)
    xa, ya = finite_vectors(x, y)
    n = xa.shape[-1]
    if kind == "deterministic":
        g = gamma(n, u)
    else:
        d = real_scalar(delta, "delta")
        if not 0.0 < d < 1.0:
            raise AnalysisError(
                f"delta={delta!r} is out of range; expected a failure probability 0 < delta < 1"
            )
        g = _gamma_tilde(n, u, d)
    absdot = np.einsum("...k,...k->...", np.abs(xa), np.abs(ya))
    out = g * absdot
    return float(out) if np.ndim(out) == 0 else out


def dot_condition_number(x: ArrayLike, y: ArrayLike) -> Any:
    r"""The relative condition number $|x|^T|y| / |x^T y|$ of inner products along the last axis.

    Parameters
    ----------
    x, y : array_like
        Real vectors along the last axis; leading axes broadcast.

    Returns
    -------
    float or numpy.ndarray
        $\kappa_{\mathrm{dot}} \ge 1$ in float64; ``inf`` where $x^T y = 0 \ne |x|^T|y|$, and 1 where both
        vanish (a Python float for 1-d inputs).

    Raises
    ------
    AnalysisError
        Non-finite inputs or last axes of different lengths.

    Notes
    -----
    If every product $x_k y_k$ is perturbed by a relative amount at most $\epsilon$, the inner product changes
    by a relative amount at most $\kappa_{\mathrm{dot}}\,\epsilon$, and the bound is attained (Higham 2002,
    section 3.1). Combined with $\gamma_n$, the computed inner product has relative error at most
    $\gamma_n \kappa_{\mathrm{dot}}$. The sums are evaluated in float64 (for float32 inputs every product is
    exact): a result above about $10^{15}$ only says that $x^T y$ is zero to working accuracy.

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.

    Examples
    --------
    >>> from lampref.analysis import dot_condition_number
    >>> dot_condition_number([1.0, 2.0], [3.0, 4.0]), dot_condition_number([1.0, 1.0], [1.0, -0.75])
    (1.0, 7.0)
    """
    xa, ya = finite_vectors(x, y)
    num = np.einsum("...k,...k->...", np.abs(xa), np.abs(ya))
    den = np.abs(np.einsum("...k,...k->...", xa, ya))
    with np.errstate(divide="ignore", invalid="ignore"):
        out: NDArray[np.float64] = np.where(num == 0.0, 1.0, num / den)
    return float(out) if out.ndim == 0 else out
