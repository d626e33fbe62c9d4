r"""Compiled accumulation kernels (numba), bit-identical to the NumPy path of :mod:`lampref.accumulate`.

Imported only by :mod:`lampref._backend`, and only when the numba backend is active. Each kernel computes
a stack of products ``[G, M, K] @ [G, K, N]`` into ``out`` (``[G, M, N]``, float32: every covered format
fits in float32), the rows of all the products spread over the cores (``prange``), the innermost loop
running along a row of the output so that the independent output elements of a row are processed side by
side (vectorised).

Roundings are those of :class:`lampref.rounding.Rounder` in the float64 container, written per element on
the bit pattern: the magnitude gets an increment chosen by the mode and loses its low ``d`` bits (``d``
grows below the format's normal range), magnitudes below half the smallest step become 0 or that step,
results beyond the largest finite value overflow as IEEE 754 says, NaNs pass unchanged
(:func:`_round_bits`). The loops use a shorter form, exact for a zero or a magnitude in the normal range
that rounds to a finite value (:func:`_round_fast`, a constant ``d``); a row step in which any element
falls outside that range is redone with the full rounding, from the previous partial sums, which the
kernels keep (two row buffers, used in turn). The formats covered are IEEE-encoded, non-saturating and fit
in float32 (:func:`rounding_constants` says which), in the six deterministic modes; everything else stays
on the NumPy path.

The sums are those of the NumPy path: Knuth's TwoSum of the partial sum and the exact float64 product, the
pair rounded to odd at 53 bits (a NaN error term counts as zero), then rounded to the format; the authors'
kernel adds in float32 arithmetic (``fma=False``) or rounds the exact ``s + a*b`` to float32 once, with a
float32 fused multiply-add (``fma=True``; the NumPy path gets the same rounding through round-to-odd),
then rounds the float32 accumulator to the format.

Block sums (``block > 1``) are the exact sum of the block's products rounded once to the block format. The
float64 sum ``t`` of the products (each exact) is within ``e`` of the exact sum, with ``e`` a rigorous bound
(twice :math:`\gamma_{n-1} \sum |a_k b_k|`, the sum of magnitudes bounded by the smaller of
:math:`\sum|a_k| \max|b_k|` and :math:`\max|a_k| \sum|b_k|`): when the roundings of the float64 neighbours
outside ``t - e`` and ``t + e`` agree, that is the rounding of the exact sum. Otherwise the element's block
is summed as the NumPy path sums it (a double-double with TwoSum); where the double-double is not exact
either, the element is flagged, and the caller recomputes it on the NumPy path (rational arithmetic).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

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
_NEG_TINY = np.uint64((1 << 63) | 1)  # the pattern of -2**-1074
_F64_MAX = float(np.finfo(np.float64).max)
_CHUNK = 8  # output rows per parallel task (each task allocates its row buffers once)


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


def fast_constants(fmt: FloatFormat, mode: str) -> tuple[np.uint64, ...]:
    """The constants of :func:`_round_fast` for ``fmt`` (covered by :func:`rounding_constants`) and a
    deterministic ``mode``: the mode becomes data (an increment made of a constant, the kept bit and a
    sign-selected mask, and a sticky bit for round-to-odd), so that the loops have no branch on it.

    The tuple is ``(shift, mask, base, use_lsb, pick_neg, pick_pos, use_odd, implicit, min_normal - 1,
    xmax, negzero)``.
    """
    rc = rounding_constants(fmt)
    assert rc is not None
    shift = int(rc[0])
    mask = (1 << shift) - 1
    every = (1 << 64) - 1
    code = MODE_CODES[mode]
    base = {0: mask >> 1, 1: (mask + 1) >> 1}.get(code, 0)
    values = (
        shift,
        mask,
        base,
        int(code == 0),
        every if code == 4 else 0,
        every if code == 3 else 0,
        int(code == 5),
        int(shift == 52),
        int(rc[5]) - 1,
        int(rc[4]),
        every if code == 4 else 0,
    )
    return tuple(np.uint64(v) for v in values)


# ------------------------------------------------------------------------------------------ scalars
@njit(inline="always", cache=True)
def _bits(x: float) -> Any:  # pragma: no cover - compiled
    return np.float64(x).view(np.uint64)


@njit(inline="always", cache=True)
def _value(b: Any) -> float:  # pragma: no cover - compiled
    return np.uint64(b).view(np.float64)


@njit(cache=True)
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
def _round_fast(b: Any, fc: Any) -> Any:  # pragma: no cover - compiled
    """``(pattern, outside)``: :func:`_round_bits` of ``b`` where the magnitude is 0 or in the normal range
    and rounds to a finite value (``outside`` 0), else ``outside`` 1 and a pattern to be discarded. No
    branch, the mode given as data (:func:`fast_constants`): the loops that call it vectorise."""
    shift, mask, base, use_lsb, pick_neg, pick_pos, use_odd, implicit, mn1, xmax, _ = fc
    sign = b & _SIGN
    A = b & _ABS
    lsb = ((A >> shift) | implicit) & _ONE
    neg = _ZERO - (sign >> np.uint64(63))  # all ones for a negative value
    inc = base + (lsb & use_lsb) + (mask & ((neg & pick_neg) | (~neg & pick_pos)))
    odd = np.uint64((A & mask) != _ZERO) & (lsb ^ _ONE) & use_odd
    R = ((A + inc) & ~mask) | (odd << shift)
    outside = np.uint64(A - _ONE < mn1) | np.uint64(A > xmax)  # (xmax, overflow threshold) included
    return R | sign, outside


@njit(inline="always", cache=True)
def _round_fast_ne(b: Any, fc: Any) -> Any:  # pragma: no cover - compiled
    """:func:`_round_fast` for ``nearest_even`` (``fc`` its constants), on the signed pattern: the carry of
    a magnitude up to ``xmax`` never reaches the sign bit."""
    shift, mask, base, _, _, _, _, implicit, mn1, xmax, _ = fc
    R = (b + base + (((b >> shift) | implicit) & _ONE)) & ~mask
    A = b & _ABS
    outside = np.uint64(A - _ONE < mn1) | np.uint64(A > xmax)
    return R, outside


@njit(inline="always", cache=True)
def _odd53_bits(h: float, err: float) -> Any:  # pragma: no cover - compiled
    """The pattern of ``h + err`` rounded to odd at 53 bits (``h = fl(h + err)``, ``err`` its error): ``h``,
    or its odd neighbour towards ``err``; a NaN ``err`` (``h`` infinite) counts as zero. No branch."""
    hb = _bits(h)
    nz = np.uint64(abs(err) > 0.0)
    down = ((hb ^ _bits(err)) >> np.uint64(63)) & nz
    return (hb - down) | nz


@njit(inline="always", cache=True)
def _sum_bits(s: float, t: float, negzero: Any) -> Any:  # pragma: no cover - compiled
    """The pattern of the exact ``s + t`` rounded to odd at 53 bits (TwoSum); with ``negzero`` all ones
    (rounding toward -inf), an exact zero sum is -0 unless both terms are +0 (IEEE 754, 6.3)."""
    h = s + t
    bp = h - s
    err = (s - (h - bp)) + (t - bp)
    x = _odd53_bits(h, err)
    zero = _ZERO - np.uint64((x & _ABS) == _ZERO)
    not_both_pos = _ZERO - np.uint64((_bits(s) | _bits(t)) != _ZERO)
    return x | (_SIGN & zero & not_both_pos & negzero)


@njit(inline="always", cache=True)
def _authors_m0(x: Any) -> Any:  # pragma: no cover - compiled
    """The authors' m = 0 rounding of a float32 value (see ``accumulate._authors_round_m0``)."""
    u = np.float32(x).view(np.uint32)
    r = (u + np.uint32(0x3FFFFF) + ((u >> np.uint32(23)) & np.uint32(1))) & np.uint32(0xFF800000)
    special = (u & np.uint32(0x7F800000)) == np.uint32(0x7F800000)
    return np.uint32(u if special else r).view(np.float32)


