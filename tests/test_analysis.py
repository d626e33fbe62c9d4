"""Tests of lampref.analysis: bounds, amplification, selection rules, condition numbers, LayerNorm.

Every property is checked against an independent computation: exact integer or rational arithmetic, MPFR
through gmpy2 at 256 bits or more, finite differences, brute-force subset enumeration, or a plain scalar
transcription of the authors' code. Margins of first-order bounds are stated where they are used.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import gmpy2
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from lampref import InputTypeError, fp32_mantissa, get_format, round_to
from lampref.analysis import (
    CONDITION_FUNCTIONS,
    amplification_matrix,
    condition_number,
    dot_condition_number,
    gamma,
    inner_product_error_bound,
    lamp_select,
    layernorm_amplification,
    layernorm_jacobian,
    relative_error_bound,
    select_exact,
    select_greedy,
    softmax_amplification,
    softmax_kappa,
    unit_roundoff,
)
from lampref.analysis import softmax as softmax_module
from lampref.errors import AnalysisError
from lampref.testing.analysis_strategies import (
    dyadic_taus,
    lamp_taus,
    masked_probability_rows,
    probability_rows,
)


def mpfr_context(precision: int = 256) -> gmpy2.context:
    """A fresh MPFR context (``with mpfr_context():`` computes at that precision; contexts nest)."""
    return gmpy2.context(precision=precision)


# Float64 evaluation slack for kappa <= tau on non-dyadic rows: the rules and softmax_kappa sum the same
# numbers in different orders, a few units of 2**-53 apart.
KAPPA_SLACK = 1e-13


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


# ============================================================================ unit roundoff and gamma_n
def test_unit_roundoff_accepts_formats_names_and_numbers() -> None:
    assert unit_roundoff(get_format("fp16")) == 2.0**-11
    assert unit_roundoff("bf16") == 2.0**-8
    assert unit_roundoff(fp32_mantissa(10)) == 2.0**-11
    assert unit_roundoff(0.25) == 0.25
    assert unit_roundoff(np.float32(2.0**-24)) == 2.0**-24


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, float("nan"), True, "nope", None])
def test_unit_roundoff_rejects_bad_values(bad: object) -> None:
    with pytest.raises(Exception, match=r"format|unit roundoff|expected"):
        unit_roundoff(bad)  # type: ignore[arg-type]


@given(st.integers(0, 10**6), st.integers(1, 60))
def test_gamma_equals_the_exact_formula(n: int, p: int) -> None:
    u = 2.0**-p
    nu = Fraction(n) * Fraction(u)
    if nu >= 1:
        with pytest.raises(AnalysisError, match="n\\*u < 1"):
            gamma(n, u)
        return
    exact = nu / (1 - nu)
    assert abs(Fraction(gamma(n, u)) - exact) <= exact * Fraction(2, 2**53)


def test_gamma_rejects_bad_n() -> None:
    for bad in (-1, 1.5, True, [1, -2]):
        with pytest.raises(AnalysisError, match="n"):
            gamma(bad, 0.01)  # type: ignore[arg-type]
    np.testing.assert_allclose(gamma(np.array([0, 1, 3]), 0.25), [0.0, 1 / 3, 3.0])


@given(
    seed=seeds(),
    n=st.integers(1, 64),
    m=st.integers(1, 12),
    bits=st.integers(1, 11),
    mode=st.sampled_from(["nearest_even", "nearest_away", "toward_zero"]),
)
@example(seed=0, n=1, m=1, bits=1, mode="nearest_even")
def test_gamma_bound_holds_for_a_rounded_dot_product(seed: int, n: int, m: int, bits: int, mode: str) -> None:
    """s_k = fl(s_{k-1} + a_k b_k) at p = m + 1 bits (round_to after every step) against the exact sum.

    Integer inputs of at most ``bits`` bits keep every float64 product and partial sum exact (below 2**53),
    so round_to sees the exact value of s_{k-1} + a_k b_k; the exact result is a Python integer.
    """
    fmt = fp32_mantissa(m)
    # round to nearest: |delta| <= u; toward zero: |delta| < 2u, so the same lemma holds with 2u
    u = fmt.unit_roundoff if mode != "toward_zero" else 2 * fmt.unit_roundoff
    assume(n * u < 1)
    rng = np.random.default_rng(seed)
    a = rng.integers(-(2**bits), 2**bits + 1, size=n)
    b = rng.integers(-(2**bits), 2**bits + 1, size=n)
    acc = 0.0
    for k in range(n):
        acc = float(round_to(acc + float(a[k]) * float(b[k]), fmt, mode))
    exact = int(np.dot(a.astype(object), b.astype(object)))
    err = abs(Fraction(acc) - exact)
    assert err <= Fraction(gamma(n, u)) * int(np.abs(a) @ np.abs(b)) * (1 + Fraction(1, 2**50))
    assert float(err) <= inner_product_error_bound(a, b, u) * (1 + 2**-50)


@given(seed=seeds(), n=st.integers(2, 256), m=st.integers(3, 10))
def test_probabilistic_bound_holds_for_stochastic_rounding(seed: int, n: int, m: int) -> None:
    """Stochastic rounding has mean-zero, mean-independent errors: the bound fails with probability < 1e-9."""
    fmt = fp32_mantissa(m)
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**6, size=n)  # positive data: the errors add up as a random walk
    b = rng.integers(1, 2**6, size=n)
    acc = 0.0
    for k in range(n):
        acc = float(round_to(acc + float(a[k]) * float(b[k]), fmt, "stochastic", rng=rng))
    exact = int(np.dot(a.astype(object), b.astype(object)))
    bound = inner_product_error_bound(a, b, fmt, kind="probabilistic", delta=1e-9)
    assert abs(acc - exact) <= bound


@given(n=st.integers(1, 10**6), p=st.integers(8, 53), delta=st.floats(1e-12, 0.5))
def test_probabilistic_bound_matches_its_stated_probability(n: int, p: int, delta: float) -> None:
    """Invert gamma~_n(lambda) for lambda: Q(lambda, n) = 1 - 2 n exp(-lambda^2 (1-u)^2 / 2) = 1 - delta."""
    u = 2.0**-p
    g = inner_product_error_bound(np.ones(n), np.ones(n), u, kind="probabilistic", delta=delta) / n
    lam = (math.log1p(g) - n * u * u / (1 - u)) / (math.sqrt(n) * u)
    failure = 2 * n * math.exp(-(lam**2) * (1 - u) ** 2 / 2)
    assert failure == pytest.approx(delta, rel=1e-6)
    tighter = inner_product_error_bound(np.ones(n), np.ones(n), u, kind="probabilistic", delta=delta / 10)
    assert tighter > g * n


def test_probabilistic_bound_beats_deterministic_for_long_sums() -> None:
    x = np.ones(4096)
    det = inner_product_error_bound(x, x, 2.0**-24)
    prob = inner_product_error_bound(x, x, 2.0**-24, kind="probabilistic", delta=1e-6)
    assert prob < det / 5
    assert inner_product_error_bound(np.ones((3, 4)), np.ones(4), "fp16").shape == (3,)


def test_inner_product_bound_bad_inputs() -> None:
    with pytest.raises(AnalysisError, match="kind"):
        inner_product_error_bound([1.0], [1.0], "fp16", kind="worst")
    with pytest.raises(AnalysisError, match="delta"):
        inner_product_error_bound([1.0], [1.0], "fp16", kind="probabilistic", delta=1.0)
    with pytest.raises(AnalysisError, match="lengths"):
        inner_product_error_bound([1.0, 2.0], [1.0], "fp16")
    with pytest.raises(AnalysisError, match="finite"):
        inner_product_error_bound([np.nan], [1.0], "fp16")
    with pytest.raises(AnalysisError, match="n\\*u < 1"):
        inner_product_error_bound(np.ones(4096), np.ones(4096), "bf16")
    with pytest.raises(InputTypeError):
        inner_product_error_bound([1j], [1.0], "fp16")


def test_dot_condition_number_bad_inputs() -> None:
    with pytest.raises(AnalysisError, match="lengths 2 and 1"):
        dot_condition_number([1.0, 2.0], [1.0])
    with pytest.raises(AnalysisError, match="got a scalar"):
        dot_condition_number(1.0, [1.0])
    with pytest.raises(AnalysisError, match="finite"):
        dot_condition_number([1.0], [np.inf])
    with pytest.raises(InputTypeError):
        dot_condition_number(["a"], [1.0])


@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=1, max_size=8))
def test_dot_condition_number_against_integers(pairs: list[tuple[int, int]]) -> None:
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    num = sum(abs(a * b) for a, b in pairs)
    den = abs(sum(a * b for a, b in pairs))
    got = dot_condition_number(x, y)
    if num == 0:
        assert got == 1.0
    elif den == 0:
        assert got == math.inf
    else:
        assert got == pytest.approx(num / den, rel=1e-15)


# =============================================================================== general composition
@given(seed=seeds(), m=st.integers(1, 5), n=st.integers(1, 6), log_eps=st.integers(-30, -10))
def test_amplification_bound_for_a_linear_map_is_exact(seed: int, m: int, n: int, log_eps: int) -> None:
    """f(z) = M z: the first-order bound is exact (no second-order term) and attained by sign(M_ij)."""
    rng = np.random.default_rng(seed)
    M = rng.integers(-8, 9, size=(m, n)).astype(float)
    z = rng.integers(-8, 9, size=n).astype(float)
    f = M @ z
    assume(np.all(f != 0))
    eps = np.ldexp(rng.integers(0, 4, size=n).astype(float), log_eps)  # per-component bounds
    selected = rng.random(n) < 0.3
    K = amplification_matrix(M, f, eps)
    comp = relative_error_bound(K, selected).componentwise
    delta = np.where(selected, 0.0, eps * rng.uniform(-1, 1, size=n))
    for i in range(m):
        change = Fraction(0)
        for j in range(n):
            change += Fraction(M[i, j]) * Fraction(delta[j])
        assert abs(change) / abs(Fraction(f[i])) <= Fraction(comp[i]) * (1 + Fraction(1, 2**48))
        worst = sum(Fraction(abs(M[i, j])) * Fraction(eps[j]) for j in range(n) if not selected[j])
        assert float(worst / abs(Fraction(f[i]))) == pytest.approx(comp[i], rel=1e-14, abs=0)


@given(seed=seeds(), m=st.integers(1, 4), n=st.integers(1, 6))
def test_amplification_bound_for_an_exponential_map(seed: int, m: int, n: int) -> None:
    """f_i(z) = exp(sum_j M_ij z_j), J = f M. relerr_i = |expm1(M_i . delta)| <= x + x^2 (x = bound <= 1),
    and the pattern delta_j = eps sign(M_ij) gives relerr_i >= x (MPFR at 256 bits)."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(m, n))
    z = rng.normal(size=n)
    f = np.exp(M @ z)
    eps = 1e-6
    K = amplification_matrix(f[:, None] * M, f, eps)
    x = relative_error_bound(K).componentwise
    assert relative_error_bound(K).bound == pytest.approx(x.max())
    for i in range(m):
        for delta in (eps * rng.uniform(-1, 1, size=n), eps * np.sign(M[i])):
            with mpfr_context():
                t = gmpy2.fsum([gmpy2.mpfr(float(M[i, j])) * gmpy2.mpfr(float(delta[j])) for j in range(n)])
                rel = abs(float(gmpy2.expm1(t)))
            assert rel <= x[i] + x[i] ** 2
        assert rel >= x[i] * (1 - 1e-12)  # the worst pattern was the last one


