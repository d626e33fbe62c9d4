"""Tests of :mod:`lampref.testing`: the strategies produce what they promise, and the two oracles agree.

Oracles:

* strategies are checked with MPFR (:func:`~lampref.testing.mpfr_round`,
  :func:`~lampref.testing.mpfr_neighbours`) and exact fractions: a value of a format is a fixed point of
  MPFR's rounding in every mode; a tie is equidistant from its two MPFR neighbours;
* :func:`~lampref.testing.mpfr_round` (MPFR through gmpy2) and :func:`~lampref.testing.reference_round`
  (rational arithmetic only) are independent implementations of the same semantics, so they must agree
  bit for bit on every input, every format and every deterministic mode.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import example, find, given
from hypothesis import strategies as st

import lampref.testing
from lampref import FloatFormat, ModeError, e2m1, e4m3, fp16, fp64
from lampref.formats import ENCODINGS
from lampref.rounding import DETERMINISTIC_MODES
from lampref.testing import (
    exact_value,
    floats_near,
    formats,
    mpfr_neighbours,
    mpfr_round,
    near_overflow,
    reference_round,
    subnormals_of,
    ties_of,
    values_in,
)


def with_values(values: Any, **fmt_options: Any) -> st.SearchStrategy[tuple[FloatFormat, float]]:
    """(format, value) pairs: a random format and one value drawn for it by ``values``."""
    return formats(**fmt_options).flatmap(lambda f: st.tuples(st.just(f), values(f)))


def same_float(a: float, b: float) -> bool:
    """Equal as floats with the same sign (so -0.0 != 0.0), or both NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


# ================================================================== formats()
def check_valid(fmt: FloatFormat) -> None:
    assert isinstance(fmt, FloatFormat)
    assert 1 <= fmt.p <= 53
    assert fmt.emin is not None
    assert -1022 <= fmt.emin <= fmt.emax <= 1023
    assert fmt.encoding in ENCODINGS
    assert fmt.encoding != "fn" or fmt.p >= 2
    assert fmt.saturate or fmt.encoding != "none"
    if fmt.subnormals:
        assert fmt.emin - fmt.p + 1 >= -1074
    # the parameters rebuild an equal format: nothing invalid slipped through __post_init__
    rebuilt = FloatFormat(
        p=fmt.p,
        emax=fmt.emax,
        emin=fmt.emin,
        subnormals=fmt.subnormals,
        encoding=fmt.encoding,
        saturate=fmt.saturate,
    )
    assert rebuilt == fmt


@given(formats())
def test_formats_are_valid(fmt: FloatFormat) -> None:
    check_valid(fmt)


@given(formats(min_p=3, max_p=5, max_emax=10, encodings=("fn", "none"), subnormals=False))
def test_formats_respect_their_options(fmt: FloatFormat) -> None:
    check_valid(fmt)
    assert 3 <= fmt.p <= 5
    assert fmt.emax <= 10
    assert fmt.encoding in ("fn", "none")
    assert not fmt.subnormals


@pytest.mark.parametrize("fits", [True, False])
def test_formats_fits_float32_option(fits: bool) -> None:
    @given(formats(fits_float32=fits))
    def check(fmt: FloatFormat) -> None:
        assert fmt.fits_float32 == fits

    check()


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        *((f"encoding {e}", lambda f, e=e: f.encoding == e) for e in ENCODINGS),
        ("saturating ieee", lambda f: f.encoding == "ieee" and f.saturate),
        ("non-saturating fn", lambda f: f.encoding == "fn" and not f.saturate),
        ("saturating fn", lambda f: f.encoding == "fn" and f.saturate),
        ("flush to zero", lambda f: not f.subnormals),
        ("p = 1", lambda f: f.p == 1),
        ("p = 53", lambda f: f.p == 53),
        ("emin != 1 - emax", lambda f: f.emin != 1 - f.emax),
        ("wider than float32", lambda f: not f.fits_float32),
        ("float64's exponent range", lambda f: f.emax == 1023),
    ],
)
def test_formats_reach_every_kind(what: str, condition: Any) -> None:
    check_valid(find(formats(), condition))


