"""Tests of :mod:`lampref.rounding`: ``round_to`` in every mode, ``ulp``, ``next_up``, ``next_down``,
``is_representable``.

Nothing here compares lampref with itself; each group names its oracle.

1. Exhaustive, round to nearest even: every float32 within 2 float32 ulps of a value or of a midpoint of
   fp16, bf16, e4m3, e5m2, e3m2, e2m3, e2m1, and every float16, against NumPy's float16 cast and ml_dtypes'
   casts from float32 (both correctly rounded to nearest even), as float32, float64 and float16 inputs.
2. ``fp32_mantissa(m)``, every deterministic mode: every bf16 bit pattern and every float32 of three whole
   binades against :func:`chop_fp32`, an integer rounding of float32 bit patterns written here, which is
   itself checked against MPFR on a sample.
3. Every gap of the 8-bit-or-smaller presets and of a few odd formats, probed at both ends and at the
   midpoint, every deterministic mode, against MPFR (:func:`lampref.testing.mpfr_round`, through gmpy2).
4. Property-based, grouped like CPFloat's tests: no rounding (representable and special values) /
   deterministic (normal, underflow with and without subnormals, overflow and saturation, ties) / sign
   symmetry, random formats of every encoding against MPFR in every deterministic mode, for float64 inputs
   and, when the value is a float32 value, float32 inputs.
5. Properties whose only oracle is MPFR's pair of neighbours or exact fractions: idempotence,
   monotonicity, faithfulness (every mode returns one of the two neighbours), the error bound
   ``|fl(x) - x| <= u|x|``, ``fl(-x) = -fl(x)``; checked by ``test_properties`` and, where they apply, by
   the tests of group 4 and exhaustively on the probe points of groups 1 and 3.
6. Stochastic modes: the number of times the upper neighbour is picked is binomial; it must lie within
   6 standard deviations of its mean (a false alarm has probability below 2e-9 per check, and the seeds
   are fixed), plus reproducibility contracts.
7. Input handling: result dtype, shapes, integers, float16.
8. ``ulp``, ``next_up``, ``next_down``, ``is_representable``: ``numpy.nextafter`` / ``numpy.spacing`` for
   fp16, fp32, fp64, casts for the ml_dtypes formats, and ``fmt.values()`` for small formats.
9. Malformed arguments.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from _helpers import check_error
from dtype_oracles import CAST_TYPES
from hypothesis import example, given
from hypothesis import strategies as st

from lampref import (
    FloatFormat,
    FormatError,
    InputTypeError,
    InputValueError,
    LamprefError,
    ModeError,
    bf16,
    e2m1,
    e3m2,
    e4m3,
    e5m2,
    fp16,
    fp32,
    fp32_mantissa,
    fp64,
    get_format,
    is_representable,
    next_down,
    next_up,
    round_to,
    ulp,
)
from lampref.rounding import DETERMINISTIC_MODES, MODES, STOCHASTIC_MODES
from lampref.testing import (
    floats_near,
    formats,
    mpfr_neighbours,
    mpfr_round,
    near_overflow,
    subnormals_of,
    ties_of,
    values_in,
)

SYMMETRIC_MODES = ("nearest_even", "nearest_away", "toward_zero", "odd")
NEAREST_MODES = ("nearest_even", "nearest_away")

MX = ("e3m2", "e2m3", "e2m1")  # no inf, no NaN: ml_dtypes encodes a NaN input as a zero

F32_SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 3.4028235e38, -3.4028235e38, 1e-45, -1e-45],
    dtype=np.float32,
)


# ======================================================================== helpers
def same_bits(got: Any, want: Any) -> np.ndarray:
    """Elementwise: both NaN (any sign or payload), or equal values with the same sign bit (so -0.0 != 0.0).

    Values are compared as float64, which holds every float16 / float32 value exactly.
    """
    with np.errstate(invalid="ignore"):  # widening a signalling NaN raises the invalid flag
        g = np.asarray(got, dtype=np.float64)
        w = np.asarray(want, dtype=np.float64)
    both_nan = np.isnan(g) & np.isnan(w)
    return both_nan | ((g == w) & (np.signbit(g) == np.signbit(w)))


def matches(got: np.ndarray, value: float) -> np.ndarray:
    """Elementwise value equality with a scalar (-0.0 == 0.0), NaN matching NaN."""
    return (got == value) | (np.isnan(got) & math.isnan(value))


def show(v: Any) -> str:
    v = float(v)
    return repr(v) if not math.isfinite(v) else f"{v!r} ({v.hex()})"


def assert_same_bits(got: Any, want: Any, x: Any, context: str) -> None:
    """Bit-exact comparison; on failure print how many differ and the first offending inputs."""
    got, want, x = (np.asarray(a).reshape(-1) for a in (got, want, x))
    assert got.shape == want.shape == x.shape, (got.shape, want.shape, x.shape)
    if got.dtype == want.dtype and np.array_equal(
        got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}")
    ):
        return  # identical bit patterns (the fast path for the exhaustive tests)
    ok = same_bits(got, want)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        lines = [f"  x={show(x[i])}  got={show(got[i])}  want={show(want[i])}" for i in bad[:10]]
        raise AssertionError(f"{context}: {bad.size} of {ok.size} differ; first:\n" + "\n".join(lines))


def exact_float32(x: np.ndarray) -> np.ndarray:
    """Mask of the float64 values that are float32 values (NaN and infinities included)."""
    with np.errstate(over="ignore"):
        return np.isnan(x) | (x.astype(np.float32).astype(np.float64) == x)


def check_against_mpfr(fmt: FloatFormat, xs: Any, modes: tuple[str, ...] = DETERMINISTIC_MODES) -> None:
    """round_to == mpfr_round bit for bit, for float64 inputs and for the inputs that are float32 values."""
    x = np.asarray(xs, dtype=np.float64).reshape(-1)
    is32 = exact_float32(x)
    x32 = x[is32].astype(np.float32)
    for mode in modes:
        want = mpfr_round(x, fmt, mode)
        got = round_to(x, fmt, mode)
        assert got.dtype == fmt.dtype
        assert_same_bits(got, want, x, f"{fmt!r} {mode}, float64 input")
        got32 = round_to(x32, fmt, mode)
        assert got32.dtype == fmt.dtype
        assert_same_bits(got32, want[is32], x32, f"{fmt!r} {mode}, float32 input")


def cases(values: Callable[[FloatFormat], st.SearchStrategy[float]], max_size: int = 10, **fmt_options: Any):
    """(format, list of values) pairs: a random format and values drawn for it."""
    return formats(**fmt_options).flatmap(
        lambda f: st.tuples(st.just(f), st.lists(values(f), min_size=1, max_size=max_size))
    )


def float32_neighbourhood(centres: np.ndarray, k: int = 2) -> np.ndarray:
    """The float32 values within k float32 ulps of each centre (a float32 array), both signs."""
    out = [centres]
    up = down = centres
    for _ in range(k):
        with np.errstate(over="ignore"):
            up = np.nextafter(up, np.float32(np.inf))
            down = np.nextafter(down, np.float32(-np.inf))
        out += [up, down]
    both = np.concatenate(out)
    return np.concatenate([both, -both])


def probe_points(fmt: FloatFormat) -> np.ndarray:
    """Float32 values within 2 float32 ulps of every value of a small format and of every midpoint between
    neighbours, including half the smallest positive value and the overflow threshold max + ulp/2.

    The midpoints are exact in float32 for formats of at most 16 bits and p <= 23.
    """
    values = fmt.values().astype(np.float64)
    positive = values[values >= 0]
    beyond = fmt.max + math.ldexp(1.0, fmt.emax - fmt.p + 1)  # the p-bit number after max
    grid = np.append(positive, beyond)
    centres = np.concatenate([grid, (grid[:-1] + grid[1:]) / 2])
    with np.errstate(over="ignore"):
        c32 = centres.astype(np.float32)
    keep = np.isfinite(c32)  # bf16's 2**128 is no float32
    assert np.array_equal(c32[keep].astype(np.float64), centres[keep]), "probe centres must be exact"
    return np.concatenate([float32_neighbourhood(c32[keep]), F32_SPECIALS])


def quiet_nans(x: np.ndarray) -> np.ndarray:
    """Set the quiet bit of every NaN (signalling NaNs have their own test, test_signalling_nan_inputs)."""
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize]
    quiet = uint(1 << (np.finfo(x.dtype).nmant - 1))
    bits = x.view(uint).copy()
    bits[np.isnan(x)] |= quiet
    return bits.view(x.dtype)


ALL_FLOAT16 = quiet_nans(np.arange(1 << 16, dtype=np.uint16).view(np.float16))
ALL_FLOAT16.setflags(write=False)


@functools.cache
def exhaustive_inputs(name: str) -> np.ndarray:
    """The float32 inputs of group 1 for one format (read-only, computed once)."""
    x = np.concatenate([probe_points(get_format(name)), ALL_FLOAT16.astype(np.float32)])
    x.setflags(write=False)
    return x


def cast_oracle(x32: np.ndarray, name: str) -> np.ndarray:
    """Round float32 values to nearest even with NumPy / ml_dtypes, returned as float32."""
    with np.errstate(over="ignore", invalid="ignore"):
        want = x32.astype(CAST_TYPES[name]).astype(np.float32)
    if name in MX:
        # The one documented difference: the MX element types have no NaN; ml_dtypes returns a zero
        # for a NaN input, lampref returns NaN (the MX block scale carries NaN; round_to's Notes).
        nan = np.isnan(x32)
        assert np.all(want[nan] == 0)
        want[nan] = np.nan
    return want


# ============================================================ 1. exhaustive against casts
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CAST_TYPES))
def test_nearest_even_matches_casts_exhaustively(name: str, dtype: type) -> None:
    fmt = get_format(name)
    x32 = exhaustive_inputs(name)
    want = cast_oracle(x32, name)
    got = round_to(x32.astype(dtype), fmt)
    assert got.dtype == np.float32
    assert_same_bits(got, want, x32, f"{name} nearest_even, {np.dtype(dtype).name} input")


@pytest.mark.parametrize("name", list(CAST_TYPES))
def test_float16_inputs_match_casts(name: str) -> None:
    got = round_to(ALL_FLOAT16, name)
    want = cast_oracle(ALL_FLOAT16.astype(np.float32), name)
    assert got.dtype == np.float32
    assert_same_bits(got, want, ALL_FLOAT16, f"{name} nearest_even, float16 input")


# ============================================================ 2. fp32_mantissa against bit patterns
def chop_fp32(x32: np.ndarray, m: int, mode: str) -> np.ndarray:
    """Round float32 values to ``fp32_mantissa(m)`` (0 <= m <= 22) with integer operations on bit patterns.

    ``fp32_mantissa(m)`` keeps float32's exponent field and subnormals, so its values are exactly the
    float32 patterns whose low ``d = 23 - m`` bits are zero, in the normal and the subnormal range alike.
    Rounding keeps the high bits and, as the mode says from the dropped bits, adds one unit ``2**d``; a
    carry ripples into the exponent field, and out of the top binade into the infinity pattern, which is
    IEEE overflow for a format with float32's infinities.
    """
    d = 23 - m
    bits = x32.view(np.uint32)
    negative = (bits >> np.uint32(31)) == 1
    a = bits & np.uint32(0x7FFFFFFF)
    unit = np.uint32(1 << d)
    kept = a & ~(unit - np.uint32(1))
    rest = a & (unit - np.uint32(1))
    half = np.uint32(1 << (d - 1))
    # the last kept significand bit; with p = 1 a normal significand is the single digit 1 (odd)
    last_odd = ((a >> np.uint32(d)) & np.uint32(1)) == 1 if m > 0 else a >= np.uint32(0x00800000)
    inexact = rest != 0
    if mode == "nearest_even":
        up = (rest > half) | ((rest == half) & last_odd)
    elif mode == "nearest_away":
        up = rest >= half
    elif mode == "toward_zero":
        up = np.zeros_like(inexact)
    elif mode == "toward_pos":
        up = inexact & ~negative
    elif mode == "toward_neg":
        up = inexact & negative
    else:  # odd
        up = inexact & ~last_odd
    r = kept + up.astype(np.uint32) * unit
    r = np.where(a >= np.uint32(0x7F800000), a, r)  # infinities and NaNs pass through
    return (r | (bits & np.uint32(0x80000000))).view(np.float32)


ALL_BF16 = quiet_nans((np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)).view(np.float32))
ALL_BF16.setflags(write=False)
BINADES = {  # float32 bit-pattern ranges: all subnormals (and zero), [1, 2), [2**127, 2**128)
    "subnormal": (0x00000000, 0x00800000),
    "one": (0x3F800000, 0x40000000),
    "top": (0x7F000000, 0x7F800000),
}


@functools.cache
def binade(name: str) -> np.ndarray:
    """Every float32 of a binade, each with a random (fixed-seed) sign."""
    lo, hi = BINADES[name]
    bits = np.arange(lo, hi, dtype=np.uint32)
    bits |= np.random.default_rng(len(name)).integers(0, 2, size=bits.size, dtype=np.uint32) << np.uint32(31)
    x = bits.view(np.float32)
    x.setflags(write=False)
    return x


def test_chop_fp32_agrees_with_mpfr() -> None:
    """The bit-pattern reference of group 2 is itself right: MPFR on a sample of its inputs."""
    rng = np.random.default_rng(7)
    pools = [ALL_BF16, *(binade(b) for b in BINADES)]
    sample = np.concatenate([rng.choice(pool, 120, replace=False) for pool in pools])
    sample = sample[np.isfinite(sample)]
    for m in (0, 1, 7, 22):
        for mode in DETERMINISTIC_MODES:
            want = mpfr_round(sample.astype(np.float64), fp32_mantissa(m), mode)
            assert_same_bits(chop_fp32(sample, m, mode), want, sample, f"chop_fp32 m={m} {mode} vs MPFR")


@pytest.mark.parametrize("m", range(23))
def test_fp32_mantissa_every_bf16_pattern(m: int) -> None:
    fmt = fp32_mantissa(m)
    x64 = ALL_BF16.astype(np.float64)
    for mode in DETERMINISTIC_MODES:
        want = chop_fp32(ALL_BF16, m, mode)
        assert_same_bits(round_to(ALL_BF16, fmt, mode), want, ALL_BF16, f"m={m} {mode}, float32 input")
        assert_same_bits(round_to(x64, fmt, mode), want, ALL_BF16, f"m={m} {mode}, float64 input")


@pytest.mark.parametrize(
    ("which", "m", "modes"),
    [
        ("subnormal", 0, DETERMINISTIC_MODES),
        ("subnormal", 7, ("nearest_even", "odd")),
        ("subnormal", 10, DETERMINISTIC_MODES),
        ("one", 1, ("nearest_even",)),
        ("one", 10, ("nearest_even", "toward_neg", "odd")),
        ("top", 0, DETERMINISTIC_MODES),
        ("top", 10, DETERMINISTIC_MODES),
        ("top", 22, ("nearest_even", "toward_pos")),
    ],
)
def test_fp32_mantissa_whole_binades(which: str, m: int, modes: tuple[str, ...]) -> None:
    fmt, x = fp32_mantissa(m), binade(which)
    for mode in modes:
        got = round_to(x, fmt, mode)
        assert got.dtype == np.float32
        assert_same_bits(got, chop_fp32(x, m, mode), x, f"binade {which}, m={m} {mode}, float32 input")


@pytest.mark.parametrize(
    ("which", "m", "mode"), [("subnormal", 0, "odd"), ("one", 10, "nearest_even"), ("top", 22, "toward_neg")]
)
def test_fp32_mantissa_whole_binades_float64_input(which: str, m: int, mode: str) -> None:
    x = binade(which)
    got = round_to(x.astype(np.float64), fp32_mantissa(m), mode)
    assert_same_bits(got, chop_fp32(x, m, mode), x, f"binade {which}, m={m} {mode}, float64 input")


# ============================================================ 3. every gap against MPFR
ODD_FORMATS = {
    "p1": FloatFormat(p=1, emax=3),
    "p1-flush-saturating": FloatFormat(p=1, emax=2, emin=-2, subnormals=False, saturate=True),
    "p2-flush": FloatFormat(p=2, emax=3, subnormals=False),
    "e4m3-saturating": e4m3.replace(saturate=True),
    "e4m3-flush": e4m3.replace(subnormals=False),
    "e5m2-saturating": e5m2.replace(saturate=True),
    "fn-p2": FloatFormat(p=2, emax=3, emin=-1, encoding="fn"),
    "e3m2-flush": e3m2.replace(subnormals=False),
}
GAP_FORMATS = {name: get_format(name) for name in ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1")} | ODD_FORMATS


@pytest.mark.parametrize("name", list(GAP_FORMATS))
def test_every_gap_every_mode_matches_mpfr(name: str) -> None:
    fmt = GAP_FORMATS[name]
    check_against_mpfr(fmt, probe_points(fmt).astype(np.float64))


@pytest.mark.parametrize("name", [*CAST_TYPES, *ODD_FORMATS])
def test_monotone_and_symmetric_on_probe_points(name: str) -> None:
    """Sorted probe points give sorted results; fl(-x) = -fl(x); toward_pos(x) = -toward_neg(-x)."""
    fmt = get_format(name) if name in CAST_TYPES else ODD_FORMATS[name]
    x = probe_points(fmt)
    x = np.sort(x[~np.isnan(x)])
    for mode in DETERMINISTIC_MODES:
        r = round_to(x, fmt, mode).astype(np.float64)
        if mode in SYMMETRIC_MODES:
            assert_same_bits(round_to(-x, fmt, mode), -r, -x, f"{name} {mode}: fl(-x) = -fl(x)")
        r = r[~np.isnan(r)]  # overflow of a non-saturating "fn" format
        down = np.flatnonzero(r[1:] < r[:-1])
        assert down.size == 0, f"{name} {mode}: decreasing at {r[down[:5]]} -> {r[down[:5] + 1]}"
    up, down = round_to(x, fmt, "toward_pos"), round_to(-x, fmt, "toward_neg")
    assert_same_bits(up, -down, x, f"{name}: toward_pos(x) = -toward_neg(-x)")


# ============================================================ 4. random formats against MPFR
# Each hypothesis test draws a random format and a list of values from one of lampref.testing's
# strategies, compares every deterministic mode with MPFR, and checks the properties of group 5 that
# apply (drawing the cases costs more than checking them, so each draw serves several checks).
Case = tuple[FloatFormat, list[float]]


# ------------------------------------------------------------- no rounding
@given(cases(values_in))
def test_representable_values_are_returned_unchanged(case: Case) -> None:
    fmt, xs = case
    x = np.array(xs)
    for mode in MODES:
        assert_same_bits(round_to(x, fmt, mode, rng=0), x, x, f"{fmt!r} {mode}")
    check_against_mpfr(fmt, x)


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"])
def test_every_value_of_small_presets_is_returned_unchanged(name: str) -> None:
    fmt = get_format(name)
    x = np.append(fmt.values(), np.float32(-0.0))
    for mode in MODES:
        for dtype in (np.float32, np.float64):
            got = round_to(x.astype(dtype), fmt, mode, rng=1)
            assert_same_bits(got, x, x, f"{name} {mode}, {np.dtype(dtype).name} input")


SPECIAL_FORMATS = [
    fp16,
    fp64,
    fp16.replace(saturate=True),
    fp64.replace(saturate=True),
    e4m3,
    e4m3.replace(saturate=True),
    e2m1,
    FloatFormat(p=1, emax=3, subnormals=False),
    FloatFormat(p=40, emax=300, encoding="fn"),
    FloatFormat(p=30, emax=1000, encoding="none"),
]


@pytest.mark.parametrize("fmt", SPECIAL_FORMATS, ids=repr)
def test_special_values(fmt: FloatFormat) -> None:
    """Zeros keep their sign, NaN stays NaN, infinity follows the encoding and the overflow policy."""
    if fmt.saturate:
        inf = fmt.max
    elif fmt.encoding == "ieee":
        inf = math.inf
    else:  # "fn": no infinity, non-saturating conversion gives NaN
        inf = math.nan
    x = np.array([0.0, -0.0, math.inf, -math.inf, math.nan, -math.nan])
    want = np.array([0.0, -0.0, inf, -inf, math.nan, math.nan])
    for mode in MODES:
        for dtype in (np.float16, np.float32, np.float64):
            got = round_to(x.astype(dtype), fmt, mode, rng=2)
            assert_same_bits(got, want, x, f"{fmt!r} {mode}, {np.dtype(dtype).name} input")


# ------------------------------------------------------------- deterministic
@given(cases(floats_near))
@example(case=(fp16, [1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11), 1 + 2**-11 + 2**-40]))
@example(case=(fp16, [65504.0, 65520.0, -65520.0, 65519.99, 65536.0, 1e300]))
@example(case=(fp16, [2**-24, -(2**-24), 2**-25, 3 * 2**-26, 2**-25 * (1 + 2**-52), 2**-26]))
@example(case=(fp16, [-0.0, 0.0, math.nan, math.inf, -math.inf]))
@example(
    case=(bf16, [1 + 2**-8 + 2**-30, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8 + 2**-30)])
)  # double rounding
@example(case=(bf16, [3.3895313892515355e38, 3.402823669209385e38, 2**-133, 2**-134, 2**-135]))
@example(case=(e4m3, [448.0, 464.0, 465.0, -464.0, 480.0, 2**-9, 2**-10, 3 * 2**-11, 1e9]))
@example(case=(e5m2, [57344.0, 61440.0, 61439.99, 2**-16, 2**-17, 2**-18]))
@example(case=(e2m1, [5.0, 7.0, -7.0, 6.5, 0.25, 0.75, 1.25, 1.75, 1e30, math.inf, -math.inf]))
@example(case=(e3m2, [30.0, 28.0, 0.03125, 0.09375, 7.5]))
@example(case=(FloatFormat(p=1, emax=3), [3.0, 0.375, 0.125, 0.0625, 12.0, 24.0, -3.0, 6.0, 8.0]))
@example(case=(FloatFormat(p=1, emax=2, emin=-2, saturate=True), [3.0, 6.0, 1e10, math.inf, 0.125]))
@example(case=(fp16.replace(subnormals=False), [2**-15, -(2**-15), 2**-15 * (1 + 2**-20), 2**-16, 2**-14]))
@example(case=(fp64, [0.1, 5e-324, -5e-324, 1.7976931348623157e308, -0.0, math.nan, math.inf]))
@example(case=(fp64.replace(saturate=True), [math.inf, -math.inf, 1e308]))
@example(case=(fp64.replace(subnormals=False), [5e-324, 2**-1023, 1.5 * 2**-1023, 2**-1022, -(2**-1023)]))
@example(case=(FloatFormat(p=52, emax=1023), [1 + 2**-52, 1 + 3 * 2**-52, 2**-1073, 2**-1074]))
def test_deterministic_modes_match_mpfr(case: Case) -> None:
    check_against_mpfr(*case)
    check_sign_symmetry(*case)


@given(cases(subnormals_of, subnormals=True))
@example(case=(fp16, [2**-25, 2**-25 + 2**-60, 3 * 2**-25, 2**-14 - 2**-25, 2**-14 - 2**-26]))
@example(case=(fp64, [5e-324, 2**-1022 - 5e-324, 2**-1023]))
def test_underflow_with_subnormals_matches_mpfr(case: Case) -> None:
    check_against_mpfr(*case)
    check_sign_symmetry(*case)
    check_faithful(*case)


@given(cases(subnormals_of, subnormals=False))
@example(case=(e4m3.replace(subnormals=False), [2**-7, 2**-7 * (1 + 2**-30), 2**-8, 2**-6 - 2**-12]))
@example(case=(FloatFormat(p=3, emax=3, subnormals=False), [0.125, -0.125, 0.12500001, 0.25]))
def test_underflow_without_subnormals_matches_mpfr(case: Case) -> None:
    fmt, xs = case
    check_against_mpfr(fmt, xs)
    check_faithful(fmt, xs)
    # flush to zero: the tie 2**(emin - 1) between 0 and 2**emin goes to zero (even) in nearest_even
    tie = math.ldexp(1.0, fmt.emin - 1)
    assert_same_bits(round_to([tie, -tie], fmt), [0.0, -0.0], [tie, -tie], f"{fmt!r} flush tie")


@given(cases(near_overflow))
@example(case=(fp16, [65520.0, 65519.0, 65504.0 + 2**-30, 65536.0, 131072.0, -65520.0]))
@example(case=(fp16.replace(saturate=True), [65520.0, 1e6, -1e6, math.inf]))
@example(case=(e4m3, [464.0, 465.0, 449.0, 479.0, 480.0, -465.0]))
@example(case=(e4m3.replace(saturate=True), [464.0, 465.0, 1e6, -math.inf]))
@example(case=(e2m1, [5.0, 7.0, 6.5, 8.0, 1e6, -7.0]))
@example(case=(fp64, [1.7976931348623157e308, -1.7976931348623157e308]))
def test_overflow_and_saturation_match_mpfr(case: Case) -> None:
    check_against_mpfr(*case)
    check_sign_symmetry(*case)
    check_monotone(*case)
    check_faithful(*case)


@given(cases(ties_of, max_p=52))
@example(case=(fp16, [1 + 2**-11, 1 + 3 * 2**-11, 65520.0, 2**-25, 3 * 2**-25]))
@example(case=(e2m1, [5.0, 7.0, 0.25, 0.75, 2.5]))
@example(case=(FloatFormat(p=1, emax=4), [3.0, 6.0, 24.0, 0.75]))
def test_ties_match_mpfr(case: Case) -> None:
    check_against_mpfr(*case)
    check_sign_symmetry(*case)


# ============================================================ 5. properties
def check_sign_symmetry(fmt: FloatFormat, xs: list[float]) -> None:
    """fl(-x) = -fl(x) in the symmetric modes and toward_pos(x) = -toward_neg(-x), bit for bit."""
    x = np.array(xs)
    for mode in SYMMETRIC_MODES:
        assert_same_bits(round_to(-x, fmt, mode), -round_to(x, fmt, mode), x, f"{fmt!r} {mode}: sign")
    up, down = round_to(x, fmt, "toward_pos"), round_to(-x, fmt, "toward_neg")
    assert_same_bits(up, -down, x, f"{fmt!r}: toward_pos(x) = -toward_neg(-x)")


def check_idempotent(fmt: FloatFormat, xs: list[float]) -> None:
    """A result of any mode is a value of the format: every mode returns it unchanged."""
    x = np.array(xs)
    first = np.concatenate([round_to(x, fmt, mode, rng=3).astype(np.float64) for mode in MODES])
    for mode in MODES:
        assert_same_bits(round_to(first, fmt, mode, rng=4), first, first, f"{fmt!r} {mode} of results")


def check_monotone(fmt: FloatFormat, xs: list[float]) -> None:
    """Sorted inputs give sorted results in every deterministic mode (NaN results of "fn" overflow aside)."""
    x = np.sort(np.array([v for v in xs if not math.isnan(v)] or [0.0]))
    for mode in DETERMINISTIC_MODES:
        r = round_to(x, fmt, mode).astype(np.float64)
        r = r[~np.isnan(r)]
        assert np.all(r[1:] >= r[:-1]), f"{fmt!r} {mode}: {x.tolist()} -> {r.tolist()}"


def check_faithful(fmt: FloatFormat, xs: list[float]) -> None:
    """Every mode, stochastic ones included, returns one of the two neighbours of x that MPFR gives
    (within the range), or one of the two directed roundings (beyond it, where overflow rules apply);
    the sign, of a zero result too, is the sign of x."""
    x = np.array([v for v in xs if math.isfinite(v) and v != 0] or [1.0])
    allowed = []
    for v in x.tolist():
        if abs(v) <= fmt.max:
            allowed.append([float(n) for n in mpfr_neighbours(v, fmt)])
        else:
            allowed.append([mpfr_round(v, fmt, "toward_neg"), mpfr_round(v, fmt, "toward_pos")])
    for mode in MODES:
        got = round_to(x, fmt, mode, rng=5).astype(np.float64)
        for v, r, options in zip(x.tolist(), got.tolist(), allowed, strict=True):
            assert any(same_bits(abs(r), abs(o)) for o in options), (fmt, mode, v, r, options)
            assert math.isnan(r) or math.copysign(1.0, r) == math.copysign(1.0, v), (fmt, mode, v, r)


def check_error_bound(fmt: FloatFormat, xs: list[float]) -> None:
    """|fl(x) - x| <= u|x| to nearest and < 2u|x| in the other modes, in the normal range, exactly."""
    normal = [v for v in xs if math.isfinite(v) and fmt.smallest_normal <= abs(v) <= fmt.max]
    u = Fraction(fmt.unit_roundoff)
    for mode in MODES:
        got = round_to(np.array(normal, dtype=np.float64), fmt, mode, rng=6)
        for v, r in zip(normal, got.tolist(), strict=True):
            err, size = abs(Fraction(r) - Fraction(v)), abs(Fraction(v))
            if mode in NEAREST_MODES:
                assert err <= u * size, (fmt, mode, v, r)
            else:
                assert err < 2 * u * size, (fmt, mode, v, r)


@given(cases(floats_near))
@example(case=(fp16, [65520.0, 65504.0, 1e-8, -3e-8, 0.1, -0.0, math.nan, math.inf]))
@example(case=(e4m3, [464.0, 465.0, -1e6, 0.001, 2.0**-10]))
@example(case=(FloatFormat(p=1, emax=3, subnormals=False), [3.0, 0.375, -24.0, 0.0625, 0.1]))
def test_properties(case: Case) -> None:
    """Idempotence, monotonicity, faithfulness and the error bound (no oracle but MPFR's neighbours)."""
    check_idempotent(*case)
    check_monotone(*case)
    check_faithful(*case)
    check_error_bound(*case)


# ============================================================ 6. stochastic rounding
DRAWS = 20_000
# (format, x): x strictly between two neighbours, in every regime of the kernel
STOCHASTIC_CASES = [
    (bf16, 0.1),
    (fp16, 1 + 2**-12),  # the midpoint
    (fp16, -(1 + 3 * 2**-13)),  # 3/4 of the way
    (fp16, 1 + 2**-20),  # close to the lower neighbour
    (fp16, 1.2 * 2**-24),  # subnormal range
    (fp16, 0.3 * 2**-24),  # below half the smallest subnormal: 0 or 2**-24
    (fp16, -0.7 * 2**-24),
    (fp16, 2.0**-30),
    (fp16.replace(subnormals=False), 0.3 * 2**-14),  # flush: 0 or 2**-14
    (fp16, 65504.0 + 8.0),  # 65504 or overflow to inf
    (e4m3, -450.0),  # -448 or NaN
    (fp32_mantissa(3), 1.0 + 2**-10),
    (fp32_mantissa(0), 3 * 2**-130),  # p = 1, float32 subnormal input
    (FloatFormat(p=30, emax=200), 1 / 3),  # float64 container
    (FloatFormat(p=5, emax=1023, emin=-1022, subnormals=False), 1.5 * 2**-1023),
]


def overflowed(v: Fraction, fmt: FloatFormat) -> float:
    """The value a neighbour beyond max is returned as (stochastic rounding picked it)."""
    if abs(v) <= Fraction(fmt.max):
        return float(v)
    if fmt.saturate:
        return math.copysign(fmt.max, v)
    return math.copysign(math.inf, v) if fmt.has_inf else math.nan


def draw_many(fmt: FloatFormat, x: float, mode: str, seed: int) -> tuple[np.ndarray, float, float, float]:
    """DRAWS stochastic roundings of x, its two neighbours (as returned) and P(upper) for 'stochastic'."""
    lo, hi = mpfr_neighbours(x, fmt)
    assert lo < Fraction(x) < hi
    p_up = float((Fraction(x) - lo) / (hi - lo))
    got = round_to(np.full(DRAWS, x), fmt, mode, rng=seed).astype(np.float64)
    return got, overflowed(lo, fmt), overflowed(hi, fmt), p_up


def assert_binomial(k: int, n: int, p: float, what: str) -> None:
    """k ~ Binomial(n, p): |k - np| <= 6 sigma (+1 for the discreteness)."""
    bound = 6 * math.sqrt(n * p * (1 - p)) + 1
    assert abs(k - n * p) <= bound, f"{what}: {k} of {n}, expected {n * p:.1f} +- {bound:.1f}"


@pytest.mark.parametrize(("fmt", "x"), STOCHASTIC_CASES)
def test_stochastic_is_unbiased(fmt: FloatFormat, x: float) -> None:
    """P(upper neighbour) = (x - lo) / (hi - lo), so E[fl(x)] = x; the count of upper picks is binomial."""
    got, lo, hi, p_up = draw_many(fmt, x, "stochastic", seed=11)
    is_lo, is_hi = matches(got, lo), matches(got, hi)
    assert np.all(is_lo | is_hi), f"{fmt!r} {x!r}: results outside {{{lo}, {hi}}}: {np.unique(got)}"
    assert np.all(np.isnan(got) | (np.signbit(got) == (x < 0))), "the sign (of zero too) is kept"
    assert_binomial(int(is_hi.sum()), DRAWS, p_up, f"{fmt!r} stochastic x={x!r}")
    if abs(lo) <= fmt.max and abs(hi) <= fmt.max:  # the same statement on the mean (NaN compares False)
        sigma = (hi - lo) * math.sqrt(p_up * (1 - p_up) / DRAWS)
        assert abs(got.mean() - x) <= 6 * sigma + (hi - lo) / DRAWS


@pytest.mark.parametrize(("fmt", "x"), [*STOCHASTIC_CASES, (fp16, 1 + 2**-40)])
def test_stochastic_equal_picks_each_neighbour_half_the_time(fmt: FloatFormat, x: float) -> None:
    got, lo, hi, _ = draw_many(fmt, x, "stochastic_equal", seed=12)
    is_lo, is_hi = matches(got, lo), matches(got, hi)
    assert np.all(is_lo | is_hi), f"{fmt!r} {x!r}: results outside {{{lo}, {hi}}}: {np.unique(got)}"
    assert_binomial(int(is_hi.sum()), DRAWS, 0.5, f"{fmt!r} stochastic_equal x={x!r}")


def test_stochastic_mean_of_an_array() -> None:
    n = 100_000
    got = round_to(np.full(n, 0.1), bf16, "stochastic", rng=0).astype(np.float64)
    lo, hi = (float(v) for v in mpfr_neighbours(0.1, bf16))
    p = (0.1 - lo) / (hi - lo)
    assert abs(got.mean() - 0.1) <= 6 * (hi - lo) * math.sqrt(p * (1 - p) / n)


def mixed_values(n: int, seed: int) -> np.ndarray:
    """float32 values from the subnormal range of fp16 to beyond its overflow, both signs."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(1, 2, n) * np.exp2(rng.integers(-30, 18, n)) * rng.choice([-1.0, 1.0], n)
    return x.astype(np.float32)


@pytest.mark.parametrize("mode", STOCHASTIC_MODES)
@pytest.mark.parametrize("fmt", [fp16, bf16, e4m3, e2m1, fp32_mantissa(3), FloatFormat(p=20, emax=200)])
def test_stochastic_reproducible(mode: str, fmt: FloatFormat) -> None:
    x32 = mixed_values(5000, seed=1)
    first = round_to(x32, fmt, mode, rng=123)
    assert_same_bits(round_to(x32, fmt, mode, rng=123), first, x32, "same seed")
    assert_same_bits(round_to(x32, fmt, mode, rng=np.random.default_rng(123)), first, x32, "Generator")
    assert_same_bits(round_to(x32, fmt, mode, rng=np.int64(123)), first, x32, "numpy integer seed")
    # element i uses the i-th word: the input dtype does not matter
    assert_same_bits(round_to(x32.astype(np.float64), fmt, mode, rng=123), first, x32, "float64 input")
    with np.errstate(over="ignore"):
        x16 = x32.astype(np.float16)
    from64 = round_to(x16.astype(np.float64), fmt, mode, rng=9)
    assert_same_bits(round_to(x16, fmt, mode, rng=9), from64, x16, "float16 input")
    other = round_to(x32, fmt, mode, rng=124)
    assert not same_bits(other, first).all(), "another seed should change some results"


@pytest.mark.parametrize("mode", STOCHASTIC_MODES)
def test_stochastic_element_i_uses_word_i(mode: str) -> None:
    n = 70_000  # more than one internal chunk
    x = mixed_values(n, seed=2).astype(np.float64)
    full = round_to(x, fp16, mode, rng=5)
    assert_same_bits(round_to(x[:1000], fp16, mode, rng=5), full[:1000], x[:1000], "prefix")
    assert_same_bits(round_to(x.reshape(7, 100, 100), fp16, mode, rng=5).reshape(-1), full, x, "3-D, C order")
    fortran = np.asfortranarray(x.reshape(700, 100))
    assert_same_bits(round_to(fortran, fp16, mode, rng=5).reshape(-1), full, x, "Fortran-ordered input")
    # exactly n 64-bit words are drawn, so a Generator goes on where a fresh one would after n words
    gen, fresh = np.random.default_rng(5), np.random.default_rng(5)
    round_to(x, fp16, mode, rng=gen)
    fresh.bit_generator.random_raw(n)
    assert gen.bit_generator.state == fresh.bit_generator.state
    # and a Generator used twice gives fresh randomness
    assert not same_bits(round_to(x, fp16, mode, rng=gen), full).all()


@pytest.mark.parametrize("mode", STOCHASTIC_MODES)
@pytest.mark.parametrize("bad", [None, 1.5, "7", True, [1, 2]])
def test_stochastic_needs_a_generator_or_seed(mode: str, bad: object) -> None:
    with pytest.raises(ModeError, match="rng") as err:
        round_to([0.1], bf16, mode, rng=bad)  # type: ignore[arg-type]
    assert isinstance(err.value, ValueError)


# ============================================================ 7. input handling
@pytest.mark.parametrize(
    "fmt",
    [fp16, bf16, e2m1, fp32, fp64, fp32_mantissa(0), FloatFormat(p=25, emax=127), FloatFormat(p=8, emax=500)],
)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.uint8, np.bool_])
def test_result_dtype(fmt: FloatFormat, dtype: type) -> None:
    want = np.float32 if fmt.fits_float32 else np.float64
    assert round_to(np.ones(3, dtype=dtype), fmt).dtype == want
    assert round_to(np.ones(3, dtype=dtype), fmt, "stochastic", rng=0).dtype == want


@pytest.mark.parametrize(
    ("x", "fmt", "want_type"),
    [
        (0.1, bf16, np.float32),
        (1 / 3, fp64, np.float64),
        (np.float16(1.5), fp16, np.float32),
        (np.array(0.1), fp16, np.float32),
        (np.array(7, dtype=np.int8), e4m3, np.float32),
        (3, fp16, np.float32),
        (True, fp64, np.float64),
    ],
)
def test_0d_input_gives_a_numpy_scalar(x: Any, fmt: FloatFormat, want_type: type) -> None:
    for mode in ("nearest_even", "stochastic"):
        r = round_to(x, fmt, mode, rng=0)
        assert type(r) is want_type
        assert not isinstance(r, np.ndarray)
    assert float(round_to(x, fmt)) == mpfr_round(float(x), fmt)


@pytest.mark.parametrize("shape", [(0,), (2, 0, 3), (0, 0)])
@pytest.mark.parametrize("mode", ["nearest_even", "odd", "stochastic"])
def test_empty_arrays(shape: tuple[int, ...], mode: str) -> None:
    for fmt in (fp16, fp64):
        r = round_to(np.empty(shape), fmt, mode, rng=0)
        assert r.shape == shape
        assert r.dtype == fmt.dtype


@pytest.mark.parametrize("fmt", [fp16, e4m3, FloatFormat(p=40, emax=300)])
def test_shapes_and_layouts(fmt: FloatFormat) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5)) * np.exp2(rng.integers(-30, 20, (3, 4, 5)))
    before = x.copy()
    for mode in DETERMINISTIC_MODES:
        r = round_to(x, fmt, mode)
        assert r.shape == x.shape
        want = mpfr_round(x, fmt, mode)
        assert_same_bits(r, want, x, f"{fmt!r} {mode} 3-D")
        assert_same_bits(round_to(x.transpose(2, 0, 1), fmt, mode), want.transpose(2, 0, 1), x, "transposed")
        assert_same_bits(round_to(x[:, ::2, 1:], fmt, mode), want[:, ::2, 1:], x[:, ::2, 1:], "strided")
    assert np.array_equal(x, before), "the input must not be modified"
    nested = round_to([[1.0, 2.5], [1 / 3, -7.0]], fmt)
    assert nested.shape == (2, 2)
    assert_same_bits(nested, mpfr_round([[1.0, 2.5], [1 / 3, -7.0]], fmt), nested, "nested lists")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint8])
def test_integer_inputs_are_exact(dtype: type) -> None:
    info = np.iinfo(dtype)
    candidates = [0, 1, -1, 7, -7, 255, 2**24 + 1, -(2**24 + 1), 2**53 - 1, 2**53, -(2**53), 123456789012345]
    ints = np.array([v for v in candidates if info.min <= v <= info.max], dtype=dtype)
    as_float = np.array([float(v) for v in ints.tolist()])  # exact: |v| <= 2**53
    for fmt in (fp16, bf16, e4m3, fp32, fp64, FloatFormat(p=40, emax=100)):
        for mode in DETERMINISTIC_MODES:
            assert_same_bits(
                round_to(ints, fmt, mode), mpfr_round(as_float, fmt, mode), ints, f"{dtype} {fmt!r}"
            )
    assert round_to(2**53, fp64) == 2.0**53
    assert round_to(-(2**53), fp64) == -(2.0**53)


def test_boolean_inputs() -> None:
    assert_same_bits(round_to(np.array([True, False]), e2m1), [1.0, 0.0], [1, 0], "bool")


@pytest.mark.parametrize(
    "x",
    [
        np.array([2**53 + 1], dtype=np.int64),
        np.array([-(2**53) - 1], dtype=np.int64),
        np.array([0, 2**63 - 1], dtype=np.int64),
        np.array([2**63], dtype=np.uint64),
        np.array([2**53 + 2], dtype=np.uint64),
        2**53 + 1,
        -(2**60),
        2**64,  # NumPy holds it in an object array, but it is an integer beyond 2**53
        [2**70],
    ],
)
def test_integers_beyond_2_53_are_refused(x: Any) -> None:
    with pytest.raises(InputValueError, match="2\\*\\*53") as err:
        round_to(x, fp64)
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, LamprefError)


# ============================================================ 8. ulp, next_up, next_down, is_representable
NUMPY_FORMATS = [(fp16, np.float16), (fp32, np.float32), (fp64, np.float64)]


def ieee_sample(dtype: type) -> np.ndarray:
    """Every float16; for float32 / float64 random bit patterns, powers of two and their neighbours."""
    if dtype is np.float16:
        return ALL_FLOAT16
    fi = np.finfo(dtype)
    uint = np.uint32 if dtype is np.float32 else np.uint64
    rng = np.random.default_rng(2024)
    patterns = quiet_nans(
        rng.integers(0, np.iinfo(uint).max, size=40_000, dtype=uint, endpoint=True).view(dtype)
    )
    powers = np.ldexp(np.ones(1, dtype=dtype), np.arange(fi.minexp - fi.nmant, fi.maxexp)).astype(dtype)
    edges = np.array([0.0, np.inf, np.nan, fi.max, fi.smallest_normal, fi.smallest_subnormal], dtype=dtype)
    centres = np.concatenate([powers, edges])
    with np.errstate(over="ignore"):
        near = [centres, np.nextafter(centres, dtype(np.inf)), np.nextafter(centres, dtype(-np.inf))]
    out = np.concatenate([patterns, *near])
    return np.concatenate([out, -out])


@pytest.mark.parametrize(("fmt", "dtype"), NUMPY_FORMATS)
def test_next_up_down_match_nextafter(fmt: FloatFormat, dtype: type) -> None:
    x = ieee_sample(dtype)
    up, down = next_up(x, fmt), next_down(x, fmt)
    assert up.dtype == down.dtype == fmt.dtype
    with np.errstate(over="ignore"):
        up_want, down_want = np.nextafter(x, dtype(np.inf)), np.nextafter(x, dtype(-np.inf))
    assert_same_bits(up, up_want, x, f"next_up {fmt!r}")
    assert_same_bits(down, down_want, x, f"next_down {fmt!r}")


@pytest.mark.parametrize(("fmt", "dtype"), NUMPY_FORMATS)
def test_ulp_matches_spacing(fmt: FloatFormat, dtype: type) -> None:
    x = ieee_sample(dtype)
    a = np.abs(x)
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.spacing(a)  # the gap above |x|: inf at max, so use the gap below there
    top = np.nextafter(dtype(fmt.max), dtype(0))
    want = np.where(a == dtype(fmt.max), dtype(fmt.max) - top, spacing)
    want = np.where(np.isinf(a), a, want)
    got = ulp(x, fmt)
    assert got.dtype == fmt.dtype
    assert_same_bits(got, want, x, f"ulp {fmt!r}")


def test_next_up_down_of_arbitrary_float32_in_fp16() -> None:
    """For x not in fp16: next_up is the fp16 cast of x, or the value after it when the cast is <= x."""
    x = exhaustive_inputs("fp16")
    with np.errstate(over="ignore"):
        r = x.astype(np.float16)
        up_want = np.where(r.astype(np.float32) <= x, np.nextafter(r, np.float16(np.inf)), r)
        down_want = np.where(r.astype(np.float32) >= x, np.nextafter(r, np.float16(-np.inf)), r)
    assert_same_bits(next_up(x, fp16), up_want, x, "next_up fp16, float32 input")
    assert_same_bits(next_down(x, fp16), down_want, x, "next_down fp16, float32 input")


@pytest.mark.parametrize("name", list(CAST_TYPES))
def test_is_representable_matches_casts(name: str) -> None:
    fmt = get_format(name)
    x = exhaustive_inputs(name)
    with np.errstate(over="ignore", invalid="ignore"):
        round_trip = x.astype(CAST_TYPES[name]).astype(np.float32)
    want = np.where(np.isfinite(x), round_trip == x, np.where(np.isnan(x), fmt.has_nan, fmt.has_inf))
    got = is_representable(x, fmt)
    assert got.dtype == np.bool_
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{name}: {[(show(x[i]), bool(got[i])) for i in bad[:10]]}"


def check_neighbours_by_enumeration(fmt: FloatFormat) -> None:
    """ulp / next_up / next_down / is_representable against the sorted list of the format's values."""
    v = fmt.values().astype(np.float64)
    n = len(v)
    assert np.array_equal(next_up(v, fmt), np.append(v[1:], np.inf))  # the largest steps to inf
    assert np.array_equal(next_down(v, fmt), np.insert(v[:-1], 0, -np.inf))
    assert is_representable(v, fmt).all()
    mids = (v[:-1] + v[1:]) / 2
    beyond = fmt.max + math.ldexp(1.0, fmt.emax - fmt.p + 1)
    assert not is_representable(np.concatenate([mids, [beyond, -beyond]]), fmt).any()
    assert is_representable([np.inf, -np.inf], fmt).tolist() == [fmt.has_inf] * 2
    assert bool(is_representable(np.nan, fmt)) == fmt.has_nan
    # an arbitrary x (here midpoints, quarter points and values beyond the range)
    x = np.concatenate([mids, (3 * v[:-1] + v[1:]) / 4, [beyond, -beyond, 2 * beyond]])
    after = np.searchsorted(v, x, side="right")
    before = np.searchsorted(v, x, side="left") - 1
    assert np.array_equal(next_up(x, fmt), np.where(after < n, v[np.minimum(after, n - 1)], np.inf))
    assert np.array_equal(next_down(x, fmt), np.where(before >= 0, v[np.maximum(before, 0)], -np.inf))
    # ulp: the gap above each positive value below max; at max the gap below (the binade's spacing)
    pos = v[v > 0]
    assert np.array_equal(ulp(pos[:-1], fmt), pos[1:] - pos[:-1])
    assert np.array_equal(ulp(-pos[:-1], fmt), pos[1:] - pos[:-1])
    power_of_two = math.frexp(fmt.max)[0] == 0.5  # p = 1, or p = 2 with "fn": the gap above counts
    assert float(ulp(fmt.max, fmt)) == (fmt.max * fmt.eps if power_of_two else fmt.max - pos[-2])


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"])
def test_neighbours_of_small_presets_by_enumeration(name: str) -> None:
    check_neighbours_by_enumeration(get_format(name))


@given(formats(max_p=6, max_emax=12).filter(lambda f: f.bits <= 12))
def test_neighbours_of_random_small_formats_by_enumeration(fmt: FloatFormat) -> None:
    check_neighbours_by_enumeration(fmt)


def test_ulp_of_zero_and_specials() -> None:
    assert float(ulp(0.0, fp16)) == 2.0**-24
    assert float(ulp(-0.0, bf16)) == 2.0**-133
    assert np.isinf(ulp(np.inf, fp16))
    assert np.isnan(ulp(np.nan, fp16))
    assert np.isnan(next_up(np.nan, e4m3))
    assert np.isnan(next_down(np.nan, fp64))
    assert float(next_up(-np.inf, e2m1)) == -6.0
    assert float(next_up(6.0, e2m1)) == np.inf  # also where the format has no infinity


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_signalling_nan_inputs(dtype: type) -> None:
    """A signalling NaN gives NaN, quietly: no RuntimeWarning (an error in this suite) from widening it."""
    uint = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}[dtype]
    fi = np.finfo(dtype)
    exponent_ones = ((1 << fi.nexp) - 1) << fi.nmant
    snan = np.array([exponent_ones | 1, (1 << (fi.bits - 1)) | exponent_ones | 1], dtype=uint).view(dtype)
    assert np.isnan(snan).all()
    for fmt in (fp16, bf16, e4m3, e2m1, fp32, fp64, FloatFormat(p=30, emax=200)):
        for mode in MODES:
            assert np.isnan(round_to(snan, fmt, mode, rng=0)).all(), (fmt, mode)
        for function in (ulp, next_up, next_down):
            assert np.isnan(function(snan, fmt)).all(), (fmt, function.__name__)
        assert (is_representable(snan, fmt) == fmt.has_nan).all()


