"""Stochastic rounding with r random bits (``round_to(..., "stochastic", random_bits=r)``).

Oracle: exact rational arithmetic (``fractions.Fraction``). The result of an element depends only on the
top r bits of its random word, so running the kernel once for each of the 2**r possible values gives the
exact distribution, and its mean is compared with the stated expected value

    E[fl(x)] = sign(x) * (a + (b - a) * floor(2**r * f) / 2**r),   f = (|x| - a) / (b - a),

where a <= |x| < b are the neighbours of |x| (computed here from the format's grid in Fractions). The
mean bias over a binade of inputs is checked against -(b - a) * (2**-r - 2**-d) / 2 for inputs with d
discarded bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from _helpers import check_error
from hypothesis import given
from hypothesis import strategies as st

from lampref import FloatFormat, ModeError, get_format, p3109, round_to
from lampref.rounding import Rounder


class _Words:
    """A stand-in generator whose ``integers`` hands out prepared 64-bit words in order."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words
        self.at = 0

    def integers(self, *args: Any, size: int, **kwargs: Any) -> np.ndarray:
        out = self.words[self.at : self.at + size]
        self.at += size
        return out


def _distributions(x: np.ndarray, fmt: FloatFormat, r: int) -> np.ndarray:
    """``[len(x), 2**r]``: fl(x[i]) for each of the 2**r values of the top r bits of the random word
    (float64 container)."""
    words = np.arange(1 << r, dtype=np.uint64) << np.uint64(64 - r)  # [2**r]
    rounder = Rounder(fmt, "stochastic", np.float64, random_bits=r)
    xs = np.repeat(np.asarray(x, dtype=np.float64), 1 << r)  # [n * 2**r]
    out = rounder(xs, _Words(np.tile(words, len(x))))  # type: ignore[arg-type]
    return np.asarray(out, dtype=np.float64).reshape(len(x), 1 << r)


def _distribution(x: float, fmt: FloatFormat, r: int) -> list[float]:
    """fl(x) for each of the 2**r values of the top r bits of the random word."""
    return [float(v) for v in _distributions(np.array([x]), fmt, r)[0]]


def _neighbours(x: Fraction, fmt: FloatFormat) -> tuple[Fraction, Fraction]:
    """The grid points a <= |x| < b of ``fmt`` (unbounded above), from its spacing 2**(max(e, emin)-p+1)."""
    assert fmt.emin is not None
    m = abs(x)
    e = max(math.floor(math.log2(m)) if m else fmt.emin, fmt.emin)
    if m and Fraction(2) ** e > m:  # log2 rounding near a power of two
        e -= 1
    if m >= Fraction(2) ** (e + 1):
        e += 1
    step = Fraction(2) ** (max(e, fmt.emin) - fmt.p + 1)
    a = (m // step) * step
    return a, a + step


def expected(x: float, fmt: FloatFormat, r: int) -> Fraction:
    """The stated expected value of r-bit stochastic rounding of ``x`` (exact)."""
    fx = Fraction(x)
    a, b = _neighbours(fx, fmt)
    f = (abs(fx) - a) / (b - a)
    mean = a + (b - a) * Fraction(math.floor(f * 2**r), 2**r)
    return -mean if fx < 0 else mean


FORMATS = [get_format("bf16"), get_format("fp16"), p3109(8, 3), p3109(8, 4, signed=False), get_format("e5m2")]


@given(
    st.sampled_from(FORMATS),
    st.integers(1, 10),
    st.floats(min_value=2.0**-30, max_value=2.0**14, allow_subnormal=False),
    st.booleans(),
)
def test_expected_value_is_the_stated_formula(fmt: FloatFormat, r: int, x: float, negative: bool) -> None:
    x = min(x, fmt.max * 0.99)
    if negative and fmt.signed:
        x = -x
    values = _distribution(x, fmt, r)
    mean = sum(map(Fraction, values)) / len(values)
    assert mean == expected(x, fmt, r), (fmt, x.hex(), r)
    a, b = _neighbours(Fraction(x), fmt)
    assert {abs(Fraction(v)) for v in values} <= {a, b}  # faithful


@pytest.mark.parametrize("r", [1, 2, 4, 8])
@pytest.mark.parametrize("x", [2.0**-26 * 1.3, 2.0**-25 * 0.75, 2.0**-27])  # below half fp16's 2**-24
def test_expected_value_below_the_smallest_step(r: int, x: float) -> None:
    fmt = get_format("fp16")
    values = _distribution(x, fmt, r)
    assert sum(map(Fraction, values)) / len(values) == expected(x, fmt, r)


@pytest.mark.parametrize("r", [1, 2, 3, 4, 6, 8, 12])
def test_mean_bias_over_a_binade(r: int) -> None:
    # every float32 of [1, 2) that fp16 cannot hold exactly drops d = 13 bits: the bias, averaged over all
    # 2**13 discarded patterns, is -ulp * (2**-r - 2**-d) / 2 (zero when r >= d)
    fmt, d = get_format("fp16"), 13
    ulp = Fraction(1, 2**10)
    x = 1.0 + np.arange(1 << d, dtype=np.float64) * 2.0**-23
    out = _distributions(x, fmt, r)
    # every value is a multiple of 2**-23 in [1, 2]: integer sums in units of 2**-23 are exact
    total = int(np.round((out - x[:, None]) * 2.0**23).astype(np.int64).sum())
    bias = Fraction(total, 2**23) / ((1 << d) << r)
    assert bias == -ulp * (Fraction(1, 2**r) - Fraction(1, 2**d) if r < d else 0) / 2


def test_enough_bits_are_the_exact_mode() -> None:
    # bf16 from float32 drops 16 bits: with r >= 16 the words are used exactly as in the exact mode
    x = np.random.default_rng(5).standard_normal(70_000).astype(np.float32)
    exact = round_to(x, "bf16", "stochastic", rng=11)
    assert np.array_equal(round_to(x, "bf16", "stochastic", rng=11, random_bits=None), exact)
    for r in (16, 30, 52):
        assert np.array_equal(round_to(x, "bf16", "stochastic", rng=11, random_bits=r), exact)
    assert not np.array_equal(round_to(x, "bf16", "stochastic", rng=11, random_bits=4), exact)


def test_few_bits_statistics() -> None:
    # 1.3 in bf16: a = 1.296875, f = 0.4; with r = 2, P(b) = floor(1.6) / 4 = 1/4 instead of 0.4
    n = 200_000
    out = round_to(np.full(n, 1.3), "bf16", "stochastic", rng=3, random_bits=2)
    ups = int(np.count_nonzero(out > 1.3))
    assert abs(ups - n / 4) < 6 * math.sqrt(n * 0.25 * 0.75)


def _fails(call: Callable[[], object], *fragments: str) -> None:
    with pytest.raises(ModeError) as err:
        call()
    check_error(err, *fragments)


def test_random_bits_is_checked() -> None:
    _fails(lambda: round_to(1.0, "bf16", "nearest_even", random_bits=4), "random_bits", "stochastic")
    _fails(lambda: round_to(1.0, "bf16", "stochastic_equal", rng=0, random_bits=4), "random_bits")
    for bad in (0, 53, 2.5, "4", True):
        _fails(lambda bad=bad: round_to(1.0, "bf16", "stochastic", rng=0, random_bits=bad), "random_bits")