@njit(inline="always", cache=True)
def _nearest_even_f32(x: Any, shift: Any) -> Any:  # pragma: no cover - compiled
    """Nearest-even to ``24 - shift`` bits of a float32 value whose format differs from float32 only in
    precision (``Rounder``'s simple path): round the signed pattern, a carry reaching infinity as overflow
    should; NaN unchanged."""
    u = np.float32(x).view(np.uint32)
    one = np.uint32(1)
    mask = (one << shift) - one
    r = (u + ((u >> shift) & one) + (mask >> one)) & ~mask
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.uint32(u if nan else r).view(np.float32)


@njit(inline="always", cache=True)
def _authors_round(x: Any, rc: Any, mode: int) -> Any:  # pragma: no cover - compiled
    """The float32 accumulator of the authors' kernel rounded to the format (``_fp32_stage_rounder``)."""
    if mode == AUTHORS_M0:
        return _authors_m0(x)
    if mode == NEAREST_EVEN_F32:
        return _nearest_even_f32(x, np.uint32(rc[0] - np.uint64(29)))
    return np.float32(_value(_round_bits(_bits(np.float64(x)), rc, mode)))


@intrinsic
def _fma32(typingctx: Any, a: Any, b: Any, c: Any) -> Any:  # pragma: no cover - compiled
    """``fl32(a * b + c)`` rounded once (LLVM's ``llvm.fma``: the processor's fused multiply-add, or a
    correctly rounded library call), for float32 ``a``, ``b``, ``c``."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fma(*args)

    return sig, codegen


# ------------------------------------------------------------------------------------------ row steps
@njit(cache=True)
def _first_row(dst: Any, a: float, b: Any, fc: Any, rc: Any, mode: int) -> None:  # pragma: no cover
    """``dst = fl(a * b)`` (the products are exact)."""
    outside = _ZERO
    for j in range(dst.shape[0]):
        r, o = _round_fast(_bits(a * b[j]), fc)
        dst[j] = _value(r)
        outside |= o
    if outside != _ZERO:
        for j in range(dst.shape[0]):
            dst[j] = _value(_round_bits(_bits(a * b[j]), rc, mode))


@njit(cache=True)
def _add_row(dst: Any, src: Any, a: float, b: Any, fc: Any, rc: Any, mode: int) -> None:  # pragma: no cover
    """``dst = fl(src + a * b)``, each sum rounded exactly (the products are exact)."""
    if mode == 0:
        _add_row_nearest_even(dst, src, a, b, fc, rc)
        return
    negzero = fc[10]
    outside = _ZERO
    for j in range(dst.shape[0]):
        r, o = _round_fast(_sum_bits(src[j], a * b[j], negzero), fc)
        dst[j] = _value(r)
        outside |= o
    if outside != _ZERO:
        for j in range(dst.shape[0]):
            dst[j] = _value(_round_bits(_sum_bits(src[j], a * b[j], negzero), rc, mode))


@njit(cache=True)
def _add_row_nearest_even(dst: Any, src: Any, a: float, b: Any, fc: Any, rc: Any) -> None:  # pragma: no cover
    """:func:`_add_row` for ``nearest_even``, the most used mode, with its shorter rounding."""
    outside = _ZERO
    for j in range(dst.shape[0]):
        s = src[j]
        t = a * b[j]
        h = s + t
        bp = h - s
        r, o = _round_fast_ne(_odd53_bits(h, (s - (h - bp)) + (t - bp)), fc)
        dst[j] = _value(r)
        outside |= o
    if outside != _ZERO:
        for j in range(dst.shape[0]):
            dst[j] = _value(_round_bits(_sum_bits(src[j], a * b[j], _ZERO), rc, 0))


@njit(cache=True)
def _strict_row(
    a: Any, B: Any, buf: Any, fc: Any, rc: Any, mode: int, reverse: bool
) -> int:  # pragma: no cover - compiled
    """The strict exact accumulation of one output row into ``buf[0]`` or ``buf[1]``; returns which."""
    K = a.shape[0]
    k = K - 1 if reverse else 0
    _first_row(buf[0], a[k], B[k], fc, rc, mode)
    for step in range(1, K):
        k = K - 1 - step if reverse else step
        _add_row(buf[step % 2], buf[1 - step % 2], a[k], B[k], fc, rc, mode)
    return int((K - 1) % 2)


@njit(parallel=True, cache=True)
def strict_exact(
    A: Any, B: Any, out: Any, fc: Any, rc: Any, mode: int, reverse: bool
) -> None:  # pragma: no cover - compiled
    """Every partial sum correctly rounded: ``[G, M, K] @ [G, K, N] -> out [G, M, N]`` (float64 operands,
    float32 ``out``, K >= 1)."""
    G, M = A.shape[0], A.shape[1]
    N = B.shape[2]
    rows = G * M
    for c in prange((rows + _CHUNK - 1) // _CHUNK):
        buf = np.empty((2, N))
        for r in range(c * _CHUNK, min(rows, (c + 1) * _CHUNK)):
            g, i = r // M, r % M
            last = _strict_row(A[g, i], B[g], buf, fc, rc, mode, reverse)
            out[g, i, :] = buf[last]


@njit(inline="always", cache=True)
def _authors_row(row: Any, a: Any, B: Any, rc: Any, mode: int, fma: bool) -> None:  # pragma: no cover
    """The authors' strict accumulation of one output row (float32 operands and ``row``)."""
    row[:] = np.float32(0.0)
    for k in range(a.shape[0]):
        ak = a[k]
        b = B[k]
        for j in range(row.shape[0]):
            # fused: the exact s + a*b rounded to float32 once; unfused: float32 product and sum
            s32 = _fma32(ak, b[j], row[j]) if fma else row[j] + ak * b[j]  # type: ignore[call-arg]
            row[j] = _authors_round(s32, rc, mode)