# ============================================================ 9. malformed arguments
@pytest.mark.parametrize("mode", ["nearest", "round_to_nearest_even", "NEAREST_EVEN", "", None, 0])
def test_unknown_mode(mode: Any) -> None:
    with pytest.raises(ModeError) as err:
        round_to([1.0], fp16, mode)
    check_error(err, f"mode={mode!r}", *(repr(m) for m in MODES))


def test_mode_groups_say_which_modes_need_rng() -> None:
    """DETERMINISTIC_MODES and STOCHASTIC_MODES, exported at the top level, split MODES by whether ``rng=``
    is required: exactly the stochastic ones refuse to run without it."""
    import lampref

    assert lampref.DETERMINISTIC_MODES is DETERMINISTIC_MODES
    assert lampref.STOCHASTIC_MODES is STOCHASTIC_MODES
    assert sorted(DETERMINISTIC_MODES + STOCHASTIC_MODES) == sorted(MODES)
    for mode in MODES:
        if mode in STOCHASTIC_MODES:
            with pytest.raises(ModeError, match="rng"):
                round_to([0.1], fp16, mode)
        else:
            assert float(round_to(0.5, fp16, mode)) == 0.5


def test_rounder_errors_are_lampref_errors() -> None:
    from lampref.rounding import Rounder

    with pytest.raises(FormatError) as err:
        Rounder(fp64, "nearest_even", np.float32)
    check_error(err, "dtype=float32", "float64")
    with pytest.raises(ModeError) as err:
        Rounder(fp16, "nearest")
    check_error(err, "mode='nearest'", "'nearest_even'")