# ================================================================== values, ties, overflow, subnormals
@given(formats().flatmap(lambda f: st.tuples(st.just(f), values_in(f), values_in(f, signed=False))))
@example(case=(fp16, 65504.0, 0.0))
@example(case=(FloatFormat(p=1, emax=3, subnormals=False), -0.25, 0.25))
def test_values_in_are_representable(case: tuple[FloatFormat, float, float]) -> None:
    fmt, v, unsigned = case
    assert math.copysign(1.0, unsigned) == 1.0
    for value in (v, unsigned):
        assert isinstance(value, float)
        assert math.isfinite(value)
        assert abs(value) <= fmt.max
        for mode in DETERMINISTIC_MODES:
            assert same_float(mpfr_round(value, fmt, mode), value), (fmt, mode, value)


@given(with_values(ties_of, max_p=52))
@example(case=(fp16, 65520.0))
@example(case=(fp16, 2.0**-25))
def test_ties_of_are_exact_midpoints(case: tuple[FloatFormat, float]) -> None:
    fmt, t = case
    assert math.isfinite(t)
    assert t != 0
    lo, hi = mpfr_neighbours(t, fmt)
    x = Fraction(t)
    assert lo < x < hi, (fmt, t, lo, hi)
    assert x - lo == hi - x, (fmt, t, lo, hi)
    # ties away from zero gives the neighbour of larger magnitude (unless that one overflows)
    away = mpfr_round(t, fmt, "nearest_away")
    larger = mpfr_round(t, fmt, "toward_neg" if t < 0 else "toward_pos")
    assert same_float(away, larger) or abs(hi if t > 0 else lo) > fmt.max, (fmt, t, away, larger)


def test_ties_of_refuses_53_bit_formats() -> None:
    with pytest.raises(ValueError, match="p <= 52"):
        find(ties_of(fp64), lambda _: True)


@given(with_values(near_overflow))
def test_near_overflow_values_surround_the_largest(case: tuple[FloatFormat, float]) -> None:
    fmt, v = case
    step = math.ldexp(1.0, fmt.emax - fmt.p + 1)
    assert math.isfinite(v)
    assert min(0.99 * fmt.max, fmt.max - step) <= abs(v) <= min(4 * fmt.max, 1.7976931348623157e308)


def test_near_overflow_reaches_the_overflow_tie() -> None:
    find(near_overflow(fp16), lambda v: v == 65520.0)
    find(near_overflow(e4m3), lambda v: v == 464.0)


@given(with_values(subnormals_of))
def test_subnormals_of_are_below_the_normal_range(case: tuple[FloatFormat, float]) -> None:
    fmt, v = case
    assert math.isfinite(v)
    assert abs(v) <= fmt.smallest_normal


def test_subnormals_of_reaches_a_subnormal_midpoint() -> None:
    find(subnormals_of(fp16), lambda v: math.ldexp(v, 24) % 1 == 0.5)


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        ("a float", lambda v: isinstance(v, float)),
        ("NaN", math.isnan),
        ("+inf", lambda v: v == math.inf),
        ("-inf", lambda v: v == -math.inf),
        ("-0.0", lambda v: v == 0 and math.copysign(1.0, v) < 0),
        ("beyond max", lambda v: math.isfinite(v) and abs(v) > fp16.max),
        ("subnormal", lambda v: 0 < abs(v) < fp16.smallest_normal),
        ("not representable", lambda v: math.isfinite(v) and mpfr_round(v, fp16, "toward_zero") != v),
    ],
)
def test_floats_near_reaches_every_kind(what: str, condition: Any) -> None:
    find(floats_near(fp16), condition)