@njit(parallel=True, cache=True)
def authors(A: Any, B: Any, out: Any, rc: Any, mode: int, fma: bool) -> None:  # pragma: no cover - compiled
    """The authors' float32-staged kernel: ``[G, M, K] @ [G, K, N] -> out [G, M, N]`` (float32)."""
    G, M = A.shape[0], A.shape[1]
    for r in prange(G * M):
        g, i = r // M, r % M
        if mode == NEAREST_EVEN_F32:
            if fma:
                _authors_row(out[g, i], A[g, i], B[g], rc, NEAREST_EVEN_F32, True)
            else:
                _authors_row(out[g, i], A[g, i], B[g], rc, NEAREST_EVEN_F32, False)
        else:
            _authors_row(out[g, i], A[g, i], B[g], rc, mode, fma)


# ------------------------------------------------------------------------------------------ block sums
@njit(inline="always", cache=True)
def _next_down(x: float) -> Any:  # pragma: no cover - compiled
    """The pattern of the largest float64 below ``x`` (finite ``x``)."""
    b = _bits(x)
    down = _NEG_TINY if x == 0.0 else b - _ONE
    return b + _ONE if b >= _SIGN else down


@njit(cache=True)
def _block_exact(
    a: Any, B: Any, k0: int, k1: int, j: int, rcb: Any, bmode: int
) -> tuple[float, bool]:  # pragma: no cover - compiled
    """The block sum of element ``j`` as the NumPy path's double-double computes it (``_block_sum_exact``):
    ``(value, exact)``, ``exact`` False where the double-double is not exact (then the value is unused)."""
    p = a[k0] * B[k0, j]
    hi, lo, plain = p, 0.0, p
    inexact, finite, all_pos_zero = False, math.isfinite(p), _bits(p) == _ZERO
    for k in range(k0 + 1, k1):
        p = a[k] * B[k, j]
        plain += p
        finite = finite and math.isfinite(p)
        all_pos_zero = all_pos_zero and _bits(p) == _ZERO
        h = hi + p
        bp = h - hi
        e = (hi - (h - bp)) + (p - bp)
        hi = h
        h = lo + e
        bp = h - lo
        e2 = (lo - (h - bp)) + (e - bp)
        lo = h
        inexact = inexact or e2 != 0.0
    if not finite:  # an infinite or NaN product: their float64 sum, as in the NumPy path
        return _value(_round_bits(_bits(plain), rcb, bmode)), True
    if lo != 0.0:
        h = hi + lo
        bp = h - hi
        lo = (hi - (h - bp)) + (lo - bp)
        hi = h
    if bmode == 4 and hi == 0.0 and not all_pos_zero:
        hi = -0.0
    return _value(_round_bits(_odd53_bits(hi, lo), rcb, bmode)), not inexact


