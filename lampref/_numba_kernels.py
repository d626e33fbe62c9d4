r"""Compiled accumulation kernels (numba), bit-identical to the NumPy path of :mod:`lampref.accumulate`.

Imported only by :mod:`lampref._backend`, and only when the numba backend is active. Each kernel computes
a stack of products ``[G, M, K] @ [G, K, N]`` in place into ``out`` (``[G, M, N]``), the rows of all the
products spread over the cores (``prange``), the innermost loop running along a row of the output so that
the independent output elements of a row are processed side by side.

The roundings are those of :class:`lampref.rounding.Rounder` in the float64 container, written per element
on the bit pattern: the magnitude gets an increment chosen by the mode and loses its low ``d`` bits
(``d`` grows below the format's normal range), magnitudes below half the smallest step become 0 or that
step, results beyond the largest finite value overflow as IEEE 754 says, NaNs pass unchanged. The formats
covered are IEEE-encoded, non-saturating and fit in float32 (:func:`rounding_constants` says which), in the
six deterministic modes; everything else stays on the NumPy path.

The sums are those of the NumPy path: Knuth's TwoSum of the partial sum and the exact float64 product, the
pair rounded to odd at 53 bits (a NaN error term counts as zero), then rounded to the format; the authors'
kernel adds in float32 arithmetic (``fma=False``) or rounds the exact ``s + a*b`` to float32 through the
same round-to-odd (``fma=True``), then rounds the float32 accumulator to the format.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from .formats import FloatFormat

MODE_CODES: dict[str, int] = {
    "nearest_even": 0,
    "nearest_away": 1,
    "toward_zero": 2,
    "toward_pos": 3,
    "toward_neg": 4,
    "odd": 5,
}
AUTHORS_M0 = 6  # the authors' m = 0 bit trick (ties to the even float32 exponent field)
NEAREST_EVEN_F32 = 7  # nearest-even when only the precision differs from float32's, on the float32 pattern

_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_MB = np.uint64(52)  # float64 fraction bits
_SIGN = np.uint64(1 << 63)
_ABS = np.uint64((1 << 63) - 1)
_INF = np.uint64(0x7FF << 52)
_IMPLICIT = np.uint64(1 << 52)


def _pattern(value: float) -> int:
    return int(np.float64(value).view(np.uint64))


def rounding_constants(fmt: FloatFormat) -> tuple[np.uint64, ...] | None:
    """The constants of the compiled rounding to ``fmt`` (float64 container), or None when ``fmt`` is not
    covered: an encoding other than ``"ieee"``, a saturating format, or one that does not fit in float32.

    The tuple is ``(shift, eq, limit, subnormals, xmax, min_normal, half_sub, quantum_sub)``: the pattern
    bits dropped in the normal range, the biased exponent of the smallest normal, the most extra bits
    dropped below it, whether the format has subnormals, and the patterns of the largest finite value, the
    smallest normal, half the smallest step and the smallest step.
    """
    if fmt.encoding != "ieee" or fmt.saturate or not fmt.fits_float32:
        return None
    assert fmt.emin is not None
    shift = 53 - fmt.p
    q_sub = fmt.emin - fmt.p + 1 if fmt.subnormals else fmt.emin
    values = (
        shift,
        fmt.emin + 1023,
        52 - shift,
        int(fmt.subnormals),
        _pattern(fmt.max),
        _pattern(fmt.smallest_normal),
        _pattern(math.ldexp(1.0, q_sub - 1)),
        _pattern(math.ldexp(1.0, q_sub)),
    )
    return tuple(np.uint64(v) for v in values)


# ------------------------------------------------------------------------------------------ scalars
@njit(inline="always", cache=True)
def _round_bits(b: Any, rc: Any, mode: int) -> Any:  # pragma: no cover - compiled
    """The pattern of ``Rounder(fmt, mode)`` applied to the float64 of pattern ``b``."""
    shift, eq, limit, subn, xmax, min_normal, half_sub, quantum_sub = rc
    sign = b & _SIGN
    A = b & _ABS
    if subn != _ZERO:
        E = min(max(A >> _MB, _ONE), eq)
        extra = eq - E
        tiny = extra > limit
        d = min(extra, limit) + shift
    else:
        tiny = (A != _ZERO) and (A < min_normal)
        d = shift
    mask = (_ONE << d) - _ONE
    lsb = (A >> d) & _ONE
    if d == _MB:  # only the implicit bit is kept (pattern bit 52 is the exponent's last bit)
        lsb = _ONE if A >= _IMPLICIT else _ZERO
    negative = sign != _ZERO
    inexact = (A & mask) != _ZERO
    if mode == 0:
        inc = (mask >> _ONE) + lsb
    elif mode == 1:
        inc = (mask + _ONE) >> _ONE
    elif mode == 3:
        inc = _ZERO if negative else mask
    elif mode == 4:
        inc = mask if negative else _ZERO
    elif mode == 5:
        inc = (_ONE << d) if (inexact and lsb == _ZERO) else _ZERO
    else:
        inc = _ZERO
    R = (A + inc) & ~mask
    if tiny:
        nonzero = A != _ZERO
        if mode == 0:
            up = A > half_sub
        elif mode == 1:
            up = A >= half_sub
        elif mode == 3:
            up = nonzero and not negative
        elif mode == 4:
            up = nonzero and negative
        elif mode == 5:
            up = nonzero
        else:
            up = False
        R = quantum_sub if up else _ZERO
    if R > xmax:
        truncating = mode == 2 or mode == 5 or (mode == 3 and negative) or (mode == 4 and not negative)
        R = xmax if truncating else _INF
        if A >= _INF:
            R = A if A > _INF else _INF
    return R | sign


@njit(inline="always", cache=True)
def _round64(x: float, rc: Any, mode: int) -> float:  # pragma: no cover - compiled
    return np.uint64(_round_bits(np.float64(x).view(np.uint64), rc, mode)).view(np.float64)


@njit(inline="always", cache=True)
def _odd53(s: float, t: float) -> float:  # pragma: no cover - compiled
    """fl(s + t) rounded to odd at 53 bits: TwoSum, then the odd neighbour towards the error term."""
    h = s + t
    bp = h - s
    err = (s - (h - bp)) + (t - bp)
    if abs(err) > 0.0:  # a NaN error term (h infinite) counts as zero
        hb = np.float64(h).view(np.uint64)
        down = (hb ^ np.float64(err).view(np.uint64)) >> np.uint64(63)
        return np.uint64((hb - down) | _ONE).view(np.float64)
    return h


@njit(inline="always", cache=True)
def _negative_zero(h: float, s: float, t: float) -> float:  # pragma: no cover - compiled
    """IEEE 754 (6.3) toward -inf: an exact zero sum is -0 unless both terms are +0."""
    if h == 0.0 and not (s == 0.0 and t == 0.0 and not np.signbit(s) and not np.signbit(t)):
        return -0.0
    return h


@njit(inline="always", cache=True)
def _authors_m0(x: Any) -> Any:  # pragma: no cover - compiled
    """The authors' m = 0 rounding of a float32 value (see ``accumulate._authors_round_m0``)."""
    u = np.uint64(np.float32(x).view(np.uint32))
    if (u & np.uint64(0x7F800000)) == np.uint64(0x7F800000):
        return x
    r = (u + np.uint64(0x3FFFFF) + ((u >> np.uint64(23)) & _ONE)) & np.uint64(0xFF800000)
    return np.float64(np.uint32(r).view(np.float32))


