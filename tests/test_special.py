"""Tests of lampref.special: erf, erfc and gelu_erf against MPFR (gmpy2).

Oracle: MPFR's erf and erfc at 200 bits. erf and erfc are Cody's rational approximations evaluated in
float64; the bounds below are in units in the last place of the exact value rounded to float64 (over 240,000
random arguments the largest errors seen were 3.7 ulps for erf and 6.5 ulps for erfc, both in
0.46875 < |x| <= 4). gelu_erf rounds the float64 value of 0.5 x erfc(-x / sqrt 2) once to the dtype of x: for
float32 x that is the correctly rounded x Phi(x), except where the exact value lies within the error of that
float64 value (gelu_ulps) of a float32 rounding boundary, where either float32 neighbour is accepted.

tests/test_nn.py holds further tests of erf and erfc.
"""

from __future__ import annotations

import math
from typing import Any

import gmpy2
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lampref.nn import gelu
from lampref.special import _BLOCK, erf, erfc, gelu_erf

ERF_ULPS = 4.0
ERFC_ULPS = 8.0
MP = gmpy2.context(precision=200, emin=-(2**40), emax=2**40)
# float32 as MPFR sees it (x = 0.1b...b * 2**E): 24 bits, E >= -148 with subnormals
F32_DOWN = gmpy2.context(precision=24, emin=-148, emax=128, subnormalize=True, round=gmpy2.RoundDown)
F32_UP = gmpy2.context(precision=24, emin=-148, emax=128, subnormalize=True, round=gmpy2.RoundUp)

CODY_EDGES = (0.46875, 4.0)  # the boundaries between Cody's three forms


def ulps(got: float, exact: Any) -> float:
    """|got - exact| in units of the float64 ulp of ``exact`` rounded to float64 (2**-1074 at 0)."""
    with MP:
        return float(abs(gmpy2.mpfr(got) - exact)) / math.ulp(float(exact))


def scalar(f: Any, x: float) -> float:
    out = f(x)
    assert out.shape == ()
    assert out.dtype == np.float64
    return float(out)


# ------------------------------------------------------------------------------------------ erf, erfc
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(0.0)
@example(-0.0)
@example(5e-324)  # the smallest subnormal: x^2 underflows
@example(-(2.0**-1022))
@example(1e-300)
@example(0.46875)
@example(-0.46875)
@example(math.nextafter(0.46875, 1.0))
@example(4.0)
@example(-4.0)
@example(math.nextafter(4.0, 5.0))
@example(math.nextafter(4.0, 0.0))
@example(26.5)  # erfc subnormal
@example(27.25)  # erfc below the smallest subnormal
@example(-27.25)
@example(1e300)
@example(-1.7976931348623157e308)
def test_erf_erfc_within_a_few_ulps_of_mpfr(x: float) -> None:
    with MP:
        ref, refc = gmpy2.erf(x), gmpy2.erfc(x)
    got, gotc = scalar(erf, x), scalar(erfc, x)
    assert ulps(got, ref) <= ERF_ULPS, (x, got, float(ref))
    assert ulps(gotc, refc) <= ERFC_ULPS, (x, gotc, float(refc))
    assert math.copysign(1.0, got) == math.copysign(1.0, x)  # erf is odd, -0.0 included


@pytest.mark.parametrize("edge", CODY_EDGES)
def test_erf_erfc_across_the_branch_boundaries(edge: float) -> None:
    # the 64 floats on each side of each boundary, both signs, in one array
    up = np.nextafter(edge, np.inf) - edge
    x = np.concatenate([edge + up * np.arange(-64, 64), -edge - up * np.arange(-64, 64)])
    got, gotc = erf(x), erfc(x)
    for v, e, c in zip(x.tolist(), got.tolist(), gotc.tolist(), strict=True):
        with MP:
            ref, refc = gmpy2.erf(v), gmpy2.erfc(v)
        assert ulps(e, ref) <= ERF_ULPS, (v, e)
        assert ulps(c, refc) <= ERFC_ULPS, (v, c)


