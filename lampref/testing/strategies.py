"""Hypothesis strategies for floating-point formats and the values that test them hardest.

Each strategy draws Python floats (float64 values) so that they can be fed to any implementation.

Examples
--------
>>> from hypothesis import given
>>> from lampref import round_to
>>> from lampref.testing import formats, values_in
>>> @given(formats(max_p=24).flatmap(lambda f: values_in(f).map(lambda v: (f, v))))
... def test_representable_values_are_fixed_points(case):
...     fmt, v = case
...     assert float(round_to(v, fmt)) == v
>>> test_representable_values_are_fixed_points()
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from hypothesis import strategies as st

from ..formats import ENCODINGS, FloatFormat, p3109

_F64_MAX = sys.float_info.max

__all__ = [
    "floats_near",
    "formats",
    "near_overflow",
    "p3109_formats",
    "subnormals_of",
    "ties_of",
    "values_in",
]


@st.composite
def formats(
    draw: st.DrawFn,
    *,
    min_p: int = 1,
    max_p: int = 53,
    max_emax: int = 1023,
    encodings: Sequence[str] = ENCODINGS,
    subnormals: bool | None = None,
    fits_float32: bool | None = None,
) -> FloatFormat:
    """Valid :class:`~lampref.FloatFormat` values: precision, exponent range, subnormals and encoding.

    Parameters
    ----------
    min_p : int
        Smallest precision drawn.
    max_p : int
        Largest precision drawn.
    max_emax : int
        Largest ``emax`` drawn (exponent ranges are drawn from tiny to float64's).
    encodings : sequence of str
        Encodings to draw from (saturation is drawn too).
    subnormals : bool, optional
        Fix gradual underflow on or off; drawn when None.
    fits_float32 : bool, optional
        Keep only formats that fit (True) or do not fit (False) in float32.
    """
    p = draw(st.integers(min_p, max_p))
    emax = draw(
        st.one_of(st.integers(1, min(16, max_emax)), st.integers(1, max_emax), st.sampled_from([127, 1023]))
    )
    emax = min(emax, max_emax)
    default = draw(st.booleans())
    emin = 1 - emax if default else draw(st.integers(max(-1022, -emax - 40), emax))
    sub = draw(st.booleans()) if subnormals is None else subnormals
    if sub and emin - p + 1 < -1074:
        emin = -1074 + p - 1
        emin = min(emin, emax)
    encoding = draw(st.sampled_from(list(encodings)))
    if encoding == "fn" and p < 2:
        encoding = "ieee"
    saturate = True if encoding == "none" else draw(st.booleans())
    fmt = FloatFormat(p=p, emax=emax, emin=emin, subnormals=sub, encoding=encoding, saturate=saturate)  # type: ignore[arg-type]
    if fits_float32 is not None and fmt.fits_float32 != fits_float32:
        from hypothesis import reject

        reject()
    return fmt


@st.composite
def p3109_formats(
    draw: st.DrawFn,
    *,
    min_k: int = 2,
    max_k: int = 8,
    signed: bool | None = None,
    domain: str | None = None,
    saturate: bool | None = None,
) -> FloatFormat:
    """IEEE P3109 formats (:func:`lampref.p3109`): width, precision (every ``1 <= p <= k``), signedness,
    domain and overflow policy drawn; ``signed``, ``domain`` and ``saturate`` fix them when given.

    The signed extended 2-bit formats, which have no positive finite value, are replaced by finite ones.

    >>> from hypothesis import given
    >>> from lampref.testing.strategies import p3109_formats
    >>> @given(p3109_formats())
    ... def test_one_nan(fmt):
    ...     assert fmt.has_nan and not fmt.has_negative_zero and fmt.bits <= 8
    >>> test_one_nan()
    """
    k = draw(st.integers(min_k, max_k))
    p = draw(st.integers(1, k))
    sign = draw(st.booleans()) if signed is None else signed
    dom = draw(st.sampled_from(["extended", "finite"])) if domain is None else domain
    if sign and k == 2 and dom == "extended":
        dom = "finite"
    fmt = p3109(k, p, signed=sign, domain=dom)
    if draw(st.booleans()) if saturate is None else saturate:
        return fmt.replace(saturate=True, name=fmt.name)
    return fmt


def _positive_value(fmt: FloatFormat, e: int, m: int) -> float:
    return math.ldexp(float(m), e - fmt.p + 1)


@st.composite
def values_in(draw: st.DrawFn, fmt: FloatFormat, *, signed: bool = True) -> float:
    """Finite values of ``fmt`` (normal, subnormal, zero, the largest), with random signs."""
    assert fmt.emin is not None
    kind = draw(st.sampled_from(["normal", "normal", "sub", "zero", "max", "min"]))
    if kind == "sub" and fmt.subnormals and fmt.p > 1:
        v = _positive_value(fmt, fmt.emin, draw(st.integers(1, (1 << (fmt.p - 1)) - 1)))
    elif kind == "zero":
        v = 0.0
    elif kind == "max":
        v = fmt.max
    elif kind == "min":
        v = fmt.smallest_subnormal
    else:
        e = draw(st.integers(fmt.emin, fmt.emax))
        v = _positive_value(fmt, e, draw(st.integers(1 << (fmt.p - 1), (1 << fmt.p) - 1)))
        v = min(v, fmt.max)
    return -v if signed and draw(st.booleans()) else v


@st.composite
def ties_of(draw: st.DrawFn, fmt: FloatFormat, *, signed: bool = True) -> float:
    """Exact midpoints between two neighbouring values of ``fmt`` (including max + ulp/2 and half the
    smallest step), as float64; needs ``p <= 52``."""
    if fmt.p > 52:
        raise ValueError("midpoints of a 53-bit format are not float64 values; use p <= 52")
    assert fmt.emin is not None
    v = abs(draw(values_in(fmt, signed=False)))
    e = max(math.frexp(v)[1] - 1, fmt.emin) if v else fmt.emin
    if v < fmt.smallest_normal and not fmt.subnormals:
        step = fmt.smallest_normal
    else:
        step = math.ldexp(1.0, e - fmt.p + 1)
    t = v + step / 2  # exact: p + 1 bits
    return -t if signed and draw(st.booleans()) else t


@st.composite
def near_overflow(draw: st.DrawFn, fmt: FloatFormat, *, signed: bool = True) -> float:
    """Values around the largest finite value: max, max +- fractions of its ulp, the overflow tie,
    2**(emax+1) and beyond."""
    step = math.ldexp(1.0, fmt.emax - fmt.p + 1)
    frac = draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, -0.25, -0.5, -1.0]))
    v = fmt.max + frac * step
    if draw(st.booleans()):
        hi = min(fmt.max * 4.0, _F64_MAX)
        v = draw(st.floats(min_value=min(fmt.max * 0.99, hi), max_value=hi))
    v = min(v, _F64_MAX)
    return -v if signed and draw(st.booleans()) else v


@st.composite
def subnormals_of(draw: st.DrawFn, fmt: FloatFormat, *, signed: bool = True) -> float:
    """Values below the smallest normal number: representable subnormals, their midpoints, and arbitrary
    float64 values in (0, 2**emin)."""
    assert fmt.emin is not None
    tiny = math.ldexp(1.0, fmt.emin - fmt.p + 1)
    kind = draw(st.sampled_from(["grid", "half", "any"]))
    k = draw(st.integers(0, max(1, 1 << (fmt.p - 1))))
    if kind == "grid":
        v = k * tiny
    elif kind == "half":
        v = (k + 0.5) * tiny
    else:
        v = draw(st.floats(min_value=5e-324, max_value=fmt.smallest_normal, allow_subnormal=True))
    v = max(min(v, fmt.smallest_normal), 0.0)
    return -v if signed and draw(st.booleans()) else v


def floats_near(fmt: FloatFormat) -> st.SearchStrategy[float]:
    """A mixture of everything above plus arbitrary float64 values in and around the format's range, and
    the special values (+-0, +-inf, NaN)."""
    lo = max(fmt.smallest_subnormal / 4.0, 5e-324)
    hi = min(fmt.max * 4.0, _F64_MAX)
    anywhere = st.floats(min_value=lo, max_value=hi).flatmap(lambda v: st.sampled_from([v, -v]))
    one_ulp_off = st.tuples(values_in(fmt), st.sampled_from([-1, 1]), st.integers(1, 3)).map(
        lambda t: math.ldexp(t[0], 0) + t[1] * t[2] * math.ulp(t[0]) if t[0] else t[0]
    )
    specials = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan])
    parts = [values_in(fmt), anywhere, one_ulp_off, near_overflow(fmt), subnormals_of(fmt), specials]
    if fmt.p <= 52:
        parts.append(ties_of(fmt))
    return st.one_of(*parts)