@njit(inline="always", cache=True)
def _nearest_even_f32(x: Any, shift: Any) -> Any:  # pragma: no cover - compiled
    """Nearest-even to ``24 - shift`` bits of a float32 value whose format differs from float32 only in
    precision (``Rounder``'s simple path): round the signed pattern, a carry reaching infinity as overflow
    should; NaN unchanged."""
    if x != x:
        return x
    u = np.uint32(np.float32(x).view(np.uint32))
    one = np.uint32(1)
    mask = (one << shift) - one
    r = (u + ((u >> shift) & one) + (mask >> one)) & ~mask
    return np.uint32(r).view(np.float32)


# ------------------------------------------------------------------------------------------ kernels
# Each kernel calls its row step with the mode as a literal for the common modes: the step is inlined
# there, so the compiler sees a constant mode and the loop along the row has no branch on it.


@njit(inline="always", cache=True)
def _exact_first(row: Any, a: float, b: Any, rc: Any, mode: int) -> None:  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        row[j] = _round64(a * b[j], rc, mode)


@njit(inline="always", cache=True)
def _exact_step(row: Any, a: float, b: Any, rc: Any, mode: int) -> None:  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        s = row[j]
        t = a * b[j]
        x = _odd53(s, t)
        if mode == 4:
            x = _negative_zero(x, s, t)
        row[j] = _round64(x, rc, mode)


@njit(parallel=True, cache=True)
def strict_exact(
    A: Any, B: Any, out: Any, rc: Any, mode: int, reverse: bool
) -> None:  # pragma: no cover - compiled
    """Every partial sum correctly rounded: ``[G, M, K] @ [G, K, N] -> out [G, M, N]`` (float64, K >= 1)."""
    G, M, K = A.shape
    for r in prange(G * M):
        g, i = r // M, r % M
        row = out[g, i]
        k = K - 1 if reverse else 0
        _exact_first(row, A[g, i, k], B[g, k], rc, mode)
        for step in range(1, K):
            k = K - 1 - step if reverse else step
            if mode == 0:
                _exact_step(row, A[g, i, k], B[g, k], rc, 0)
            else:
                _exact_step(row, A[g, i, k], B[g, k], rc, mode)


@njit(inline="always", cache=True)
def _authors_step(
    row: Any, a: Any, b: Any, rc: Any, mode: int, fma: bool
) -> None:  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        s = row[j]
        # fused: the exact s + a*b rounded to float32; unfused: float32 product and sum
        s32 = np.float32(_odd53(np.float64(s), np.float64(a) * np.float64(b[j]))) if fma else s + a * b[j]
        if mode == AUTHORS_M0:
            row[j] = np.float32(_authors_m0(s32))
        elif mode == NEAREST_EVEN_F32:
            row[j] = _nearest_even_f32(s32, np.uint32(rc[0] - np.uint64(29)))
        else:
            row[j] = np.float32(_round64(np.float64(s32), rc, mode))


@njit(parallel=True, cache=True)
def authors(A: Any, B: Any, out: Any, rc: Any, mode: int, fma: bool) -> None:  # pragma: no cover - compiled
    """The authors' float32-staged kernel: ``[G, M, K] @ [G, K, N] -> out [G, M, N]`` (float32)."""
    G, M, K = A.shape
    for r in prange(G * M):
        g, i = r // M, r % M
        row = out[g, i]
        row[:] = np.float32(0.0)
        for k in range(K):
            if mode == NEAREST_EVEN_F32 and fma:
                _authors_step(row, A[g, i, k], B[g, k], rc, NEAREST_EVEN_F32, True)
            elif mode == NEAREST_EVEN_F32:
                _authors_step(row, A[g, i, k], B[g, k], rc, NEAREST_EVEN_F32, False)
            else:
                _authors_step(row, A[g, i, k], B[g, k], rc, mode, fma)


def threads() -> int:
    """The number of threads the parallel kernels use."""
    return int(numba.get_num_threads())