def test_erf_erfc_special_values() -> None:
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    np.testing.assert_array_equal(erf(x), [1.0, -1.0, np.nan, 0.0, -0.0])
    np.testing.assert_array_equal(erfc(x), [0.0, 2.0, np.nan, 1.0, 1.0])
    assert np.signbit(erf(-0.0))


def test_erf_erfc_of_the_largest_floats_are_not_nan() -> None:
    # regression: the exp(-x^2) split computes trunc(16 |x|), which overflowed for |x| > 2**1019.5 and gave
    # exp(-inf) * exp(nan) = NaN there
    big = float(np.finfo(np.float64).max)
    x = np.array([1.2e307, -1.2e307, big, -big])
    np.testing.assert_array_equal(erf(x), [1.0, -1.0, 1.0, -1.0])
    np.testing.assert_array_equal(erfc(x), [0.0, 2.0, 0.0, 2.0])


@pytest.mark.parametrize(
    "x",
    [
        0.5,
        [1, -2],
        np.float32(1.5),
        np.arange(12).reshape(3, 4) - 6,
        np.empty((0, 3)),
        np.ones((5, 6))[:, ::2],
    ],
    ids=["float", "list of int", "float32", "2-D int", "empty", "strided"],
)
def test_erf_erfc_keep_the_shape_and_return_float64(x: Any) -> None:
    shape = np.shape(x)
    for f, exact in ((erf, math.erf), (erfc, math.erfc)):
        out = f(x)
        assert out.shape == shape
        assert out.dtype == np.float64
        ref = np.vectorize(exact, otypes=[np.float64])(np.asarray(x, dtype=np.float64))
        np.testing.assert_allclose(out, ref, rtol=ERFC_ULPS * 2.0**-52, atol=0)


def test_results_do_not_depend_on_the_blocks() -> None:
    # three blocks and a remainder, every branch in every block: a permutation moves each value to another
    # block and position and must give each the same bits
    rng = np.random.default_rng(0)
    x = (
        rng.standard_normal(3 * _BLOCK + 17)
        * np.array([0.2, 1.0, 4.0, 30.0])[rng.integers(0, 4, 3 * _BLOCK + 17)]
    )
    x[rng.integers(0, x.size, 50)] = np.nan
    perm = rng.permutation(x.size)
    for f in (erf, erfc):
        np.testing.assert_array_equal(f(x)[perm], f(x[perm]))
        np.testing.assert_array_equal(f(x[:5]), [scalar(f, v) for v in x[:5]])
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(gelu_erf(x32)[perm], gelu_erf(x32[perm]))


# ------------------------------------------------------------------------------------------ gelu_erf
def gelu_exact(x: float) -> Any:
    """x Phi(x) = x/2 erfc(-x/sqrt 2) in MPFR at 200 bits."""
    with MP:
        return gmpy2.mpfr(x) * gmpy2.erfc(-gmpy2.mpfr(x) / gmpy2.sqrt(2)) / 2


def gelu_ulps(x: float) -> float:
    """The error bound of the float64 value of 0.5 x erfc(-x / sqrt 2), in float64 ulps: erfc's, one
    rounding of the product, and the error of its argument -x * sqrt(1/2) (two roundings, relative
    2 * 2**-53) amplified by erfc's condition number there, at most x**2 + 1."""
    return ERFC_ULPS + 1 + 2 * (x * x + 1)


def float32_neighbours(v: Any) -> tuple[Any, Any]:
    """The float32 values (with subnormals) just below and just above the MPFR value ``v``."""
    return F32_DOWN.plus(v), F32_UP.plus(v)


