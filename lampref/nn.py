r"""Transformer operations written once, for every model in lampref.

The models (:mod:`lampref.gpt2` today) and the metrics call these kernels; each takes arrays of a stated
dtype and returns the same dtype, with no validation of its own (the public entry points validate). Every
constant is pinned to the dtype of the data, so that float32 activations are never promoted to float64.

The *score site* of attention is written here once (:func:`attention_scores`): ``q k^T`` accumulated under
an :class:`~lampref.accumulate.Accumulator` (or in BLAS), divided by $\sqrt d$ in the dtype of the scores,
then, under an accumulator, rounded again to the accumulator's format with its mode, as the LAMP authors do.
Masks are boolean arrays that say which keys a query row *sees* (:func:`causal_mask` for a decoder; a padding
mask ``[..., 1, L]`` for an encoder), applied by :func:`masked_softmax`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .accumulate import ProductModel, matmul
from .errors import InputValueError
from .formats import FloatFormat
from .rounding import round_to
from .special import gelu_erf

__all__ = [
    "attention",
    "attention_scores",
    "causal_mask",
    "causal_softmax",
    "gelu",
    "layer_norm",
    "log_softmax",
    "mask_scores",
    "masked_softmax",
    "site_product",
    "softmax",
    "store_operand",
]

Array = NDArray[Any]
Product = Callable[[Array, Array], Array]
"""A float product ``(a, b) -> a @ b`` used where a site has no accumulator (BLAS by default)."""


# ------------------------------------------------------------------------------------ softmax family
def log_softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""The logarithm of the softmax over the last axis of float64 values, by the log-sum-exp trick.

    With $m = \max_j z_j$, $\log p_i = (z_i - m) - \log \sum_j e^{z_j - m}$: every exponent is at most 0 and
    the largest is exactly 1, so nothing overflows and the sum is at least 1 (Blanchard, Higham & Higham
    2021). Each row needs one finite value; ``-inf`` entries give ``-inf``.

    >>> import numpy as np
    >>> from lampref.nn import log_softmax
    >>> np.exp(log_softmax(np.log([1.0, 3.0]))).round(6).tolist()
    [0.25, 0.75]
    """
    m = z.max(axis=-1, keepdims=True)  # [..., 1], finite (each row has a finite entry)
    with np.errstate(over="ignore"):  # a gap beyond float64's range is -inf: a probability below 2**-1074
        s = z - m  # [..., V], <= 0, -inf stays -inf
        lse = np.log(np.exp(s).sum(axis=-1, keepdims=True))  # [..., 1], in [0, log V]
        return np.asarray(s - lse, dtype=np.float64)


def softmax(x: Array) -> Array:
    r"""Softmax over the last axis, max-subtracted, in the dtype of ``x``.

    .. math:: \operatorname{softmax}(x)_j = \frac{e^{x_j - \max_i x_i}}{\sum_k e^{x_k - \max_i x_i}}

    References
    ----------
    P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41 (2021).

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.nn import softmax
    >>> softmax(np.float32([[0, np.log(3)], [1000, -np.inf]]))
    array([[0.25, 0.75],
           [1.  , 0.  ]], dtype=float32)
    """
    return _softmax_in_place(x - x.max(axis=-1, keepdims=True))  # [..., L], a new array


def _softmax_in_place(e: Array) -> Array:
    """The softmax of max-subtracted rows ``e`` ``[..., L]``, computed in ``e``."""
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)  # [..., L]
    return e


def causal_mask(start: int, n: int, L: int) -> NDArray[np.bool_]:
    """The keys each query row sees in a decoder: ``[n, L]``, row ``i`` (absolute position ``start + i``)
    sees the keys ``j <= start + i``.

    >>> from lampref.nn import causal_mask
    >>> causal_mask(1, 2, 4).astype(int).tolist()
    [[1, 1, 0, 0], [1, 1, 1, 0]]
    """
    return np.arange(L)[None, :] <= np.arange(start, start + n)[:, None]  # [n, L]


def mask_scores(scores: Array, visible: NDArray[np.bool_]) -> Array:
    """``scores`` ``[..., n, L]`` with the entries a row does not see (``visible`` False, broadcast) set to
    ``-inf`` of the scores' dtype."""
    masked: Array = np.where(visible, scores, scores.dtype.type(-np.inf))  # [..., n, L]
    return masked