def test_amplification_matrix_edge_cases() -> None:
    K = amplification_matrix([[1.0, 0.0], [2.0, 1.0]], [0.0, 4.0], [1e-3, 2e-3])
    assert K[0, 0] == math.inf
    assert K[0, 1] == 0.0
    np.testing.assert_allclose(K[1], [5e-4, 5e-4])
    assert relative_error_bound(K).bound == math.inf
    assert relative_error_bound(K, np.array([True, False])).bound == 5e-4
    batch = amplification_matrix(np.ones((3, 2, 2)), np.ones((3, 2)), 0.5)
    assert batch.shape == (3, 2, 2)
    with pytest.raises(AnalysisError, match="negative"):
        amplification_matrix([[1.0]], [1.0], -1.0)
    with pytest.raises(AnalysisError, match="shapes do not match"):
        amplification_matrix(np.ones((2, 3)), np.ones(3), 1.0)
    with pytest.raises(AnalysisError, match="NaN"):
        amplification_matrix([[np.nan]], [1.0], 1.0)
    with pytest.raises(AnalysisError, match="shape"):
        relative_error_bound(np.ones((2, 3)), np.ones(2, dtype=bool))
    with pytest.raises(AnalysisError, match="boolean"):
        relative_error_bound(np.ones((2, 3)), np.ones(3))


