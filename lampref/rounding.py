r"""Correct rounding of NumPy arrays into any :class:`~lampref.FloatFormat`, in every rounding mode.

The result of :func:`round_to` is the value of the target format that the rounding mode picks for the
**exact** value of each input element: float16, float32, float64 and integer inputs are all exact binary
numbers, and they are rounded once, directly, never through an intermediate format.

How it works
------------
Inputs are processed as the bit patterns of a container format (float32 when both the input and the target
fit in it, float64 otherwise). For a positive float the pattern is monotone in the value, and rounding the
significand to a multiple of $2^d$ pattern units is an integer operation: add an increment that
depends on the mode, then clear the low $d$ bits; a carry out of the significand moves to the next
binade, and out of the largest binade to infinity, exactly as the arithmetic requires. Results below half
the smallest step of the target (where the step does not fit in the significand field) are settled by a
comparison with the half-way point. Overflow and the special values are applied last, following IEEE 754
and the OCP 8-bit and MX specifications. The work is done in cache-sized chunks.

Rounding modes
--------------
``"nearest_even"``
    Round to nearest, ties to the value with an even last significand bit (IEEE default; zero is even).
``"nearest_away"``
    Round to nearest, ties away from zero.
``"toward_zero"``, ``"toward_pos"``, ``"toward_neg"``
    Truncation, rounding up (toward $+\infty$) and down (toward $-\infty$).
``"odd"``
    Round to odd: truncate, and if the input was not representable set the last significand bit. Rounding
    to odd at $p + 2$ or more bits and then to nearest at $p$ bits is a correct rounding.
``"stochastic"``
    Round up (in magnitude) with probability equal to the fraction of the gap between the two neighbours,
    so that $E[\mathrm{fl}(x)] = x$.
``"stochastic_equal"``
    Either neighbour with probability 1/2 (a representable input is returned unchanged).

Overflow follows IEEE 754: to nearest, values at or beyond $x_{\max} + \mathrm{ulp}/2$ become
infinity; truncating directions (toward zero, and toward $\mp\infty$ for positive/negative values)
and round to odd give $\pm x_{\max}$; stochastic rounding overflows when it picks the neighbour above
$x_{\max}$. A format without infinity gives NaN instead (OCP non-saturating mode), and a saturating
format gives $\pm x_{\max}$ for every overflow and for infinite inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_array, check_rng, is_int, widen_ml_dtypes
from .errors import FormatError, InputTypeError, InputValueError, ModeError, expected_one_of
from .formats import FloatFormat, get_format

__all__ = [
    "DETERMINISTIC_MODES",
    "MODES",
    "STOCHASTIC_MODES",
    "is_representable",
    "next_down",
    "next_up",
    "round_to",
    "ulp",
]

DETERMINISTIC_MODES: tuple[str, ...] = (
    "nearest_even",
    "nearest_away",
    "toward_zero",
    "toward_pos",
    "toward_neg",
    "odd",
)
STOCHASTIC_MODES: tuple[str, ...] = ("stochastic", "stochastic_equal")
MODES: tuple[str, ...] = DETERMINISTIC_MODES + STOCHASTIC_MODES

RngLike = np.random.Generator | int | np.integer[Any] | None

_CHUNK = 1 << 15  # elements per chunk: the temporaries stay in the L2 cache
_INT_LIMIT = 1 << 53


class _Container:
    """The IEEE binary format whose bit patterns the kernel operates on."""

    __slots__ = ("abs_mask", "bias", "dtype", "inf", "mb", "udtype", "width")

    def __init__(self, dtype: type[np.floating[Any]], udtype: type[np.unsignedinteger[Any]], mb: int) -> None:
        self.dtype = np.dtype(dtype)
        self.udtype = np.dtype(udtype)
        self.width = 8 * self.dtype.itemsize
        self.mb = mb
        self.bias = (1 << (self.width - mb - 2)) - 1
        self.abs_mask = udtype((1 << (self.width - 1)) - 1)
        self.inf = udtype(((1 << (self.width - mb - 1)) - 1) << mb)

    def pattern(self, value: float) -> np.unsignedinteger[Any]:
        """Bit pattern of a non-negative float value of this container."""
        arr: NDArray[Any] = np.array(value, dtype=self.dtype).view(self.udtype)
        return self.udtype.type(arr.item())  # type: ignore[no-any-return]


_F32 = _Container(np.float32, np.uint32, 23)
_F64 = _Container(np.float64, np.uint64, 52)


# ----------------------------------------------------------------------- arguments
def check_mode(mode: str, name: str = "mode") -> str:
    """Validate a rounding-mode name (the argument called ``name``) and return it."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ModeError(expected_one_of(name, mode, MODES))
    return mode


