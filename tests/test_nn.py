"""Tests of lampref.nn (the transformer operations) and lampref.special (erf, erfc).

Oracles: exact rationals (``fractions.Fraction``) and MPFR (gmpy2) for the score site, scipy's softmax in
float64 for the masked softmax, and direct float64 formulas for attention. Tolerances for float32 results come
from the unit roundoff u = 2**-24 and the gamma_n bound of the sums involved.
"""

from __future__ import annotations

import math
from fractions import Fraction

import gmpy2
import numpy as np
import pytest
import scipy.special
from hypothesis import example, given
from hypothesis import strategies as st

from lampref import Accumulator, fp32_mantissa
from lampref.errors import InputValueError
from lampref.nn import (
    attention,
    attention_scores,
    causal_mask,
    causal_softmax,
    gelu,
    mask_scores,
    masked_softmax,
    softmax,
)
from lampref.special import erf, erfc

U32 = 2.0**-24


def _gamma(n: int) -> float:
    return n * U32 / (1 - n * U32)


# ------------------------------------------------------------------------------------------ masks
def test_causal_mask_matches_the_definition() -> None:
    for start, n, L in ((0, 4, 4), (3, 2, 8), (5, 1, 6), (0, 3, 8)):
        m = causal_mask(start, n, L)
        assert m.shape == (n, L)
        assert m.dtype == np.bool_
        for i in range(n):
            for j in range(L):
                assert bool(m[i, j]) == (j <= start + i)


def test_masked_softmax_is_the_softmax_of_the_visible_keys() -> None:
    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((3, 4, 9)) * 5).astype(np.float32)
    padding = np.array([True] * 6 + [False] * 3)  # an encoder's padding mask, [L]
    for visible in (padding, causal_mask(2, 4, 9)):
        p = masked_softmax(scores, visible)
        vis = np.broadcast_to(visible, scores.shape)
        assert p.dtype == np.float32
        assert np.all(p[~vis] == 0)
        for idx in np.ndindex(scores.shape[:-1]):
            row = scores[idx].astype(np.float64)[vis[idx]]
            ref = scipy.special.softmax(row)
            # exp, a sum of at most 9 terms and a division in float32: within gamma_12 relative
            np.testing.assert_allclose(p[idx][vis[idx]], ref, rtol=_gamma(12), atol=0)
    np.testing.assert_array_equal(causal_softmax(scores, 2), masked_softmax(scores, causal_mask(2, 4, 9)))


def test_mask_scores_keeps_the_dtype() -> None:
    s = np.float32([[1, 2], [3, 4]])
    out = mask_scores(s, np.array([[True, False], [True, True]]))
    assert out.dtype == np.float32
    assert out.tolist() == [[1.0, -math.inf], [3.0, 4.0]]
    assert softmax(np.float64([[0.0, -np.inf]])).tolist() == [[1.0, 0.0]]


# ------------------------------------------------------------------------------------- score site
def test_score_site_exact_when_nothing_rounds() -> None:
    """Small integers, d = 16: every product and sum is exact in 11 bits and sqrt(16) = 4 divides exactly,
    so the score site returns the exact rational q.k / 4 under the accumulator and in BLAS."""
    rng = np.random.default_rng(1)
    q = rng.integers(-3, 4, (2, 3, 16)).astype(np.float32)
    k = rng.integers(-3, 4, (2, 5, 16)).astype(np.float32)
    exact = [
        [[float(sum(Fraction(int(a)) * int(b) for a, b in zip(q[h, i], k[h, j], strict=True)) / 4)
          for j in range(5)] for i in range(3)]
        for h in range(2)
    ]  # fmt: skip
    for acc in (None, Accumulator(fp32_mantissa(10))):
        s = attention_scores(q, k, acc)
        assert s.dtype == np.float32
        assert s.shape == (2, 3, 5)
        assert s.tolist() == exact


