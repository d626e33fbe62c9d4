"""Tests of lampref.metrics: oracles (scipy.special, a plain float64 loop, nextafter stepping), closed forms,
hypothesis properties, and bad input."""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import scipy.special as sp
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lampref
from lampref.errors import InputValueError, LamprefError, ShapeError
from lampref.metrics import (  # the two routes to the same order
    _ordinal_bits,
    _ordinal_format,
    flip_rate,
    kl_divergence,
    log_softmax,
    max_abs_diff,
    relative_error,
    topk_agreement,
    ulp_distance,
)

RNG = np.random.default_rng(20260121)

logit_values = st.floats(-30.0, 30.0, allow_nan=False, width=32)
logit_arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6), elements=logit_values
)


def _pair_strategy() -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    return logit_arrays.flatmap(
        lambda a: st.tuples(st.just(a), hnp.arrays(np.float64, a.shape, elements=logit_values))
    )


def _kl_loop(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Independent reference: per position, probabilities via math.fsum, KL by a plain loop."""
    r2 = ref.reshape(-1, ref.shape[-1])
    t2 = test.reshape(-1, test.shape[-1])
    out = []
    for zr, zt in zip(r2.tolist(), t2.tolist(), strict=True):
        mr, mt = max(zr), max(zt)
        lr = mr + math.log(math.fsum(math.exp(v - mr) for v in zr))
        lt = mt + math.log(math.fsum(math.exp(v - mt) for v in zt))
        terms = []
        for a, b in zip(zr, zt, strict=True):
            if a == -math.inf:
                continue
            lp, lq = a - lr, b - lt
            terms.append(math.inf if b == -math.inf else math.exp(lp) * (lp - lq))
        out.append(math.fsum(terms) if math.inf not in terms else math.inf)
    return np.array(out).reshape(ref.shape[:-1])


# ----------------------------------------------------------------------------- log_softmax
def test_log_softmax_matches_scipy() -> None:
    z = RNG.normal(scale=5.0, size=(4, 7, 33))
    np.testing.assert_allclose(log_softmax(z), sp.log_softmax(z, axis=-1), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(np.exp(log_softmax(z)), sp.softmax(z, axis=-1), rtol=1e-14, atol=1e-300)


def test_log_softmax_float32_input_is_computed_in_float64() -> None:
    z = RNG.normal(size=(3, 50)).astype(np.float32)
    out = log_softmax(z)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, sp.log_softmax(z.astype(np.float64), axis=-1), rtol=1e-15, atol=1e-15)


def test_log_softmax_huge_and_minus_inf() -> None:
    out = log_softmax([1e308, 1e308, -1e308, -np.inf])
    assert out.tolist() == [-math.log(2), -math.log(2), -np.inf, -np.inf]


# ----------------------------------------------------------------------------- kl_divergence
def test_kl_matches_scipy_rel_entr_and_kl_div() -> None:
    ref = RNG.normal(scale=3.0, size=(2, 5, 40))
    test = ref + RNG.normal(scale=0.3, size=ref.shape)
    p, q = sp.softmax(ref, axis=-1), sp.softmax(test, axis=-1)
    want = sp.rel_entr(p, q).sum(axis=-1)
    got = kl_divergence(ref, test, reduction="none")
    assert got.shape == (2, 5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, sp.kl_div(p, q).sum(axis=-1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(kl_divergence(ref, test), want.mean(), rtol=1e-12)


def test_kl_batchmean_equivalence() -> None:
    """torch kl_div(log q, log p, log_target=True, 'batchmean') = sum(exp(lp) * (lp - lq)) / positions."""
    ref = RNG.normal(size=(3, 4, 11))
    test = RNG.normal(size=(3, 4, 11))
    lp = sp.log_softmax(ref.reshape(-1, 11), axis=-1)
    lq = sp.log_softmax(test.reshape(-1, 11), axis=-1)
    batchmean = (np.exp(lp) * (lp - lq)).sum() / lp.shape[0]
    np.testing.assert_allclose(kl_divergence(ref, test), batchmean, rtol=1e-13)


def test_kl_matches_independent_loop_with_minus_inf() -> None:
    ref = RNG.normal(size=(6, 9))
    test = RNG.normal(size=(6, 9))
    ref[0, 3] = -np.inf  # zero probability in ref: contributes 0
    test[1, 2] = -np.inf  # ref mass where test has none: inf
    ref[2, :4] = -np.inf
    test[2, :4] = -np.inf  # both zero: contributes 0
    got = kl_divergence(ref, test, reduction="none")
    want = _kl_loop(ref, test)
    assert np.isinf(got[1])
    assert np.isinf(want[1])
    mask = np.arange(6) != 1
    np.testing.assert_allclose(got[mask], want[mask], rtol=1e-12, atol=1e-15)
    assert kl_divergence(ref, test) == np.inf


@pytest.mark.parametrize(("p", "q"), [(0.5, 0.25), (0.9, 0.1), (1e-10, 0.5), (0.3, 0.3)])
def test_kl_two_tokens_closed_form(p: float, q: float) -> None:
    """KL(Bern(p) || Bern(q)) = p log(p/q) + (1-p) log((1-p)/(1-q)), with logits log p, log(1-p)."""
    want = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    got = kl_divergence([math.log(p), math.log1p(-p)], [math.log(q), math.log1p(-q)])
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_kl_two_tokens_logit_gap() -> None:
    """Logits [0, d] vs [0, 0]: p = sigmoid(d), KL = log 2 + p log p + (1-p) log(1-p)."""
    d = 2.5
    p = 1 / (1 + math.exp(-d))
    want = math.log(2) + p * math.log(p) + (1 - p) * math.log(1 - p)
    assert kl_divergence([0.0, d], [0.0, 0.0]) == pytest.approx(want, rel=1e-14)


def test_kl_identical_is_exactly_zero_and_types() -> None:
    z = RNG.normal(scale=10.0, size=(5, 100)).astype(np.float32)
    z[0, 0] = -np.inf
    assert kl_divergence(z, z) == 0.0
    assert isinstance(kl_divergence(z, z), np.float64)
    assert (kl_divergence(z, z, reduction="none") == 0.0).all()
    assert isinstance(kl_divergence([1.0, 2.0], [2.0, 1.0], reduction="none"), np.float64)


@given(_pair_strategy(), st.floats(-100.0, 100.0))
@example((np.zeros((1, 1)), np.zeros((1, 1))), 0.0)
def test_kl_properties(pair: tuple[np.ndarray, np.ndarray], c: float) -> None:
    ref, test = pair
    kl = kl_divergence(ref, test, reduction="none")
    assert np.all(kl >= 0.0)
    assert kl_divergence(ref, ref) == 0.0
    # invariance to a constant per row (shifts are inexact in float64, so compare with a tolerance)
    shift = np.full((*ref.shape[:-1], 1), c)
    np.testing.assert_allclose(
        kl_divergence(ref + shift, test - shift, reduction="none"), kl, rtol=1e-9, atol=1e-11
    )
    np.testing.assert_allclose(kl, _kl_loop(ref, test), rtol=1e-9, atol=1e-13)


# ----------------------------------------------------------------------------- flip_rate, topk_agreement
def test_flip_rate_hand_cases() -> None:
    ref = np.array([[[1.0, 2.0, 0.0], [5.0, 1.0, 1.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 3.0]]])
    test = np.array([[[1.0, 2.0, 0.0], [1.0, 5.0, 1.0]], [[0.0, 1.0, 0.0], [1.0, 1.0, 3.0]]])
    assert flip_rate(ref, test) == 0.5
    assert flip_rate(ref, ref) == 0.0
    assert flip_rate([0.0, 0.0], [0.0, 0.0]) == 0.0  # tie: first index in both


def test_flip_rate_matches_loop_and_topk1() -> None:
    ref = RNG.normal(size=(50, 8)).astype(np.float32)
    test = ref + RNG.normal(scale=0.5, size=ref.shape).astype(np.float32)
    want = np.mean([int(np.argmax(a)) != int(np.argmax(b)) for a, b in zip(ref, test, strict=True)])
    assert flip_rate(ref, test) == want
    assert topk_agreement(ref, test, 1) == pytest.approx(1 - want, abs=1e-15)


def _topk_loop(ref: np.ndarray, test: np.ndarray, k: int) -> float:
    def top(z: list[float]) -> set[int]:
        return set(sorted(range(len(z)), key=lambda i: (-z[i], i))[:k])

    r2 = ref.reshape(-1, ref.shape[-1]).tolist()
    t2 = test.reshape(-1, test.shape[-1]).tolist()
    return float(np.mean([len(top(a) & top(b)) / k for a, b in zip(r2, t2, strict=True)]))


def test_topk_hand_cases_and_ties() -> None:
    assert topk_agreement([4.0, 3.0, 2.0, 1.0], [4.0, 1.0, 3.0, 2.0], k=2) == 0.5
    assert topk_agreement([4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0], k=2) == 0.0
    assert topk_agreement([4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0], k=4) == 1.0
    # ties at the k-th value go to lower indices: {0, 1} vs {0, 1}
    assert topk_agreement([1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0], k=2) == 1.0
    assert topk_agreement([1.0, 1.0, 1.0, -np.inf], [1.0, 1.0, 1.0, -np.inf], k=4) == 1.0


@given(_pair_strategy(), st.integers(1, 6), st.booleans())
def test_flip_and_topk_properties(pair: tuple[np.ndarray, np.ndarray], k: int, round_: bool) -> None:
    ref, test = pair
    if round_:  # many ties
        ref, test = np.round(ref / 10), np.round(test / 10)
    f = flip_rate(ref, test)
    assert 0.0 <= f <= 1.0
    k = min(k, ref.shape[-1])
    t = topk_agreement(ref, test, k)
    assert 0.0 <= t <= 1.0
    assert t == pytest.approx(_topk_loop(ref, test, k), abs=1e-12)
    assert topk_agreement(ref, ref, k) == 1.0


# ----------------------------------------------------------------------------- errors
def test_max_abs_diff_and_relative_error() -> None:
    assert max_abs_diff([1.0, 2.0], [1.5, 1.0]) == 1.0
    assert max_abs_diff([np.inf, -np.inf], [np.inf, -np.inf]) == 0.0
    assert max_abs_diff([np.inf], [1.0]) == np.inf
    a = RNG.normal(size=(4, 5))
    b = a + RNG.normal(scale=1e-3, size=a.shape)
    assert relative_error(a, b) == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-13)
    assert relative_error([3.0, 4.0], [3.0, 4.0]) == 0.0
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([0.0, 0.0], [0.0, 1.0]) == np.inf
    assert relative_error([1e300, 1e300], [-1e300, 1e300]) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert relative_error([1e-300, 0.0], [0.0, 1e-300]) == pytest.approx(math.sqrt(2.0), rel=1e-15)


@pytest.mark.parametrize(
    ("call", "exc", "words"),
    [
        (lambda: kl_divergence(np.zeros((2, 3)), np.zeros((3, 3))), ShapeError, "test_logits"),
        (lambda: kl_divergence(1.0, 1.0), ShapeError, "ref_logits"),
        (lambda: kl_divergence(np.zeros((2, 0)), np.zeros((2, 0))), ShapeError, "V >= 1"),
        (lambda: kl_divergence([0.0, np.nan], [0.0, 0.0]), InputValueError, "ref_logits contains NaN"),
        (lambda: kl_divergence([0.0, 0.0], [0.0, np.inf]), InputValueError, "test_logits contains +inf"),
        (lambda: kl_divergence([-np.inf, -np.inf], [0.0, 0.0]), InputValueError, "all -inf"),
        (lambda: kl_divergence([0.0], [0.0], reduction="sum"), InputValueError, "reduction"),
        (lambda: kl_divergence(["a"], ["b"]), lampref.InputTypeError, "ref_logits"),
        (lambda: log_softmax([np.nan]), InputValueError, "logits contains NaN"),
        (lambda: flip_rate(np.zeros(3), np.zeros(4)), ShapeError, "(3,)"),
        (lambda: topk_agreement(np.zeros(3), np.zeros(3), 0), InputValueError, "k=0"),
        (lambda: topk_agreement(np.zeros(3), np.zeros(3), 4), InputValueError, "V = 3"),
        (lambda: topk_agreement(np.zeros(3), np.zeros(3), 1.0), InputValueError, "k=1.0"),
        (lambda: topk_agreement(np.zeros(3), np.zeros(3), True), InputValueError, "k=True"),
        (lambda: max_abs_diff([1.0], [1.0, 2.0]), ShapeError, "b has shape (2,)"),
        (lambda: max_abs_diff([], []), ShapeError, "empty"),
        (lambda: max_abs_diff([np.nan], [1.0]), InputValueError, "a contains NaN"),
        (lambda: relative_error([1.0], [np.inf]), InputValueError, "test"),
        (lambda: ulp_distance([1.0, 2.0], [1.0, 2.0, 3.0]), ShapeError, "broadcast"),
        (lambda: ulp_distance(np.nan, 1.0), InputValueError, "a contains NaN"),
        (lambda: ulp_distance(1.0, 0.1, "fp32"), InputValueError, "b holds"),
        (lambda: ulp_distance(1.0, 1.0 + 2.0**-8, "bf16"), InputValueError, "b holds"),
        (lambda: ulp_distance(1.0, np.inf, "e4m3"), InputValueError, "b holds"),
        (lambda: ulp_distance(1.0, 1.0, "fp7"), lampref.FormatError, "fp7"),
    ],
)
def test_bad_input(call, exc, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=None) as info:
        call()
    assert isinstance(info.value, LamprefError)
    assert words in str(info.value)


# ----------------------------------------------------------------------------- ulp_distance
@pytest.mark.parametrize(
    ("dtype", "name"), [(np.float16, "fp16"), (np.float32, "fp32"), (np.float64, "fp64")]
)
def test_ulp_distance_bit_route_equals_ordinal_route(dtype: type, name: str) -> None:
    fmt = lampref.get_format(name)
    bits = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}[dtype]
    specials = [0.0, -0.0, np.inf, -np.inf, fmt.max, -fmt.max, fmt.smallest_normal, fmt.smallest_subnormal]
    v = np.concatenate([RNG.normal(scale=1e3, size=200), specials, RNG.standard_cauchy(200) * 1e-6])
    with np.errstate(over="ignore"):
        v = v.astype(dtype).astype(np.float64)
    mb, sb = _ordinal_bits(v, dtype, bits)
    mf, sf = _ordinal_format(v, fmt)
    np.testing.assert_array_equal(mb, mf)
    np.testing.assert_array_equal(sb, sf)


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, ml_dtypes.bfloat16], ids=["float16", "float32", "bfloat16"]
)
def test_ulp_distance_nextafter_stepping(dtype: type) -> None:
    name = {np.float16: "fp16", np.float32: "fp32", ml_dtypes.bfloat16: "bf16"}[dtype]
    one = np.array(1.0, dtype=dtype)
    top = np.array(np.inf, dtype=dtype)
    # walk up from each start with nextafter (across zero, up to infinity): n steps = distance n
    for s in [1.0, -1.0, 0.0, -0.0, 1e-3, -3.0, -1e-40, float(lampref.get_format(name).max)]:
        x0 = np.array(s, dtype=dtype)
        if s == -1e-40:  # start 20 values below zero, to cross it
            x0 = np.array(-lampref.get_format(name).smallest_subnormal * 20, dtype=dtype)
        x, n = x0, 0
        while n < 60 and x < top:
            with np.errstate(over="ignore"):  # max steps to inf
                x, n = np.nextafter(x, top), n + 1
            assert int(ulp_distance(x0, x, name)) == n, (s, n, x)
            assert int(ulp_distance(x, x0, name)) == n
    assert int(ulp_distance(one, np.nextafter(one, -one), name)) == 1


def test_ulp_distance_across_zero_and_specials() -> None:
    tiny16 = 2.0**-24
    assert ulp_distance(-tiny16, tiny16, "fp16") == 2
    assert ulp_distance(-0.0, 0.0, "fp16") == 0
    assert ulp_distance(65504.0, np.inf, "fp16") == 1
    assert ulp_distance(-np.inf, np.inf, "fp16") == 2 * 0x7C00
    assert ulp_distance(-np.inf, np.inf, "fp64") == 2 * 0x7FF0000000000000
    assert ulp_distance(-np.inf, np.inf, "fp64").dtype == np.uint64
    assert ulp_distance(1.0, 2.0, "fp64") == 2**52
    assert ulp_distance(1.0, 2.0, "bf16") == 128
    assert ulp_distance(np.array(1.0, ml_dtypes.bfloat16), np.array(2.0, ml_dtypes.bfloat16), "bf16") == 128
    assert ulp_distance([[1.0], [2.0]], [1.0, 2.0, 4.0]).shape == (2, 3)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e2m1", "e3m2", "e2m3", "fp16", "bf16"])
def test_ulp_distance_counts_values(name: str) -> None:
    """For small formats the ordinal is the index in the sorted list of values."""
    fmt = lampref.get_format(name)
    vals = fmt.values().astype(np.float64)  # ascending, zero once
    zero = int(np.flatnonzero(vals == 0)[0])
    idx = (
        RNG.integers(0, len(vals), size=(2, 3000))
        if len(vals) > 3000
        else np.stack(
            [
                np.arange(len(vals)),
                RNG.permutation(len(vals)),
            ]
        )
    )
    got = ulp_distance(vals[idx[0]], vals[idx[1]], fmt)
    np.testing.assert_array_equal(got, np.abs(idx[0] - idx[1]).astype(np.uint64))
    assert ulp_distance(vals[zero], -0.0, fmt) == 0


def test_ulp_distance_without_subnormals() -> None:
    fmt = lampref.FloatFormat(p=3, emax=3, subnormals=False)
    vals = fmt.values().astype(np.float64)
    n = len(vals)
    i, j = np.meshgrid(np.arange(n), np.arange(n))
    np.testing.assert_array_equal(ulp_distance(vals[i], vals[j], fmt), np.abs(i - j).astype(np.uint64))
    assert ulp_distance(fmt.max, np.inf, fmt) == 1


@given(st.floats(width=32, allow_nan=False), st.floats(width=32, allow_nan=False))
@example(0.0, -0.0)
@example(float("inf"), float("-inf"))
def test_ulp_distance_fp32_properties(x: float, y: float) -> None:
    d = ulp_distance(x, y)
    assert d == ulp_distance(y, x)
    assert (d == 0) == (x == y)
    if math.isfinite(x) and math.isfinite(y):
        # the general route agrees with the bit route
        v = np.array([x, y])
        m, s = _ordinal_format(v, lampref.fp32)
        assert d == (abs(int(m[0]) - int(m[1])) if s[0] == s[1] else int(m[0]) + int(m[1]))
        # triangle equality through zero for opposite signs
        if np.signbit(x) != np.signbit(y):
            assert d == ulp_distance(x, 0.0) + ulp_distance(0.0, y)


# ----------------------------------------------------------------------------- embeddings
def _mpfr_cosines(x: np.ndarray, y: np.ndarray) -> list[Any]:
    """cos(x_i, y_i) of every row pair in 200-bit MPFR arithmetic (the float64 inputs are exact in it)."""
    import gmpy2

    with gmpy2.context(gmpy2.get_context(), precision=200):
        out = []
        for a, b in zip(x.tolist(), y.tolist(), strict=True):
            dot = sum((gmpy2.mpfr(p) * gmpy2.mpfr(q) for p, q in zip(a, b, strict=True)), gmpy2.mpfr(0))
            na = sum((gmpy2.mpfr(p) ** 2 for p in a), gmpy2.mpfr(0))
            nb = sum((gmpy2.mpfr(q) ** 2 for q in b), gmpy2.mpfr(0))
            out.append(dot / gmpy2.sqrt(na * nb))
        return out


_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(2, 6), st.integers(1, 5)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False).filter(lambda v: abs(v) > 1e-3),
)


@given(x=_rows, data=st.data())
@example(x=np.array([[1e300, 1e300], [3.0, 4.0]]), data=None)  # norms beyond float64's range
@example(x=np.array([[1e-300, 2e-300], [-1.0, 0.5]]), data=None)  # squares below it
def test_cosine_distance_matches_mpfr(x: np.ndarray, data: Any) -> None:
    y = (
        x[::-1].copy()
        if data is None
        else data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-1e3, 1e3)))
    )
    if not (np.abs(y).max(axis=1) > 0).all():
        with pytest.raises(InputValueError, match="is zero; a cosine needs a direction"):
            lampref.metrics.cosine_distance(x, y)
        return
    got = lampref.metrics.cosine_distance(x, y)
    want = [max(1 - float(c), 0.0) for c in _mpfr_cosines(x, y)]
    np.testing.assert_allclose(got, want, rtol=0, atol=4e-16 * x.shape[1] + 1e-15)


@given(e=_rows)
@example(e=np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))  # equal neighbours: the lowest index
def test_nearest_neighbours_match_mpfr_ranking(e: np.ndarray) -> None:
    got = lampref.metrics.nearest_neighbours(e)
    n = len(e)
    for i in range(n):
        sims = [(c, j) for j, c in enumerate(_mpfr_cosines(np.repeat(e[i : i + 1], n, 0), e)) if j != i]
        best = max(c for c, _ in sims)
        near = [j for c, j in sims if best - c <= 1e-12]  # within float64 noise: any of them may win
        assert got[i] in near
        if len(near) == 1 or all(e[j].tolist() == e[near[0]].tolist() for j in near):
            assert got[i] == near[0]


def test_retrieval_flip_rate_counts_changed_neighbours() -> None:
    ref = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert lampref.metrics.retrieval_flip_rate(ref, ref * 3) == 0.0  # scale does not change a cosine
    test = np.array([[1.0, 0.0], [0.1, 0.9], [0.0, 1.0], [0.9, 0.1]])  # rows 1 and 3 swap places
    # neighbours: ref 1, 0, 3, 2; test 3, 2, 1, 0
    assert lampref.metrics.retrieval_flip_rate(ref, test) == 1.0
    with pytest.raises(ShapeError, match="ref has 4 rows and test 3"):
        lampref.metrics.retrieval_flip_rate(ref, ref[:3])
    with pytest.raises(ShapeError, match="nearest neighbours need at least 2"):
        lampref.metrics.nearest_neighbours(ref[:1])
    with pytest.raises(ShapeError, match=r"expected embeddings \(n, C\)"):
        lampref.metrics.cosine_distance(ref[0], ref[0])
    with pytest.raises(InputValueError, match="NaN or an infinity"):
        lampref.metrics.nearest_neighbours(np.array([[1.0, np.nan], [1.0, 0.0]]))