@njit(cache=True)
def _block_row(
    t: Any, a: Any, B: Any, k0: int, k1: int, sB: Any, mB: Any, fcb: Any, rcb: Any, bmode: int, redo: Any
) -> None:  # pragma: no cover - compiled
    """``t`` = the block sums of products ``k0 .. k1 - 1`` of one output row, rounded to the block format;
    ``redo[j]`` set where an element needs the NumPy path."""
    n = k1 - k0
    sA, mA = 0.0, 0.0
    for k in range(k0, k1):
        sA += abs(a[k])
        mA = max(mA, abs(a[k]))  # a non-finite operand makes t non-finite: undecided below
    ak = a[k0]
    b = B[k0]
    for j in range(t.shape[0]):
        t[j] = ak * b[j]
    for k in range(k0 + 1, k1):
        ak = a[k]
        b = B[k]
        for j in range(t.shape[0]):
            t[j] = t[j] + ak * b[j]
    gamma = n * 2.0**-52  # twice gamma_(n-1): covers the float64 roundings of the bound as well
    undecided = _ZERO
    for j in range(t.shape[0]):
        e1 = sA * mB[j]
        e2 = mA * sB[j]
        e = (e1 if e1 < e2 else e2) * gamma
        lo, o1 = _round_fast(_next_down(t[j] - e), fcb)
        hi, o2 = _round_fast(_next_down(-(t[j] + e)) ^ _SIGN, fcb)
        bad = o1 | o2 | np.uint64(lo != hi) | np.uint64(not e <= _F64_MAX)
        undecided |= bad
        t[j] = _value(lo) if bad == _ZERO else math.nan
    if undecided != _ZERO:
        for j in range(t.shape[0]):
            if math.isnan(t[j]):
                v, exact = _block_exact(a, B, k0, k1, j, rcb, bmode)
                t[j] = v
                if not exact:
                    redo[j] = 1