def test_unknown_format_name() -> None:
    with pytest.raises(FormatError) as err:
        round_to([1.0], "fp17")
    check_error(err, "format='fp17'", "'fp16'", "'bf16'")
    for function in (ulp, next_up, next_down, is_representable):
        with pytest.raises(FormatError):
            function([1.0], "fp17")


LONGDOUBLE_IS_WIDER = np.dtype(np.longdouble).itemsize > 8


@pytest.mark.parametrize(
    ("x", "dtype_name"),
    [
        (np.array([1 + 2j]), "complex128"),
        (np.array([1.0], dtype=np.complex64), "complex64"),
        (np.array([1.0, None], dtype=object), "object"),
        (np.array(["1.0"]), "<U3"),
        (np.array([b"1"]), "|S1"),
        pytest.param(
            np.array([1.0], dtype=np.longdouble),
            str(np.dtype(np.longdouble)),
            marks=pytest.mark.skipif(not LONGDOUBLE_IS_WIDER, reason="long double is double here"),
        ),
    ],
)
def test_inputs_that_cannot_be_rounded_exactly(x: np.ndarray, dtype_name: str) -> None:
    for function in (
        lambda a: round_to(a, fp16),
        lambda a: round_to(a, fp16, "stochastic", rng=0),
        lambda a: ulp(a, fp16),
        lambda a: next_up(a, fp16),
        lambda a: next_down(a, fp16),
        lambda a: is_representable(a, fp16),
    ):
        with pytest.raises(InputTypeError) as err:
            function(x)
        check_error(err, "x has dtype", dtype_name, "float16, float32, float64")
