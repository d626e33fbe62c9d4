r"""Validate another implementation against lampref: bit patterns, compare reports, candidate accumulation
models, and golden vectors.

A kernel author has raw results (fp16, bf16 or fp8 bytes from a device, or float arrays) and wants to know
three things: how far they are from a stated model (:func:`compare`), which model they actually follow
(:func:`explain`), and how to pin that model down in a test that runs without lampref
(:func:`write_golden`, :func:`check_golden`, the ``lampref golden`` and ``lampref check`` commands).

Bit patterns
------------
A value of a :class:`~lampref.FloatFormat` with precision $p$ and exponent range $[e_{\min}, e_{\max}]$ is
encoded as sign, exponent field and stored mantissa, with $t = p - 1$ mantissa bits, the exponent field as
wide as :attr:`~lampref.FloatFormat.exponent_bits` and the bias $1 - e_{\min}$:

$$ x = (-1)^s \cdot 2^{E - \mathrm{bias}} (1 + M / 2^t) \quad (E \ge 1), \qquad
   x = (-1)^s \cdot 2^{e_{\min}} (M / 2^t) \quad (E = 0). $$

IEEE formats reserve the all-ones exponent field for infinities ($M = 0$) and NaNs; ``"fn"`` formats (OCP
e4m3fn) have no infinity and one NaN per sign, the largest significand of the top binade; ``"none"`` formats
(OCP MX elements) encode finite values only. These are the layouts of IEEE binary16/32/64, bfloat16, tf32,
OCP e5m2, e4m3fn, and MX e3m2, e2m3 and e2m1, bit for bit.

The fixed layouts have their own codes. IEEE P3109 (``"p3109_extended"``, ``"p3109_finite"``): the bias is
$2^{w-1}$ ($1 - e_{\min}$ as above), zero is code 0 and has no negative twin; a signed format's one NaN is
the negative-zero code $2^{k-1}$ and its infinities (extended domain) the highest code of each sign,
$2^{k-1} - 1$ and $2^k - 1$; an unsigned format has no sign bit, its NaN is $2^k - 1$ and its infinity
(extended) $2^k - 2$. OCP E8M0: eight exponent bits and nothing else, $x = 2^{E - 127}$ for
$E \le 254$ (no zero, no subnormals), code 255 is NaN. These are gfloat's codes for the same formats.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import hardware
from ._validate import as_array, check_choice, check_int, widen_ml_dtypes
from .accumulate import Accumulator, linear, matmul
from .errors import (
    FormatError,
    GoldenError,
    InputTypeError,
    InputValueError,
    LamprefError,
    ModeError,
    ShapeError,
)
from .formats import ENCODINGS, FloatFormat, fp32, get_format
from .metrics import ulp_distance
from .rounding import STOCHASTIC_MODES, as_exact_array, as_exact_float64, is_representable, round_to

__all__ = [
    "AccumulationModel",
    "CandidateResult",
    "CompareReport",
    "ExactlyRounded",
    "Explanation",
    "TensorCore",
    "WorstElement",
    "accumulator_spec",
    "bits_dtype",
    "check_golden",
    "compare",
    "decode",
    "default_candidates",
    "encode",
    "explain",
    "parse_accumulator",
    "tensor_core_candidates",
    "write_golden",
]


# ----------------------------------------------------------------------------- bit patterns
def _layout(fmt: FloatFormat) -> tuple[int, int, int]:
    """(exponent field width w, stored mantissa bits t, exponent bias) of a format's encoding."""
    return fmt.exponent_bits, fmt.p - 1, fmt.exponent_bias


def bits_dtype(fmt: FloatFormat | str) -> np.dtype[Any]:
    """The smallest unsigned integer dtype that holds a bit pattern of ``fmt`` (uint8 up to uint64).

    >>> from lampref.validate import bits_dtype
    >>> bits_dtype("e4m3"), bits_dtype("bf16"), bits_dtype("tf32")
    (dtype('uint8'), dtype('uint16'), dtype('uint32'))
    """
    fmt = get_format(fmt)
    for udt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if 8 * np.dtype(udt).itemsize >= fmt.bits:
            return np.dtype(udt)
    raise FormatError(f"{fmt!r} needs {fmt.bits} bits; bit patterns are at most 64 bits")  # pragma: no cover


def _first(mask: NDArray[np.bool_], arr: NDArray[Any]) -> str:
    """``"[i, j] = v"`` for the first element of ``arr`` where ``mask`` holds (C order)."""
    flat = int(np.flatnonzero(mask.reshape(-1))[0])
    index = np.unravel_index(flat, mask.shape) if mask.ndim else ()
    value = arr.reshape(-1)[flat]
    return f"[{', '.join(str(int(i)) for i in index)}] = {value.item()!r}"


def _nan_payload(arr: NDArray[Any], t: int) -> NDArray[np.uint64]:
    """The top ``t`` mantissa bits of each NaN of a float16/32/64 array (the quiet bit set if all are 0)."""
    width = {2: 10, 4: 23, 8: 52}[arr.dtype.itemsize]
    udt = {2: np.uint16, 4: np.uint32, 8: np.uint64}[arr.dtype.itemsize]
    m = arr.view(udt).astype(np.uint64) & np.uint64((1 << width) - 1)  # [...]
    top = m >> np.uint64(width - t) if t <= width else m << np.uint64(t - width)
    top = top & np.uint64((1 << t) - 1)
    return np.where(top == 0, np.uint64(1 << (t - 1)), top).astype(np.uint64)


def encode(x: ArrayLike, fmt: FloatFormat | str) -> NDArray[np.unsignedinteger[Any]]:
    r"""The bit patterns of values of ``fmt``, as unsigned integers (see the module notes for the layout).

    Parameters
    ----------
    x : array_like
        Values of ``fmt``: float16/32/64, integers, or ml_dtypes arrays. Signed zeros keep their sign; a NaN
        keeps the top bits of its payload in IEEE formats (a quiet NaN where they are all zero).
    fmt : FloatFormat or str
        Any lampref format, or a name :func:`~lampref.get_format` knows.

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``, dtype :func:`bits_dtype` (uint8 for 8-bit and narrower formats, the pattern in
        the low bits).

    Raises
    ------
    InputValueError
        A value that is not a value of ``fmt`` (it is never rounded: use :func:`~lampref.round_to` first),
        an infinity or a NaN where the format has none; the message gives the first one and its index.
    FormatError
        An unknown format name.

    Examples
    --------
    >>> from lampref.validate import encode
    >>> [hex(v) for v in encode([1.0, -2.0, float("inf"), -0.0], "fp16")]
    ['0x3c00', '0xc000', '0x7c00', '0x8000']
    >>> [hex(v) for v in encode([448.0, 2.0**-9, float("nan")], "e4m3")]
    ['0x7e', '0x1', '0x7f']
    >>> [hex(v) for v in encode([1.0, -0.0, float("nan"), -float("inf")], "p3109_k8p3se")]
    ['0x40', '0x0', '0x80', '0xff']
    >>> [hex(v) for v in encode([1.0, 2.0**-127, float("nan")], "e8m0")]
    ['0x7f', '0x0', '0xff']
    """
    fmt = get_format(fmt)
    arr = as_exact_array(x, "x")
    v = as_exact_float64(arr, "x")
    ok = np.asarray(is_representable(v, fmt))
    if not ok.all():
        raise InputValueError(f"x{_first(~ok, v)} is not a value of {fmt!r}; round it with round_to first")
    w, t, bias = _layout(fmt)
    nan, finite = np.isnan(v), np.isfinite(v)
    a = np.where(finite, np.abs(v), 0.0)  # [...]
    normal = a >= fmt.smallest_normal
    _, e2 = np.frexp(np.where(normal, a, 1.0))
    e = e2.astype(np.int64) - 1  # floor(log2 a) for normal values
    E = np.where(normal, e + bias, 0).astype(np.uint64)
    assert fmt.emin is not None
    sub = np.ldexp(np.where(normal, 0.0, a), t - fmt.emin)  # subnormal significands (in range)
    M = np.where(normal, np.ldexp(a, t - e) - 2.0**t, sub).astype(np.uint64)
    if fmt.encoding not in ENCODINGS:
        return _encode_fixed(v, (E << np.uint64(t)) | M, fmt)
    top = np.uint64((1 << w) - 1)
    E = np.where(np.isinf(v), top, E)
    if nan.any():
        if fmt.encoding == "fn":
            E = np.where(nan, np.uint64(fmt.emax + bias), E)
            M = np.where(nan, np.uint64((1 << t) - 1), M)
        else:  # IEEE; a format with p = 1 has no NaN pattern
            if t == 0:
                raise InputValueError(f"{fmt!r} has no mantissa bit to tell NaN from infinity")
            E = np.where(nan, top, E)
            M = np.where(nan, _nan_payload(arr, t), M)
    sign = np.signbit(v).astype(np.uint64) << np.uint64(w + t)
    return (sign | (E << np.uint64(t)) | M).astype(bits_dtype(fmt))