def _brute_force_min_set(K: np.ndarray, tau: float) -> tuple[int, float]:
    """Smallest |S| with max_i sum_{j not in S} K_ij <= tau, and the smallest bound at that size (loops)."""
    m, n = K.shape
    for size in range(n + 1):
        best = math.inf
        for S in itertools.combinations(range(n), size):
            worst = max((sum(K[i, j] for j in range(n) if j not in S) for i in range(m)), default=0.0)
            if worst <= tau:
                best = min(best, worst)
        if best < math.inf:
            return size, best
    raise AssertionError("unreachable")


@given(seed=seeds(), m=st.integers(1, 4), n=st.integers(1, 7), tau=st.floats(0.0, 3.0))
def test_select_exact_and_greedy_against_brute_force(seed: int, m: int, n: int, tau: float) -> None:
    rng = np.random.default_rng(seed)
    K = np.ldexp(rng.integers(0, 16, size=(m, n)).astype(float), -3)  # dyadic: sums are exact
    size, best = _brute_force_min_set(K, tau)
    exact = select_exact(K, tau)
    assert exact.sum() == size
    assert relative_error_bound(K, exact).bound == best
    greedy = select_greedy(K, tau)
    assert relative_error_bound(K, greedy).bound <= tau
    assert greedy.sum() >= size


def test_select_exact_limits_and_errors() -> None:
    with pytest.raises(AnalysisError, match="max_columns=20"):
        select_exact(np.ones((1, 21)), 1.0)
    assert select_exact(np.ones((1, 21)), 30.0, max_columns=21).sum() == 0
    with pytest.raises(AnalysisError, match="hard limit"):
        select_exact(np.ones((1, 3)), 1.0, max_columns=40)
    with pytest.raises(AnalysisError, match="negative"):
        select_greedy(np.ones((1, 3)), -1.0)
    with pytest.raises(AnalysisError, match="non-negative"):
        select_greedy(-np.ones((1, 3)), 1.0)
    with pytest.raises(AnalysisError, match="single"):
        select_exact(np.ones((2, 1, 3)), 1.0)
    K = np.array([[np.inf, 0.5], [0.0, 0.25]])
    assert select_greedy(K, 0.4).tolist() == [True, True]
    assert select_exact(K, 0.5).tolist() == [True, False]


# ================================================================================ softmax amplification
def _softmax_jacobian(s: np.ndarray) -> np.ndarray:
    return np.diag(s) - np.outer(s, s)


@given(row=probability_rows(max_n=8), data=st.data())
def test_softmax_amplification_equals_the_jacobian_row_sums(row: np.ndarray, data: st.DataObject) -> None:
    """a_i(S) = sum_{j not in S} |J_ij| / s_i with J = diag(s) - s s^T (eq. 1 with eps = 1)."""
    n = row.size
    sel = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    a = softmax_amplification(row, sel)
    for i in range(n):
        if row[i] == 0:
            continue
        direct = sum(abs(_softmax_jacobian(row)[i, j]) / row[i] for j in range(n) if not sel[j])
        assert a[i] == pytest.approx(direct, rel=1e-12, abs=1e-15)
    K = amplification_matrix(_softmax_jacobian(row), row, 1.0)
    live = row > 0
    comp = relative_error_bound(K, sel).componentwise
    np.testing.assert_allclose(comp[live], a[live], rtol=1e-12, atol=1e-15)
    assert softmax_kappa(row, sel) == pytest.approx(a.max())


def _mp_softmax(z: list[gmpy2.mpfr]) -> list[gmpy2.mpfr]:
    with mpfr_context():
        top = max(z)
        e = [gmpy2.exp(v - top) for v in z]
        total = gmpy2.fsum(e)
        return [v / total for v in e]