def masked_softmax(scores: Array, visible: NDArray[np.bool_]) -> Array:
    """The softmax of each row of ``scores`` ``[..., n, L]`` over the keys it sees.

    ``visible`` broadcasts against ``scores``: a causal mask ``[n, L]`` (:func:`causal_mask`) or a padding
    mask ``[..., 1, L]``. Unseen entries get probability 0; every row must see at least one key.

    >>> import numpy as np
    >>> from lampref.nn import masked_softmax
    >>> masked_softmax(np.float32([[0, 0, 5]]), np.array([True, True, False]))
    array([[0.5, 0.5, 0. ]], dtype=float32)
    """
    masked = mask_scores(scores, visible)  # [..., n, L], a new array: the softmax runs in it
    masked -= masked.max(axis=-1, keepdims=True)
    return _softmax_in_place(masked)


def causal_softmax(scores: Array, start: int) -> Array:
    """Mask the scores of future positions with -inf and take the softmax of each row.

    ``scores`` ``[H, n, L]`` holds query rows at absolute positions ``start .. start + n - 1``; row ``i``
    keeps the keys ``j <= start + i`` (:func:`causal_mask`).
    """
    n, L = scores.shape[-2:]
    return masked_softmax(scores, causal_mask(start, n, L))


# ------------------------------------------------------------------------------- element-wise pieces
def layer_norm(x: Array, g: Array, b: Array, eps: float) -> Array:
    r"""LayerNorm over the last axis, in the dtype of ``x``.

    .. math:: y = g \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + b, \qquad
              \mu = \operatorname{mean}(x), \ \sigma^2 = \operatorname{mean}((x - \mu)^2)

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.nn import layer_norm
    >>> y = layer_norm(np.float32([[1, 2, 3, 4]]), np.ones(4, np.float32), np.zeros(4, np.float32), 1e-5)
    >>> y.dtype, bool(abs(y.mean()) < 1e-7)
    (dtype('float32'), True)
    """
    dt = x.dtype.type
    mean = x.mean(axis=-1, keepdims=True)  # [n, C] -> [n, 1]
    centred = x - mean  # [n, C]
    var = np.square(centred).mean(axis=-1, keepdims=True)  # [n, 1]
    y: Array = g * (centred / np.sqrt(var + dt(eps))) + b  # [n, C]
    return y


def gelu(x: Array, kind: str = "tanh") -> Array:
    r"""GELU, in the dtype of ``x``: the tanh form GPT-2 uses (``kind="tanh"``, Hugging Face ``gelu_new``)
    or the exact erf form (``kind="erf"``).

    .. math:: \tfrac12 x\bigl(1 + \tanh\bigl(\sqrt{2/\pi}\,(x + 0.044715 x^3)\bigr)\bigr)
              \quad\text{or}\quad \tfrac12 x \operatorname{erfc}(-x/\sqrt2)

    The erf form is evaluated in float64 (:func:`lampref.special.gelu_erf`, with Cody's erfc) and rounded
    once to the dtype of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.nn import gelu
    >>> gelu(np.float32([-1, 0, 1]))
    array([-0.158808,  0.      ,  0.841192], dtype=float32)
    >>> gelu(np.float32([-1, 0, 1]), "erf")
    array([-0.15865526,  0.        ,  0.8413448 ], dtype=float32)
    """
    dt = x.dtype.type
    if kind == "tanh":  # in place, in the order of the formula above (so the same bits)
        c = dt(math.sqrt(2.0 / math.pi))
        t: Array = np.multiply(dt(0.044715), x, out=np.empty_like(x))  # an array even for 0-d x
        t *= x
        t *= x  # 0.044715 x^3
        t += x
        t *= c
        np.tanh(t, out=t)
        t += dt(1.0)
        y: Array = dt(0.5) * x
        y *= t
        return y
    if kind == "erf":
        return gelu_erf(x)
    raise InputValueError(f"gelu kind={kind!r} is not valid; expected 'tanh' or 'erf'")


