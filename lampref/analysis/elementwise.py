r"""Relative condition numbers of the element-wise functions of a transformer.

For $y = \phi(z)$ computed from a perturbed argument $z(1 + \rho)$, to first order
$|\hat y - y| / |y| \approx \kappa_\phi(z)\, |\rho|$ with

$$ \kappa_\phi(z) = \left| \frac{z\, \phi'(z)}{\phi(z)} \right|. $$

When $z = w^T x$ is an inner product computed in low precision, its relative error is at most
$\gamma_n \kappa_{\mathrm{dot}}$ (:func:`lampref.analysis.dot_condition_number`), so a look-ahead rule for a
linear layer followed by $\phi$ recomputes the pre-activations with the largest
$\kappa_\phi \cdot \kappa_{\mathrm{dot}}$. The paper lists LAMP for all nonlinearities as future work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import AnalysisError, expected_one_of
from ..special import erfc
from ._checks import real_array, real_scalar

__all__ = ["CONDITION_FUNCTIONS", "condition_number", "elementwise_select"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_A = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 / (1 + exp(-x)) without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _mills_inverse(t: NDArray[np.float64]) -> NDArray[np.float64]:
    """pdf(-t) / cdf(-t) = 1 / M(t) for t >= 20, from Laplace's continued fraction of the Mills ratio."""
    acc = np.zeros_like(t)
    for k in range(60, 0, -1):
        acc = k / (t + acc)
    return t + acc  # 1 / M(t) = t + 1/(t + 2/(t + 3/(t + ...)))


def _kappa_gelu_erf(z: NDArray[np.float64]) -> NDArray[np.float64]:
    # phi = z Phi(z), phi' = Phi(z) + z pdf(z): kappa = |1 + z pdf(z) / Phi(z)|
    far = z < -20.0
    zz = np.where(far | (z > 40.0), -1.0, z)
    cdf = 0.5 * erfc(-zz * _SQRT_HALF)
    ratio = np.exp(-0.5 * zz * zz) * _INV_SQRT_2PI / cdf
    ratio = np.where(z > 40.0, 0.0, ratio)  # pdf/cdf < 1e-340 there
    ratio = np.where(far, _mills_inverse(np.where(far, -z, 20.0)), ratio)
    return np.abs(1.0 + z * ratio)


def _kappa_gelu_tanh(z: NDArray[np.float64]) -> NDArray[np.float64]:
    # phi = z (1 + tanh(v)) / 2, v = c (z + a z^3): with 1 + tanh v = 2 sigma(2v) and
    # sech^2(v) / (1 + tanh v) = 2 sigma(-2v), kappa = |1 + 2 z c (1 + 3 a z^2) sigma(-2v)|
    with np.errstate(over="ignore", invalid="ignore"):
        v = _SQRT_2_OVER_PI * (z + _GELU_TANH_A * z**3)
        k = np.abs(1.0 + 2.0 * z * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_A * z * z) * _sigmoid(-2.0 * v))
    return np.where(z > 50.0, 1.0, k)  # sigma(-2v) < 1e-1900 there


