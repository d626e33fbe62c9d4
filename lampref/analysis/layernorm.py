r"""Error amplification of LayerNorm: its Jacobian and the amplification matrix of eq. (1).

LayerNorm over the last axis (length $n$), as in PyTorch and GPT-2 (biased variance, $\varepsilon$ inside
the square root):

$$ \mu = \frac1n \sum_j x_j, \quad \tilde\sigma = \sqrt{\frac1n \sum_j (x_j - \mu)^2 + \varepsilon}, \quad
\hat x_i = \frac{x_i - \mu}{\tilde\sigma}, \quad y_i = \gamma_i \hat x_i + \beta_i. $$

Its Jacobian couples every input to every output:

$$ \frac{\partial y_i}{\partial x_j} = \frac{\gamma_i}{\tilde\sigma}
\Big(\delta_{ij} - \frac1n - \frac{\hat x_i \hat x_j}{n}\Big). $$

With absolute errors $|\delta_j| \le \epsilon_j$ in the inputs (the residual stream computed in low
precision), eq. (1) gives the amplification matrix
$K_{ij} = |\partial y_i / \partial x_j|\,\epsilon_j / |y_i|$.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import AnalysisError
from ._checks import finite_array, real_scalar
from .composition import amplification_matrix

__all__ = ["layernorm_amplification", "layernorm_jacobian", "layernorm_select"]

_F64 = NDArray[np.float64]


def _prepare(
    x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None, norm_eps: float
) -> tuple[_F64, _F64, _F64, _F64, _F64]:
    xa = finite_array(x, "x")
    if xa.ndim == 0 or xa.shape[-1] == 0:
        raise AnalysisError(f"x must have at least one entry along its last axis; got shape {xa.shape}")
    n = xa.shape[-1]
    e = real_scalar(norm_eps, "norm_eps")
    if e < 0:
        raise AnalysisError(f"norm_eps={norm_eps!r} is negative; expected norm_eps >= 0")
    g = np.ones(n) if gamma is None else finite_array(gamma, "gamma")
    b = np.zeros(n) if beta is None else finite_array(beta, "beta")
    for name, v in (("gamma", g), ("beta", b)):
        if v.shape != (n,):
            raise AnalysisError(f"{name} has shape {v.shape}; expected ({n},), one value per feature")
    mu = xa.mean(axis=-1, keepdims=True)
    c = xa - mu
    var = np.mean(c * c, axis=-1, keepdims=True)
    sig = np.sqrt(var + e)
    if np.any(sig == 0.0):
        raise AnalysisError("LayerNorm of a constant row with norm_eps=0 is undefined (division by zero)")
    xhat = c / sig
    return xhat, sig, g, b, xa


def layernorm_jacobian(
    x: ArrayLike,
    *,
    gamma: ArrayLike | None = None,
    beta: ArrayLike | None = None,
    norm_eps: float = 1e-5,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""LayerNorm's output and Jacobian at ``x`` (normalisation over the last axis).

    Parameters
    ----------
    x : array_like, shape (..., n)
        Inputs, one row per last axis.
    gamma, beta : array_like, shape (n,), optional
        The affine parameters; default $\gamma = 1$, $\beta = 0$ (normalisation only).
    norm_eps : float, default 1e-5
        The $\varepsilon$ added to the variance (GPT-2's ``layer_norm_epsilon``).

    Returns
    -------
    y : numpy.ndarray, shape (..., n)
        $y = \gamma \odot \hat x + \beta$ in float64.
    J : numpy.ndarray, shape (..., n, n)
        $J_{ij} = \partial y_i / \partial x_j = (\gamma_i / \tilde\sigma)(\delta_{ij} - 1/n -
        \hat x_i \hat x_j / n)$.

    Raises
    ------
    AnalysisError
        Non-finite inputs, parameters of the wrong shape, a negative ``norm_eps``, or a constant row with
        ``norm_eps=0``.

    Notes
    -----
    $\partial \mu / \partial x_j = 1/n$ and $\partial \tilde\sigma / \partial x_j = \hat x_j / n$, hence
    $\partial \hat x_i / \partial x_j = (\delta_{ij} - 1/n - \hat x_i \hat x_j / n) / \tilde\sigma$. The rows
    of $J$ sum to 0 (adding a constant to $x$ changes nothing), and
    $J \hat x = \gamma \odot \hat x\, \varepsilon / \tilde\sigma^3$, which vanishes for $\varepsilon = 0$
    (scaling $x$ about its mean changes nothing).

    References
    ----------
    J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer normalization", arXiv:1607.06450, 2016.
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import layernorm_jacobian
    >>> y, J = layernorm_jacobian([1.0, 2.0, 3.0], norm_eps=0.0)
    >>> y.round(4), J.sum(axis=1).round(12) + 0.0
    (array([-1.2247,  0.    ,  1.2247]), array([0., 0., 0.]))
    """
    xhat, sig, g, b, xa = _prepare(x, gamma, beta, norm_eps)
    n = xa.shape[-1]
    y = g * xhat + b
    eye = np.eye(n)
    J = (g[:, None] / sig[..., None]) * (eye - 1.0 / n - xhat[..., :, None] * xhat[..., None, :] / n)
    return y, J