def _special_codes(fmt: FloatFormat) -> tuple[int, int | None, int | None]:
    """(NaN, +inf, -inf) codes of a fixed layout (P3109, E8M0); None where the format has no such value."""
    k = fmt.bits
    if fmt.signed:  # NaN at the negative-zero code, infinities at the top of each sign
        top = (1 << (k - 1)) - 1
        return 1 << (k - 1), (top if fmt.has_inf else None), ((1 << k) - 1 if fmt.has_inf else None)
    return (1 << k) - 1, ((1 << k) - 2 if fmt.has_inf else None), None


def _encode_fixed(v: NDArray[np.float64], magnitude: NDArray[np.uint64], fmt: FloatFormat) -> NDArray[Any]:
    """Codes of a fixed layout from the values ``v`` and the codes of their finite magnitudes."""
    nan_code, pos_inf, neg_inf = _special_codes(fmt)
    codes = magnitude
    if fmt.signed:  # the sign bit, except for zero (P3109 has one zero)
        negative = (v < 0).astype(np.uint64)
        codes = codes | (negative << np.uint64(fmt.bits - 1))
    if pos_inf is not None:
        codes = np.where(v == np.inf, np.uint64(pos_inf), codes)
    if neg_inf is not None:
        codes = np.where(v == -np.inf, np.uint64(neg_inf), codes)
    codes = np.where(np.isnan(v), np.uint64(nan_code), codes)
    return np.asarray(codes, dtype=np.uint64).astype(bits_dtype(fmt))


def _decode_fixed(u: NDArray[np.uint64], fmt: FloatFormat) -> NDArray[Any]:
    """Values of the codes ``u`` of a fixed layout (every code is valid)."""
    assert fmt.emin is not None
    _, t, bias = _layout(fmt)
    nan_code, pos_inf, neg_inf = _special_codes(fmt)
    sign_bit = np.uint64(1 << (fmt.bits - 1)) if fmt.signed else np.uint64(0)
    c = u & ~sign_bit  # [...] magnitude codes
    E = (c >> np.uint64(t)).astype(np.int64)
    M = (c & np.uint64((1 << t) - 1)).astype(np.float64)
    normal = np.ldexp(M + 2.0**t, E - bias - t)
    mag = np.where(E == 0, np.ldexp(M, fmt.emin - t), normal) if fmt.has_zero else normal
    out = np.where((u & sign_bit) != 0, -mag, mag)
    if pos_inf is not None:
        out = np.where(u == pos_inf, np.inf, out)
    if neg_inf is not None:
        out = np.where(u == neg_inf, -np.inf, out)
    return np.where(u == nan_code, np.nan, out).astype(fmt.dtype)


def _codes(bits: ArrayLike, fmt: FloatFormat) -> NDArray[np.uint64]:
    """``bits`` as uint64 after checking they are integers below ``2**fmt.bits``."""
    arr = as_array(bits, "bits")
    if arr.dtype.kind not in "iu":
        raise InputTypeError(
            f"bits has dtype {arr.dtype}; expected unsigned integers (the bit patterns of {fmt!r}; "
            "view a float16 or ml_dtypes array as uint16/uint8)"
        )
    bad = (arr < 0) | (arr.astype(np.uint64) >> np.uint64(fmt.bits) != 0) if arr.size else arr.astype(bool)
    if bad.any():
        raise InputValueError(f"bits{_first(bad, arr)} is not a {fmt.bits}-bit pattern of {fmt!r}")
    return arr.astype(np.uint64)


def decode(bits: ArrayLike, fmt: FloatFormat | str) -> NDArray[np.floating[Any]]:
    r"""The values of bit patterns of ``fmt``: the inverse of :func:`encode`.

    Parameters
    ----------
    bits : array_like of integers
        Bit patterns in ``[0, 2**fmt.bits)`` (raw device bytes read as uint8 or uint16, say).
    fmt : FloatFormat or str
        Any lampref format, or a name :func:`~lampref.get_format` knows.

    Returns
    -------
    numpy.ndarray
        Same shape as ``bits``, in the format's dtype (float32 when the format fits in it, else float64).
        NaN patterns give NaNs carrying the pattern's sign and mantissa bits (at the top of the payload).

    Raises
    ------
    InputTypeError
        ``bits`` is not an integer array.
    InputValueError
        A pattern wider than the format, or one that is no code of it: a nonzero mantissa under a zero
        exponent field in a format without subnormals, or an exponent field beyond $e_{\max}$ that is not
        IEEE's all-ones.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref.validate import decode
    >>> decode(np.uint16([0x3C00, 0x8001, 0x7BFF]), "fp16").tolist()
    [1.0, -5.960464477539063e-08, 65504.0]
    >>> decode([0x7E, 0x80, 0x08], "e4m3").tolist()
    [448.0, -0.0, 0.015625]
    >>> decode([0x7E, 0x80, 0x01], "p3109_k8p3se").tolist()  # max, the NaN, the smallest subnormal
    [49152.0, nan, 7.62939453125e-06]
    >>> decode([0, 127, 254, 255], "e8m0") * [2.0**127, 1.0, 2.0**-127, 1.0]  # 2**-127, 1, 2**127, NaN
    array([ 1.,  1.,  1., nan])
    """
    fmt = get_format(fmt)
    u = _codes(bits, fmt)
    if fmt.encoding not in ENCODINGS:
        return _decode_fixed(u, fmt)
    w, t, bias = _layout(fmt)
    E = (u >> np.uint64(t)) & np.uint64((1 << w) - 1)  # [...]
    M = u & np.uint64((1 << t) - 1)
    top = (1 << w) - 1
    special = (E == top) if fmt.encoding == "ieee" else np.zeros(u.shape, dtype=bool)
    bad = (E > fmt.emax + bias) & ~special
    if not fmt.subnormals:
        bad |= (E == 0) & (M != 0)
    if bad.any():
        raise InputValueError(f"bits{_first(bad, u)} is not a code of {fmt!r}")
    Ef = np.where(special, np.uint64(1), E).astype(np.int64)  # [...], specials set below
    mag = np.where(
        E == 0,
        np.ldexp(M.astype(np.float64), 1 - bias - t),
        np.ldexp((M + np.uint64(1 << t)).astype(np.float64), Ef - bias - t),
    )
    nan = special & (M != 0)
    if fmt.encoding == "fn":
        nan = (E == fmt.emax + bias) & (M == (1 << t) - 1)
    mag = np.where(special & (M == 0), np.inf, mag)
    sign = (u >> np.uint64(w + t)) != 0
    with np.errstate(invalid="ignore"):
        out = np.where(sign, -mag, mag).astype(fmt.dtype)
    if nan.any():
        out.reshape(-1)[nan.reshape(-1)] = _nan_values(sign[nan], M[nan], t, fmt.dtype)
    return out