@given(seed=seeds(), n=st.integers(1, 8), spread=st.floats(0.0, 12.0), log_eps=st.integers(-40, -12))
@example(seed=1, n=1, spread=0.0, log_eps=-12)
@example(seed=2, n=3, spread=0.0, log_eps=-20)
def test_softmax_bound_holds_and_is_attained(seed: int, n: int, spread: float, log_eps: int) -> None:
    """MPFR perturbation experiment. For |delta_j| <= eps (0 on S), |s^_i/s_i - 1| <= a_i eps + 3.1 eps^2
    (the second-order remainder for eps <= 2**-12), and the pattern delta_i = eps, delta_j = -eps
    (other unselected j) gives |s^_i/s_i - 1| >= a_i eps - 3.1 eps^2: the bound is tight to first order."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, size=n) * spread
    s = np.exp(z - z.max())
    s /= s.sum()
    sel = rng.random(n) < 0.4
    a = softmax_amplification(s, sel)
    eps = 2.0**log_eps
    margin = 3.1 * eps * eps
    zm = [gmpy2.mpfr(float(v)) for v in z]
    s_ref = _mp_softmax(zm)
    for i in range(n):
        steps = np.round(rng.uniform(-1, 1, size=n) * 2**20)  # |delta_j| <= eps, exact in binary
        random_delta = np.where(sel, 0.0, np.ldexp(steps, log_eps - 20))
        worst = np.where(sel, 0.0, -eps)
        worst[i] = 0.0 if sel[i] else eps
        for delta, tight in ((random_delta, False), (worst, True)):
            with mpfr_context():
                s_new = _mp_softmax([zm[j] + gmpy2.mpfr(float(delta[j])) for j in range(n)])
                rel = abs(float(s_new[i] / s_ref[i] - 1))
            assert rel <= a[i] * eps + margin
            if tight:
                assert rel >= a[i] * eps - margin


# ==================================================================================== selection rules
def _all_subsets(n: int) -> np.ndarray:
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def _kappa_of_subsets(s: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """kappa(S) for every subset, straight from eq. (3) (an implementation independent of the library)."""
    P = (s * subsets).sum(axis=1)
    unsel = np.where(~subsets, 2.0 - P[:, None] - 2.0 * s, -np.inf).max(axis=1)
    sel = np.where(subsets.any(axis=1), 1.0 - P, -np.inf)
    return np.maximum(np.maximum(unsel, sel), 0.0)


def _is_dyadic(x: np.ndarray) -> bool:
    """Multiples of 2**-20 (with the rows' exact sums of 1, every sum the rules form is exact)."""
    return bool(np.all(np.ldexp(x, 20) == np.round(np.ldexp(x, 20))))


EDGE_ROWS = [
    np.array([1.0]),
    np.full(4, 0.25),
    np.array([0.0, 1.0, 0.0]),
    np.array([0.5, 0.5]),
    np.array([0.537, 0.376, 0.087]),
]


@given(row=probability_rows(max_n=10), tau=lamp_taus())
@example(row=EDGE_ROWS[0], tau=1.0)
@example(row=EDGE_ROWS[1], tau=2.0)
@example(row=EDGE_ROWS[2], tau=1.0 + 2**-20)
@example(row=EDGE_ROWS[3], tau=0.5)
@example(row=EDGE_ROWS[4], tau=1.2)
def test_optimal_equals_brute_force(row: np.ndarray, tau: float) -> None:
    subsets = _all_subsets(row.size)
    sizes = subsets.sum(axis=1)
    kap = _kappa_of_subsets(row, subsets)
    opt = lamp_select(row, tau, rule="optimal")
    pre = lamp_select(row, tau, rule="prefix")
    exact = _is_dyadic(row) and _is_dyadic(np.array([tau]))  # every sum exact: no slack at all
    slack = 0.0 if exact else KAPPA_SLACK
    assert softmax_kappa(row, opt) <= tau + slack
    assert softmax_kappa(row, pre) <= tau + slack
    # a set within rounding of tau may count on either side of it
    assert int(sizes[kap <= tau + slack].min()) <= opt.sum() <= int(sizes[kap <= tau - slack].min())
    assert opt.sum() <= pre.sum()


@given(row=probability_rows(min_n=1, max_n=8), tau=lamp_taus())
def test_optimal_equals_select_exact_on_the_softmax_matrix(row: np.ndarray, tau: float) -> None:
    assume(np.all(row > 0))
    K = amplification_matrix(_softmax_jacobian(row), row, 1.0)
    opt = lamp_select(row, tau, rule="optimal")
    low = select_exact(K, tau + KAPPA_SLACK).sum()
    high = select_exact(K, tau - KAPPA_SLACK).sum()
    assert low <= opt.sum() <= high


@given(pair=masked_probability_rows(max_n=12), tau=lamp_taus(), rule=st.sampled_from(["prefix", "optimal"]))
def test_selection_meets_tau_and_is_minimal(
    pair: tuple[np.ndarray, np.ndarray], tau: float, rule: str
) -> None:
    """kappa(selected) <= tau; masked entries are never selected; for the prefix rule, dropping the last
    selected entry (the smallest selected one) breaks the bound."""
    probs, valid = pair
    sel = lamp_select(probs, tau, valid=valid, rule=rule)
    assert not np.any(sel & ~valid)
    row = probs[valid]
    assert softmax_kappa(row, sel[valid]) <= tau + KAPPA_SLACK
    if rule == "prefix" and sel.any():
        order = np.argsort(-row, kind="stable")
        k = int(sel[valid].sum())
        assert np.all(sel[valid][order[:k]])  # a top-k prefix in the stable order
        fewer = sel[valid].copy()
        fewer[order[k - 1]] = False
        assert softmax_kappa(row, fewer) > tau - KAPPA_SLACK


@given(
    row=probability_rows(max_n=12, dtype=np.float32),
    taus=st.tuples(lamp_taus(), lamp_taus()),
    rule=st.sampled_from(["prefix", "optimal", "authors"]),
)
@example(row=np.array([1.0], dtype=np.float32), taus=(1.0, 2.0), rule="authors")
def test_smaller_tau_never_selects_fewer(row: np.ndarray, taus: tuple[float, float], rule: str) -> None:
    lo, hi = sorted(taus)
    a = lamp_select(row, lo, rule=rule)
    b = lamp_select(row, hi, rule=rule)
    assert a.sum() >= b.sum()
    if rule != "optimal":  # prefix sets are nested
        assert np.all(a | ~b)
    assert not lamp_select(row, 2.0, rule=rule).any()


def _exclusive_lamp_sums(row32: np.ndarray) -> tuple[list[Fraction], Fraction, np.ndarray]:
    """Exact P_k (sum of the k largest, stable order) and the row minimum, as fractions."""
    order = np.argsort(-row32, kind="stable")
    vals = [Fraction(float(v)) for v in row32[order]]
    P = [Fraction(0)]
    for v in vals[:-1]:
        P.append(P[-1] + v)
    return P, min(vals), order


@given(
    row=probability_rows(dyadic=True, max_n=64),
    tau=dyadic_taus(),
    scan=st.sampled_from(["cuda", "cpu", "sequential"]),
)
@example(row=np.array([1.0]), tau=1.0, scan="cuda")
@example(row=np.array([0.5, 0.5]), tau=1.0, scan="cuda")
@example(row=np.array([0.75, 0.25, 0.0, 0.0]), tau=1.5, scan="cuda")
@example(row=np.array([0.75, 0.25, 0.0, 0.0]), tau=0.5, scan="sequential")
def test_authors_rule_equals_prefix_rule_exactly_on_dyadic_rows(
    row: np.ndarray, tau: float, scan: str
) -> None:
    """On rows of multiples of 2**-20 summing to 1 with 2 - tau a multiple of 2**-20, every float32 and
    float64 operation of both rules is exact, so the authors' rule (whole-row minimum, zeros included) must
    equal the prefix rule with every entry, zeros included, counted as part of the row, bit for bit."""
    authors = lamp_select(row.astype(np.float32), tau, rule="authors", scan=scan)
    prefix = lamp_select(row, tau, rule="prefix")
    np.testing.assert_array_equal(authors, prefix)
    # and both equal the exact decision P_k + 2 min < 2 - tau
    P, lo, order = _exclusive_lamp_sums(row.astype(np.float32))
    decision = np.array([p + 2 * lo < 2 - Fraction(tau) for p in P])
    np.testing.assert_array_equal(authors[order], decision)


@given(row=probability_rows(dyadic=False, min_n=2, max_n=40, dtype=np.float32), tau=lamp_taus(min_tau=1.0))
def test_authors_rule_equals_prefix_rule_away_from_the_threshold(row: np.ndarray, tau: float) -> None:
    """Float32 softmax rows: at every sorted position k whose exact margin |P_k + 2 min - (2 - tau)| exceeds
    the float32 rounding of the authors' sums plus the row's deviation from 1, both rules take the exact
    decision P_k + 2 min < 2 - tau."""
    P, lo, order = _exclusive_lamp_sums(row)
    n = row.size
    dev = abs(sum((Fraction(float(v)) for v in row), Fraction(0)) - 1)
    delta = dev + Fraction(n + 4, 2**23)
    margins = [p + 2 * lo - (2 - Fraction(tau)) for p in P]
    authors = lamp_select(row, tau, rule="authors")[order]
    prefix = lamp_select(row, tau, rule="prefix")[order]
    for k in range(n):
        if abs(margins[k]) > delta:
            assert authors[k] == (margins[k] < 0)
            assert prefix[k] == (margins[k] < 0)


@given(
    pair=masked_probability_rows(min_n=2, max_n=40, causal=True, dyadic=True),
    tau=dyadic_taus(),
    scan=st.sampled_from(["cuda", "cpu", "sequential"]),
)
@example(pair=(np.array([0.75, 0.25, 0.0, 0.0]), np.array([True, True, False, False])), tau=1.25, scan="cuda")
@example(pair=(np.array([1.0, 0.0, 0.0]), np.array([True, False, False])), tau=2.0, scan="cuda")
def test_authors_rule_with_masked_zeros(pair: tuple[np.ndarray, np.ndarray], tau: float, scan: str) -> None:
    """With causally masked zeros the authors' whole-row minimum is 0. On dyadic rows (every operation
    exact): their rule is the prefix rule with the masked zeros counted as entries of the row, it selects a
    superset of the prefix rule over the valid entries, and with nothing masked (the last causal row) the
    two coincide."""
    probs, valid = pair
    authors = lamp_select(probs.astype(np.float32), tau, valid=valid, rule="authors", scan=scan)
    assert not np.any(authors & ~valid)
    whole = lamp_select(probs, tau, rule="prefix")  # zeros counted as entries: valid=None
    inner = lamp_select(probs, tau, valid=valid, rule="prefix")
    np.testing.assert_array_equal(authors, whole & valid)
    assert np.all(authors | ~inner)
    if valid.all():
        np.testing.assert_array_equal(authors, inner)


def _authors_reference(att: np.ndarray, threshold: float) -> np.ndarray:
    """A line-by-line scalar transcription of the authors' get_lamp_softmax_mask (float32 scalars), with a
    left-to-right float32 cumsum."""
    flat = att.reshape(-1, att.shape[-1])
    out = np.zeros(flat.shape, dtype=bool)
    thr = np.float32(threshold)
    for r in range(flat.shape[0]):
        idx = sorted(range(flat.shape[1]), key=lambda i: (-float(flat[r, i]), i))
        vals = [np.float32(flat[r, i]) for i in idx]
        cums, acc = [], np.float32(0.0)
        for v in vals:
            acc = np.float32(acc + v)
            cums.append(acc)
        prev = [np.float32(0.0), *cums[:-1]]
        for k, i in enumerate(idx):
            out[r, i] = bool(np.float32(prev[k] + np.float32(2.0) * vals[-1]) < thr)
    return out.reshape(att.shape)


@given(seed=seeds(), rows=st.integers(1, 6), n=st.integers(1, 70), tau=lamp_taus())
def test_authors_rule_matches_a_scalar_transcription(seed: int, rows: int, n: int, tau: float) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, n)).astype(np.float32) * np.float32(rng.uniform(0, 6))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    att = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    got = lamp_select(att, tau, rule="authors", scan="sequential")
    np.testing.assert_array_equal(got, _authors_reference(att, 2.0 - tau))