def layernorm_amplification(
    x: ArrayLike,
    eps: ArrayLike,
    *,
    gamma: ArrayLike | None = None,
    beta: ArrayLike | None = None,
    norm_eps: float = 1e-5,
) -> NDArray[np.float64]:
    r"""The amplification matrix of LayerNorm: how an absolute error in input $j$ affects output $i$.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Inputs, one row per last axis.
    eps : float or array_like, shape (..., n)
        Absolute error bounds $\epsilon_j \ge 0$ of the inputs.
    gamma, beta : array_like, shape (n,), optional
        The affine parameters; default $\gamma = 1$, $\beta = 0$ (normalisation only). The relative error
        is measured on $y = \gamma \odot \hat x + \beta$, so $\beta$ changes the denominators.
    norm_eps : float, default 1e-5
        The $\varepsilon$ added to the variance.

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
        $K_{ij} = |\partial y_i / \partial x_j|\,\epsilon_j / |y_i|$ (``inf`` where $y_i = 0$ and the
        numerator is not), so that $|\hat y_i - y_i| / |y_i| \le \sum_j K_{ij} + O(\epsilon^2)$.

    Raises
    ------
    AnalysisError
        As :func:`layernorm_jacobian`, and for negative or mismatched ``eps``.

    Notes
    -----
    Eq. (1) applied to :func:`layernorm_jacobian`. Since
    $|J_{ij}| = (|\gamma_i| / \tilde\sigma)\, |\delta_{ij} - (1 + \hat x_i \hat x_j)/n|$, an output near
    zero ($\hat x_i \approx -\beta_i/\gamma_i$) has a large relative error, and with a uniform $\epsilon$ the
    bound is roughly $2\epsilon/(\tilde\sigma |\hat x_i|)$ for the normalisation alone. The second-order
    remainder is at most about $3 \eta^2 (1 + |\hat x_i|)\,|\gamma_i| / |y_i|$ with
    $\eta = \max_j \epsilon_j / \tilde\sigma$ (small $\eta$), which the tests use as their margin.

    References
    ----------
    J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer normalization", arXiv:1607.06450, 2016.
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, ch. 3.
    Look-ahead mixed-precision inference (LAMP), arXiv:2601.21623.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import layernorm_amplification
    >>> K = layernorm_amplification([1.0, 2.0, 4.0], 1e-3, norm_eps=0.0)
    >>> K.sum(axis=1).round(6)
    array([0.000643, 0.003857, 0.000257])
    """
    y, J = layernorm_jacobian(x, gamma=gamma, beta=beta, norm_eps=norm_eps)
    return amplification_matrix(J, y, eps)