def _nan_values(sign: NDArray[np.bool_], M: NDArray[np.uint64], t: int, dtype: np.dtype[Any]) -> NDArray[Any]:
    """NaNs of ``dtype`` (float32 or float64) with the given signs and top payload bits."""
    width, udt = (23, np.uint32) if dtype == np.float32 else (52, np.uint64)
    nbits = 8 * dtype.itemsize
    exp = ((1 << (nbits - width - 1)) - 1) << width
    patterns = (sign.astype(np.uint64) << np.uint64(nbits - 1)) | np.uint64(exp) | (M << np.uint64(width - t))
    return patterns.astype(udt).view(dtype)


# ----------------------------------------------------------------------------- compare
@dataclass(frozen=True, slots=True)
class WorstElement:
    """One mismatching element: its index in the output (row ``i`` of ``a`` and column ``j`` of ``b`` for
    a matrix product), both values, and their ulp distance (None when exactly one of them is NaN)."""

    index: tuple[int, ...]
    actual: float
    expected: float
    ulps: int | None


@dataclass(frozen=True, slots=True)
class CompareReport:
    r"""How ``actual`` differs from ``expected``, elementwise, in the values of one format.

    The three counts ``exact + within_one_ulp + worse == size`` partition the elements: *bit-exact* (the
    same value with the same sign, or both NaN), *within one ulp* (not bit-exact, neither NaN, at most one
    step apart along the format's values: neighbours, ``+0`` against ``-0``, ``max`` against infinity), and
    *worse* (the rest, NaN against a number included). The special-value counts overlap them.

    Attributes
    ----------
    fmt : FloatFormat
        The format whose values both arrays hold; distances are counted along its values.
    shape : tuple of int
        The arrays' shape.
    size, exact, within_one_ulp, worse : int
        Element counts.
    max_ulp : int
        The largest ulp distance between two non-NaN elements (0 if none).
    nan_mismatches : int
        Elements where exactly one of the two is NaN.
    inf_mismatches : int
        Elements where an infinity meets a different value.
    signed_zero_mismatches : int
        Elements where ``+0`` meets ``-0``.
    histogram : tuple of (low, high, count)
        Counts of ulp distances in ``[low, high]`` over the non-NaN pairs: 0, 1, 2, 3-4, 5-8, ...; only
        ranges that occur.
    worst : tuple of WorstElement
        The mismatches with the largest distances (NaN mismatches first), at most ``worst`` of them.
    """

    fmt: FloatFormat
    shape: tuple[int, ...]
    size: int
    exact: int
    within_one_ulp: int
    worse: int
    max_ulp: int
    nan_mismatches: int
    inf_mismatches: int
    signed_zero_mismatches: int
    histogram: tuple[tuple[int, int, int], ...]
    worst: tuple[WorstElement, ...]

    @property
    def bit_exact(self) -> bool:
        """Whether every element is bit-exact."""
        return self.exact == self.size

    def __str__(self) -> str:
        return "\n".join(_report_lines(self))


def _fmt_name(fmt: FloatFormat) -> str:
    return fmt.name or repr(fmt)


def _share(n: int, size: int) -> str:
    return f"{100.0 * n / size:.2f}%" if size else "-"


def _report_lines(r: CompareReport) -> list[str]:
    shape = "x".join(map(str, r.shape)) or "scalar"
    lines = [f"{r.size} elements ({shape}) compared in {_fmt_name(r.fmt)}"]
    rows = [
        ("bit-exact", r.exact, _share(r.exact, r.size)),
        ("within 1 ulp", r.within_one_ulp, _share(r.within_one_ulp, r.size)),
        ("worse", r.worse, _share(r.worse, r.size)),
        ("max ulp distance", r.max_ulp, ""),
        ("NaN mismatches", r.nan_mismatches, ""),
        ("inf mismatches", r.inf_mismatches, ""),
        ("signed-zero mismatches", r.signed_zero_mismatches, ""),
    ]
    lines += [f"  {label:<24}{n:>10}  {share}".rstrip() for label, n, share in rows]
    if r.histogram:
        lines += ["ulp distance histogram", f"  {'ulps':<24}{'count':>10}"]
        for lo, hi, n in r.histogram:
            label = str(lo) if lo == hi else f"{lo}-{hi}"
            lines.append(f"  {label:<24}{n:>10}")
    if r.worst:
        lines += ["worst elements", f"  {'index':<14}{'actual':>32}{'expected':>32}{'ulps':>8}"]
        for el in r.worst:
            index = f"({', '.join(map(str, el.index))})"
            ulps = "NaN" if el.ulps is None else str(el.ulps)
            lines.append(
                f"  {index:<14}{_cell(el.actual, r.fmt):>32}{_cell(el.expected, r.fmt):>32}{ulps:>8}"
            )
    return lines


def _cell(value: float, fmt: FloatFormat) -> str:
    """``value [0x3c00]``: the value and its bit pattern in ``fmt``."""
    bits = int(encode(np.float64(value), fmt)) if fmt.has_nan or not math.isnan(value) else None
    digits = (fmt.bits + 3) // 4
    return f"{value!r} [{'?' if bits is None else f'0x{bits:0{digits}x}'}]"


def _format_values(x: ArrayLike, name: str, fmt: FloatFormat) -> NDArray[np.float64]:
    """``x`` as float64, every element a value of ``fmt`` or NaN; else an error naming ``name``."""
    v = as_exact_float64(widen_ml_dtypes(as_array(x, name)), name)
    ok = np.asarray(is_representable(v, fmt)) | np.isnan(v)
    if not ok.all():
        raise InputValueError(f"{name}{_first(~ok, v)} is not a value of {fmt!r}")
    return v


_EDGES = np.array([0, *[1 << k for k in range(64)], (1 << 64) - 1], dtype=np.uint64)


def _histogram(d: NDArray[np.uint64]) -> tuple[tuple[int, int, int], ...]:
    """(low, high, count) of the distances in buckets 0, 1, 2, 3-4, 5-8, ... that occur."""
    counts = np.bincount(np.searchsorted(_EDGES, d, side="left"), minlength=_EDGES.size)
    return tuple(
        (0 if i == 0 else int(_EDGES[i - 1]) + 1, int(_EDGES[i]), int(n)) for i, n in enumerate(counts) if n
    )