def _kappa_silu(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.abs(1.0 + z * _sigmoid(-z))  # phi = z sigma(z), phi' = sigma(z) (1 + z sigma(-z))


def _kappa_sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.abs(z * _sigmoid(-z))  # phi' = sigma(z) sigma(-z)


def _kappa_tanh(z: NDArray[np.float64]) -> NDArray[np.float64]:
    # z (1 - tanh^2 z) / tanh z = 2 z / sinh(2 z) = 4|z| e^{-2|z|} / (1 - e^{-4|z|}), 1 at z = 0
    a = np.abs(z)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = 4.0 * a * np.exp(-2.0 * a) / -np.expm1(-4.0 * a)
    return np.where(a == 0.0, 1.0, k)


def _kappa_exp(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.abs(z)


def _kappa_log(z: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.abs(1.0 / np.log(z))


def _kappa_sqrt(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.full_like(z, 0.5)


def _kappa_reciprocal(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.ones_like(z)


_FUNCS: dict[str, tuple[Callable[[NDArray[np.float64]], NDArray[np.float64]], str]] = {
    "gelu_erf": (_kappa_gelu_erf, "all"),
    "gelu_tanh": (_kappa_gelu_tanh, "all"),
    "silu": (_kappa_silu, "all"),
    "sigmoid": (_kappa_sigmoid, "all"),
    "tanh": (_kappa_tanh, "all"),
    "exp": (_kappa_exp, "all"),
    "log": (_kappa_log, "positive"),
    "sqrt": (_kappa_sqrt, "nonnegative"),
    "reciprocal": (_kappa_reciprocal, "nonzero"),
}
_ALIASES = {"gelu": "gelu_erf"}

CONDITION_FUNCTIONS: tuple[str, ...] = (*_FUNCS, *_ALIASES)
"""The names :func:`condition_number` accepts."""


def condition_number(name: str, z: ArrayLike) -> Any:
    r"""The relative condition number $\kappa_\phi(z) = |z \phi'(z) / \phi(z)|$ of an element-wise function.

    Parameters
    ----------
    name : str
        One of ``"gelu_erf"`` (alias ``"gelu"``, PyTorch's ``nn.GELU()``), ``"gelu_tanh"`` (GPT-2's
        ``gelu_new``), ``"silu"``, ``"sigmoid"``, ``"tanh"``, ``"exp"``, ``"log"``, ``"sqrt"``,
        ``"reciprocal"``.
    z : array_like
        Arguments (float64 is used for the computation).

    Returns
    -------
    float or numpy.ndarray
        $\kappa_\phi(z)$ in float64, same shape as ``z`` (a float for a scalar). Where $\phi(z) = 0$
        the limit is returned (1 for the GELUs, SiLU and tanh at $z = 0$, 1/2 for sqrt). NaN propagates.

    Raises
    ------
    AnalysisError
        For an unknown name, or an argument outside the function's domain (``log``: $z > 0$; ``sqrt``:
        $z \ge 0$; ``reciprocal``: $z \ne 0$).

    Notes
    -----
    The formulas, with $\Phi$ and $\varphi$ the standard normal cdf and pdf and $\sigma$ the logistic
    function:

    | function | $\phi(z)$ | $\kappa_\phi(z)$ |
    |---|---|---|
    | ``gelu_erf`` | $z\,\Phi(z)$ | $\lvert 1 + z \varphi(z) / \Phi(z) \rvert$ |
    | ``gelu_tanh`` | $\tfrac{z}{2}(1 + \tanh v)$ | $\lvert 1 + 2 z c (1 + 3 a z^2)\, \sigma(-2 v) \rvert$ |
    | ``silu`` | $z\,\sigma(z)$ | $\lvert 1 + z\, \sigma(-z) \rvert$ |
    | ``sigmoid`` | $\sigma(z)$ | $\lvert z\, \sigma(-z) \rvert$ |
    | ``tanh`` | $\tanh z$ | $\lvert 2 z / \sinh 2z \rvert$ |
    | ``exp`` | $e^z$ | $\lvert z \rvert$ |
    | ``log`` | $\ln z$ | $1 / \lvert \ln z \rvert$ |
    | ``sqrt`` | $\sqrt z$ | $1/2$ |
    | ``reciprocal`` | $1 / z$ | $1$ |

    with $v = c(z + a z^3)$, $c = \sqrt{2/\pi}$ and $a = 0.044715$. For GELU (erf form) $\kappa$ is about
    0.53 at $z = -1$, 3.75 at $-2$, 15.9 at $-4$ (it grows like $z^2$ as $z \to -\infty$, where $\phi$
    underflows) and tends to 1 for large $z$; it vanishes at the minimum of GELU ($z \approx -0.75$). The
    cdf is evaluated with ``math.erfc``; below $z = -20$ the ratio $\varphi/\Phi$ comes from Laplace's
    continued fraction of the Mills ratio.

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, section 1.6.
    D. Hendrycks and K. Gimpel, "Gaussian error linear units (GELUs)", arXiv:1606.08415, 2016.
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import condition_number
    >>> np.round(condition_number("gelu", [-4.0, -2.0, -1.0, 0.0, 10.0]), 2)
    array([15.9 ,  3.75,  0.53,  1.  ,  1.  ])
    >>> condition_number("exp", -3.0), condition_number("sqrt", 2.0)
    (3.0, 0.5)
    """
    if not isinstance(name, str):
        raise AnalysisError(expected_one_of("name", name, CONDITION_FUNCTIONS))
    key = _ALIASES.get(name, name)
    if key not in _FUNCS:
        raise AnalysisError(expected_one_of("name", name, CONDITION_FUNCTIONS))
    func, domain = _FUNCS[key]
    arr = real_array(z, "z")
    bad = {
        "positive": arr <= 0,
        "nonnegative": arr < 0,
        "nonzero": arr == 0,
    }.get(domain)
    if bad is not None and np.any(bad):
        what = {"positive": "z > 0", "nonnegative": "z >= 0", "nonzero": "z != 0"}[domain]
        raise AnalysisError(f"condition_number({name!r}, z): z holds values outside the domain {what}")
    out = func(arr)
    return float(out) if np.ndim(out) == 0 else out


def elementwise_select(name: str, z: ArrayLike, tau: float) -> NDArray[np.bool_]:
    r"""LAMP for an element-wise function: the components whose error $\phi$ amplifies by more than $\tau$.

    For $y_i = \phi(z_i)$ with $z$ computed in low precision, to first order
    $\mathrm{relerr}(y_i) \approx \kappa_\phi(z_i)\,\mathrm{relerr}(z_i)$
    (:func:`condition_number`). The look-ahead evaluates $\kappa_\phi$ at the computed $z$ and selects
    component $i$ for recomputation unless $\kappa_\phi(z_i) < \tau$, so every component left in low
    precision has a first-order amplification below $\tau$.

    Parameters
    ----------
    name : str
        The function (a name :func:`condition_number` accepts, such as ``"gelu_tanh"``).
    z : array_like
        The computed arguments.
    tau : float
        The amplification bound, $0 \le \tau \le \infty$: ``0`` selects everything, ``inf`` nothing (for
        finite $z$). NaN arguments are always selected.

    Returns
    -------
    numpy.ndarray of bool, same shape as ``z``
        True where the component is to be recomputed.

    Raises
    ------
    AnalysisError
        An unknown ``name``, an argument outside its domain, or ``tau`` negative or NaN.

    Notes
    -----
    The set is the smallest with $\max_{i \notin S} \kappa_\phi(z_i) < \tau$ (the selection is component by
    component: an element-wise $\phi$ has a diagonal Jacobian), and it shrinks as $\tau$ grows. Unlike
    softmax, whose amplification never exceeds 2, $\kappa$ of GELU is unbounded near GELU's zero at
    $-\infty$ (it grows like $z^2$), so no finite $\tau$ selects nothing for every input.

    References
    ----------
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623 (softmax; element-wise functions are
    its future work). N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002, 1.6.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import elementwise_select
    >>> z = np.array([-4.0, -2.0, -1.0, 0.5, 3.0])
    >>> elementwise_select("gelu_tanh", z, 2.0)
    array([ True,  True, False, False, False])
    >>> elementwise_select("gelu_tanh", z, 0.0).all(), elementwise_select("gelu_tanh", z, np.inf).any()
    (np.True_, np.False_)
    """
    t = real_scalar(tau, "tau")
    if t < 0:
        raise AnalysisError(f"tau={tau!r} is negative; expected 0 <= tau <= inf (0 selects everything)")
    kappa = np.asarray(condition_number(name, z), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(~(kappa < t))