def layernorm_select(
    x: ArrayLike,
    eps: ArrayLike,
    tau: float,
    *,
    gamma: ArrayLike | None = None,
    beta: ArrayLike | None = None,
    norm_eps: float = 1e-5,
) -> NDArray[np.bool_]:
    r"""LAMP for LayerNorm inputs: the inputs to recompute so that every output's first-order relative error
    bound is at most $\tau$.

    With the amplification matrix $K$ of :func:`layernorm_amplification` (``eps`` built in), an unselected
    set leaves output $i$ the bound $b_i(S) = \sum_{j \notin S} K_{ij}$. The rule orders the inputs of a row
    by the harm they do, the column sums $\sum_i K_{ij}$ (largest first, ties to the lowest index), and
    takes the shortest prefix of that order with $\max_i b_i(S) \le \tau$.

    Parameters
    ----------
    x : array_like, shape (..., n)
        LayerNorm inputs (as computed), one row per last axis.
    eps : float or array_like, shape (..., n)
        Absolute error bounds of the inputs.
    tau : float
        The bound on the outputs' relative error, $\tau \ge 0$: ``0`` selects every input with a
        non-zero harm, ``inf`` nothing.
    gamma, beta, norm_eps
        As :func:`layernorm_amplification`.

    Returns
    -------
    numpy.ndarray of bool, shape (..., n)
        True for the inputs to recompute.

    Raises
    ------
    AnalysisError
        As :func:`layernorm_amplification`, and for ``tau`` negative or NaN.

    Notes
    -----
    LayerNorm couples every input to every output through the mean and the variance
    ($J_{ij} = (\gamma_i/\tilde\sigma)(\delta_{ij} - (1 + \hat x_i \hat x_j)/n)$), so $b_i$ collects about
    $(1 + |\hat x_i|\,\overline{|\hat x|})\,\epsilon/(\tilde\sigma |y_i|)$ from the off-diagonal terms,
    spread evenly over all inputs: lowering the bound of an output near zero needs most inputs, not a few.
    Cost $O(n^2)$ per row.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.analysis import layernorm_select
    >>> x = np.array([1.0, 2.0, 4.0, -2.0])
    >>> layernorm_select(x, 1e-3, 3e-3, norm_eps=0.0)
    array([ True, False, False, False])
    >>> layernorm_select(x, 1e-3, 2e-3, norm_eps=0.0)  # the off-diagonal terms need the others too
    array([ True,  True,  True, False])
    >>> layernorm_select(x, 1e-3, np.inf, norm_eps=0.0).any()
    np.False_
    """
    t = real_scalar(tau, "tau")
    if t < 0:
        raise AnalysisError(f"tau={tau!r} is negative; expected 0 <= tau <= inf")
    K = layernorm_amplification(x, eps, gamma=gamma, beta=beta, norm_eps=norm_eps)  # [..., n, n]
    n = K.shape[-1]
    harm = K.sum(axis=-2)  # [..., n]
    order = np.argsort(-harm, axis=-1, kind="stable")  # [..., n], most harmful first
    Ks = np.take_along_axis(K, order[..., None, :], axis=-1)  # columns in that order
    tail = np.cumsum(Ks[..., ::-1], axis=-1)[..., ::-1]  # [..., n, n]: bound with the first k selected
    bound = np.concatenate([tail.max(axis=-2), np.zeros((*K.shape[:-2], 1))], axis=-1)  # [..., n + 1]
    with np.errstate(invalid="ignore"):
        k = np.argmax(bound <= t, axis=-1)  # [...]: the shortest prefix that meets tau
    chosen = np.arange(n) < k[..., None]  # [..., n] in sorted order
    out = np.zeros(chosen.shape, dtype=bool)
    np.put_along_axis(out, order, chosen, axis=-1)
    return out