def compare(
    actual: ArrayLike, expected: ArrayLike, fmt: FloatFormat | str, *, worst: int = 10
) -> CompareReport:
    r"""Compare two arrays of values of ``fmt`` element by element, in ulps of ``fmt``.

    Parameters
    ----------
    actual, expected : array_like
        Arrays of the same shape (no broadcasting) holding values of ``fmt`` or NaN: float16/32/64 or
        ml_dtypes arrays (decode raw bit patterns with :func:`decode` first).
    fmt : FloatFormat or str
        The format both hold; ulp distances are counted along its values
        (:func:`~lampref.metrics.ulp_distance`).
    worst : int, default 10
        How many of the largest mismatches to list.

    Returns
    -------
    CompareReport
        Counts, the largest distance, the histogram and the worst elements; ``str(report)`` is a table.

    Raises
    ------
    ShapeError
        The shapes differ.
    InputValueError
        An element that is not a value of ``fmt`` (the message names the array and the index).

    Examples
    --------
    >>> from lampref.validate import compare
    >>> r = compare([1.0, 1.0009765625, 2.0, -0.0], [1.0, 1.0, 2.00390625, 0.0], "fp16")
    >>> r.exact, r.within_one_ulp, r.worse, r.max_ulp, r.signed_zero_mismatches
    (1, 2, 1, 2, 1)
    """
    fmt = get_format(fmt)
    x = _format_values(actual, "actual", fmt)
    y = _format_values(expected, "expected", fmt)
    if x.shape != y.shape:
        raise ShapeError(f"actual has shape {x.shape} but expected has shape {y.shape}; expected equal")
    worst = check_int(worst, "worst", minimum=0)
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    ok = ~(nan_x | nan_y)  # [...]
    d = np.zeros(x.shape, dtype=np.uint64)
    if ok.any():
        d[ok] = ulp_distance(x[ok], y[ok], fmt)
    same = (nan_x & nan_y) | (ok & (x == y) & (np.signbit(x) == np.signbit(y)))
    within = ok & ~same & (d <= 1)
    with np.errstate(invalid="ignore"):
        inf_mis = ok & (np.isinf(x) | np.isinf(y)) & (x != y)
    return CompareReport(
        fmt=fmt,
        shape=x.shape,
        size=x.size,
        exact=int(same.sum()),
        within_one_ulp=int(within.sum()),
        worse=int((~same & ~within).sum()),
        max_ulp=int(d.max()) if d.size else 0,
        nan_mismatches=int((nan_x ^ nan_y).sum()),
        inf_mismatches=int(inf_mis.sum()),
        signed_zero_mismatches=int((ok & (x == 0) & (y == 0) & (np.signbit(x) != np.signbit(y))).sum()),
        histogram=_histogram(d[ok]),
        worst=_worst(x, y, d, ~same, nan_x ^ nan_y, worst),
    )


def _worst(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    d: NDArray[np.uint64],
    differ: NDArray[np.bool_],
    one_nan: NDArray[np.bool_],
    k: int,
) -> tuple[WorstElement, ...]:
    """The ``k`` mismatches with the largest distances, NaN mismatches first, then in index order."""
    flat = np.flatnonzero(differ.reshape(-1))
    key_nan = one_nan.reshape(-1)[flat]
    key_d = d.reshape(-1)[flat]
    order = flat[np.lexsort((flat, np.uint64((1 << 64) - 1) - key_d, ~key_nan))][:k]
    out = []
    for i in order:
        index = tuple(int(j) for j in np.unravel_index(int(i), x.shape)) if x.ndim else ()
        ulps = None if one_nan.reshape(-1)[i] else int(d.reshape(-1)[i])
        out.append(WorstElement(index, float(x.reshape(-1)[i]), float(y.reshape(-1)[i]), ulps))
    return tuple(out)


# ----------------------------------------------------------------------------- candidate models
Addend = Literal["first", "last"]
_ADDENDS = ("first", "last")
Operands = tuple[NDArray[Any], NDArray[Any], "NDArray[Any] | None"]


def _with_addend_column(
    a: NDArray[Any], b: NDArray[Any], c: NDArray[Any], *, last: bool
) -> tuple[NDArray[Any], NDArray[Any]]:
    """A stack of N products whose j-th is ``[c[:, j], a] @ [1; b[:, j]]`` (c as one more term, exactly).

    ``[M, K], [K, N], [M, N] -> [N, M, K + 1], [N, K + 1, 1]``; with ``last`` the c term comes after the
    products instead of before them.
    """
    M, K = a.shape
    N = b.shape[1]
    cols = c.T[:, :, None].astype(np.float32)  # [N, M, 1]
    aa = np.broadcast_to(a.astype(np.float32), (N, M, K))  # [N, M, K]
    ones = np.ones((N, 1, 1), dtype=np.float32)  # [N, 1, 1]
    bb = b.T[:, :, None].astype(np.float32)  # [N, K, 1]
    if last:
        return np.concatenate([aa, cols], axis=2), np.concatenate([bb, ones], axis=1)
    return np.concatenate([cols, aa], axis=2), np.concatenate([ones, bb], axis=1)


def _unstack(d: NDArray[Any]) -> NDArray[Any]:
    """``[N, M, 1] -> [M, N]``: the stack of :func:`_with_addend_column` back to a matrix."""
    return np.ascontiguousarray(d[:, :, 0].T)


def _describe(acc: Accumulator) -> str:
    """A short label of an accumulator: format, order or staging, blocks, products, mode."""
    f = _fmt_name(acc.fmt)
    if acc.staging == "fp32" and acc.block > 1:
        label = f"fp32 arithmetic, rounded to {f} after every {acc.block} products"
    elif acc.staging == "fp32":
        label = f"fp32 arithmetic {'with' if acc.fma else 'without'} fma, rounded to {f} after every step"
    else:
        label = f"{f} {acc.order}"
        if acc.block > 1:
            label += f", blocks of {acc.block} summed exactly to {_fmt_name(acc.block_fmt)}"
        if isinstance(acc.products, FloatFormat):
            label += f", products rounded to {_fmt_name(acc.products)}"
    return label if acc.mode == "nearest_even" else f"{label}, {acc.mode}"


@dataclass(frozen=True, slots=True)
class AccumulationModel:
    r"""A candidate model of a matrix product: :func:`~lampref.matmul` under an accumulator, the addend
    ``c`` added first or last, and optionally one more rounding of the result.

    Parameters
    ----------
    acc : Accumulator
        How the products are summed (deterministic modes only).
    out : FloatFormat or str, optional
        Round the result once more, to nearest even, into this format: a kernel that accumulates in a
        wider format than it stores (fp32 accumulators, an fp16 output).
    addend : {"last", "first"}, default "last"
        Where ``c`` enters when given: ``"last"`` adds it to the accumulated product and rounds in the
        accumulator's arithmetic (an epilogue, :func:`~lampref.linear`); ``"first"`` makes it the
        accumulator's initial value (strict sequential or reverse accumulation only).
    name : str, optional
        The label in reports; by default one is built from the fields.

    Notes
    -----
    With ``c`` given, ``"last"`` computes $\mathrm{fl}_{\mathrm{out}}(\mathrm{fl}(s + c_{ij}))$ and
    ``"first"`` $s_0 = c_{ij}$ followed by the K steps of the accumulator, $s$ being the accumulated
    product; without ``c`` both are $\mathrm{fl}_{\mathrm{out}}(s)$.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import Accumulator
    >>> from lampref.validate import AccumulationModel
    >>> m = AccumulationModel(Accumulator("fp32"), out="fp16")
    >>> m.name
    'fp32 sequential, rounded once to fp16'
    >>> m(np.float32([[1, 2**-11]]), np.float32([[1], [1]]))
    array([[1.001]], dtype=float32)
    """

    acc: Accumulator
    out: FloatFormat | None = None
    addend: Addend = "last"
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.acc, Accumulator):
            raise ModeError(f"acc={self.acc!r} is not valid; expected an Accumulator")
        stochastic = {self.acc.mode, self.acc.block_mode, self.acc.products_mode} & set(STOCHASTIC_MODES)
        if stochastic:
            raise ModeError(
                f"acc uses {sorted(stochastic)[0]!r} rounding; a model to compare with must be deterministic"
            )
        check_choice(self.addend, "addend", _ADDENDS)
        if self.addend == "first" and (self.acc.block > 1 or self.acc.order == "pairwise"):
            raise ModeError(
                "addend='first' needs a strict sequential or reverse accumulator (block=1, order "
                f"'sequential' or 'reverse'); got {self.acc!r}"
            )
        if self.out is not None:
            object.__setattr__(self, "out", get_format(self.out))
        if self.name is None:
            label = _describe(self.acc)
            if self.out is not None:
                label += f", rounded once to {_fmt_name(self.out)}"
            object.__setattr__(self, "name", label + (", c first" if self.addend == "first" else ""))

    def __call__(self, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None) -> NDArray[Any]:
        """``a @ b`` (plus ``c``) under this model: ``[M, K], [K, N], [M, N] -> [M, N]``."""
        if c is None:
            d = matmul(a, b, self.acc)
        elif self.addend == "last":
            d = linear(a, b, c, self.acc)
        else:
            a2, b2, c2 = _operands(a, b, c)
            assert c2 is not None
            aa, bb = _with_addend_column(a2, b2, c2, last=self.acc.order == "reverse")
            d = _unstack(matmul(aa, bb, self.acc))
        return np.asarray(d if self.out is None else round_to(d, self.out))


