r"""Metrics that compare a low-precision run with its reference: KL divergence, flips, ulps, errors.

Every metric computes in float64 whatever the input dtype (float16, float32 or float64; integers and booleans
are accepted where exact). Logits have shape ``[..., V]``: the last axis is the vocabulary, every leading axis
indexes a *position*, and position-wise results are averaged with equal weight over all positions. These are
the two metrics of the LAMP paper (arXiv 2601.21623): the KL divergence
$\mathrm{KL}(P_{\mathrm{ref}} \,\|\, P_{\mathrm{test}})$ of the next-token distributions averaged over
positions, and the flip rate, the share of positions whose greedy (argmax) token differs from the fp32
reference.

Bad input raises :class:`~lampref.errors.ShapeError` (mismatched or unusable shapes) or
:class:`~lampref.errors.InputValueError` (NaN, infinities where not allowed, ``k`` out of range, values not
representable in a format); both are ``ValueError``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import check_choice, is_int
from .errors import InputValueError, ShapeError
from .formats import FloatFormat, get_format
from .nn import log_softmax as _lse_kernel
from .rounding import as_exact_float64, is_representable

__all__ = [
    "cosine_distance",
    "flip_rate",
    "kl_divergence",
    "kl_from_log_probs",
    "log_softmax",
    "max_abs_diff",
    "nearest_neighbours",
    "relative_error",
    "retrieval_flip_rate",
    "topk_agreement",
    "ulp_distance",
]

Reduction = Literal["mean", "none"]
_REDUCTIONS = ("mean", "none")


# ----------------------------------------------------------------------------- input checks
def _float64(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """``x`` as float64, exactly (float16/32/64, ml_dtypes' narrow floats, integers up to 2**53, bools), or an
    error naming it."""
    return as_exact_float64(x, name)


def _logits(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """Logits ``[..., V]`` as float64: no NaN, no +inf, and at least one finite entry per position."""
    z = _float64(x, name)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ShapeError(f"{name} has shape {z.shape}; expected logits of shape [..., V] with V >= 1")
    if np.isnan(z).any():
        raise InputValueError(f"{name} contains NaN; logits must be finite or -inf")
    if np.isposinf(z).any():
        raise InputValueError(f"{name} contains +inf; logits must be finite or -inf")
    if (z == -np.inf).all(axis=-1).any():
        raise InputValueError(
            f"{name} has a position whose logits are all -inf; every position needs a finite logit"
        )
    return z


def _pair(ref: ArrayLike, test: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r = _logits(ref, "ref_logits")
    t = _logits(test, "test_logits")
    if r.shape != t.shape:
        raise ShapeError(
            f"ref_logits has shape {r.shape} but test_logits has shape {t.shape}; expected equal"
        )
    if r.size == 0:
        raise ShapeError(
            f"ref_logits and test_logits have no positions (shape {r.shape}); expected at least one"
        )
    return r, t


def _same_shape(
    a: ArrayLike, b: ArrayLike, na: str, nb: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = _float64(a, na)
    y = _float64(b, nb)
    if x.shape != y.shape:
        raise ShapeError(f"{na} has shape {x.shape} but {nb} has shape {y.shape}; expected equal")
    if x.size == 0:
        raise ShapeError(f"{na} and {nb} are empty (shape {x.shape}); expected at least one element")
    if np.isnan(x).any() or np.isnan(y).any():
        raise InputValueError(f"{na if np.isnan(x).any() else nb} contains NaN")
    return x, y


# ----------------------------------------------------------------------------- distributions
def log_softmax(logits: ArrayLike) -> NDArray[np.float64]:
    r"""The logarithm of the softmax over the last axis, computed stably in float64.

    Parameters
    ----------
    logits : array_like, shape [..., V]
        Finite values or ``-inf`` (a token with zero probability); every position needs one finite value.

    Returns
    -------
    numpy.ndarray of float64, shape [..., V]
        $\log p_i$, with ``-inf`` where the logit is ``-inf``.

    Raises
    ------
    ShapeError
        A 0-d input or an empty last axis.
    InputValueError
        NaN, ``+inf``, or a position whose logits are all ``-inf``.

    Notes
    -----
    With $m = \max_j z_j$,

    $$ \log p_i = (z_i - m) - \log \sum_j e^{z_j - m}, $$

    the log-sum-exp trick: every exponent is at most 0 and the largest is exactly 1, so nothing overflows
    and the sum is at least 1 (Blanchard, Higham & Higham 2021).

    References
    ----------
    P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41(4), 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.metrics import log_softmax
    >>> np.exp(log_softmax([0.0, np.log(3.0)])).round(6).tolist()
    [0.25, 0.75]
    >>> log_softmax(np.array([1000.0, 1000.0, -np.inf], dtype=np.float32)).tolist()
    [-0.6931471805599453, -0.6931471805599453, -inf]
    """
    z = _logits(logits, "logits")
    return _lse_kernel(z)


def kl_divergence(ref_logits: ArrayLike, test_logits: ArrayLike, *, reduction: Reduction = "mean") -> Any:
    r"""KL divergence $\mathrm{KL}(P_{\mathrm{ref}} \,\|\, P_{\mathrm{test}})$ of the softmax
    distributions, per position, averaged over positions.

    Parameters
    ----------
    ref_logits, test_logits : array_like, shape [..., V]
        Reference and test logits (float16/32/64), finite or ``-inf``; all leading axes are positions.
    reduction : {"mean", "none"}, default "mean"
        ``"mean"``: the mean over all positions, a float64 scalar. ``"none"``: one value per position,
        shape ``[...]`` (the leading axes).

    Returns
    -------
    numpy.float64 or numpy.ndarray of float64
        Non-negative; ``inf`` where the reference puts mass on a token the test gives zero probability.

    Raises
    ------
    ShapeError
        Shapes differ, a 0-d input, an empty last axis, or no positions (a leading axis of length 0).
    InputValueError
        NaN, ``+inf``, a position whose logits are all ``-inf``, or an unknown ``reduction``.

    Notes
    -----
    With $\log p = \mathrm{log\_softmax}(z_{\mathrm{ref}})$ and
    $\log q = \mathrm{log\_softmax}(z_{\mathrm{test}})$ (see :func:`log_softmax`), per position

    $$ \mathrm{KL}(p \,\|\, q) = \sum_{i:\, p_i > 0} p_i (\log p_i - \log q_i), $$

    computed from the log-probabilities (never from a ratio of probabilities). Terms with $p_i = 0$
    contribute 0 ($0 \log 0 = 0$); a term with $p_i > 0 = q_i$ makes the result ``inf``.
    Identical logits give exactly 0, and rounding that would make a result slightly negative is clamped at 0.

    ``reduction="mean"`` equals PyTorch's
    ``torch.nn.functional.kl_div(log_softmax(test), log_softmax(ref), log_target=True,
    reduction="batchmean")`` on logits reshaped to ``[positions, V]`` ("batchmean" divides the sum by the
    first dimension, the number of positions) — the metric of the LAMP authors' code. PyTorch returns NaN
    instead of 0 for a ``-inf`` reference logit ($0 \cdot (-\infty)$); here it contributes 0.

    References
    ----------
    arXiv 2601.21623 (LAMP), section on evaluation metrics. SciPy ``scipy.special.rel_entr``, whose sum over
    the vocabulary gives the same per-position value from probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.metrics import kl_divergence
    >>> p, q = np.log([0.5, 0.5]), np.log([0.25, 0.75])
    >>> bool(np.isclose(kl_divergence(p, q), 0.5 * np.log(2) + 0.5 * np.log(2 / 3), rtol=1e-15))
    True
    >>> kl_divergence([[1.0, 2.0], [3.0, -np.inf]], [[1.0, 2.0], [0.0, 0.0]], reduction="none")
    array([0.        , 0.69314718])
    >>> float(kl_divergence([0.0, 0.0], [0.0, -np.inf]))
    inf
    """
    check_choice(reduction, "reduction", _REDUCTIONS, InputValueError)
    r, t = _pair(ref_logits, test_logits)
    return kl_from_log_probs(_lse_kernel(r), _lse_kernel(t), reduction)


def kl_from_log_probs(logp: NDArray[np.float64], logq: NDArray[np.float64], reduction: str = "mean") -> Any:
    r""":func:`kl_divergence` from float64 log-probabilities of equal shape, such as :func:`log_softmax`'s.

    A study that compares many test runs with one reference computes the reference's log-probabilities once
    and passes them here. The inputs are not validated: pass what :func:`log_softmax` returns.

    >>> import numpy as np
    >>> from lampref.metrics import kl_from_log_probs, log_softmax
    >>> p, q = log_softmax([0.0, 0.0]), log_softmax([0.0, np.log(3.0)])
    >>> bool(np.isclose(kl_from_log_probs(p, q), 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)))
    True
    """
    support = logp > -np.inf  # p_i > 0
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.where(support, logp - logq, 0.0)  # [..., V]; +inf where q_i = 0 < p_i
        terms = np.where(support, np.exp(logp) * d, 0.0)  # [..., V]
    kl = np.maximum(terms.sum(axis=-1), 0.0)  # [...]
    if reduction == "none":
        return kl[()] if kl.ndim == 0 else kl
    return np.float64(kl.mean())


# ----------------------------------------------------------------------------- token agreement
def flip_rate(ref_logits: ArrayLike, test_logits: ArrayLike) -> float:
    r"""The share of positions whose argmax (greedy next token) differs between reference and test.

    Parameters
    ----------
    ref_logits, test_logits : array_like, shape [..., V]
        Reference (fp32 in the LAMP paper) and test logits, finite or ``-inf``; leading axes are positions.

    Returns
    -------
    float
        In $[0, 1]$.

    Raises
    ------
    ShapeError
        Shapes differ, a 0-d input, an empty last axis, or no positions (a leading axis of length 0).
    InputValueError
        NaN, ``+inf``, or a position whose logits are all ``-inf``.

    Notes
    -----
    Ties are broken as :func:`numpy.argmax` breaks them: the first (lowest) index among equal maxima. Two
    positions whose maxima tie at the same indices therefore never flip. PyTorch's ``argmax`` does not
    promise which index of a tie it returns, so on exact ties the authors' code may count differently.

    Examples
    --------
    >>> from lampref.metrics import flip_rate
    >>> flip_rate([[1.0, 2.0], [3.0, 0.0]], [[1.0, 2.0], [0.0, 3.0]])
    0.5
    >>> flip_rate([2.0, 2.0, 1.0], [2.0, 2.0, 1.0])  # a tie: index 0 in both
    0.0
    """
    r, t = _pair(ref_logits, test_logits)
    flips = np.argmax(r, axis=-1) != np.argmax(t, axis=-1)  # [...]
    return float(np.mean(flips))


def _topk_mask(z: NDArray[np.float64], k: int) -> NDArray[np.bool_]:
    """Mark the k largest entries of each row, ties at the k-th value broken toward lower indices."""
    V = z.shape[-1]
    kth = np.partition(z, V - k, axis=-1)[..., V - k : V - k + 1]  # [..., 1], the k-th largest value
    above = z > kth  # [..., V]
    need = k - above.sum(axis=-1, keepdims=True)  # [..., 1], >= 1: how many ties at kth to take
    tied = z == kth  # [..., V]
    return np.asarray(above | (tied & (np.cumsum(tied, axis=-1) <= need)), dtype=np.bool_)


def topk_agreement(ref_logits: ArrayLike, test_logits: ArrayLike, k: int) -> float:
    r"""Mean overlap of the top-``k`` token sets: $|T_k(\mathrm{ref}) \cap T_k(\mathrm{test})| / k$.

    Parameters
    ----------
    ref_logits, test_logits : array_like, shape [..., V]
        Reference and test logits, finite or ``-inf``; leading axes are positions.
    k : int
        Set size, ``1 <= k <= V``.

    Returns
    -------
    float
        In $[0, 1]$; 1 when every position has the same top-``k`` set. ``k = 1`` gives
        ``1 - flip_rate``.

    Raises
    ------
    ShapeError
        Shapes differ, a 0-d input, an empty last axis, or no positions (a leading axis of length 0).
    InputValueError
        ``k`` not an integer in ``[1, V]``; NaN, ``+inf``, or a position whose logits are all ``-inf``.

    Notes
    -----
    $T_k$ holds the indices of the ``k`` largest logits of a position; ties at the ``k``-th value are
    broken toward lower indices (consistently with :func:`flip_rate` for ``k = 1``). Order within the set
    does not matter.

    Examples
    --------
    >>> from lampref.metrics import topk_agreement
    >>> topk_agreement([4.0, 3.0, 2.0, 1.0], [4.0, 1.0, 3.0, 2.0], k=2)
    0.5
    >>> topk_agreement([4.0, 3.0, 2.0, 1.0], [3.0, 4.0, 1.0, 2.0], k=2)
    1.0
    """
    r, t = _pair(ref_logits, test_logits)
    V = r.shape[-1]
    if not is_int(k) or not 1 <= k <= V:
        raise InputValueError(f"k={k!r} is not valid; expected an integer with 1 <= k <= V = {V}")
    k = int(k)
    both = _topk_mask(r, k) & _topk_mask(t, k)  # [..., V]
    return float(np.mean(both.sum(axis=-1) / k))


# ----------------------------------------------------------------------------- elementwise errors
def max_abs_diff(a: ArrayLike, b: ArrayLike) -> float:
    r"""The largest absolute difference $\max_i |a_i - b_i|$, in float64.

    Parameters
    ----------
    a, b : array_like
        Arrays of the same shape (no broadcasting), at least one element. Infinities are allowed: equal
        infinities differ by 0, any other pair involving an infinity by ``inf``.

    Returns
    -------
    float

    Raises
    ------
    ShapeError
        Shapes differ, or the arrays are empty.
    InputValueError
        NaN in either input.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.metrics import max_abs_diff
    >>> max_abs_diff([1.0, 2.0, 3.0], np.array([1.0, 2.5, 2.0], dtype=np.float32))
    1.0
    >>> max_abs_diff([np.inf, 1.0], [np.inf, 1.0])
    0.0
    """
    x, y = _same_shape(a, b, "a", "b")
    with np.errstate(invalid="ignore"):
        d = np.where(x == y, 0.0, np.abs(x - y))  # equal infinities: 0, not inf - inf = NaN
    return float(d.max())


def relative_error(ref: ArrayLike, test: ArrayLike) -> float:
    r"""Norm-wise relative error $\|\mathrm{test} - \mathrm{ref}\|_F / \|\mathrm{ref}\|_F$.

    Parameters
    ----------
    ref, test : array_like
        Finite arrays of the same shape (no broadcasting), at least one element; the Frobenius (2-)norm runs
        over all elements.

    Returns
    -------
    float
        0 when the arrays are equal (also when ``ref`` is all zeros); ``inf`` when ``ref`` is all zeros and
        ``test`` is not.

    Raises
    ------
    ShapeError
        Shapes differ, or the arrays are empty.
    InputValueError
        NaN or infinity in either input.

    Notes
    -----
    Both norms are computed after dividing by the largest magnitude involved, so neither overflows nor
    underflows (Higham 2002, section 21.4).

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002.

    Examples
    --------
    >>> from lampref.metrics import relative_error
    >>> relative_error([3.0, 4.0], [3.0, 4.5])
    0.1
    >>> relative_error([1e300, 1e300], [1e300, 1e300])
    0.0
    """
    x, y = _same_shape(ref, test, "ref", "test")
    for arr, name in ((x, "ref"), (y, "test")):
        if not np.isfinite(arr).all():
            raise InputValueError(f"{name} contains an infinity; relative_error needs finite values")
    s = max(float(np.abs(x).max()), float(np.abs(y).max()))
    if s == 0.0:
        return 0.0
    d = y / s - x / s  # |.| <= 2: scaling by the largest magnitude keeps the squares in range
    nd = float(np.linalg.norm(d.ravel()))
    nr = float(np.linalg.norm((x / s).ravel()))
    if nd == 0.0:
        return 0.0
    if nr == 0.0:
        return float("inf")
    return nd / nr


# ----------------------------------------------------------------------------- embeddings
def _embeddings(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """A finite 2-D array of embeddings ``[n, C]`` (one per row), as float64."""
    arr = _float64(x, name)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ShapeError(f"{name} has shape {arr.shape}; expected embeddings (n, C), one per row")
    if not np.isfinite(arr).all():
        raise InputValueError(f"{name} contains NaN or an infinity; expected finite embeddings")
    return arr


def _unit_rows(e: NDArray[np.float64], name: str) -> NDArray[np.float64]:
    """The rows of ``e`` divided by their Euclidean norms (scaled first, so none overflows)."""
    scale = np.abs(e).max(axis=1, keepdims=True)  # [n, 1]
    if not scale.all():
        raise InputValueError(f"{name} row {int(np.argmin(scale[:, 0]))} is zero; a cosine needs a direction")
    u = e / scale  # [n, C], |u| <= 1
    unit: NDArray[np.float64] = u / np.linalg.norm(u, axis=1, keepdims=True)
    return unit


def cosine_distance(ref: ArrayLike, test: ArrayLike) -> NDArray[np.float64]:
    r"""$1 - \cos(\mathrm{ref}_i, \mathrm{test}_i)$ for each row ``i`` of two ``(n, C)`` embedding arrays,
    in float64.

    Raises
    ------
    ShapeError
        The arrays are not 2-D, are empty, or differ in shape.
    InputValueError
        NaN, an infinity, or a zero row.

    Examples
    --------
    >>> from lampref.metrics import cosine_distance
    >>> cosine_distance([[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [2.0, 2.0]]).tolist()
    [1.0, 0.0]
    """
    x, y = _embeddings(ref, "ref"), _embeddings(test, "test")
    if x.shape != y.shape:
        raise ShapeError(f"ref has shape {x.shape} and test {y.shape}; expected the same shape")
    cos = (_unit_rows(x, "ref") * _unit_rows(y, "test")).sum(axis=1)  # [n]
    out: NDArray[np.float64] = np.maximum(1.0 - cos, 0.0)  # a rounding below 0 is 0
    return out


def nearest_neighbours(emb: ArrayLike) -> NDArray[np.intp]:
    """For each row of ``emb`` ``(n, C)``, ``n >= 2``, the index of the other row most similar to it by
    cosine similarity (the lowest index among equals).

    >>> from lampref.metrics import nearest_neighbours
    >>> nearest_neighbours([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]).tolist()
    [1, 0, 1]
    """
    e = _embeddings(emb, "emb")
    if e.shape[0] < 2:
        raise ShapeError(f"emb has {e.shape[0]} row; nearest neighbours need at least 2")
    u = _unit_rows(e, "emb")
    sim = u @ u.T  # [n, n]
    np.fill_diagonal(sim, -np.inf)  # a row is not its own neighbour
    nn: NDArray[np.intp] = sim.argmax(axis=1)
    return nn


def retrieval_flip_rate(ref: ArrayLike, test: ArrayLike) -> float:
    """The share of rows whose nearest neighbour (:func:`nearest_neighbours`) among the others differs
    between two embeddings of the same ``n`` sentences: the encoder's analogue of :func:`flip_rate`.

    >>> from lampref.metrics import retrieval_flip_rate
    >>> retrieval_flip_rate([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0], [0.1, 0.9]])
    0.6666666666666666
    """
    a, b = nearest_neighbours(ref), nearest_neighbours(test)
    if a.shape != b.shape:
        raise ShapeError(f"ref has {a.shape[0]} rows and test {b.shape[0]}; expected the same sentences")
    return float(np.mean(a != b))


# ----------------------------------------------------------------------------- ulp distance
_BIT_FORMATS: dict[FloatFormat, tuple[type[np.floating[Any]], type[np.unsignedinteger[Any]]]] = {
    get_format("fp16"): (np.float16, np.uint16),
    get_format("fp32"): (np.float32, np.uint32),
    get_format("fp64"): (np.float64, np.uint64),
}


def _ordinal_bits(v: NDArray[np.float64], fdt: Any, udt: Any) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """(|ordinal|, sign) of IEEE values from their bit patterns: the magnitude bits count up the values."""
    u = v.astype(fdt).view(udt).astype(np.uint64)
    nbits = np.dtype(udt).itemsize * 8
    sign_bit = np.uint64(1) << np.uint64(nbits - 1)
    return u & ~sign_bit, (u & sign_bit) != 0


def _ordinal_format(v: NDArray[np.float64], fmt: FloatFormat) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """(|ordinal|, sign) of values of ``fmt``: the number of nonnegative values of ``fmt`` below |v|."""
    assert fmt.emin is not None
    a = np.abs(v)  # [...]
    finite = np.isfinite(a)
    a0 = np.where(finite, a, fmt.max)  # inf: one past the largest finite value
    _, e2 = np.frexp(a0)
    e = np.where(a0 == 0, fmt.emin, np.maximum(e2.astype(np.int64) - 1, fmt.emin))  # emin: subnormals, 0
    m = np.ldexp(a0, -(e - fmt.p + 1))  # integer significand, exact in float64 (< 2**53)
    half = np.uint64(1) << np.uint64(fmt.p - 1)  # values per binade
    ordm = (e - fmt.emin).astype(np.uint64) * half + m.astype(np.uint64)
    if not fmt.subnormals:  # 0 is ordinal 0, the smallest normal ordinal 1
        ordm = np.where(a0 == 0, np.uint64(0), ordm - half + np.uint64(1))
    ordm = np.where(finite, ordm, ordm + np.uint64(1))
    return np.asarray(ordm, dtype=np.uint64), np.signbit(v)


def ulp_distance(a: ArrayLike, b: ArrayLike, fmt: FloatFormat | str = "fp32") -> Any:
    r"""The number of steps between ``a`` and ``b`` along the values of ``fmt`` (elementwise).

    Parameters
    ----------
    a, b : array_like
        Values of ``fmt`` (float16/32/64, integers, bools, or ml_dtypes 16- and 8-bit floats); broadcast
        together. Infinities count as one step past the largest finite value where ``fmt`` has them.
    fmt : FloatFormat or str, default "fp32"
        Any lampref format, or a name :func:`~lampref.get_format` knows.

    Returns
    -------
    numpy.uint64 or numpy.ndarray of uint64
        $|\mathrm{ord}(b) - \mathrm{ord}(a)|$: 0 for equal values (``+0`` and ``-0`` included), 1 for
        neighbours. Unsigned, because the distance from ``-max`` to ``max`` in fp64 does not fit in int64.

    Raises
    ------
    FormatError
        Unknown format name.
    ShapeError
        ``a`` and ``b`` do not broadcast.
    InputValueError
        NaN (it has no place in the order), or a value that is not a value of ``fmt``.

    Notes
    -----
    $\mathrm{ord}(x)$ numbers the values of the format in increasing order with
    $\mathrm{ord}(\pm 0) = 0$ and $\mathrm{ord}(-x) = -\mathrm{ord}(x)$. For fp16, fp32 and fp64
    it is read off the bit pattern (sign and magnitude bits, the classic ulp-distance trick). For any other
    format, with $e = \max(\lfloor \log_2 |x| \rfloor, e_{\min})$ and the integer significand
    $m = |x| / 2^{e - p + 1}$,

    $$ \mathrm{ord}(|x|) = (e - e_{\min})\, 2^{p-1} + m, $$

    less $2^{p-1} - 1$ for normal values of a format without subnormals. Membership is checked with
    :func:`~lampref.is_representable` (a :func:`~lampref.round_to` round trip). The tests check both routes
    against each other, against ``numpy.nextafter`` stepping (float16, float32, ml_dtypes bfloat16) and
    against counting :meth:`FloatFormat.values`.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.metrics import ulp_distance
    >>> int(ulp_distance(1.0, np.nextafter(np.float32(1.0), np.float32(2.0))))
    1
    >>> ulp_distance([-0.0, 1.0, -2.0**-24], [0.0, 2.0, 2.0**-24], "fp16").tolist()
    [0, 1024, 2]
    >>> int(ulp_distance(1.0, 2.0, "bf16")), int(ulp_distance(448.0, 0.0, "e4m3"))
    (128, 126)
    """
    fmt = get_format(fmt)
    x = _float64(a, "a")
    y = _float64(b, "b")
    try:
        x, y = np.broadcast_arrays(x, y)
    except ValueError:
        raise ShapeError(f"a has shape {x.shape} and b has shape {y.shape}; they do not broadcast") from None
    for arr, name in ((x, "a"), (y, "b")):
        if np.isnan(arr).any():
            raise InputValueError(f"{name} contains NaN; ulp_distance is defined on ordered values only")
        ok = np.asarray(is_representable(arr, fmt))
        if not ok.all():
            bad = arr[~ok].flat[0]
            raise InputValueError(f"{name} holds {bad!r}, which is not a value of {fmt!r}")
    bits = _BIT_FORMATS.get(fmt)
    if bits is not None:
        with np.errstate(over="ignore"):
            (ma, sa), (mb, sb) = _ordinal_bits(x, *bits), _ordinal_bits(y, *bits)
    else:
        (ma, sa), (mb, sb) = _ordinal_format(x, fmt), _ordinal_format(y, fmt)
    same = sa == sb
    d = np.where(same, np.maximum(ma, mb) - np.minimum(ma, mb), ma + mb)
    d = np.asarray(d, dtype=np.uint64)
    return d[()] if d.ndim == 0 else d