@njit(cache=True)
def _blocked_row(
    a: Any,
    B: Any,
    buf: Any,
    out: Any,
    redo: Any,
    sB: Any,
    mB: Any,
    block: int,
    fc: Any,
    rc: Any,
    mode: int,
    fcb: Any,
    rcb: Any,
    bmode: int,
    reverse: bool,
    fp32: bool,
) -> None:  # pragma: no cover - compiled
    """One output row of a blocked accumulation into ``out``: exact staging (``fp32`` False, the block
    sums added with exact rounding) or the authors' (float32 sums, then :func:`_authors_round` in
    ``mode``)."""
    K = a.shape[0]
    nb = (K + block - 1) // block
    t = buf[2]
    if fp32:
        out[:] = np.float32(0.0)
    for step in range(nb):
        kb = nb - 1 - step if reverse else step
        k0 = kb * block
        _block_row(t, a, B, k0, min(k0 + block, K), sB[kb], mB[kb], fcb, rcb, bmode, redo)
        if fp32:
            _authors_add(out, t, rc, mode)
        elif step == 0:
            _first_row(buf[0], 1.0, t, fc, rc, mode)
        else:
            _add_row(buf[step % 2], buf[1 - step % 2], 1.0, t, fc, rc, mode)
    if not fp32:
        out[:] = buf[(nb - 1) % 2]


@njit(cache=True)
def _authors_add(row: Any, t: Any, rc: Any, mode: int) -> None:  # pragma: no cover - compiled
    """``row = round(row + float32(t))`` in float32 arithmetic (the authors' blocked step)."""
    if mode == NEAREST_EVEN_F32:
        for j in range(row.shape[0]):
            row[j] = _authors_round(row[j] + np.float32(t[j]), rc, NEAREST_EVEN_F32)
    else:
        for j in range(row.shape[0]):
            row[j] = _authors_round(row[j] + np.float32(t[j]), rc, mode)