@dataclass(frozen=True, slots=True)
class ExactlyRounded:
    r"""The candidate "the exact result, rounded once": $\mathrm{fl}(\sum_k a_{ik} b_{kj} + c_{ij})$,
    correctly rounded (to nearest even) into ``fmt`` — what an exact dot-product unit, or a long accumulator,
    delivers.

    >>> import numpy as np
    >>> from lampref.validate import ExactlyRounded
    >>> ExactlyRounded("fp16")(np.float32([[1, 2**-11, 2**-11]]), np.ones((3, 1), np.float32))
    array([[1.001]], dtype=float32)
    """

    fmt: FloatFormat
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", get_format(self.fmt))
        if self.name is None:
            object.__setattr__(self, "name", f"exact, rounded once to {_fmt_name(self.fmt)}")

    def __call__(self, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None) -> NDArray[Any]:
        """The correctly rounded ``a @ b`` (plus ``c``): ``[M, K], [K, N], [M, N] -> [M, N]``."""
        if c is None:
            a2, b2, _ = _operands(a, b, None)
            return np.asarray(matmul(a2, b2, self._whole(a2.shape[1])))
        a2, b2, c2 = _operands(a, b, c)
        assert c2 is not None
        aa, bb = _with_addend_column(a2, b2, c2, last=False)
        return _unstack(matmul(aa, bb, self._whole(aa.shape[2])))

    def _whole(self, n: int) -> Accumulator:
        """One block holding all ``n`` terms, summed exactly and rounded once to ``fmt``."""
        return Accumulator(self.fmt, block=max(n, 1), block_fmt=self.fmt)


@dataclass(frozen=True, slots=True)
class TensorCore:
    """The candidate "this GPU's matrix unit" (tensor cores): :func:`lampref.hardware.gemm` with one preset,
    labelled with every GPU that shares its model.

    >>> from lampref.validate import TensorCore
    >>> TensorCore("H100", "fp16", "fp32").name
    'matrix unit of H100, H200, B200, RTXPRO6000 (fp16 -> fp32)'
    """

    gpu: str
    in_format: str
    out_format: str
    name: str | None = None

    def __post_init__(self) -> None:
        model = hardware.preset(self.gpu, self.in_format, self.out_format)
        if self.name is None:
            same = [m.gpu for m in hardware.presets() if _same_model(m, model)]
            label = f"matrix unit of {', '.join(same)} ({model.in_format} -> {model.out_format})"
            object.__setattr__(self, "name", label)

    def __call__(self, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None) -> NDArray[Any]:
        """``a @ b + c`` on this GPU's matrix unit: ``[M, K], [K, N], [M, N] -> [M, N]``."""
        return hardware.gemm(a, b, c, gpu=self.gpu, in_format=self.in_format, out_format=self.out_format)


def _same_model(m: Any, model: Any) -> bool:
    """Whether two presets differ only in their GPU's name."""
    return bool(m == model.__class__(**{**_fields_of(model), "gpu": m.gpu}))


def _fields_of(model: Any) -> dict[str, Any]:
    return {f: getattr(model, f) for f in model.__dataclass_fields__}


def tensor_core_candidates(fmt: FloatFormat | str, in_formats: Sequence[str]) -> list[TensorCore]:
    """One :class:`TensorCore` per distinct preset with results in ``fmt`` and inputs in one of
    ``in_formats`` (names of :data:`lampref.hardware.IN_FORMATS`); none when ``fmt`` is no output format
    of a matrix unit.

    >>> from lampref.validate import tensor_core_candidates
    >>> [m.name for m in tensor_core_candidates("fp16", ["fp16"])][:2]
    ['matrix unit of V100 (fp16 -> fp16)', 'matrix unit of A100, A2, A30, Ada, L40S (fp16 -> fp16)']
    """
    fmt = get_format(fmt)
    out: list[TensorCore] = []
    seen: list[Any] = []
    for m in hardware.presets():
        if get_format(m.out_format) != fmt or m.in_format not in in_formats:
            continue
        if any(_same_model(m, s) for s in seen):
            continue
        seen.append(m)
        out.append(TensorCore(m.gpu, m.in_format, m.out_format))
    return out


def _input_formats(a: NDArray[Any], b: NDArray[Any]) -> list[str]:
    """The matrix units' input formats that hold every value of both operands."""
    return [
        f
        for f in hardware.IN_FORMATS
        if bool(np.all(is_representable(a, f))) and bool(np.all(is_representable(b, f)))
    ]


def default_candidates(fmt: FloatFormat | str, *, addend: bool = False) -> list[Any]:
    """The candidate models :func:`explain` tries for results in ``fmt``.

    In ``fmt`` itself: strict accumulation left to right, right to left and pairwise; blocks of 16 and
    32 products summed exactly to fp32; for formats narrower than fp32, products rounded to ``fmt`` (a loop
    without fused multiply-add in ``fmt``'s arithmetic), and fp32 arithmetic rounded to ``fmt``
    after every step with and without a fused multiply-add (the LAMP authors' kernel,
    :meth:`~lampref.Accumulator.authors`, for ``fp32_mantissa(m)``) and after every 32 products. For formats
    narrower than fp32 also fp32 accumulation (fused, unfused, pairwise, in 32-blocks) rounded once to
    ``fmt`` at the end; for fp32, the unfused loop (products rounded to fp32). Last, the exact result
    rounded once. With ``addend=True`` (a ``c`` is given) every strict sequential or reverse model appears
    twice: ``c`` added last and ``c`` first.

    Returns
    -------
    list
        :class:`AccumulationModel` and :class:`ExactlyRounded` objects; extend it with your own.

    Examples
    --------
    >>> from lampref.validate import default_candidates
    >>> [m.name for m in default_candidates("fp16")][:3]
    ['fp16 sequential', 'fp16 reverse', 'fp16 pairwise']
    """
    fmt = get_format(fmt)
    accs = [Accumulator(fmt, order=order) for order in ("sequential", "reverse", "pairwise")]
    accs += [Accumulator(fmt, block=16), Accumulator(fmt, block=32)]
    wide: list[Accumulator] = []
    if fmt.fits_float32 and fmt != fp32:
        accs.append(Accumulator(fmt, products=fmt))
        accs += [Accumulator(fmt, staging="fp32", fma=fma) for fma in (True, False)]
        accs.append(Accumulator(fmt, block=32, staging="fp32"))
        wide = [
            Accumulator(fp32),
            Accumulator(fp32, products=fp32),
            Accumulator(fp32, order="pairwise"),
            Accumulator(fp32, block=32),
        ]
    elif fmt == fp32:
        accs.append(Accumulator(fp32, products=fp32))
    models = [AccumulationModel(acc) for acc in accs] + [AccumulationModel(w, out=fmt) for w in wide]
    if addend:
        models += [
            AccumulationModel(m.acc, out=m.out, addend="first")
            for m in models
            if m.acc.block == 1 and m.acc.order != "pairwise"
        ]
    return [*models, ExactlyRounded(fmt)]