def _torch_log_num_threads_x(rows: int, n: int) -> int:
    """get_log_num_threads_x_inner_scan<uint32_t>: uint32 arithmetic, so 9 + lx - ly < 0 wraps around."""
    lx = max(0, (n - 1).bit_length())
    ly = max(0, (rows - 1).bit_length())
    return min(max(4, ((9 + lx - ly) % 2**32) // 2), 9)


def _cuda_scan_reference(x: np.ndarray, log_x: int) -> np.ndarray:
    """PyTorch's tensor_kernel_scan_innermost_dim_impl simulated thread by thread (float32 scalars)."""
    rows, n = x.shape
    tx = 1 << log_x
    out = np.zeros_like(x)
    for r in range(rows):
        total = np.float32(0.0)
        for block_col in range(0, n, 2 * tx):
            buf = [np.float32(0.0)] * (2 * tx)
            for t in range(tx):
                for col, slot in ((block_col + t, t), (block_col + tx + t, tx + t)):
                    if col < n:
                        buf[slot] = np.float32(x[r, col])
            buf[0] = np.float32(buf[0] + total)
            for m in range(log_x + 1):
                s = 1 << m
                for t in range(tx):
                    a = ((t >> m) << (m + 1)) | s
                    ti, si = a + (t % s), a - 1
                    buf[ti] = np.float32(buf[ti] + buf[si])
            for t in range(tx):
                if block_col + t < n:
                    out[r, block_col + t] = buf[t]
                if block_col + tx + t < n:
                    out[r, block_col + tx + t] = buf[tx + t]
            total = buf[2 * tx - 1]
    return out


@pytest.mark.parametrize(
    ("rows", "n", "log_x"),
    [
        (2, 1, 4),
        (3, 31, 6),
        (2, 33, 7),
        (5, 100, 6),
        (2, 1024, 9),
        (4096, 100, 4),
        (12288, 1024, 4),
        (40000, 64, 9),
    ],
)
def test_cuda_scan_order_matches_a_thread_level_simulation(rows: int, n: int, log_x: int) -> None:
    """The vectorised emulation against a thread-by-thread simulation of the kernel, on the first rows (the
    chunk width depends on the total row count: (12288, 1024) is GPT-2's att.view(-1, 1024) for one batch
    of 12 heads; (40000, 64) has PyTorch's unsigned wrap-around, giving one chunk of 1024)."""
    assert _torch_log_num_threads_x(rows, n) == log_x
    rng = np.random.default_rng(rows * 1000 + n)
    x = (rng.random((rows, n)) ** 4).astype(np.float32)
    got = softmax_module._scan_cuda(x)
    assert got.dtype == np.float32  # no promotion to float64 anywhere
    np.testing.assert_array_equal(got[:2], _cuda_scan_reference(x[:2], log_x))
    if n >= 100:  # the order matters: it is not the sequential float32 sum on these data
        assert not np.array_equal(got[:2], np.cumsum(x[:2], axis=-1, dtype=np.float32))


def test_lamp_select_batches_and_broadcast_masks() -> None:
    rng = np.random.default_rng(7)
    T = 6
    causal = np.tril(np.ones((T, T), dtype=bool))
    z = rng.normal(size=(2, 3, T, T)) * 3
    z = np.where(causal, z, -np.inf)
    att = np.exp(z - z.max(axis=-1, keepdims=True))
    att /= att.sum(axis=-1, keepdims=True)
    for rule in ("prefix", "optimal", "authors"):
        data = att.astype(np.float32) if rule == "authors" else att
        batched = lamp_select(data, 1.3, valid=causal, rule=rule)
        assert batched.shape == att.shape
        for b, h, t in itertools.product(range(2), range(3), range(T)):
            # (for "authors" the CUDA chunk width depends on the row count, which cannot matter for T = 6)
            one = lamp_select(data[b, h, t], 1.3, valid=causal[t], rule=rule)
            np.testing.assert_array_equal(batched[b, h, t], one)


def test_lamp_select_examples_from_the_analysis() -> None:
    s = np.array([0.537, 0.376, 0.087])
    assert str(lamp_select(s, 1.2, rule="optimal")) == "[False False  True]"
    assert str(lamp_select(s, 1.2, rule="prefix")) == "[ True  True False]"
    assert softmax_kappa(s, np.array([False, False, True])) == pytest.approx(1.161)
    assert softmax_kappa(s) == pytest.approx(2 - 2 * 0.087)


# ========================================================================================= end to end
@given(
    seed=seeds(),
    d=st.integers(4, 16),
    n=st.integers(2, 12),
    m=st.integers(8, 14),
    tau=lamp_taus(min_tau=1.0),
    rule=st.sampled_from(["prefix", "optimal"]),
)
def test_lamp_end_to_end_in_a_small_attention(
    seed: int, d: int, n: int, m: int, tau: float, rule: str
) -> None:
    """Scores q.k_j accumulated at m bits (round_to after every multiply-add, integer data so that each step
    rounds the exact value), LAMP selection on the low-precision probabilities, selected scores recomputed
    exactly. With eps the largest error of an unselected score (measured), the probabilities' relative error
    is at most tau eps + 10 eps^2 (derived in the docs for eps <= 0.01: 3.05 eps^2 of softmax remainder plus
    6.1 eps^2 for evaluating kappa at the perturbed probabilities), plus 1e-13 of float64 evaluation."""
    rng = np.random.default_rng(seed)
    fmt = fp32_mantissa(m)
    q = rng.integers(-32, 33, size=d)
    keys = rng.integers(-32, 33, size=(n, d))
    exact = keys @ q  # exact integers
    shift = max(0, math.ceil(math.log2(max(1, int(np.abs(exact).max())) / 8)))
    acc = np.zeros(n)
    for t in range(d):
        acc = round_to(acc + keys[:, t].astype(float) * float(q[t]), fmt).astype(np.float64)
    z = np.ldexp(exact.astype(float), -shift)
    z_low = np.ldexp(acc, -shift)
    # the scores obey the gamma_d bound
    assert np.all(np.abs(acc - exact) <= gamma(d, fmt) * (np.abs(keys) @ np.abs(q)))

    def softmax(v: np.ndarray) -> np.ndarray:
        e = np.exp(v - v.max())
        return e / e.sum()

    s = softmax(z)
    s_low = softmax(z_low)
    sel = lamp_select(s_low, tau, rule=rule)
    mixed = softmax(np.where(sel, z, z_low))
    unsel_err = np.abs(z_low - z)[~sel]
    eps = float(unsel_err.max()) if unsel_err.size else 0.0
    assume(eps <= 0.01)
    rel = np.max(np.abs(mixed - s) / s)
    assert rel <= tau * eps + 10 * eps * eps + 1e-13


# ================================================================================= condition numbers
def _mp_phi(name: str, z: gmpy2.mpfr) -> gmpy2.mpfr:
    c = gmpy2.sqrt(gmpy2.mpfr(2) / gmpy2.const_pi())
    return {
        "gelu_erf": lambda: z * gmpy2.erfc(-z / gmpy2.sqrt(gmpy2.mpfr(2))) / 2,
        "gelu": lambda: z * gmpy2.erfc(-z / gmpy2.sqrt(gmpy2.mpfr(2))) / 2,
        # 1 + tanh(v) = 2 / (1 + exp(-2 v)), free of cancellation for v << 0
        "gelu_tanh": lambda: z / (1 + gmpy2.exp(-2 * c * (z + gmpy2.mpfr("0.044715") * z**3))),
        "silu": lambda: z / (1 + gmpy2.exp(-z)),
        "sigmoid": lambda: 1 / (1 + gmpy2.exp(-z)),
        "tanh": lambda: gmpy2.tanh(z),
        "exp": lambda: gmpy2.exp(z),
        "log": lambda: gmpy2.log(z),
        "sqrt": lambda: gmpy2.sqrt(z),
        "reciprocal": lambda: 1 / z,
    }[name]()


def _mp_kappa(name: str, z: float) -> float:
    """|z phi'(z) / phi(z)| with phi' from a central difference at 1024 bits (h = 2**-200 |z|)."""
    with mpfr_context(1024):
        zz = gmpy2.mpfr(z)
        h = gmpy2.mpfr(2) ** -200 * (abs(zz) if zz != 0 else 1)
        deriv = (_mp_phi(name, zz + h) - _mp_phi(name, zz - h)) / (2 * h)
        return float(abs(zz * deriv / _mp_phi(name, zz)))


@given(name=st.sampled_from(CONDITION_FUNCTIONS), z=st.floats(-30.0, 30.0))
@example(name="gelu_erf", z=-1.0)
@example(name="gelu_tanh", z=-8.0)
@example(name="tanh", z=1e-300)
@example(name="log", z=1.0 + 2**-40)
@example(name="gelu_erf", z=-25.0)
def test_condition_numbers_against_mpfr_derivatives(name: str, z: float) -> None:
    if name == "log":
        z = abs(z) + 1e-3
    if name == "sqrt":
        z = abs(z)
    if name == "reciprocal" and z == 0:
        z = 1.0
    if z == 0.0 and name not in ("exp", "sqrt", "sigmoid"):
        z = 2.0**-60  # phi(0) = 0: check the limit next to it
    ref = _mp_kappa(name, z) if not (name == "sqrt" and z == 0) else 0.5
    got = condition_number(name, z)
    assert got == pytest.approx(ref, rel=1e-10, abs=1e-12)


def test_gelu_condition_numbers_quoted_in_the_analysis() -> None:
    k = condition_number("gelu_erf", np.array([-1.0, -2.0, -4.0, 5.0, 50.0]))
    np.testing.assert_allclose(k[:3], [0.53, 3.75, 15.9], atol=0.006)
    assert abs(k[3] - 1) < 1e-5
    assert k[4] == 1.0
    # far in the tail (continued fraction) against MPFR, and growth like z^2
    for z in (-20.5, -40.0, -100.0):
        assert condition_number("gelu", z) == pytest.approx(_mp_kappa("gelu_erf", z), rel=1e-12)
    assert condition_number("gelu_tanh", 1e200) == 1.0
    assert condition_number("gelu_erf", np.nan) != condition_number("gelu_erf", np.nan)  # NaN propagates


def test_condition_number_errors() -> None:
    with pytest.raises(AnalysisError, match=r"name='relu'.*gelu_erf"):
        condition_number("relu", 1.0)
    with pytest.raises(AnalysisError, match="domain z > 0"):
        condition_number("log", [1.0, 0.0])
    with pytest.raises(AnalysisError, match="domain z >= 0"):
        condition_number("sqrt", -1.0)
    with pytest.raises(AnalysisError, match="z != 0"):
        condition_number("reciprocal", 0.0)
    assert condition_number("sqrt", 0.0) == 0.5
    assert condition_number("tanh", [0.0, 1000.0]).tolist() == [1.0, 0.0]


# ========================================================================================== LayerNorm
def _mp_layernorm(x: list[gmpy2.mpfr], g: np.ndarray, b: np.ndarray, e: float) -> list[gmpy2.mpfr]:
    n = len(x)
    mu = gmpy2.fsum(x) / n
    c = [v - mu for v in x]
    sig = gmpy2.sqrt(gmpy2.fsum([v * v for v in c]) / n + gmpy2.mpfr(e))
    return [gmpy2.mpfr(float(g[i])) * c[i] / sig + gmpy2.mpfr(float(b[i])) for i in range(n)]


@given(seed=seeds(), n=st.integers(2, 8), affine=st.booleans(), norm_eps=st.sampled_from([0.0, 1e-5, 0.5]))
def test_layernorm_jacobian_against_mpfr_differences(
    seed: int, n: int, affine: bool, norm_eps: float
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) * rng.uniform(0.1, 10)
    g = rng.normal(size=n) if affine else np.ones(n)
    b = rng.normal(size=n) if affine else np.zeros(n)
    y, J = layernorm_jacobian(x, gamma=g if affine else None, beta=b if affine else None, norm_eps=norm_eps)
    with mpfr_context(512):
        xm = [gmpy2.mpfr(float(v)) for v in x]
        ref_y = _mp_layernorm(xm, g, b, norm_eps)
        np.testing.assert_allclose(y, [float(v) for v in ref_y], rtol=1e-12, atol=1e-12)
        h = gmpy2.mpfr(2) ** -120
        for j in range(n):
            up = _mp_layernorm([v + h if k == j else v for k, v in enumerate(xm)], g, b, norm_eps)
            dn = _mp_layernorm([v - h if k == j else v for k, v in enumerate(xm)], g, b, norm_eps)
            col = [float((up[i] - dn[i]) / (2 * h)) for i in range(n)]
            scale = np.abs(g).max() / math.sqrt(np.var(x) + norm_eps)  # the size of J's entries
            np.testing.assert_allclose(J[:, j], col, rtol=1e-10, atol=1e-13 * scale)


@given(seed=seeds(), n=st.integers(2, 8), affine=st.booleans(), log_eta=st.integers(-40, -20))
def test_layernorm_bound_holds_and_is_attained(seed: int, n: int, affine: bool, log_eta: int) -> None:
    """MPFR perturbation experiment with per-component eps_j <= eta * sigma~:
    relerr_i <= sum_j K_ij + margin_i, and the pattern delta_j = eps_j sign(J_ij) reaches
    sum_j K_ij - margin_i, with the second-order margin
    margin_i = 3 eta^2 (1 + |xhat_i|) |gamma_i| / |y_i| derived in layernorm_amplification's Notes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) * rng.uniform(0.1, 10)
    g = rng.normal(size=n) if affine else np.ones(n)
    b = rng.normal(size=n) if affine else np.zeros(n)
    ne = 1e-5
    sig = math.sqrt(np.var(x) + ne)
    eps = np.ldexp(np.floor(rng.uniform(0, 1, size=n) * 2**20), log_eta - 20) * sig
    K = layernorm_amplification(x, eps, gamma=g, beta=b, norm_eps=ne)
    y, J = layernorm_jacobian(x, gamma=g, beta=b, norm_eps=ne)
    xhat = (x - x.mean()) / sig
    eta = float(eps.max()) / sig
    bound = K.sum(axis=1)
    margin = 3 * eta**2 * (1 + np.abs(xhat)) * np.abs(g) / np.abs(y) + 1e-60
    xm = [gmpy2.mpfr(float(v)) for v in x]
    with mpfr_context():
        ref = _mp_layernorm(xm, g, b, ne)
        for i in range(n):
            random_delta = eps * rng.uniform(-1, 1, size=n)
            worst = eps * np.sign(J[i])
            for delta, tight in ((random_delta, False), (worst, True)):
                pert = _mp_layernorm([xm[j] + gmpy2.mpfr(float(delta[j])) for j in range(n)], g, b, ne)
                rel = abs(float((pert[i] - ref[i]) / ref[i]))
                assert rel <= bound[i] + margin[i]
                if tight:
                    assert rel >= bound[i] - margin[i]


def test_layernorm_bad_inputs() -> None:
    with pytest.raises(AnalysisError, match="gamma has shape"):
        layernorm_jacobian([1.0, 2.0], gamma=[1.0, 2.0, 3.0])
    with pytest.raises(AnalysisError, match="constant row"):
        layernorm_jacobian([1.0, 1.0], norm_eps=0.0)
    with pytest.raises(AnalysisError, match="norm_eps"):
        layernorm_jacobian([1.0, 2.0], norm_eps=-1.0)
    with pytest.raises(AnalysisError, match="finite"):
        layernorm_amplification([1.0, np.inf], 1e-3)
    assert layernorm_amplification(np.ones((4, 3)) * [1.0, 2.0, 4.0], 1e-3).shape == (4, 3, 3)


# ========================================================================================= bad inputs
@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (np.array([0.5, -0.1, 0.6]), "outside \\[0, 1\\]"),
        (np.array([0.5, np.nan, 0.5]), "NaN"),
        (np.array([0.5, 0.4]), "sums to 0.9"),
        (np.array([0.6, 0.6]), "sums to 1.2"),
        (np.array(1.0), "at least one axis"),
        (np.zeros((2, 0)), "at least one entry"),
    ],
)
def test_lamp_select_rejects_bad_probabilities(probs: np.ndarray, match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        lamp_select(probs, 1.5)
    with pytest.raises(ValueError, match=match):  # AnalysisError is a ValueError
        softmax_kappa(probs)


def test_row_sum_tolerance_follows_the_dtype() -> None:
    row32 = np.array([0.5, 0.5 + 2**-22], dtype=np.float32)  # off by 2**-22 <= max(2**-20, 8 u32)
    lamp_select(row32, 1.5)
    lamp_select(np.array([1.0 + 2**-23], dtype=np.float32), 1.5)  # a rounded one-hot row
    with pytest.raises(AnalysisError, match="row \\(1,\\)"):
        lamp_select(np.array([[0.5, 0.5], [0.5, 0.5 + 2**-12]]), 1.5)
    big = np.full(2**16, 2.0**-16, dtype=np.float32)
    big[0] += np.float32(2**-10)  # 4 n u = 2**-6 for n = 2**16 float32 entries
    assert lamp_select(big, 2.0).sum() == 0


@pytest.mark.parametrize("tau", [0.0, -1.0, 2.0000001, 3.0, float("nan"), True, "1.5", np.array([1.0, 2.0])])
def test_lamp_select_rejects_bad_tau(tau: object) -> None:
    with pytest.raises(AnalysisError, match="tau"):
        lamp_select(np.array([0.5, 0.5]), tau)  # type: ignore[arg-type]


@pytest.mark.parametrize("tau", [0.0, -1.0, 2.0000001, 3, float("nan"), True, "1.5", np.array([1.0, 2.0])])
def test_check_tau_raises_the_callers_error(tau: object) -> None:
    """The one check of tau (shared by lamp_select, LampConfig and the study's settings) raises the error
    class its caller names, with the message that names tau and its range."""
    from lampref.analysis._checks import check_tau
    from lampref.errors import ExperimentError

    with pytest.raises(ExperimentError, match="tau") as err:
        check_tau(tau, error=ExperimentError)
    assert isinstance(err.value, ValueError)
    if isinstance(tau, float) and not math.isnan(tau):
        assert f"tau={tau!r} is out of range; expected 0 < tau <= 2" in str(err.value)


@pytest.mark.parametrize("tau", [2, 1.5, np.float32(1.25), np.array(0.5), Fraction(1, 3)])
def test_check_tau_returns_a_python_float(tau: object) -> None:
    from lampref.analysis._checks import check_tau

    t = check_tau(tau)
    assert type(t) is float
    assert Fraction(t) == Fraction(float(tau))  # type: ignore[arg-type]


def test_lamp_select_rejects_bad_masks_rules_and_scans() -> None:
    s = np.array([[0.5, 0.5], [0.25, 0.75]])
    with pytest.raises(AnalysisError, match="valid has shape \\(3,\\)"):
        lamp_select(s, 1.5, valid=np.ones(3, dtype=bool))
    with pytest.raises(AnalysisError, match="valid has dtype int"):
        lamp_select(s, 1.5, valid=np.ones(2, dtype=int))
    with pytest.raises(AnalysisError, match=r"rule='greedy'.*'prefix', 'optimal', 'authors'"):
        lamp_select(s, 1.5, rule="greedy")
    with pytest.raises(AnalysisError, match="scan='gpu'"):
        lamp_select(s, 1.5, rule="authors", scan="gpu")
    with pytest.raises(AnalysisError, match="only to rule='authors'"):
        lamp_select(s, 1.5, scan="cuda")
    with pytest.raises(InputTypeError):
        lamp_select(np.array(["a", "b"]), 1.5)
    # a fully masked row is allowed and selects nothing; values outside valid are ignored
    out = lamp_select(np.array([[0.3, 0.7], [9.0, 9.0]]), 1.0, valid=np.array([[True, True], [False, False]]))
    assert out.tolist() == [[False, True], [False, False]]
    assert softmax_amplification(np.array([0.5, 0.5, 7.0]), valid=np.array([True, True, False]))[2] == 0.0


@given(pair=masked_probability_rows(max_n=8), tau=lamp_taus())
def test_valid_entries_alone_decide(pair: tuple[np.ndarray, np.ndarray], tau: float) -> None:
    """Selecting over (probs, valid) equals selecting over probs[valid] alone, for both exact rules."""
    probs, valid = pair
    for rule in ("prefix", "optimal"):
        full = lamp_select(probs, tau, valid=valid, rule=rule)
        alone = lamp_select(probs[valid], tau, rule=rule)
        np.testing.assert_array_equal(full[valid], alone)