# --------------------------------------------------------------------------------------- attention
def store_operand(x: Array, fmt: Any, axis: int) -> Array:
    """An operand as a site stores it: rounded to ``fmt`` (a :class:`~lampref.formats.FloatFormat`,
    nearest-even), or quantised and dequantised by a block format (``fmt.quantize_dequantize(x, axis=axis)``,
    such as an MX spec, with its blocks along ``axis``, the reduction axis of the product); float32 out.

    >>> import numpy as np
    >>> from lampref import get_format
    >>> from lampref.nn import store_operand
    >>> store_operand(np.float32([1.0, 1.00390625, 3.0]), get_format("bfloat16"), -1).tolist()
    [1.0, 1.0, 3.0]
    """
    if isinstance(fmt, FloatFormat):
        return np.asarray(round_to(x, fmt, "nearest_even"), dtype=np.float32)
    return np.asarray(fmt.quantize_dequantize(x, axis=axis), dtype=np.float32)


def site_product(
    a: Array, b: Array, acc: ProductModel | None, *, rng: Any = None, blas: Product = np.matmul
) -> Array:
    """``a @ b`` at a product site: under ``acc`` (:func:`lampref.matmul`, float32 results), or ``blas``."""
    if acc is None:
        return blas(a, b)
    return np.asarray(matmul(a, b, acc, rng=rng), dtype=np.float32)


def attention_scores(
    q: Array, k: Array, acc: ProductModel | None, *, rng: Any = None, blas: Product = np.matmul
) -> Array:
    r"""The score site: scaled attention scores ``q k^T / sqrt(d)`` before any mask,
    ``[..., n, d], [..., L, d] -> [..., n, L]``.

    Under an accumulator, as the LAMP authors do: the product accumulated and rounded by ``acc``, divided
    by $\sqrt d$ in float32, and rounded again to ``acc.fmt`` with ``acc.mode`` (``rng`` drives stochastic
    modes). Without one, ``blas(q, k^T)`` divided by $\sqrt d$ in the dtype of the product.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import Accumulator, fp32_mantissa
    >>> from lampref.nn import attention_scores
    >>> q, k = np.float32([[[1, 2, 3, 4]]]), np.float32([[[1, 1, 1, 1], [0, 0, 0, 1]]])
    >>> attention_scores(q, k, None)
    array([[[5., 2.]]], dtype=float32)
    >>> attention_scores(q, k, Accumulator(fp32_mantissa(1)))  # 10 rounds to 8 (2 significant bits)
    array([[[4., 2.]]], dtype=float32)
    """
    d = q.shape[-1]
    kT = np.swapaxes(k, -1, -2)  # [..., L, d] -> [..., d, L]
    s = site_product(q, kT, acc, rng=rng, blas=blas)  # [..., n, d] @ [..., d, L] -> [..., n, L]
    s = s / np.sqrt(s.dtype.type(d))  # [..., n, L]
    if acc is not None:
        s = np.asarray(round_to(s, acc.fmt, acc.mode, rng=rng), dtype=np.float32)
    return s


def attention(
    q: Array,
    k: Array,
    v: Array,
    visible: NDArray[np.bool_],
    *,
    score: ProductModel | None = None,
    value: ProductModel | None = None,
    rng: Any = None,
    blas: Product = np.matmul,
) -> tuple[Array, Array]:
    """Attention with a mask: ``[..., n, d], [..., L, d], [..., L, d] -> [..., n, d]``.

    The scores of :func:`attention_scores` under ``score``, the :func:`masked_softmax` over the keys each row
    sees (``visible``, broadcast to ``[..., n, L]``: causal or padding), and the product of the
    probabilities with ``v`` under ``value``. Returns the output and the probabilities ``[..., n, L]``.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.nn import attention, causal_mask
    >>> q = k = np.float32([[[1, 0], [0, 1]]])
    >>> v = np.float32([[[2, 0], [0, 4]]])
    >>> out, probs = attention(q, k, v, causal_mask(0, 2, 2))
    >>> out[0, 0].tolist(), probs[0].sum(axis=-1).tolist()
    ([2.0, 0.0], [1.0, 1.0])
    """
    probs = masked_softmax(attention_scores(q, k, score, rng=rng, blas=blas), visible)  # [..., n, L]
    return site_product(probs, v, value, rng=rng, blas=blas), probs  # [..., n, L] @ [..., L, d]