# ----------------------------------------------------------------------------- explain
def _operands(a: ArrayLike, b: ArrayLike, c: ArrayLike | None) -> Operands:
    """2-D operands ``a [M, K]``, ``b [K, N]`` and ``c`` broadcast to ``[M, N]`` (or None)."""
    a2, b2 = as_exact_array(a, "a"), as_exact_array(b, "b")
    if a2.ndim != 2 or b2.ndim != 2 or a2.shape[1] != b2.shape[0]:
        raise ShapeError(
            f"a has shape {a2.shape} and b has shape {b2.shape}; expected one matrix product, a (M, K) and "
            "b (K, N)"
        )
    if c is None:
        return a2, b2, None
    c2 = as_exact_array(c, "c")
    out_shape = (a2.shape[0], b2.shape[1])
    try:
        c2 = np.broadcast_to(c2, out_shape)
    except ValueError:
        raise ShapeError(f"c has shape {c2.shape}; expected a shape that broadcasts to {out_shape}") from None
    return a2, b2, c2


def _infer_format(actual: NDArray[Any]) -> FloatFormat:
    """The format of an array's dtype: float16/32/64 or an ml_dtypes type lampref has a preset for."""
    try:
        return get_format(actual.dtype.name)
    except FormatError:
        raise FormatError(
            f"actual has dtype {actual.dtype}, which names no lampref format; pass fmt= (the format the "
            "results are in)"
        ) from None


@dataclass(frozen=True, slots=True)
class CandidateResult:
    """One candidate's verdict: its name, and the comparison of ``actual`` with its result (None, with
    ``error`` set, when the candidate refused the inputs)."""

    name: str
    report: CompareReport | None
    error: str | None = None

    @property
    def reproduces(self) -> bool:
        """Whether the candidate reproduces ``actual`` bit for bit."""
        return self.report is not None and self.report.bit_exact


@dataclass(frozen=True, slots=True)
class Explanation:
    """What :func:`explain` found: every candidate's comparison with ``actual``; ``str()`` is a table."""

    fmt: FloatFormat
    shape: tuple[int, int, int]
    results: tuple[CandidateResult, ...]

    @property
    def matches(self) -> tuple[str, ...]:
        """The names of the candidates that reproduce ``actual`` bit for bit, in the order tried."""
        return tuple(r.name for r in self.results if r.reproduces)

    @property
    def closest(self) -> CandidateResult | None:
        """The candidate with the fewest mismatches (then the smallest largest distance)."""
        ran = [r for r in self.results if r.report is not None]
        if not ran:
            return None
        return min(ran, key=lambda r: (r.report.size - r.report.exact, r.report.max_ulp))  # type: ignore[union-attr]

    def __str__(self) -> str:
        M, K, N = self.shape
        width = max([len(r.name) for r in self.results] + [9])
        lines = [
            f"which models reproduce actual ({M}x{N} outputs, K={K}, compared in {_fmt_name(self.fmt)})",
            f"  {'candidate':<{width}}  {'bit-exact':>9}  {'<=1 ulp':>9}  {'worse':>9}  {'max ulp':>8}",
        ]
        for r in self.results:
            if r.report is None:
                lines.append(f"  {r.name:<{width}}  not applicable: {r.error}")
                continue
            rep = r.report
            mark = "  <- reproduces" if r.reproduces else ""
            lines.append(
                f"  {r.name:<{width}}  {_share(rep.exact, rep.size):>9}"
                f"  {_share(rep.within_one_ulp, rep.size):>9}  {_share(rep.worse, rep.size):>9}"
                f"  {rep.max_ulp:>8}{mark}"
            )
        lines.append(self._verdict())
        return "\n".join(lines)

    def _verdict(self) -> str:
        if self.matches:
            return "reproduced bit for bit by: " + "; ".join(self.matches)
        best = self.closest
        if best is None or best.report is None:
            return "no candidate could run on these inputs"
        n = best.report.size - best.report.exact
        return f"no candidate reproduces actual; closest: {best.name} ({n} elements differ)"


def _label(candidate: Any) -> str:
    name = getattr(candidate, "name", None) or getattr(candidate, "__name__", None)
    return str(name) if name else repr(candidate)


def explain(
    a: ArrayLike,
    b: ArrayLike,
    actual: ArrayLike,
    candidates: Sequence[Any] | None = None,
    c: ArrayLike | None = None,
    *,
    fmt: FloatFormat | str | None = None,
) -> Explanation:
    r"""Which accumulation models reproduce a matrix product ``actual = a @ b (+ c)`` bit for bit?

    Each candidate computes the product from the same inputs, and ``actual`` is compared with its result
    (:func:`compare`). A kernel that matches exactly one model is explained; one that matches several
    agrees with each on these inputs (try larger K or inputs with more cancellation to tell them apart);
    one that matches none is closest to the model with the fewest mismatches.

    Parameters
    ----------
    a, b : array_like
        The operands, ``(M, K)`` and ``(K, N)``, holding float32 values (any float dtype, ml_dtypes
        included).
    actual : array_like
        The implementation's result, ``(M, N)``, holding values of ``fmt`` (decode raw bits first).
    candidates : sequence, optional
        The models to try: :class:`~lampref.Accumulator` objects (run by :func:`~lampref.matmul`),
        :class:`AccumulationModel` / :class:`ExactlyRounded` objects, or any callable ``f(a, b, c)``
        returning the ``(M, N)`` product (``c`` is None when not given), labelled by its ``name``
        attribute or ``__name__``. Default: :func:`default_candidates` for ``fmt``. A candidate that raises a
        lampref error on these inputs is reported as not applicable.
    c : array_like, optional
        An addend broadcast to ``(M, N)``: the product is ``a @ b + c``.
    fmt : FloatFormat or str, optional
        The format of ``actual``; by default read from its dtype (float16, float32, float64, ml_dtypes
        bfloat16 and float8/6/4 types).

    Returns
    -------
    Explanation
        ``matches`` (the names that reproduce ``actual``), ``closest``, every candidate's
        :class:`CompareReport`; ``str()`` prints a table.

    Notes
    -----
    The default candidates are :func:`default_candidates` for ``fmt`` followed by
    :func:`tensor_core_candidates`: every distinct GPU matrix-unit preset (:mod:`lampref.hardware`) with
    results in ``fmt`` whose input format holds ``a`` and ``b``.

    Raises
    ------
    ShapeError
        Operands that are not one matrix product, or ``actual`` / ``c`` of the wrong shape.
    FormatError
        ``fmt`` not given and not implied by ``actual``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import Accumulator, matmul
    >>> from lampref.validate import explain
    >>> a = np.float32([[1, 2**-11, 2**-11]]); b = np.ones((3, 1), np.float32)
    >>> kernel = matmul(a, b, Accumulator("fp16", order="reverse")).astype(np.float16)
    >>> e = explain(a, b, kernel)
    >>> "fp16 reverse" in e.matches, "fp16 sequential" in e.matches
    (True, False)
    """
    a2, b2, c2 = _operands(a, b, c)
    raw = as_array(actual, "actual")
    out_fmt = _infer_format(raw) if fmt is None else get_format(fmt)
    shape = (a2.shape[0], b2.shape[1])
    if raw.shape != shape:
        raise ShapeError(f"actual has shape {raw.shape}; expected {shape}, the shape of a @ b")
    values = _format_values(raw, "actual", out_fmt)
    if candidates is None:
        candidates = default_candidates(out_fmt, addend=c2 is not None)
        candidates += tensor_core_candidates(out_fmt, _input_formats(a2, b2))
    results = [_try(cand, a2, b2, c2, values, out_fmt) for cand in candidates]
    return Explanation(out_fmt, (shape[0], a2.shape[1], shape[1]), tuple(results))