@njit(parallel=True, cache=True)
def blocked(
    A: Any,
    B: Any,
    out: Any,
    redo: Any,
    sB: Any,
    mB: Any,
    block: int,
    consts: Any,
    mode: int,
    bmode: int,
    reverse: bool,
    fp32: bool,
) -> None:  # pragma: no cover - compiled
    """Blocked accumulation ``[G, M, K] @ [G, K, N] -> out [G, M, N]`` (float64 operands, float32 ``out``):
    each run of ``block`` products summed exactly and rounded to the block format (mode ``bmode``), then
    added to the accumulator: exactly (``fp32`` False; ``mode`` one of the six deterministic modes,
    ``reverse`` for the blocks right to left) or in float32 arithmetic then rounded (``fp32`` True, the
    authors' kernel; ``mode`` any code of :func:`_authors_round`). ``consts``: ``(fc, rc, fcb, rcb)``, the
    constants of the accumulator's rounding and of the block's. ``sB``, ``mB`` ``[G, blocks, N]``: the sums
    and maxima of ``|B|`` over each block. ``redo [G, M, N]`` is set where an element must be recomputed
    on the NumPy path."""
    G, M = A.shape[0], A.shape[1]
    N = B.shape[2]
    fc, rc, fcb, rcb = consts
    rows = G * M
    for c in prange((rows + _CHUNK - 1) // _CHUNK):
        buf = np.empty((3, N))
        for r in range(c * _CHUNK, min(rows, (c + 1) * _CHUNK)):
            g, i = r // M, r % M
            _blocked_row(
                A[g, i], B[g], buf, out[g, i], redo[g, i], sB[g], mB[g], block,
                fc, rc, mode, fcb, rcb, bmode, reverse, fp32,
            )  # fmt: skip


# ------------------------------------------------------------------------------------------ LAMP
@njit(inline="always", cache=True)
def _f32_dot(q: Any, k: Any) -> Any:  # pragma: no cover - compiled
    """``np.multiply(q, k, dtype=np.float32).sum(dtype=np.float32)`` for ``len(q) <= 128``: float32
    products, NumPy's pairwise sum (eight running sums over the multiples of 8, added as a tree, the rest
    added in turn; below 8 terms, in turn), added to the sum's identity +0."""
    n = q.shape[0]
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += q[i] * k[i]
        return np.float32(0.0) + res
    r0, r1, r2, r3 = q[0] * k[0], q[1] * k[1], q[2] * k[2], q[3] * k[3]
    r4, r5, r6, r7 = q[4] * k[4], q[5] * k[5], q[6] * k[6], q[7] * k[7]
    m = n - n % 8
    for i in range(8, m, 8):
        r0 += q[i] * k[i]
        r1 += q[i + 1] * k[i + 1]
        r2 += q[i + 2] * k[i + 2]
        r3 += q[i + 3] * k[i + 3]
        r4 += q[i + 4] * k[i + 4]
        r5 += q[i + 5] * k[i + 5]
        r6 += q[i + 6] * k[i + 6]
        r7 += q[i + 7] * k[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(m, n):
        res += q[i] * k[i]
    return np.float32(0.0) + res


@njit(parallel=True, cache=True)
def f32_scores_where(q: Any, k: Any, sel: Any, low: Any, scale: Any, out: Any) -> None:  # pragma: no cover
    """``out[h, i, j]`` = the float32 score ``q[h, i] . k[h, j] / scale`` (:func:`_f32_dot`, a float32
    division) where ``sel[h, i, j]``, else ``low[h, i, j]``: ``q [H, n, d]``, ``k [H, N, d]`` (float32,
    d <= 128), ``sel``, ``low``, ``out`` ``[H, n, N]``."""
    H, n = q.shape[0], q.shape[1]
    N = k.shape[1]
    for r in prange(H * n):
        h, i = r // n, r % n
        qi = q[h, i]
        for j in range(N):
            out[h, i, j] = _f32_dot(qi, k[h, j]) / scale if sel[h, i, j] else low[h, i, j]


def threads() -> int:
    """The number of threads the parallel kernels use."""
    return int(numba.get_num_threads())