# ================================================================== the two oracles agree
@given(formats().flatmap(lambda f: st.tuples(st.just(f), st.lists(floats_near(f), min_size=1, max_size=10))))
@example(case=(fp16, [1 + 2**-11, 1 + 3 * 2**-11, 65520.0, 65519.0, 2**-24, 2**-25, 3 * 2**-26]))
@example(case=(fp16, [-0.0, 0.0, math.nan, math.inf, -math.inf, 1e300, -1e300]))
@example(case=(e4m3, [464.0, 465.0, -464.0, 2**-10, 3 * 2**-11]))
@example(case=(e4m3.replace(saturate=True), [464.0, 1e6, math.inf]))
@example(case=(e2m1, [5.0, 7.0, -7.0, 0.25, 0.75, math.inf, math.nan]))
@example(case=(FloatFormat(p=1, emax=3), [3.0, 0.375, 0.125, 12.0, 24.0, -3.0]))
@example(case=(fp16.replace(subnormals=False), [2**-15, -(2**-15), 2**-16, 3 * 2**-16]))
@example(case=(fp64, [5e-324, 0.1, 1.7976931348623157e308]))
def test_mpfr_and_reference_agree(case: tuple[FloatFormat, list[float]]) -> None:
    fmt, xs = case
    for mode in DETERMINISTIC_MODES:
        from_mpfr = mpfr_round(np.array(xs), fmt, mode)
        for x, m in zip(xs, from_mpfr.tolist(), strict=True):
            r = reference_round(x, fmt, mode)
            assert same_float(m, r), f"{fmt!r} {mode} x={x!r}: MPFR {m!r}, fractions {r!r}"


def test_oracle_interfaces() -> None:
    assert mpfr_round(1 / 3, "bf16") == 0.333984375
    assert isinstance(mpfr_round(1 / 3, "bf16"), float)
    out = mpfr_round(np.ones((2, 3)), fp16, "odd")
    assert out.shape == (2, 3)
    assert out.dtype == np.float64
    assert mpfr_neighbours(1 + 2**-11, fp16) == (Fraction(1), Fraction(1) + Fraction(1, 1024))
    assert exact_value(0.1) == Fraction(3602879701896397, 2**55)
    assert reference_round(2.5, fp16, "nearest_away") == 2.5


@pytest.mark.parametrize("oracle", [mpfr_round, reference_round])
@pytest.mark.parametrize("mode", ["stochastic", "nearest"])
def test_oracles_refuse_other_modes(oracle: Any, mode: str) -> None:
    with pytest.raises(ModeError, match="mode"):
        oracle(1.0, fp16, mode)


def test_lazy_module_attributes() -> None:
    assert set(lampref.testing.__all__) <= set(dir(lampref.testing))
    for name in lampref.testing.__all__:
        assert callable(getattr(lampref.testing, name))
    with pytest.raises(AttributeError, match="no_such_thing"):
        lampref.testing.no_such_thing  # noqa: B018


@given(
    p=st.integers(2, 51),
    k=st.integers(0, 200),
    extra=st.fractions(min_value=0, max_value=1),
    negative=st.booleans(),
    mode=st.sampled_from(["odd", "toward_zero", "nearest_even", "nearest_away", "toward_pos", "toward_neg"]),
)
@example(p=24, k=0, extra=Fraction(0), negative=False, mode="odd")
def test_issue11_item02_oracle_rounds_beyond_float64(
    p: int, k: int, extra: Fraction, negative: bool, mode: str
) -> None:
    """The exact-rounding oracle rounds rationals at or beyond 2**1024 (overflow in every mode)."""
    from lampref.testing import mpfr_round_fraction

    fmt = FloatFormat(p=p, emax=1023)
    v = (Fraction(2) ** (1024 + k)) * (1 + extra)
    v = -v if negative else v
    got = mpfr_round_fraction(v, fmt, mode)
    truncating = mode in ("toward_zero", "odd") or mode == ("toward_pos" if negative else "toward_neg")
    want = fmt.max if truncating else math.inf
    assert got == (-want if negative else want)