def _try(
    cand: Any,
    a: NDArray[Any],
    b: NDArray[Any],
    c: NDArray[Any] | None,
    actual: NDArray[Any],
    fmt: FloatFormat,
) -> CandidateResult:
    """Run one candidate and compare ``actual`` with its result."""
    model: Callable[..., Any] = AccumulationModel(cand) if isinstance(cand, Accumulator) else cand
    if not callable(model):
        raise ModeError(f"candidate {cand!r} is not valid; expected an Accumulator or a callable f(a, b, c)")
    name = _label(model)
    try:
        result = model(a, b, c)
        return CandidateResult(name, compare(actual, result, fmt))
    except LamprefError as err:
        return CandidateResult(name, None, str(err))


# ----------------------------------------------------------------------------- accumulator specs
_SPEC_FIELDS = tuple(f.name for f in dataclass_fields(Accumulator) if f.name != "fmt")  # mode, ..., fma


def _spec_value(key: str, text: str) -> Any:
    if key == "block":
        if not text.isascii() or not text.isdigit():
            raise ModeError(f"block={text!r} is not valid; expected an integer >= 1")
        return int(text)
    if key == "fma":
        if text.lower() not in ("true", "false"):
            raise ModeError(f"fma={text!r} is not valid; expected true or false")
        return text.lower() == "true"
    return text


def parse_accumulator(spec: str) -> Accumulator:
    """An :class:`~lampref.Accumulator` from a text spec ``FORMAT[,FIELD=VALUE...]`` (the command line's).

    ``FORMAT`` is a format name; the fields are those of the Accumulator: ``mode``, ``block``,
    ``block_fmt``, ``block_mode``, ``order``, ``products``, ``products_mode``, ``staging``, ``fma``
    (``true``/``false``). :func:`accumulator_spec` writes the spec of an Accumulator.

    Raises
    ------
    ModeError, FormatError
        An empty spec, an item that is not ``FIELD=VALUE``, an unknown or repeated field, a bad value.

    Examples
    --------
    >>> from lampref.validate import parse_accumulator
    >>> parse_accumulator("fp16,order=pairwise")
    Accumulator(fmt=FloatFormat(fp16: p=11, emax=15, emin=-14), order='pairwise')
    >>> parse_accumulator("fp32_m10,staging=fp32,fma=true") == __import__("lampref").Accumulator.authors(10)
    True
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModeError(f"accumulator spec {spec!r} is not valid; expected FORMAT[,FIELD=VALUE...]")
    head, *items = (part.strip() for part in spec.split(","))
    fields: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _SPEC_FIELDS or key in fields:
            what = "repeats a field" if key in fields else "is not FIELD=VALUE with a known field"
            raise ModeError(f"accumulator spec {spec!r}: {item!r} {what}; fields: {', '.join(_SPEC_FIELDS)}")
        fields[key] = _spec_value(key, value.strip())
    return Accumulator(get_format(head), **fields)


def accumulator_spec(acc: Accumulator) -> str | None:
    """The text spec :func:`parse_accumulator` reads back as ``acc``, or None when one of its formats has no
    name :func:`~lampref.get_format` knows.

    >>> from lampref import Accumulator
    >>> from lampref.validate import accumulator_spec
    >>> accumulator_spec(Accumulator("fp16", block=32))
    'fp16,block=32'
    """
    defaults = Accumulator.__dataclass_fields__
    parts = [acc.fmt.name]
    for key in _SPEC_FIELDS:
        value = getattr(acc, key)
        if value == defaults[key].default:
            continue
        text = (
            value.name
            if isinstance(value, FloatFormat)
            else str(value).lower()
            if key == "fma"
            else str(value)
        )
        parts.append(f"{key}={text}")
    spec = ",".join(p or "" for p in parts)
    try:
        return spec if parts[0] and parse_accumulator(spec) == acc else None
    except (LamprefError, TypeError):
        return None


# ----------------------------------------------------------------------------- golden vectors
GOLDEN_SCHEMA = 1
_MANIFEST = "manifest.json"


def _format_fields(fmt: FloatFormat) -> dict[str, Any]:
    """A format's parameters as JSON: every field that defines its values and its encoding."""
    return {
        "name": fmt.name,
        "p": fmt.p,
        "emax": fmt.emax,
        "emin": fmt.emin,
        "subnormals": fmt.subnormals,
        "encoding": fmt.encoding,
        "saturate": fmt.saturate,
        "signed": fmt.signed,
        "bits": fmt.bits,
        "exponent_bits": fmt.exponent_bits,
        "exponent_bias": _layout(fmt)[2],
    }


def _format_from_fields(fields: Any, where: str) -> FloatFormat:
    try:
        return FloatFormat(
            p=fields["p"],
            emax=fields["emax"],
            emin=fields["emin"],
            subnormals=fields["subnormals"],
            encoding=fields["encoding"],
            saturate=fields["saturate"],
            name=fields.get("name"),
            signed=fields.get("signed", True),
        )
    except (KeyError, TypeError, LamprefError) as err:
        raise InputValueError(f"{where}: the format is malformed ({err!r})") from None


def _accumulator_fields(acc: Accumulator) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("fmt", *_SPEC_FIELDS):
        value = getattr(acc, key)
        fields[key] = _format_fields(value) if isinstance(value, FloatFormat) else value
    return fields