@given(
    x=st.floats(-100, 100, allow_nan=False, width=32),
    y=st.floats(-100, 100, allow_nan=False, width=32),
    m=st.integers(1, 10),
)
@example(x=5.0, y=2.0, m=1)  # 10 -> 8: a tie to even at 2 bits
def test_score_site_rounds_twice_like_mpfr(x: float, y: float, m: int) -> None:
    """d = 1: the score is x*y rounded to m+1 bits (the accumulation), divided by sqrt(1) = 1 and rounded
    again (a no-op on a representable value): MPFR's correctly rounded product at precision m+1."""
    exact = x * y  # float32 operands: the float64 product is exact
    with gmpy2.context(precision=m + 1, round=gmpy2.RoundToNearest):
        ref = float(gmpy2.mpfr(exact))
    if ref != 0 and abs(ref) < 2.0**-126:
        return  # below the normal range of fp32_mantissa(m): the subnormal rules of the format apply
    s = attention_scores(np.float32([[[x]]]), np.float32([[[y]]]), Accumulator(fp32_mantissa(m)))
    assert float(s[0, 0, 0]) == ref


# -------------------------------------------------------------------------------------- attention
def test_attention_with_padding_matches_float64() -> None:
    rng = np.random.default_rng(2)
    H, n, L, d = 2, 5, 7, 8
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for shape in ((H, n, d), (H, L, d), (H, L, d)))
    visible = np.array([True] * 5 + [False] * 2)[None, :]  # [1, L]: the last two keys are padding
    out, probs = attention(q, k, v, visible)
    q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
    s = q64 @ k64.transpose(0, 2, 1) / math.sqrt(d)
    p = scipy.special.softmax(np.where(visible, s, -np.inf), axis=-1)
    assert out.dtype == np.float32
    assert probs.dtype == np.float32
    assert np.all(probs[..., 5:] == 0)
    # float32 dots of d terms, a softmax over L terms and a product over L terms, each with gamma bounds
    tol = 4 * (_gamma(d) * np.abs(q64) @ np.abs(k64).transpose(0, 2, 1) / math.sqrt(d)).max() + _gamma(2 * L)
    np.testing.assert_allclose(probs, p, rtol=tol, atol=tol)
    np.testing.assert_allclose(out, p @ v64, rtol=0, atol=2 * tol * np.abs(v64).max() * L)


def test_attention_under_accumulators_uses_both_sites() -> None:
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, 4, 8)).astype(np.float32) for _ in range(3))
    visible = causal_mask(0, 4, 4)
    low = Accumulator(fp32_mantissa(3))
    out_blas, p_blas = attention(q, k, v, visible)
    _out_score, p_score = attention(q, k, v, visible, score=low)
    out_value, p_value = attention(q, k, v, visible, value=low)
    np.testing.assert_array_equal(p_value, p_blas)  # the value site does not touch the probabilities
    assert not np.array_equal(p_score, p_blas)
    assert not np.array_equal(out_value, out_blas)
    # the scores under the accumulator hold 4 significant bits
    s = attention_scores(q, k, low)
    mant, _ = np.frexp(s.astype(np.float64))
    assert np.all(mant * 16 == np.round(mant * 16))


# -------------------------------------------------------------------------------------- erf, erfc
@given(st.floats(-30, 30, allow_nan=False))
@example(0.46875)  # the boundary between Cody's first two approximations
@example(4.0)  # and between the last two
@example(-0.0)
def test_erf_erfc_against_mpfr(x: float) -> None:
    with gmpy2.context(precision=200):
        ref, refc = float(gmpy2.erf(x)), float(gmpy2.erfc(x))
    assert abs(float(erf(x)) - ref) <= 2e-15 * abs(ref) + 1e-300
    if refc > 1e-300:
        assert abs(float(erfc(x)) - refc) <= 2e-15 * refc
    assert math.copysign(1.0, float(erf(x))) == math.copysign(1.0, ref) or ref == 0


def test_erf_erfc_special_values() -> None:
    np.testing.assert_array_equal(erf([np.inf, -np.inf, 0.0]), [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(erfc([np.inf, -np.inf, 40.0]), [0.0, 2.0, 0.0])
    assert np.isnan(erf(np.nan))
    assert np.isnan(erfc(np.nan))
    assert erf(np.float32(1.0)).dtype == np.float64


def test_unknown_gelu_kind_is_refused() -> None:
    with pytest.raises(InputValueError, match="gelu kind='relu'"):
        gelu(np.float32([1.0]), "relu")