def assert_gelu_float32(x: np.float32, got: np.float32) -> None:
    """``got`` is the correctly rounded float32 of x Phi(x), or, where x Phi(x) lies within the float64
    error of a float32 rounding boundary, one of its two float32 neighbours."""
    v = gelu_exact(float(x))
    lo, hi = float32_neighbours(v)
    with MP:
        if lo == hi:  # v is a float32 (0, or x where Phi(x) rounds to 1 in MPFR's range)
            assert float(got) == float(lo), (x, got, lo)
            return
        nearest = lo if v - lo < hi - v else hi
        near_boundary = abs(v - (lo + hi) / 2) <= gelu_ulps(float(x)) * math.ulp(float(v))
    allowed = {float(lo), float(hi)} if near_boundary else {float(nearest)}
    assert float(got) in allowed, (x, got, allowed, near_boundary)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
@example(0.0)
@example(-0.0)
@example(1e-45)  # the smallest subnormal: x/2 is a float32 tie in float64, just above it exactly
@example(-1e-45)
@example(3e-45)
@example(1.1754942e-38)  # the largest subnormal
@example(1.1754944e-38)  # the smallest normal
@example(0.46875 * math.sqrt(2))  # the argument of erfc near Cody's first boundary
@example(-0.46875 * math.sqrt(2))
@example(4.0 * math.sqrt(2))  # and near the second
@example(-4.0 * math.sqrt(2))
@example(-14.0)  # x Phi(x) subnormal in float32
@example(-15.0)  # below the smallest subnormal: -0.0
@example(-38.0)  # erfc(-x/sqrt2) underflows in float64
@example(3.4028235e38)
@example(-3.4028235e38)
def test_gelu_float32_is_rounded_once_from_mpfr(x: float) -> None:
    x32 = np.float32(x)
    got = gelu_erf(np.array([x32]))[0]
    assert got.dtype == np.float32
    assert_gelu_float32(x32, got)
    if got == 0:
        assert np.signbit(got) == np.signbit(x32)  # -0.0 for negative x


def test_gelu_float32_is_the_float64_value_rounded_once() -> None:
    # the blocked kernel computes 0.5 * x * erfc(-x * sqrt(1/2)) in float64, operation for operation
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(20_000) * np.float32(3)).astype(np.float32)
    x64 = x.astype(np.float64)
    expected = (0.5 * x64 * erfc(-x64 * math.sqrt(0.5))).astype(np.float32)
    np.testing.assert_array_equal(gelu_erf(x).view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(gelu(x, "erf").view(np.uint32), expected.view(np.uint32))


def test_gelu_on_real_activation_scales_against_mpfr() -> None:
    # a (256, 1536) block of the shape the MiniLM feed-forward layers see; 400 entries checked with MPFR
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((256, 1536)) * 2.0 - 0.5).astype(np.float32)
    got = gelu(x, "erf")
    assert got.shape == x.shape
    assert got.dtype == np.float32
    for i in rng.integers(0, x.size, 400):
        assert_gelu_float32(x.flat[i], got.flat[i])


@given(st.floats(min_value=-40.0, max_value=40.0))
@example(0.0)
@example(-37.0)
def test_gelu_float64_within_a_few_ulps_of_mpfr(x: float) -> None:
    got = gelu_erf(np.array([x]))[0]
    assert got.dtype == np.float64
    assert ulps(float(got), gelu_exact(x)) <= gelu_ulps(x)


def test_gelu_special_values_dtypes_and_shapes() -> None:
    got = gelu_erf(np.float32([np.inf, np.nan, 0.0, -0.0]))
    np.testing.assert_array_equal(got, np.float32([np.inf, np.nan, 0.0, -0.0]))
    assert np.signbit(got[3])
    with np.errstate(invalid="ignore"):  # -inf * erfc(inf) = -inf * 0
        assert np.isnan(gelu_erf(np.float32([-np.inf]))[0])
    assert gelu_erf(np.float16([1.0])).dtype == np.float16
    assert gelu_erf([1, 2]).dtype == np.float64  # integers: float64
    assert gelu_erf(np.float32(1.0)).shape == ()
    assert gelu_erf(np.empty((0, 4), np.float32)).shape == (0, 4)
    strided = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2] - 6
    np.testing.assert_array_equal(gelu_erf(strided), gelu_erf(np.ascontiguousarray(strided)))