def _golden_inputs(
    shape: tuple[int, int, int], fmt: FloatFormat, seed: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Random values of ``fmt``: normal samples times 2**j, j uniform in -3..3, rounded to nearest even."""
    M, K, N = shape
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)) * np.ldexp(1.0, rng.integers(-3, 4, size=(M, K)))  # [M, K]
    b = rng.standard_normal((K, N)) * np.ldexp(1.0, rng.integers(-3, 4, size=(K, N)))  # [K, N]
    a, b = np.clip(a, -fmt.max, fmt.max), np.clip(b, -fmt.max, fmt.max)
    return np.asarray(round_to(a, fmt)), np.asarray(round_to(b, fmt))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_golden(
    folder: str | Path,
    acc: Accumulator,
    *,
    in_format: FloatFormat | str = "fp16",
    out_format: FloatFormat | str | None = None,
    shape: tuple[int, int, int] = (16, 128, 16),
    seed: int = 0,
) -> Path:
    r"""Write conformance vectors for a matrix product under ``acc``: inputs, expected output, manifest.

    The folder receives ``a.npy`` ``(M, K)`` and ``b.npy`` ``(K, N)``, random values of ``in_format``, and
    ``expected.npy`` ``(M, N)``, the product under ``acc`` (rounded once more to ``out_format`` when
    given), all three as bit patterns (:func:`encode`: uint16 for fp16 and bf16, uint8 for 8-bit formats),
    and ``manifest.json``, which states the semantics: both formats field by field, every field of the
    accumulator, the shapes, the seed, the files' sha256, lampref's and NumPy's versions. Existing files of
    these names are replaced. :func:`check_golden` (``lampref check``) compares an implementation's output
    with ``expected.npy``.

    Parameters
    ----------
    folder : str or Path
        Output folder, created if needed.
    acc : Accumulator
        The accumulation model (deterministic rounding modes only).
    in_format : FloatFormat or str, default "fp16"
        The format of the inputs; it must fit in float32.
    out_format : FloatFormat or str, optional
        Round the accumulated result once more into this format (default: none, the output is in
        ``acc.fmt``).
    shape : (M, K, N), default (16, 128, 16)
    seed : int, default 0
        Seed of the inputs: ``numpy.random.default_rng(seed)`` draws normal samples, scales each by
        $2^j$ with $j$ uniform in $\{-3, \dots, 3\}$, and rounds them to ``in_format``.

    Returns
    -------
    Path
        The manifest's path.

    Raises
    ------
    FormatError
        ``in_format`` does not fit in float32.
    ModeError
        A stochastic accumulator.
    InputValueError
        A shape that is not three positive integers, a negative seed, or a folder that is a file.

    Examples
    --------
    >>> import tempfile
    >>> from lampref import Accumulator
    >>> from lampref.validate import write_golden, check_golden
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_golden(folder, Accumulator("fp32"), out_format="fp16", shape=(4, 64, 4))
    >>> check_golden(folder, f"{folder}/expected.npy").bit_exact
    True
    """
    in_fmt = get_format(in_format)
    if not in_fmt.fits_float32:
        raise FormatError(
            f"in_format={in_fmt!r} does not fit in float32; golden inputs must be float32 values"
        )
    model = AccumulationModel(acc, out=None if out_format is None else get_format(out_format))
    out_fmt = model.out or acc.fmt
    if not (isinstance(shape, (tuple, list)) and len(shape) == 3):
        raise InputValueError(f"shape={shape!r} is not valid; expected (M, K, N), three integers >= 1")
    M, K, N = (check_int(n, "shape", minimum=1) for n in shape)
    seed = check_int(seed, "seed", minimum=0)
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InputValueError(f"the golden folder {out} is a file; expected a folder (created if needed)")
    out.mkdir(parents=True, exist_ok=True)
    a, b = _golden_inputs((M, K, N), in_fmt, seed)
    expected = model(a, b)  # [M, N]
    arrays = {"a": (a, in_fmt), "b": (b, in_fmt), "expected": (expected, out_fmt)}
    files: dict[str, Any] = {}
    for key, (values, fmt) in arrays.items():
        path = out / f"{key}.npy"
        bits = encode(values, fmt)
        np.save(path, bits, allow_pickle=False)
        files[key] = {
            "path": path.name,
            "dtype": bits.dtype.name,
            "shape": list(bits.shape),
            "format": fmt.name or repr(fmt),
            "sha256": _sha256(path),
        }
    manifest = _manifest(model, in_fmt, out_fmt, (M, K, N), seed, files)
    path = out / _MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def _manifest(
    model: AccumulationModel,
    in_fmt: FloatFormat,
    out_fmt: FloatFormat,
    shape: tuple[int, int, int],
    seed: int,
    files: dict[str, Any],
) -> dict[str, Any]:
    from . import __version__

    M, K, N = shape
    return {
        "lampref_golden": GOLDEN_SCHEMA,
        "semantics": (
            f"expected[i, j] = sum over k of a[i, k] * b[k, j], k = 0..{K - 1}, accumulated as: {model.name} "
            "(lampref.accumulate states the exact model; each array holds bit patterns of its format)"
        ),
        "encoding": (
            "each element is an unsigned integer whose low `bits` bits are sign, exponent field (biased by "
            "exponent_bias = 1 - emin) and stored mantissa (p - 1 bits); see lampref.validate.decode"
        ),
        "input_format": _format_fields(in_fmt),
        "accumulator": _accumulator_fields(model.acc),
        "accumulator_spec": accumulator_spec(model.acc),
        "output_format": _format_fields(out_fmt),
        "final_rounding": None if model.out is None else "nearest_even",
        "shapes": {"a": [M, K], "b": [K, N], "expected": [M, N]},
        "seed": seed,
        "files": files,
        "versions": {"lampref": __version__, "numpy": np.__version__},
    }


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / _MANIFEST
    if not folder.is_dir():
        raise GoldenError(
            f"the golden folder {folder} does not exist; expected a folder `lampref golden` wrote"
        )
    if not path.is_file():
        raise GoldenError(f"{path} does not exist; expected the manifest `lampref golden` writes")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeError) as err:
        raise GoldenError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("lampref_golden") != GOLDEN_SCHEMA:
        raise GoldenError(
            f"{path} is not a golden-vector manifest of schema {GOLDEN_SCHEMA} (its 'lampref_golden' field)"
        )
    return manifest


def _load_npy(path: Path, error: type[InputValueError] = InputValueError) -> NDArray[Any]:
    """The array of a .npy file (never unpickled), or ``error`` naming the file."""
    if not path.is_file():
        raise error(f"{path} does not exist; expected a .npy array")
    try:
        arr: NDArray[Any] = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise error(f"{path} is not a readable .npy array ({err})") from None
    if not isinstance(arr, np.ndarray):
        raise error(f"{path} is not a .npy array")
    return arr


def _expected(folder: Path, manifest: dict[str, Any]) -> tuple[NDArray[Any], FloatFormat]:
    """The expected values of a golden folder, after checking the file against the manifest."""
    where = folder / _MANIFEST
    try:
        entry = manifest["files"]["expected"]
        path = folder / entry["path"]
        digest = entry["sha256"]
    except (KeyError, TypeError):
        raise GoldenError(f"{where} has no files.expected entry (path, sha256)") from None
    fmt = _format_from_fields(manifest.get("output_format"), f"{where}, output_format")
    bits = _load_npy(path, GoldenError)
    if _sha256(path) != digest:
        raise GoldenError(f"{path} does not match the sha256 in {where}; regenerate the golden vectors")
    return decode(bits, fmt), fmt


def _actual_values(actual: str | Path | ArrayLike, fmt: FloatFormat, shape: tuple[int, ...]) -> NDArray[Any]:
    """An implementation's output as values of ``fmt``: a .npy path or an array, of bit patterns (the
    unsigned dtype of ``fmt``) or of values (float16/32/64, ml_dtypes)."""
    name = "actual"
    if isinstance(actual, (str, Path)):
        name = str(actual)
        arr = _load_npy(Path(actual))
    else:
        arr = as_array(actual, "actual")
    udt = bits_dtype(fmt)
    if arr.shape != shape:
        raise ShapeError(f"{name} has shape {arr.shape}; expected {shape}, the shape of expected.npy")
    if arr.dtype == udt:
        try:
            return decode(arr, fmt)
        except LamprefError as err:
            raise InputValueError(f"{name}: {err}") from None
    floats = widen_ml_dtypes(arr)
    if floats.dtype.kind != "f" or floats.dtype.itemsize > 8:
        raise InputTypeError(
            f"{name} has dtype {arr.dtype}; expected {udt} bit patterns of {_fmt_name(fmt)}, or its values "
            "as float16, float32 or float64"
        )
    return _format_values(floats, name, fmt)


def check_golden(folder: str | Path, actual: str | Path | ArrayLike, *, worst: int = 10) -> CompareReport:
    """Compare an implementation's output with the expected output of a golden folder.

    Parameters
    ----------
    folder : str or Path
        A folder :func:`write_golden` (``lampref golden``) wrote.
    actual : str, Path or array_like
        The implementation's output for ``a.npy`` and ``b.npy``: a ``.npy`` file or an array, of shape
        ``(M, N)``, holding bit patterns of the output format (its unsigned dtype, as
        :func:`bits_dtype` says: uint16 for fp16 and bf16) or values (float16, float32, float64 or
        ml_dtypes arrays) of that format.
    worst : int, default 10
        How many of the largest mismatches the report lists.

    Returns
    -------
    CompareReport
        ``report.bit_exact`` is the verdict; ``str(report)`` the table.

    Raises
    ------
    GoldenError
        A missing folder, manifest or file, a manifest that is not one, an ``expected.npy`` that no longer
        matches its sha256 (a subclass of InputValueError).
    InputValueError
        Values that are not values of the output format.
    ShapeError, InputTypeError
        ``actual`` of the wrong shape or dtype (the message names the file).
    """
    where = Path(folder)
    manifest = _read_manifest(where)
    expected, fmt = _expected(where, manifest)
    values = _actual_values(actual, fmt, expected.shape)
    return compare(values, expected, fmt, worst=worst)