def as_generator(rng: RngLike, *, what: str = "stochastic rounding") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator or a non-negative seed (required: None raises);
    never touches global random state. A function that draws in several steps converts its ``rng`` once
    and passes the Generator on (see :func:`lampref._validate.check_rng`)."""
    gen = check_rng(rng)
    if gen is None:
        raise ModeError(f"{what} needs rng= (a seed or a numpy.random.Generator) so that results reproduce")
    return gen


def as_exact_array(x: ArrayLike, name: str = "x") -> NDArray[Any]:
    """Convert ``x`` to a float16/32/64 array holding exactly the same values, or raise.

    Integers are converted to float64 and must satisfy ``|x| <= 2**53`` (beyond that float64 would round
    them); booleans count as 0 and 1; ml_dtypes arrays (``bfloat16``, ``float8_*``, ...) become float32.
    """
    arr = widen_ml_dtypes(as_array(x, name))
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype.itemsize > 8:
            raise InputTypeError(
                f"{name} has dtype {arr.dtype}; expected float16, float32, float64 or integers "
                "(extended precision cannot be rounded exactly through float64)"
            )
        return arr
    if kind in "iu":
        if arr.size and (int(arr.max()) > _INT_LIMIT or int(arr.min()) < -_INT_LIMIT):
            raise InputValueError(
                f"{name} holds integers beyond 2**53 in magnitude; they cannot be converted to float64 "
                "exactly, convert them yourself if rounding them is intended"
            )
        return arr.astype(np.float64)
    if kind == "b":
        return arr.astype(np.float64)
    if kind == "O" and arr.size and all(is_int(v) for v in arr.reshape(-1)):
        raise InputValueError(
            f"{name} holds integers beyond 2**53 in magnitude (too large for int64 even); they cannot be "
            "converted to float64 exactly"
        )
    raise InputTypeError(
        f"{name} has dtype {arr.dtype}; expected real numbers (float16, float32, float64, integer or bool)"
    )


def as_exact_float64(x: ArrayLike, name: str = "x") -> NDArray[np.float64]:
    """``x`` as a float64 array holding exactly the same values (see :func:`as_exact_array`), or raise."""
    with np.errstate(invalid="ignore"):  # signalling NaNs stay NaN
        return np.asarray(as_exact_array(x, name), dtype=np.float64)


# ------------------------------------------------------------------------- kernel
@dataclass(frozen=True, slots=True)
class _ModeRule:
    """How a rounding mode picks one of the two neighbours of a value, resolved once from its name.

    ``family`` is "nearest" (the closer neighbour; on a tie the even one when ``ties_to_even``, else the one
    away from zero), "directed" (the neighbour toward zero, except for the magnitudes of the sign
    ``away_sign``, "+" or "-", which go away from zero; with ``sticky`` an inexact result gets an odd last
    bit) or "stochastic" (away from zero with probability equal to the distance to the neighbour toward zero
    when ``proportional``, else 1/2).
    """

    family: Literal["nearest", "directed", "stochastic"]
    ties_to_even: bool = False
    away_sign: Literal["", "+", "-"] = ""
    sticky: bool = False
    proportional: bool = False


_MODE_RULES: dict[str, _ModeRule] = {
    "nearest_even": _ModeRule("nearest", ties_to_even=True),
    "nearest_away": _ModeRule("nearest"),
    "toward_zero": _ModeRule("directed"),
    "toward_pos": _ModeRule("directed", away_sign="+"),
    "toward_neg": _ModeRule("directed", away_sign="-"),
    "odd": _ModeRule("directed", sticky=True),
    "stochastic": _ModeRule("stochastic", proportional=True),
    "stochastic_equal": _ModeRule("stochastic"),
}


P1_TIES: tuple[str, ...] = ("larger", "even_code")
ODD_OVERFLOWS: tuple[str, ...] = ("max", "overflow")
_MAX_RANDOM_BITS = 52  # the tiny-value comparison is then exact in float64


@dataclass(frozen=True, slots=True)
class _Conventions:
    """The choices a standard leaves open or makes differently, resolved for one rounding (see round_to)."""

    random_bits: int | None = None
    p1_ties: str = "larger"
    odd_overflow: str = "max"


def _conventions(
    fmt: FloatFormat, mode: str, random_bits: Any, p1_ties: Any, odd_overflow: Any
) -> _Conventions:
    """Validate the convention arguments of :func:`round_to` (``p1_ties=None``: the format's own)."""
    if random_bits is not None:
        if mode != "stochastic":
            raise ModeError(f"random_bits applies to mode='stochastic' only; got mode={mode!r}")
        if not is_int(random_bits) or not 1 <= int(random_bits) <= _MAX_RANDOM_BITS:
            raise ModeError(
                f"random_bits={random_bits!r} is not valid; expected None or an integer in "
                f"1..{_MAX_RANDOM_BITS}"
            )
        random_bits = int(random_bits)
    if p1_ties is None:
        p1_ties = "even_code" if fmt.encoding.startswith("p3109") else "larger"
    if not isinstance(p1_ties, str) or p1_ties not in P1_TIES:
        raise ModeError(expected_one_of("p1_ties", p1_ties, [*P1_TIES, "None"]))
    if not isinstance(odd_overflow, str) or odd_overflow not in ODD_OVERFLOWS:
        raise ModeError(expected_one_of("odd_overflow", odd_overflow, ODD_OVERFLOWS))
    return _Conventions(random_bits, p1_ties, odd_overflow)


class _KernelConstants:
    """What the kernel needs about (format, container, mode): everything that does not depend on the data."""

    def __init__(self, fmt: FloatFormat, c: _Container, mode: str, conventions: _Conventions) -> None:
        assert fmt.emin is not None
        self.c = c
        self.rule = _MODE_RULES[mode]
        U = c.udtype.type
        self.random_bits = conventions.random_bits
        # P3109's ties at p = 1: the value whose code point (its biased exponent) is even
        self.even_code = fmt.p == 1 and mode == "nearest_even" and conventions.p1_ties == "even_code"
        self.code_offset = U((fmt.exponent_bias - c.bias) & 1)  # code parity = container exponent + offset
        self.odd_overflows = conventions.odd_overflow == "overflow"
        self.shift = c.mb + 1 - fmt.p  # pattern bits dropped in the normal range (>= 0)
        self.q_sub = fmt.emin - fmt.p + 1 if fmt.subnormals else fmt.emin  # quantum below 2**emin
        self.eq = fmt.emin + c.bias  # biased exponent of the smallest normal of the format
        # the step below 2**emin differs from the container's (always so when flushing subnormals)
        self.variable = self.eq > 1 or not fmt.subnormals
        self.xmax = c.pattern(fmt.max)
        self.one = U(1)
        self.zero = U(0)
        self.fmt = fmt
        if fmt.saturate:
            self.inf_value = self.xmax
            self.overflow_value = self.xmax
        elif fmt.has_inf:  # IEEE, P3109 extended
            self.inf_value = c.inf
            self.overflow_value = c.inf
        else:  # "fn", P3109 finite, E8M0, not saturating: no infinity, overflow is NaN
            nan = U(c.inf | (U(1) << U(c.mb - 1)))
            self.inf_value = nan
            self.overflow_value = nan
        self.min_normal = c.pattern(fmt.smallest_normal)
        # only the precision differs from the container's, in a mode whose overflow is a carry to infinity
        self.simple = (
            not self.variable
            and 1 <= self.shift < c.mb
            and fmt.emax == c.bias
            and fmt.encoding == "ieee"
            and not fmt.saturate
            and mode in ("nearest_even", "nearest_away", "toward_zero")
        )
        self.half_sub = c.pattern(math.ldexp(1.0, self.q_sub - 1))
        self.quantum_sub = c.pattern(math.ldexp(1.0, self.q_sub))
        # fixed layouts: one zero (no -0), no negative values, or no zero at all
        self.one_zero = not fmt.has_negative_zero
        self.signed = fmt.signed
        self.has_zero = fmt.has_zero
        nan = U(c.inf | (U(1) << U(c.mb - 1)))
        self.smallest = c.pattern(fmt.smallest_normal) if not fmt.has_zero else U(0)
        self.below_value = self.smallest if fmt.saturate else nan  # a negative value in an unsigned format


def _round_chunk(x: NDArray[Any], k: _KernelConstants, words: NDArray[np.uint64] | None) -> NDArray[Any]:
    """Round one contiguous chunk given in the container dtype; returns the container dtype.

    The magnitude's pattern gets an increment chosen by the mode and loses its low ``d`` bits; magnitudes
    below half the smallest step are settled apart, then overflow, the special values and the sign.
    """
    if k.simple:
        return _round_chunk_simple(x, k)
    c = k.c
    b = x.view(c.udtype)
    A = b & c.abs_mask  # the magnitudes' patterns
    away = _away_from_zero(b, k)  # None unless the sign directs the mode
    d, tiny, variable = _dropped_bits(A, k)
    mask = (k.one << d) - k.one
    R = A + _increment(A, d, mask, k, variable, away, words)  # the neighbour above is a carry
    R &= ~mask
    if tiny is not None:
        R[tiny] = _round_tiny(A[tiny], k, _subset(away, tiny), _subset(words, tiny))
    over = R > k.xmax
    if over.any():
        R = _overflow(R, A, over, k, away)
    R |= b & ~c.abs_mask  # the sign
    if k.one_zero:
        R = _fixed_layout(R, A, k)
    out: NDArray[Any] = R.view(c.dtype)
    return out


def _fixed_layout(R: NDArray[Any], A: NDArray[Any], k: _KernelConstants) -> NDArray[Any]:
    """Results of formats with one zero: a negative value of an unsigned format becomes NaN (or the smallest
    value when saturating), a zero of either sign becomes +0 (or the smallest value where there is no 0,
    where zero and negative inputs are below the range)."""
    c = k.c
    mag = R & c.abs_mask
    sign = R > c.abs_mask
    if not k.signed:
        R = np.where(sign & (mag != 0) & (mag <= c.inf), k.below_value, R)  # NaNs keep their pattern
    R = np.where(mag == 0, k.smallest, R)
    if not k.has_zero:  # zero and every negative input lie below the range
        R = np.where((A == 0) | (sign & (A <= c.inf)), k.below_value, R)
    return R


def _subset(a: NDArray[Any] | None, where: NDArray[np.bool_]) -> NDArray[Any] | None:
    """The elements of ``a`` where ``where`` is True (None stays None)."""
    return None if a is None else a[where]


def _away_from_zero(b: NDArray[Any], k: _KernelConstants) -> NDArray[np.bool_] | None:
    """For a mode directed by the sign, which elements (patterns ``b``) round their magnitude away from 0."""
    if k.rule.away_sign == "+":
        return b <= k.c.abs_mask
    if k.rule.away_sign == "-":
        return b > k.c.abs_mask
    return None


def _dropped_bits(A: NDArray[Any], k: _KernelConstants) -> tuple[Any, NDArray[np.bool_] | None, bool]:
    """The pattern bits ``d`` to drop from each magnitude ``A`` (a scalar when all share it), the magnitudes
    whose step does not fit in the significand field (None when there are none), and whether any magnitude
    lies below ``2**emin`` where the step differs from the normal range's."""
    c = k.c
    U = c.udtype.type
    d: Any = U(k.shift)
    if not k.variable:
        return d, None, False
    below = (A - k.one) < (k.min_normal - k.one)  # nonzero magnitudes below 2**emin (0 - 1 wraps around)
    if not below.any():
        return d, None, False
    if k.fmt.subnormals:
        E = A >> U(c.mb)
        extra = U(k.eq) - np.minimum(np.maximum(E, U(1)), U(k.eq))
        limit = U(c.mb - k.shift)
        tiny = extra > limit
        d = np.minimum(extra, limit) + U(k.shift)
    else:
        tiny = below
    return d, (tiny if tiny.any() else None), True


def _increment(
    A: NDArray[Any],
    d: Any,
    mask: Any,
    k: _KernelConstants,
    variable: bool,
    away: NDArray[np.bool_] | None,
    words: NDArray[np.uint64] | None,
) -> Any:
    """What the mode adds to the magnitude ``A`` before its low ``d`` bits (``mask``) are cleared."""
    rule = k.rule
    if rule.family == "nearest":
        if rule.ties_to_even:  # half an ulp less one unit, plus one when the kept last bit is odd
            return (mask >> k.one) + _parity(A, d, mask, k, variable)
        return (mask + k.one) >> k.one  # half an ulp: a tie carries
    if rule.family == "directed":
        if rule.sticky:  # set the last kept bit when inexact and the truncated significand is even
            return (((A & mask) != 0).astype(k.c.udtype) & ~_parity(A, d, mask, k, variable)) << d
        return k.zero if away is None else np.where(away, mask, k.zero)
    assert words is not None
    if rule.proportional:
        # the top d bits of the random word, uniform on [0, 2**d): P(carry) = (A mod 2**d) / 2**d
        d64 = np.asarray(d, dtype=np.uint64)
        top = words >> (np.uint64(64) - d64)
        if k.random_bits is not None:  # r random bits against the dropped bits truncated to r bits
            r = np.uint64(k.random_bits)
            low = np.where(d64 > r, d64 - r, np.uint64(0))  # bits below the r compared ones: cleared
            top &= ~((np.uint64(1) << low) - np.uint64(1))
        return top.astype(k.c.udtype)
    return np.where(words >> np.uint64(63), mask, k.zero)  # the top bit of the word picks the neighbour


def _overflow(
    R: NDArray[Any],
    A: NDArray[Any],
    over: NDArray[np.bool_],
    k: _KernelConstants,
    away: NDArray[np.bool_] | None,
) -> NDArray[Any]:
    """Results beyond the largest finite value: ``xmax`` where the mode truncates, else the overflow value;
    infinite and NaN inputs are set apart."""
    c = k.c
    truncating: Any = (
        k.rule.family == "directed"
        and not (k.rule.sticky and k.odd_overflows)
        and (True if away is None else ~away)
    )
    R = np.where(over, np.where(truncating, k.xmax, k.overflow_value), R)
    special = A >= c.inf
    if special.any():
        R = np.where(special, np.where(A > c.inf, A, k.inf_value), R)
    return R


def _round_chunk_simple(x: NDArray[Any], k: _KernelConstants) -> NDArray[Any]:
    """Nearest and toward-zero rounding when only the precision differs from the container's.

    The magnitude is rounded on the signed pattern directly (the sign bit is above every carry of a
    finite value, and a carry out of the largest binade gives infinity, as overflow should); NaNs, which
    the carry could turn into infinities or flip the sign of, are restored afterwards.
    """
    c = k.c
    b = x.view(c.udtype)
    d = c.udtype.type(k.shift)
    mask = (k.one << d) - k.one
    rule = k.rule
    if rule.family == "nearest" and rule.ties_to_even:
        R = (b >> d) & k.one
        R += b
        R += mask >> k.one
    elif rule.family == "nearest":
        R = b + ((mask + k.one) >> k.one)
    else:  # toward_zero
        R = b.copy()
    R &= ~mask
    out: NDArray[Any] = R.view(c.dtype)
    nan = np.isnan(x)
    if nan.any():
        np.copyto(out, x, where=nan)
    return out


def _parity(A: NDArray[Any], d: Any, mask: Any, k: _KernelConstants, variable: bool) -> NDArray[Any]:
    """Last bit (0 or 1) of the significand kept when ``d`` pattern bits are dropped.

    Pattern bit ``d`` is that bit while ``d`` is inside the fraction field. At ``d == mb`` the kept
    significand is just the implicit bit (1 for a normal container value, 0 for a subnormal one), while
    pattern bit ``mb`` is the exponent's last bit, so it is replaced. ``d == 0`` drops nothing.
    """
    c = k.c
    U = c.udtype.type
    if k.shift == c.mb and k.even_code:  # p == 1, P3109's ties: the parity of the biased exponent
        code_parity: NDArray[Any] = ((A >> U(c.mb)) + k.code_offset) & k.one
        return code_parity
    if k.shift == c.mb:  # p == 1: d == mb for every element
        implicit: NDArray[Any] = (A >= (U(1) << U(c.mb))).astype(c.udtype)
        return implicit
    lsb: NDArray[Any] = (A >> d) & k.one
    if k.shift == 0:
        lsb &= (mask != 0).astype(c.udtype)
    if variable:
        lsb = np.where(d == U(c.mb), (A >= (U(1) << U(c.mb))).astype(c.udtype), lsb)
    return lsb


def _round_tiny(
    A: NDArray[Any],
    k: _KernelConstants,
    away: NDArray[np.bool_] | None,
    words: NDArray[np.uint64] | None,
) -> NDArray[Any]:
    """Round magnitudes below half of the format's smallest step: the result is 0 or that step."""
    rule = k.rule
    nonzero = A != 0
    if rule.family == "nearest":  # an exact tie goes to zero (which is even) or away from it
        up = A > k.half_sub if rule.ties_to_even else A >= k.half_sub
    elif rule.family == "directed":
        # round to odd: truncation gives 0 (even) and an inexact result gets the odd last bit
        up = nonzero if rule.sticky else (np.zeros_like(nonzero) if away is None else nonzero & away)
    elif rule.proportional and k.random_bits is not None:
        assert words is not None
        r = k.random_bits  # floor(frac * 2**r) + (r random bits) >= 2**r, every term exact (r <= 52)
        truncated = np.floor(np.ldexp(A.view(k.c.dtype).astype(np.float64), r - k.q_sub))
        up = truncated + (words >> np.uint64(64 - r)).astype(np.float64) >= math.ldexp(1.0, r)
    elif rule.proportional:
        assert words is not None
        frac = np.ldexp(A.view(k.c.dtype).astype(np.float64), -k.q_sub)  # exact, in (0, 1)
        uniform = (words >> np.uint64(11)).astype(np.float64) * math.ldexp(1.0, -53)
        up = uniform < frac
    else:
        assert words is not None
        up = nonzero & (words >> np.uint64(63)).astype(bool)
    return np.where(up, k.quantum_sub, k.zero)


class Rounder:
    """A rounding into one format and mode, for arrays already in a container dtype (no validation).

    This is the kernel behind :func:`round_to`, for inner loops that round the same way many times
    (accumulation). ``dtype`` is float32 (only for formats that fit in it) or float64; the result has the
    same dtype as the (contiguous, 1-D or any shape) input.
    """

    __slots__ = ("_constants", "identity", "stochastic")

    def __init__(
        self,
        fmt: FloatFormat,
        mode: str,
        dtype: Any = np.float64,
        *,
        random_bits: int | None = None,
        p1_ties: str | None = None,
        odd_overflow: str = "max",
    ) -> None:
        container = _F32 if np.dtype(dtype) == np.float32 else _F64
        if container is _F32 and not fmt.fits_float32:
            raise FormatError(
                f"dtype=float32 needs a format that fits in float32; {fmt!r} does not "
                "(expected dtype=float64)"
            )
        mode = check_mode(mode)
        conventions = _conventions(fmt, mode, random_bits, p1_ties, odd_overflow)
        self._constants = _KernelConstants(fmt, container, mode, conventions)
        self.stochastic = mode in STOCHASTIC_MODES
        self.identity = container is _F64 and (
            fmt.p,
            fmt.emin,
            fmt.emax,
            fmt.subnormals,
            fmt.encoding,
            fmt.saturate,
            fmt.signed,
        ) == (53, -1022, 1023, True, "ieee", False, True)

    def __call__(self, x: NDArray[Any], gen: np.random.Generator | None = None) -> NDArray[Any]:
        flat = np.ascontiguousarray(x).reshape(-1)
        if self.identity or flat.size == 0:
            return flat.copy().reshape(np.shape(x))
        out = np.empty_like(flat)
        for start in range(0, flat.size, _CHUNK):
            stop = min(start + _CHUNK, flat.size)
            words = None
            if self.stochastic:
                if gen is None:
                    raise ModeError("stochastic rounding needs rng= (a seed or a numpy.random.Generator)")
                words = gen.integers(0, 1 << 64, size=stop - start, dtype=np.uint64, endpoint=False)
            out[start:stop] = _round_chunk(flat[start:stop], self._constants, words)
        return out.reshape(np.shape(x))


@overload
def round_to(
    x: float | np.number[Any] | np.bool_,
    fmt: FloatFormat | str,
    mode: str = ...,
    *,
    rng: RngLike = ...,
    random_bits: int | None = ...,
    p1_ties: str | None = ...,
    odd_overflow: str = ...,
) -> np.floating[Any]: ...


@overload
def round_to(
    x: ArrayLike,
    fmt: FloatFormat | str,
    mode: str = ...,
    *,
    rng: RngLike = ...,
    random_bits: int | None = ...,
    p1_ties: str | None = ...,
    odd_overflow: str = ...,
) -> NDArray[np.floating[Any]] | np.floating[Any]: ...


def round_to(
    x: ArrayLike,
    fmt: FloatFormat | str,
    mode: str = "nearest_even",
    *,
    rng: RngLike = None,
    random_bits: int | None = None,
    p1_ties: str | None = None,
    odd_overflow: str = "max",
) -> NDArray[np.floating[Any]] | np.floating[Any]:
    r"""Round every element of ``x`` to the format ``fmt``, correctly, in the given rounding mode.

    Parameters
    ----------
    x : array_like
        Scalars, lists or arrays of float16, float32, float64, ml_dtypes types (``bfloat16``, ``float8_*``,
        ...), integers (``|x| <= 2**53``) or booleans, of any shape. The exact value of each element is
        rounded once.
    fmt : FloatFormat or str
        The target format, or a name :func:`~lampref.get_format` knows (``"bf16"``, ``"fp32_m10"``, ...).
    mode : str, default "nearest_even"
        One of ``"nearest_even"``, ``"nearest_away"``, ``"toward_zero"``, ``"toward_pos"``,
        ``"toward_neg"``, ``"odd"``, ``"stochastic"``, ``"stochastic_equal"`` (see the module notes).
    rng : numpy.random.Generator or int, optional
        Source of randomness, required by the stochastic modes. Element ``i`` (in C order) uses the
        ``i``-th 64-bit word the generator draws, so the same seed gives the same bits whatever the input
        dtype.
    random_bits : int, optional
        ``mode="stochastic"`` only: the number $r$ of random bits, ``1 <= r <= 52``, as hardware does it
        (see the notes). None (default): exact stochastic rounding, the probability exactly proportional.
    p1_ties : {"larger", "even_code"}, optional
        Ties of ``"nearest_even"`` at precision 1, where both neighbours have significand 1: ``"larger"``
        takes the larger magnitude (MPFR at precision 1), ``"even_code"`` the neighbour whose code point
        (biased exponent) is even (P3109, gfloat). None (default): ``"even_code"`` for P3109 formats,
        ``"larger"`` for every other format (E8M0 included). Ties with zero go to zero in both.
    odd_overflow : {"max", "overflow"}, default "max"
        Round to odd beyond the largest finite value: ``"max"`` returns $\pm x_{\max}$ as the other
        truncating modes do; ``"overflow"`` rounds as if the exponent range were unbounded and overflows
        (infinity, or NaN without infinity; $\pm x_{\max}$ still in a saturating format) when that result
        exceeds $x_{\max}$, as gfloat does. The two differ where $x_{\max}$ has an even significand (OCP
        e4m3fn, P3109 extended formats: the next code is infinity or NaN) and at or beyond $2^{e_{\max}+1}$.

    Returns
    -------
    numpy.ndarray or numpy scalar
        The rounded values, same shape as ``x``: float32 when the format fits in float32
        (:attr:`FloatFormat.fits_float32`), float64 otherwise. A 0-d input gives a NumPy scalar.

    Raises
    ------
    FormatError
        Unknown format name.
    ModeError
        Unknown mode, a stochastic mode without ``rng``, or an ``rng`` that is not None, a non-negative
        integer or a Generator.
    InputTypeError, InputValueError
        Complex, object, string or extended-precision input; integers beyond $2^{53}$.
    ShapeError
        A ragged nested sequence.

    Notes
    -----
    With $q(x) = \max(\lfloor\log_2|x|\rfloor, e_{\min}) - p + 1$ (or $e_{\min}$ below the
    normal range when subnormals are off), the candidates are the two multiples of $2^{q(x)}$ around
    $x$, and the mode picks one. Signed zeros keep their sign, NaNs propagate (payload kept where it
    fits), infinities stay infinite unless the format saturates (then $\pm x_{\max}$) or has no
    infinity (then NaN, as OCP's non-saturating conversion). For stochastic rounding of values below half the
    format's smallest step, the probability is exact to $2^{-53}$; everywhere else it is exact.

    Formats with ``encoding="none"`` (MX elements) have no NaN; a NaN input gives NaN all the same (MX
    encodes NaN in the shared block scale), where ml_dtypes returns -0.

    Fixed layouts (IEEE P3109, OCP E8M0) round the same way and then follow their encoding: P3109 has one
    zero (a result of $-0$ is $+0$); an unsigned format has no negative value, so a negative input
    that does not round to zero gives NaN (the smallest value when the format saturates), as gfloat's
    encoder does; E8M0 has no zero, so every nonzero magnitude below $2^{-127}$ gives $2^{-127}$ in every
    mode (its underflow saturates), and a zero input, like a negative one, gives NaN ($2^{-127}$ when
    saturating), as ml_dtypes' ``float8_e8m0fnu`` and gfloat's encoder do (a negative input too, however
    small).

    **Stochastic rounding with r random bits.** Let $x$ lie between the neighbours $a < b$ (in magnitude),
    $f = (|x| - a)/(b - a) \in [0, 1)$ the discarded fraction. With ``random_bits=r`` the result is $b$
    exactly when $\lfloor 2^r f \rfloor + U \ge 2^r$ for $U$ uniform on $\{0, \dots, 2^r - 1\}$
    (the top $r$ bits of the element's word): the discarded bits, truncated to $r$ bits, are compared
    with $r$ random bits. So $P(b) = \lfloor 2^r f \rfloor / 2^r$, and the expected value
    $E[\mathrm{fl}(x)] = \mathrm{sign}(x)\,(a + (b - a)\lfloor 2^r f \rfloor 2^{-r})$ lies between $x$
    and $a$: the bias is toward zero, less than $(b - a) 2^{-r}$ in magnitude (about half that on
    average), and zero when $x$ needs at most $r$ discarded bits, where the bits drawn are those of the
    exact mode (same seed, same result).

    References
    ----------
    IEEE 754-2019, clauses 4.3 and 7.4. OCP 8-bit Floating Point Specification (OFP8), rev. 1.0, 2023.
    OCP Microscaling Formats (MX) v1.0, 2023. S. Boldo and G. Melquiond, "Emulation of FMA and correctly
    rounded sums: proved algorithms using rounding to odd", IEEE Trans. Comput. 57(4), 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from lampref import round_to, get_format
    >>> float(round_to(1/3, get_format("bf16")))
    0.333984375
    >>> round_to([1.0, 1.0 + 2**-11, 1.0 + 3 * 2**-11], "fp16")  # ties to even
    array([1.   , 1.   , 1.002], dtype=float32)
    >>> round_to([65519.0, 65520.0, -1e6], "fp16", "toward_zero")
    array([ 65504.,  65504., -65504.], dtype=float32)
    >>> round_to([65520.0, 1e6], "fp16")  # round to nearest overflows at xmax + ulp/2
    array([inf, inf], dtype=float32)
    >>> round_to([470.0, 1e6], "e4m3")  # e4m3fn has no infinity: overflow is NaN
    array([nan, nan], dtype=float32)
    >>> r = round_to(np.full(100_000, 0.1), "bf16", "stochastic", rng=0)
    >>> sorted(set(r.tolist())), bool(abs(r.astype(np.float64).mean() - 0.1) < 1e-5)
    ([0.099609375, 0.10009765625], True)
    >>> round_to([1e6, -1e6, float("inf"), -0.0], "p3109_k8p3se")  # P3109: one zero, infinities
    array([ inf, -inf,  inf,   0.], dtype=float32)
    >>> round_to([1.5, 3.0], "p3109_k8p1se"), round_to([1.5, 3.0], "p3109_k8p1se", p1_ties="larger")
    (array([1., 4.], dtype=float32), array([2., 4.], dtype=float32))
    >>> round_to([-2.0, 0.0, 1e-300, 3.0], "e8m0") / [1.0, 1.0, 2.0**-127, 1.0]  # unsigned, no zero
    array([nan, nan,  1.,  4.])
    """
    fmt = get_format(fmt)
    mode = check_mode(mode)
    arr = as_exact_array(x)
    gen = check_rng(rng)
    if mode in STOCHASTIC_MODES:
        gen = as_generator(gen)

    container = _F32 if (arr.dtype.itemsize <= 4 and fmt.fits_float32) else _F64
    with np.errstate(invalid="ignore"):  # signalling NaNs stay NaN
        work = np.ascontiguousarray(arr, dtype=container.dtype).reshape(-1)
    rounder = Rounder(
        fmt, mode, container.dtype, random_bits=random_bits, p1_ties=p1_ties, odd_overflow=odd_overflow
    )
    out_flat = rounder(work, gen)
    with np.errstate(invalid="ignore"):  # signalling NaNs stay NaN
        out = out_flat.astype(fmt.dtype, copy=False).reshape(np.shape(arr))
    return out[()] if out.ndim == 0 else out


# ---------------------------------------------------------------- neighbourhood
def _spacing_exponent(a: NDArray[np.float64], fmt: FloatFormat) -> NDArray[np.int64]:
    """max(floor(log2 a), emin) - p + 1 for a >= 0 (0 gives the subnormal step)."""
    assert fmt.emin is not None
    with np.errstate(divide="ignore"):
        _, e = np.frexp(a)  # a = f * 2**e with 0.5 <= f < 1, so floor(log2 a) = e - 1
    e = np.where(a == 0, fmt.emin + 1, e)
    return np.maximum(e.astype(np.int64) - 1, fmt.emin) - fmt.p + 1


def ulp(x: ArrayLike, fmt: FloatFormat | str) -> NDArray[np.floating[Any]] | np.floating[Any]:
    r"""The unit in the last place of ``x`` in ``fmt``: $2^{\max(\lfloor\log_2|x|\rfloor, e_{\min})-p+1}$.

    This is the spacing of the format's values in the binade of ``x`` (Goldberg's definition); for 0 it is
    the subnormal step $2^{e_{\min}-p+1}$. Infinite inputs give inf, NaN gives NaN.

    Examples
    --------
    >>> from lampref import ulp
    >>> ulp([1.0, 1.5, 2.0, 0.0], "fp16")
    array([9.765625e-04, 9.765625e-04, 1.953125e-03, 5.960464e-08], dtype=float32)
    """
    fmt = get_format(fmt)
    a = np.abs(as_exact_float64(x))
    finite = np.isfinite(a)
    a0 = np.where(finite, a, 0.0)
    out = np.ldexp(1.0, _spacing_exponent(a0, fmt))
    out = np.where(finite, out, a)  # inf -> inf, nan -> nan
    with np.errstate(invalid="ignore"):
        res = np.asarray(out, dtype=np.float64).astype(fmt.dtype)
    return res[()] if res.ndim == 0 else res


def next_up(x: ArrayLike, fmt: FloatFormat | str) -> NDArray[np.floating[Any]] | np.floating[Any]:
    """The smallest value of ``fmt`` strictly greater than ``x`` (``x`` need not be representable).

    The largest finite value steps to infinity (also in formats without infinity, where nothing is larger),
    ``-inf`` to ``-max``, ``+inf`` stays, NaN gives NaN, and both zeros step to the smallest positive value.

    Examples
    --------
    >>> from lampref import next_up
    >>> next_up([1.0, -1.0, 1.0001, 65504.0], "fp16").tolist()
    [1.0009765625, -0.99951171875, 1.0009765625, inf]
    >>> float(next_up(0.0, "fp16")) == 2.0**-24
    True
    """
    fmt = get_format(fmt)
    v = as_exact_float64(x)
    if not fmt.signed:
        return _step_unsigned(v, fmt, up=True)
    y = np.asarray(round_to(v, fmt, "toward_neg"), dtype=np.float64)  # largest value <= x
    with np.errstate(invalid="ignore"):
        y = np.where(np.isinf(v), v, y)
        y = np.where(v > fmt.max, fmt.max, np.where(v < -fmt.max, -np.inf, y))
    a = np.abs(y)
    finite = np.isfinite(a)
    a0 = np.where(finite, a, 0.0)
    assert fmt.emin is not None
    # step up from a >= 0: the spacing of a's binade (the smallest positive value from zero)
    step_up = np.where(a0 == 0, fmt.smallest_subnormal, np.ldexp(1.0, _spacing_exponent(a0, fmt)))
    # step down from a > 0: a power of two steps into the binade below, whose spacing is half as large
    mant, _ = np.frexp(a0)
    step_down = np.ldexp(1.0, _spacing_exponent(np.where(mant == 0.5, a0 / 2.0, a0), fmt))
    if not fmt.subnormals:
        step_down = np.where(a0 == fmt.smallest_normal, a0, step_down)  # to zero
    with np.errstate(over="ignore"):  # a0 + step_up overflows at float64's largest value, replaced by inf
        res = np.where(y >= 0, np.where(a0 >= fmt.max, np.inf, a0 + step_up), -(a0 - step_down))
    res = np.where(finite, res, np.where(np.isnan(y), np.nan, np.where(y < 0, -fmt.max, np.inf)))
    with np.errstate(invalid="ignore"):
        out = np.asarray(res, dtype=np.float64).astype(fmt.dtype)
    return out[()] if out.ndim == 0 else out


def next_down(x: ArrayLike, fmt: FloatFormat | str) -> NDArray[np.floating[Any]] | np.floating[Any]:
    """The largest value of ``fmt`` strictly less than ``x``: ``-next_up(-x, fmt)`` (in an unsigned format,
    the smallest value steps to ``-inf``, as nothing is smaller).

    Examples
    --------
    >>> from lampref import next_down
    >>> next_down([1.0, 0.0], "bf16")
    array([ 9.9609375e-01, -9.1835496e-41], dtype=float32)
    >>> next_down([1.0, 0.0], "p3109_k8p4uf").tolist()
    [0.9375, -inf]
    """
    fmt = get_format(fmt)
    if not fmt.signed:
        return _step_unsigned(as_exact_float64(x), fmt, up=False)
    out = -np.asarray(next_up(-as_exact_float64(x), fmt))
    return out[()] if out.ndim == 0 else out


def _step_unsigned(
    v: NDArray[np.float64], fmt: FloatFormat, *, up: bool
) -> NDArray[np.floating[Any]] | np.floating[Any]:
    """next_up / next_down in an unsigned format (at most 16 bits), by search in its ascending values; past
    the largest value +inf, below the smallest -inf, NaN stays NaN."""
    table = np.concatenate([[-np.inf], fmt.values().astype(np.float64), [np.inf]])
    with np.errstate(invalid="ignore"):
        i = np.searchsorted(table, v, side="right") if up else np.searchsorted(table, v, side="left") - 1
        res = np.where(np.isnan(v), np.nan, table[np.clip(i, 0, table.size - 1)])
        res = np.where((v == np.inf) & up, np.inf, np.where((v == -np.inf) & ~up, -np.inf, res))
        out = np.asarray(res, dtype=np.float64).astype(fmt.dtype)
    return out[()] if out.ndim == 0 else out


def is_representable(x: ArrayLike, fmt: FloatFormat | str) -> NDArray[np.bool_] | np.bool_:
    """Whether each element of ``x`` is a value of ``fmt`` (NaN and infinities: if the format has them).

    Examples
    --------
    >>> from lampref import is_representable
    >>> is_representable([0.1, 0.5, 65504.0, 65505.0, float("inf")], "fp16")
    array([False,  True,  True, False,  True])
    """
    fmt = get_format(fmt)
    v = as_exact_float64(x)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(v)
        r = np.asarray(round_to(np.where(finite, v, 0.0), fmt, "toward_zero"), dtype=np.float64)
        ok = finite & (r == v) & (np.abs(v) <= fmt.max)
        ok |= np.isinf(v) & fmt.has_inf & (fmt.signed or v > 0)
        ok |= np.isnan(v) & fmt.has_nan
    return np.bool_(ok[()]) if ok.ndim == 0 else ok
