r"""Tests of :mod:`lampref.accumulate`: matmul, dot and linear with an explicit accumulation model.

Oracles, one per group (none of them is lampref agreeing with itself):

* ``staging="exact"``, every deterministic mode, order, block size and product setting:
  :func:`lampref.testing.reference_matmul`, which sums exact ``Fraction`` values and rounds every step with
  MPFR, compared bit for bit (NaN equals NaN, signed zeros distinguished); literal values worked out by hand
  for the edge cases (cancellation, ties made by the sum, overflow mid-sum, subnormal accumulators, K = 0);
* ``staging="fp32"`` (the LAMP authors' kernel): a loop written here in ``np.float32`` arithmetic with the
  authors' mantissa rounding done on the uint32 bit pattern (``add (1 << (22 - m)) - 1 + lsb``, mask, keep
  inf and NaN), for every m in 0..23; the fused and blocked variants use ``Fraction`` sums rounded by MPFR;
* the textbook bound :math:`|\hat s - s| \le \gamma_n \sum |a_k b_k| + n\,\eta\,(1 + \gamma_n)` with
  exact ``Fraction`` arithmetic on both sides;
* stochastic modes: reproducibility, and unbiasedness of the whole sum against the exact value with a
  tolerance from a variance bound;
* batch broadcasting: ``numpy.matmul``'s result shapes and the 2-D products of each batch element;
* bad arguments: the exception class and a message naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampref
from lampref import (
    Accumulator,
    FloatFormat,
    FormatError,
    InputValueError,
    LamprefError,
    ModeError,
    bf16,
    dot,
    fp16,
    fp32,
    fp32_mantissa,
    fp64,
    linear,
    matmul,
    tf32,
)
from lampref.errors import ShapeError
from lampref.rounding import DETERMINISTIC_MODES
from lampref.testing import formats, mpfr_round, mpfr_round_fraction, reference_matmul

F32_MAX = float(np.finfo(np.float32).max)
INF = math.inf
BACKENDS = ("numba", "numpy") if lampref._backend._load_kernels() is not None else ("numpy",)


@pytest.fixture(scope="module", autouse=True, params=BACKENDS)
def accumulation_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test of this module runs on each importable backend (the compiled kernels and NumPy)."""
    lampref.set_backend(request.param)
    yield request.param
    lampref.set_backend(None)


NAN = math.nan
ORDERS = ("sequential", "reverse", "pairwise")


# ----------------------------------------------------------------------------------------- helpers
def assert_same_bits(got: object, want: object, context: object = "") -> None:
    """Equal values, NaN == NaN, +0 != -0; on failure show the first differing elements."""
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    assert g.shape == w.shape, f"shape {g.shape} != {w.shape}; {context}"
    same = (np.isnan(g) & np.isnan(w)) | ((g == w) & (np.signbit(g) == np.signbit(w)))
    if not same.all():
        bad = np.argwhere(~same)[:5]
        lines = [
            f"  at {tuple(i)}: got {g[tuple(i)]!r} ({g[tuple(i)].hex()}), want {w[tuple(i)]!r} "
            f"({w[tuple(i)].hex()})"
            for i in bad
        ]
        raise AssertionError(
            f"{int((~same).sum())} of {same.size} elements differ; {context}\n" + "\n".join(lines)
        )


def f32(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


SPECIALS = [0.0, -0.0, INF, -INF, NAN]
# scales (largest magnitude drawn) of the operands: subnormal products, tiny, unit, overflowing narrow
# formats, overflowing fp32 products; "int" is small integers, which make ties in the sums.
SCALES = ["int", 2.0**-140, 2.0**-60, 2.0**-10, 1.0, 2.0**8, 2.0**40, 2.0**64, F32_MAX]


def float32_values(scale: object, specials: bool) -> st.SearchStrategy[float]:
    if scale == "int":
        finite = st.integers(-4, 4).map(float)
    else:
        assert isinstance(scale, float)
        finite = st.floats(min_value=-scale, max_value=scale, width=32)
    if specials:
        return st.one_of(finite, finite, finite, st.sampled_from(SPECIALS))
    return finite


@st.composite
def operands(
    draw: st.DrawFn,
    *,
    max_mn: int = 3,
    max_k: int = 64,
    specials: bool | None = None,
    scales: list[object] = SCALES,
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 operands of shapes (M, K) and (K, N), one scale per case (K in 0..max_k)."""
    M = draw(st.integers(1, max_mn))
    N = draw(st.integers(1, max_mn))
    K = draw(st.one_of(st.just(0), st.just(1), st.integers(0, max_k)))
    scale = draw(st.sampled_from(scales))
    sp = draw(st.integers(0, 9)) == 0 if specials is None else specials
    elem = float32_values(scale, sp)
    a = draw(st.lists(elem, min_size=M * K, max_size=M * K))
    b = draw(st.lists(elem, min_size=K * N, max_size=K * N))
    return f32(a).reshape(M, K), f32(b).reshape(K, N)


FORMATS_F32 = st.one_of(
    formats(min_p=2, max_p=24, max_emax=127, fits_float32=True),
    st.sampled_from(
        [
            fp16,
            bf16,
            tf32,
            fp32,
            fp32_mantissa(10),
            fp32_mantissa(3),
            FloatFormat(p=5, emax=4),
            fp16.replace(subnormals=False),
        ]
    ),
)


def exact_accumulators(**extra: st.SearchStrategy[object]) -> st.SearchStrategy[Accumulator]:
    """Exactly staged accumulators into the formats within float32, every deterministic mode, block and
    order (``extra``: strategies for further fields)."""
    return st.builds(
        Accumulator,
        FORMATS_F32,
        mode=st.sampled_from(DETERMINISTIC_MODES),
        block=st.sampled_from([1, 2, 32]),
        order=st.sampled_from(ORDERS),
        **extra,
    )


# IEEE product formats: reference_matmul leaves non-finite products unrounded, which is the rounding of an
# infinity or NaN only in a format with infinities that does not saturate.
PRODUCT_FORMATS = st.sampled_from([fp32, bf16, fp16, tf32, fp32_mantissa(4)])


@st.composite
def accumulators(draw: st.DrawFn) -> Accumulator:
    block = draw(st.sampled_from([1, 2, 3, 32]))
    products = draw(st.one_of(st.just("exact"), PRODUCT_FORMATS))
    return Accumulator(
        draw(FORMATS_F32),
        mode=draw(st.sampled_from(DETERMINISTIC_MODES)),
        block=block,
        block_fmt=draw(st.one_of(st.sampled_from([fp32, bf16, fp16, tf32]), FORMATS_F32))
        if block > 1
        else fp32,
        block_mode=draw(st.sampled_from(DETERMINISTIC_MODES)) if block > 1 else "nearest_even",
        order=draw(st.sampled_from(ORDERS)),
        products=products,
        products_mode=draw(st.sampled_from(DETERMINISTIC_MODES)) if products != "exact" else "nearest_even",
    )


# ------------------------------------------------------------ exact staging against reference_matmul
ONES3 = np.ones((3, 1), np.float32)
FP16 = Accumulator(fp16)
M10 = Accumulator(fp32_mantissa(10))

EDGE_CASES = [
    # catastrophic cancellation: fl(1e8) = 100007936 in p = 11, the 1 is lost, 1e8 cancels exactly
    (M10, f32([[1e8, 1, -1e8]]), ONES3),
    (Accumulator(fp32_mantissa(10), order="reverse"), f32([[1e8, 1, -1e8]]), ONES3),
    # ties made by the sum: 1 + 2**-11 (to even: 1), 1 + 2**-10 + 2**-11 (to even: up)
    (FP16, f32([[1, 2**-11]]), np.ones((2, 1), np.float32)),
    (FP16, f32([[1 + 2**-10, 2**-11]]), np.ones((2, 1), np.float32)),
    (Accumulator(fp16, mode="nearest_away"), f32([[1, 2**-11]]), np.ones((2, 1), np.float32)),
    # overflow mid-sum: inf stays inf; inf + -inf is NaN
    (FP16, f32([[60000, 60000, -60000]]), ONES3),
    (FP16, f32([[60000, 60000, -np.inf]]), ONES3),
    (Accumulator(fp16, mode="toward_zero"), f32([[60000, 60000, -60000]]), ONES3),
    (Accumulator(FloatFormat(p=4, emax=3)), f32([[10, 10, -10, -10]]), np.ones((4, 1), np.float32)),
    # subnormal accumulator: fp16 with products 2**-25 (half the smallest subnormal: ties to 0)
    (FP16, f32([[2**-20] * 4]), np.full((4, 1), 2**-5, np.float32)),
    (FP16, f32([[3 * 2**-20, 2**-20, 2**-20]]), np.full((3, 1), 2**-5, np.float32)),
    (Accumulator(fp16.replace(subnormals=False)), f32([[2**-14, -(2**-15)]]), np.ones((2, 1), np.float32)),
    # K = 0 and K = 1
    (FP16, np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)),
    (Accumulator(fp16, mode="toward_neg"), np.zeros((1, 0), np.float32), np.zeros((0, 1), np.float32)),
    (Accumulator(fp32_mantissa(3)), f32([[1.1, -3.3]]).T, f32([[7.7, 1.0]])),
    # signed zeros
    (FP16, f32([[-0.0]]), f32([[1.0]])),
    (FP16, f32([[-0.0, 0.0]]), f32([[1.0], [-1.0]])),
    (FP16, f32([[-0.0, 0.0]]), np.ones((2, 1), np.float32)),
    (Accumulator(fp16, mode="toward_neg"), f32([[-0.0, 0.0]]), np.ones((2, 1), np.float32)),
    (Accumulator(fp16, mode="toward_neg"), f32([[1.0, -1.0]]), np.ones((2, 1), np.float32)),
    (Accumulator(fp16, order="pairwise"), f32([[-0.0, -0.0, -0.0]]), ONES3),
    (Accumulator(fp16, block=2), f32([[-0.0, -0.0, -0.0]]), ONES3),
    # NaN and infinite operands
    (FP16, f32([[np.inf, 1]]), f32([[0], [1]])),
    (FP16, f32([[np.inf, 2]]), np.ones((2, 1), np.float32)),
    (FP16, f32([[np.inf, -np.inf]]), np.ones((2, 1), np.float32)),
    (FP16, f32([[np.nan, 1]]), np.ones((2, 1), np.float32)),
    (Accumulator(FloatFormat(p=4, emax=3, saturate=True)), f32([[np.inf, 1]]), np.ones((2, 1), np.float32)),
    (Accumulator(fp16, block=32), f32([[np.inf, 1, 2]]), ONES3),
    # the issue's example
    (FP16, f32([[1, 2**-11, 2**-11]]), ONES3),
    (Accumulator(fp16, order="reverse"), f32([[1, 2**-11, 2**-11]]), ONES3),
    # products rounded first: 3 * 1.5 = 4.5 -> bf16 products stay, fp32_m1 products round to 4
    (Accumulator(fp16, products=fp32_mantissa(1)), f32([[3, 3]]), f32([[1.5], [1.5]])),
    # a block sum that overflows its format but not the accumulator's
    (Accumulator(fp32, block=2, block_fmt=fp16), f32([[60000, 60000, 1]]), ONES3),
]


def _with_examples(cases: list[tuple[Accumulator, np.ndarray, np.ndarray]]):  # type: ignore[no-untyped-def]
    def deco(f):  # type: ignore[no-untyped-def]
        for c in cases:
            f = example(case=c)(f)
        return f

    return deco


@settings(max_examples=500)
@given(case=st.tuples(accumulators(), operands()).map(lambda t: (t[0], *t[1])))
@_with_examples(EDGE_CASES)
def test_matmul_equals_reference(case: tuple[Accumulator, np.ndarray, np.ndarray]) -> None:
    acc, a, b = case
    got = matmul(a, b, acc)
    assert got.dtype == acc.fmt.dtype
    assert got.shape == (a.shape[0], b.shape[1])
    assert_same_bits(got, reference_matmul(a, b, acc), f"{acc!r}\na={a.tolist()}\nb={b.tolist()}")


@pytest.mark.parametrize(
    ("acc", "a", "b", "expected"),
    [
        (M10, [[1e8, 1, -1e8]], ONES3, [[7936.0]]),
        (Accumulator(fp32_mantissa(10), order="reverse"), [[1e8, 1, -1e8]], ONES3, [[-7936.0]]),
        (Accumulator(fp32_mantissa(10), order="pairwise"), [[1e8, 1, -1e8]], ONES3, [[-7936.0]]),
        (FP16, [[1, 2**-11]], np.ones((2, 1)), [[1.0]]),
        (FP16, [[1 + 2**-10, 2**-11]], np.ones((2, 1)), [[1 + 2**-9]]),
        (FP16, [[60000, 60000, -60000]], ONES3, [[np.inf]]),
        (FP16, [[60000, 60000, -np.inf]], ONES3, [[np.nan]]),
        (Accumulator(fp16, mode="toward_zero"), [[60000, 60000, -60000]], ONES3, [[65504.0 - 60000.0]]),
        (FP16, [[2**-20] * 4], np.full((4, 1), 2**-5), [[0.0]]),
        (FP16, [[3 * 2**-20, 2**-20, 2**-20]], np.full((3, 1), 2**-5), [[2**-23]]),
        (FP16, np.zeros((2, 0)), np.zeros((0, 3)), np.zeros((2, 3))),
        (FP16, [[-0.0, -0.0]], np.ones((2, 1)), [[-0.0]]),
        (FP16, [[-0.0, 0.0]], np.ones((2, 1)), [[0.0]]),
        (Accumulator(fp16, mode="toward_neg"), [[-0.0, 0.0]], np.ones((2, 1)), [[-0.0]]),
        (Accumulator(fp16, mode="toward_neg"), [[1.0, -1.0]], np.ones((2, 1)), [[-0.0]]),
        (FP16, [[np.inf, 1]], [[0], [1]], [[np.nan]]),
        (FP16, [[1, 2**-11, 2**-11]], ONES3, [[1.0]]),
        (Accumulator(fp16, order="reverse"), [[1, 2**-11, 2**-11]], ONES3, [[1 + 2**-10]]),
    ],
)
def test_matmul_edge_cases_by_hand(acc: Accumulator, a: object, b: object, expected: object) -> None:
    assert_same_bits(matmul(f32(a), f32(b), acc), expected, repr(acc))


def test_issue_example_prints_as_documented() -> None:
    a = np.float32([[1, 2**-11, 2**-11]])
    b = np.ones((3, 1), np.float32)
    assert repr(matmul(a, b, Accumulator(fp16))) == "array([[1.]], dtype=float32)"
    assert repr(matmul(a, b, Accumulator(fp16, order="reverse"))) == "array([[1.0009766]], dtype=float32)"


def test_K0_is_positive_zero_in_every_mode() -> None:
    for mode in DETERMINISTIC_MODES:
        out = matmul(np.zeros((2, 0), np.float32), np.zeros((0, 2), np.float32), Accumulator(fp16, mode=mode))
        assert_same_bits(out, np.zeros((2, 2)), mode)


# -------------------------------------------------------------------------------- the gamma_n bound
@settings(max_examples=150)
@given(
    p=st.integers(2, 24),
    mode=st.sampled_from(["nearest_even", "nearest_away"]),
    order=st.sampled_from(ORDERS),
    block=st.sampled_from([1, 1, 2, 3, 32]),
    ab=operands(max_k=64, specials=False, scales=["int", 2.0**-60, 2.0**-10, 1.0, 2.0**8, 2.0**40]),
)
def test_error_within_gamma_n_bound(p: int, mode: str, order: str, block: int, ab: tuple) -> None:
    r"""In fp32's exponent range (with subnormals) and without overflow (operands below 2**40, K <= 64),

    .. math:: |\hat s - s| \le \gamma_n \sum_k |a_k b_k| + n\,\eta\,(1 + \gamma_n),
       \qquad \gamma_n = \frac{n u}{1 - n u},\ \eta = 2^{e_{\min} - p},

    with n = K for block = 1 (every order: no product goes through more than K roundings). For blocks of
    b there are nb = ceil(K / b) block sums; a product goes through its block's rounding to fp32 (whose u
    is at most the accumulator's) and at most nb accumulator roundings, so gamma_(nb + 1) bounds the
    relative part, and at most 2 nb roundings add an absolute term. The term in eta covers roundings in the
    subnormal range (the standard model fl(x) = x(1 + d) + e, |e| <= eta). All arithmetic on both sides is
    exact (Fractions).
    """
    a, b = ab
    fmt = fp32_mantissa(p - 1)
    K = a.shape[1]
    nb = math.ceil(K / block)
    n_rel = K if block == 1 else nb + 1
    n_abs = K if block == 1 else 2 * nb
    u = Fraction(1, 2**p)
    if n_rel * u >= 1:
        return
    gamma = n_rel * u / (1 - n_rel * u)
    eta = Fraction(2) ** (fmt.emin - p)
    got = matmul(a, b, Accumulator(fmt, mode=mode, order=order, block=block))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            prods = [Fraction(float(a[i, k])) * Fraction(float(b[k, j])) for k in range(K)]
            exact = sum(prods, Fraction(0))
            bound = gamma * sum(map(abs, prods), Fraction(0)) + n_abs * eta * (1 + gamma)
            g = float(got[i, j])
            assert math.isfinite(g)
            err = abs(Fraction(g) - exact)
            assert err <= bound, f"p={p} {mode} {order} block={block} [{i},{j}]: {g} vs {float(exact)}"


def test_gamma_n_bound_is_not_vacuous() -> None:
    """The bound is not vacuous: a sum whose error is more than a fifth of gamma_n * sum|t|."""
    fmt = fp32_mantissa(3)  # u = 1/16
    a = f32([[1.0] + [3 / 32] * 3])
    got = float(matmul(a, np.ones((4, 1), np.float32), Accumulator(fmt))[0, 0])
    exact = 1 + 9 / 32
    assert got == 1.375  # 1 -> 1.125 -> 1.25 -> 1.375
    gamma = 4 / 16 / (1 - 4 / 16)
    assert 0.2 * gamma * (1 + 9 / 32) < abs(got - exact) <= gamma * (1 + 9 / 32)


# ------------------------------------------------------------------------------- batch broadcasting
@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((2, 3, 4, 7), (7, 5)),
        ((3, 2, 7), (3, 7, 4)),
        ((1, 2, 7), (3, 7, 4)),
        ((3, 2, 7), (1, 7, 4)),
        ((2, 7), (3, 7, 4)),
        ((2, 1, 2, 7), (3, 7, 2)),
        ((7,), (7, 4)),
        ((2, 7), (7,)),
        ((7,), (7,)),
        ((7,), (3, 7, 2)),
        ((3, 2, 7), (7,)),
        ((0, 2, 7), (7, 3)),
        ((2, 0), (0, 3)),
    ],
)
@pytest.mark.parametrize(
    "acc",
    [
        Accumulator(fp32_mantissa(5), order="reverse"),
        Accumulator(fp16, block=3, mode="toward_pos"),
        Accumulator.authors(7),
        Accumulator.authors(4, block=32),
    ],
)
def test_batch_broadcasting_as_numpy(sa: tuple, sb: tuple, acc: Accumulator) -> None:
    rng = np.random.default_rng(hash((sa, sb)) % 2**32)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    got = np.asarray(matmul(a, b, acc))
    want_shape = np.matmul(a, b).shape
    assert got.shape == want_shape
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    A = np.broadcast_to(a2, (*batch, *a2.shape[-2:]))
    B = np.broadcast_to(b2, (*batch, *b2.shape[-2:]))
    full = got.reshape((*batch, a2.shape[-2], b2.shape[-1]))
    for idx in np.ndindex(*batch):
        assert_same_bits(
            full[idx],
            matmul(np.ascontiguousarray(A[idx]), np.ascontiguousarray(B[idx]), acc),
            (acc, sa, sb, idx),
        )
    if acc.staging == "exact" and batch and math.prod(full.shape):  # anchor one batch element to the oracle
        idx = (0,) * len(batch)
        assert_same_bits(full[idx], reference_matmul(A[idx], B[idx], acc), (acc, sa, sb))


@pytest.mark.parametrize(
    ("sa", "sb", "words"),
    [
        ((2, 3), (4, 2), ["a.shape[-1] == b.shape[-2]", "(2, 3)", "(4, 2)"]),
        ((3,), (4,), ["(3,)", "(4,)"]),
        ((2, 2, 3), (3, 3, 2), ["batch", "(2, 2, 3)", "(3, 3, 2)"]),
        ((2, 5, 2, 3), (4, 3, 2), ["batch"]),
        ((), (3,), ["dimension"]),
    ],
)
def test_shape_errors_name_the_shapes(sa: tuple, sb: tuple, words: list[str]) -> None:
    a, b = np.ones(sa, np.float32), np.ones(sb, np.float32)
    with pytest.raises(ShapeError) as info:
        matmul(a, b, M10)
    assert isinstance(info.value, LamprefError)
    assert isinstance(info.value, ValueError)
    for w in words:
        assert w in str(info.value)


def test_shape_error_is_exported() -> None:
    assert lampref.ShapeError is ShapeError


def test_float64_values_need_a_products_format() -> None:
    a = np.array([[0.1, 0.2]])  # float64 values that are not float32 values
    b = np.ones((2, 1))
    with pytest.raises(InputValueError, match=r"\ba\b.*float32"):
        matmul(a, b, M10)
    with pytest.raises(InputValueError, match=r"\bb\b.*float32"):
        matmul(b.T, a.T, M10)
    with pytest.raises(InputValueError):
        matmul(a, b, Accumulator.authors(10))
    # float64 arrays that hold float32 values are accepted
    a32 = np.float32([[0.1, 0.2]])
    assert_same_bits(matmul(a32.astype(np.float64), b, M10), matmul(a32, b.astype(np.float32), M10))


@settings(max_examples=60)
@given(
    acc=exact_accumulators(
        products=st.sampled_from([fp32, bf16, tf32]), products_mode=st.sampled_from(DETERMINISTIC_MODES)
    ),
    mnk=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(0, 40)),
    seed=st.integers(0, 2**32 - 1),
)
def test_float64_inputs_with_product_format_equal_reference(acc: Accumulator, mnk: tuple, seed: int) -> None:
    M, N, K = mnk
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)) * 2.0 ** rng.integers(-20, 20)
    b = rng.standard_normal((K, N))
    assert_same_bits(
        matmul(a, b, acc), reference_matmul(a, b, acc), f"{acc!r}\na={a.tolist()}\nb={b.tolist()}"
    )


@pytest.mark.parametrize("block", [1, 2])
def test_float64_products_are_rounded_once(block: int) -> None:
    """Regression: with products=fmt and float64 operands that are not float32 values, the product must be
    rounded once from its exact value. a*b = 1 + 2**-24 + 2**-76 - 2**-104 exactly: float64 rounds it to the
    fp32 tie 1 + 2**-24, whose rounding to even (1) is wrong; the correct fp32 product is 1 + 2**-23."""
    a = np.array([[1 + 2**-24 - 2**-52, 0.0]])[:, :block]
    b = np.array([[1 + 2**-52], [0.0]])[:block]
    acc = Accumulator(fp32, products=fp32, block=block)
    assert reference_matmul(a, b, acc)[0, 0] == 1 + 2**-23
    assert_same_bits(matmul(a, b, acc), [[1 + 2**-23]], repr(acc))


# ------------------------------------------------------------------------------------ dot and linear
@settings(max_examples=60)
@given(acc=accumulators(), ab=operands(max_mn=1, max_k=40))
def test_dot_equals_matmul_of_the_vectors(acc: Accumulator, ab: tuple) -> None:
    a, b = ab
    x, y = a[0], b[:, 0]
    got = dot(x, y, acc)
    assert np.ndim(got) == 0
    assert_same_bits(got, matmul(x[None, :], y[:, None], acc)[0, 0])
    assert_same_bits(got, reference_matmul(x[None, :], y[:, None], acc)[0, 0], repr(acc))


def test_dot_batches_and_errors() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 9)).astype(np.float32)
    y = rng.standard_normal((4, 9)).astype(np.float32)
    acc = Accumulator(bf16, order="pairwise")
    got = dot(x, y, acc)
    assert got.shape == (4,)
    for i in range(4):
        assert_same_bits(got[i], reference_matmul(x[i][None], y[i][:, None], acc)[0, 0])
    assert_same_bits(dot(x, y[0], acc), [dot(x[i], y[0], acc) for i in range(4)])
    with pytest.raises(ShapeError, match="lengths differ"):
        dot(x, y[:, :3], acc)
    with pytest.raises(ShapeError):
        dot(np.float32(1), y[0], acc)


def _round_sum_exact(y: float, bias: float, fmt: FloatFormat, mode: str) -> float:
    """fl(y + bias) of the exact sum (IEEE rules for infinities, NaN and the sign of an exact zero)."""
    if not (math.isfinite(y) and math.isfinite(bias)):
        return mpfr_round(y + bias, fmt, mode)
    s = Fraction(y) + Fraction(bias)
    if s == 0:
        both_neg = math.copysign(1, y) < 0 and math.copysign(1, bias) < 0
        both_pos = math.copysign(1, y) > 0 and math.copysign(1, bias) > 0
        return mpfr_round_fraction(
            s, fmt, mode, negative_zero=both_neg or (mode == "toward_neg" and not both_pos)
        )
    return mpfr_round_fraction(s, fmt, mode)


@settings(max_examples=80)
@given(
    acc=exact_accumulators(),
    ab=operands(max_k=40),
    bias_scale=st.sampled_from([2.0**-30, 1.0, 2.0**10, F32_MAX]),
    data=st.data(),
)
def test_linear_exact_staging_equals_reference(
    acc: Accumulator, ab: tuple, bias_scale: float, data: st.DataObject
) -> None:
    x, w = ab
    N = w.shape[1]
    bias = f32(
        data.draw(
            st.lists(
                st.one_of(st.floats(-bias_scale, bias_scale, width=32), st.just(-0.0)), min_size=N, max_size=N
            )
        )
    )
    y = reference_matmul(x, w, acc)
    want = np.array(
        [
            [_round_sum_exact(float(y[i, j]), float(bias[j]), acc.fmt, acc.mode) for j in range(N)]
            for i in range(x.shape[0])
        ]
    )
    got = linear(x, w, bias, acc)
    assert got.dtype == acc.fmt.dtype
    assert_same_bits(got, want, f"{acc!r}\nx={x.tolist()}\nw={w.tolist()}\nbias={bias.tolist()}")
    assert_same_bits(linear(x, w, None, acc), y)


def test_linear_documented_double_rounding() -> None:
    # 1 + 2**-12 rounds to 1 in fp16, and 1 + 2**-12 (the bias) rounds to 1 again
    x, w, bias = f32([[1, 1]]), f32([[1], [2**-12]]), f32([2**-12])
    assert_same_bits(linear(x, w, bias, Accumulator(fp16)), [[1.0]])
    with pytest.raises(ShapeError, match="bias"):
        linear(x, w, f32([1, 2]), Accumulator(fp16))


# ----------------------------------------------------------------- staging fp32: the authors' kernel
U32 = np.uint32


def authors_round(x: np.ndarray, m: int) -> np.ndarray:
    """Round float32 values to nearest-even keeping m of fp32's 23 mantissa bits, on the bit pattern:
    add (1 << (22 - m)) - 1 + lsb to the magnitude and clear the low 23 - m bits; inf and NaN are kept."""
    x = np.asarray(x, dtype=np.float32)
    if m >= 23:
        return x.copy()
    k = 23 - m
    bits = x.view(U32)
    sign = bits & U32(0x80000000)
    mag = bits & U32(0x7FFFFFFF)
    special = (mag & U32(0x7F800000)) == U32(0x7F800000)
    lsb = (mag >> U32(k)) & U32(1)
    rounded = (mag + U32((1 << (k - 1)) - 1) + lsb) & U32(~((1 << k) - 1) & 0xFFFFFFFF)
    return (np.where(special, mag, rounded) | sign).view(np.float32)


def _fma32(s: float, a: float, b: float) -> np.float32:
    """fl32(s + a*b) from the exact value (IEEE rules for infinities, NaN and the sign of zero)."""
    if not (math.isfinite(s) and math.isfinite(a) and math.isfinite(b)):
        with np.errstate(invalid="ignore"):
            return np.float32(s + a * b)
    v = Fraction(s) + Fraction(a) * Fraction(b)
    if v == 0:  # an exact zero is -0 only for (-0) + (-0) (round to nearest)
        prod_is_neg_zero = a * b == 0 and math.copysign(1, a) * math.copysign(1, b) < 0
        neg = s == 0 and math.copysign(1, s) < 0 and prod_is_neg_zero
        return np.float32(-0.0 if neg else 0.0)
    return np.float32(mpfr_round_fraction(v, fp32))


def _block_sum32(prods: list[tuple[float, float]]) -> np.float32:
    """The exact sum of the products a*b of one block, rounded once to fp32 (IEEE special values)."""
    vals = [a * b for a, b in prods]  # float64: exact for float32 operands, inf*0 = NaN
    if any(math.isnan(v) for v in vals):
        return np.float32(NAN)
    infs = {math.copysign(1, v) for v in vals if math.isinf(v)}
    if infs:
        return np.float32(NAN if len(infs) == 2 else infs.pop() * INF)
    exact = sum((Fraction(a) * Fraction(b) for a, b in prods), Fraction(0))
    if exact == 0:
        return np.float32(-0.0 if all(v == 0 and math.copysign(1, v) < 0 for v in vals) else 0.0)
    return np.float32(mpfr_round_fraction(exact, fp32))


def authors_kernel(a: np.ndarray, b: np.ndarray, m: int, *, block: int = 1, fma: bool = False) -> np.ndarray:
    """The authors' kernel written out: a float32 accumulator from +0, one float32 step per product (or per
    block of exactly summed products), then the mantissa rounding of the whole accumulator."""
    M, K = a.shape
    N = b.shape[1]
    acc = np.zeros((M, N), np.float32)
    with np.errstate(all="ignore"):
        if block == 1:
            for k in range(K):
                if fma:
                    acc = np.array(
                        [
                            [_fma32(float(acc[i, j]), float(a[i, k]), float(b[k, j])) for j in range(N)]
                            for i in range(M)
                        ],
                        dtype=np.float32,
                    ).reshape(M, N)
                else:
                    prod = a[:, k, None] * b[None, k, :]  # float32 products
                    acc = (acc + prod).astype(np.float32)  # float32 sums
                acc = authors_round(acc, m)
        else:
            for k0 in range(0, K, block):
                ks = range(k0, min(k0 + block, K))
                blk = np.array(
                    [
                        [_block_sum32([(float(a[i, k]), float(b[k, j])) for k in ks]) for j in range(N)]
                        for i in range(M)
                    ],
                    dtype=np.float32,
                ).reshape(M, N)
                acc = authors_round((acc + blk).astype(np.float32), m)
    return acc


def test_authors_round_by_hand() -> None:
    x = f32(
        [1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11 + 2**-20), F32_MAX, np.inf, -np.inf, np.nan, -0.0, 2**-138]
    )
    # (2**-138 is below half the subnormal quantum 2**-136 of m = 10: it rounds to +0)
    want = f32([1, 1 + 2**-9, -(1 + 2**-10), np.inf, np.inf, -np.inf, np.nan, -0.0, 0.0])
    assert_same_bits(authors_round(x, 10), want)
    assert_same_bits(authors_round(f32([1.5, 3.0, 6.0, 2**-127]), 0), f32([2.0, 2.0, 8.0, 0.0]))
    nan_low_payload = np.array([0x7F800001], dtype=U32).view(np.float32)
    assert np.isnan(authors_round(nan_low_payload, 3)[0])


AUTHORS_SCALES = ["int", 2.0**-140, 2.0**-10, 1.0, 2.0**40, 2.0**64, F32_MAX]


@pytest.mark.parametrize("m", range(24))
@pytest.mark.parametrize("variant", ["plain", "fma", "block32"])
@settings(max_examples=12)
@given(ab=operands(max_k=70, scales=AUTHORS_SCALES))
@example(ab=(f32([[1, 2]]), f32([[1], [1]])))  # 3: a tie for m = 0
@example(ab=(f32([[1, 2**-11, 2**-11, 2**-12]]), np.ones((4, 1), np.float32)))
def test_fp32_staging_equals_authors_kernel(m: int, variant: str, ab: tuple) -> None:
    a, b = ab
    if variant == "plain":
        acc, want = Accumulator(fp32_mantissa(m), staging="fp32"), authors_kernel(a, b, m)
    elif variant == "fma":
        acc = Accumulator.authors(m)  # Triton fuses the strict step's multiply and add
        want = authors_kernel(a, b, m, fma=True)
    else:
        acc, want = Accumulator.authors(m, block=32), authors_kernel(a, b, m, block=32)
    got = matmul(a, b, acc)
    assert got.dtype == np.float32
    assert_same_bits(got, want, f"{acc!r}\na={a.tolist()}\nb={b.tolist()}")


@pytest.mark.parametrize("m", [0, 1, 5, 10, 23])
def test_fp32_staging_on_a_long_sum(m: int) -> None:
    """A 4 x 3 output over K = 300, at a scale where ties and sign changes are common."""
    rng = np.random.default_rng(m)
    a = rng.integers(-8, 9, (4, 300)).astype(np.float32) * np.float32(0.375)
    b = rng.standard_normal((300, 3)).astype(np.float32)
    assert_same_bits(matmul(a, b, Accumulator.authors(m)), authors_kernel(a, b, m, fma=True), f"m={m}")
    assert_same_bits(
        matmul(a, b, Accumulator.authors(m, fma=False)), authors_kernel(a, b, m), f"m={m}, unfused"
    )
    assert_same_bits(
        matmul(a, b, Accumulator.authors(m, block=32)), authors_kernel(a, b, m, block=32), f"m={m}"
    )


# Step 2 of [[-1, 1 + 2**-12]] @ [[1], [1 + 2**-12]]: the product is 1 + 2**-11 + 2**-24. Unfused, float32
# rounds it to 1 + 2**-11 (a tie, to even) and -1 + that is 2**-11; fused, -1 + the exact product is
# 2**-11 + 2**-24, a float32 value that m >= 13 mantissa bits keep.
FUSED_DIFFERS = (f32([[-1, 1 + 2**-12]]), f32([[1], [1 + 2**-12]]))


@pytest.mark.parametrize("m", range(24))
@settings(max_examples=10)
@given(ab=operands(max_k=40, scales=AUTHORS_SCALES))
@example(ab=FUSED_DIFFERS)
def test_issue11_item15_authors_strict_kernel_is_fused(m: int, ab: tuple) -> None:
    """Accumulator.authors(m) must match the authors' Triton kernel, whose acc += a*b compiles to an FMA."""
    a, b = ab
    acc = Accumulator.authors(m)
    assert acc == Accumulator(fp32_mantissa(m), staging="fp32", fma=True)
    # oracle: per step the exact acc + a*b (Fraction) rounded once to float32 (MPFR), then the authors'
    # mantissa rounding on the bit pattern
    assert_same_bits(matmul(a, b, acc), authors_kernel(a, b, m, fma=True), f"m={m}")


def test_issue11_item15_fused_and_unfused_by_hand() -> None:
    """The fused default and the unfused choice differ where float32 rounds the product first."""
    a, b = FUSED_DIFFERS
    assert_same_bits(matmul(a, b, Accumulator.authors(23)), f32([[2**-11 + 2**-24]]))
    assert_same_bits(matmul(a, b, Accumulator.authors(13)), f32([[2**-11 + 2**-24]]))
    assert_same_bits(matmul(a, b, Accumulator.authors(12)), f32([[2**-11]]))  # a tie at m = 12: to even
    assert_same_bits(matmul(a, b, Accumulator.authors(23, fma=False)), f32([[2**-11]]))
    assert not Accumulator.authors(10, block=32).fma  # tl.dot blocks: no multiply-add to fuse
    with pytest.raises(ModeError, match="fma"):
        Accumulator.authors(10, block=32, fma=True)


def test_fp32_staging_m0_ties_follow_the_bit_pattern() -> None:
    """The authors' kernel at m = 0 breaks a tie between 2**e and 2**(e+1) towards the even biased
    exponent (the last kept bit of the pattern): 3 -> 2 (exponent field 128), 1.5 -> 2, 6 -> 8."""
    a = f32([[3.0], [1.5], [6.0]])
    assert_same_bits(matmul(a, f32([[1.0]]), Accumulator.authors(0)), [[2.0], [2.0], [8.0]])


@pytest.mark.parametrize("m", [3, 10])
def test_linear_fp32_staging_equals_authors(m: int) -> None:
    rng = np.random.default_rng(m)
    x = rng.standard_normal((3, 40)).astype(np.float32)
    w = rng.standard_normal((40, 5)).astype(np.float32)
    bias = (rng.standard_normal(5) * 4).astype(np.float32)
    for block in (1, 32):
        y = authors_kernel(x, w, m, block=block, fma=block == 1)
        want = authors_round((y + bias).astype(np.float32), m)
        assert_same_bits(linear(x, w, bias, Accumulator.authors(m, block=block)), want, (m, block))
    with pytest.raises(InputValueError, match="bias"):
        linear(x, w, np.full(5, 0.1), Accumulator.authors(m))


# --------------------------------------------------------------------------------- stochastic modes
SR_MODES = ("stochastic", "stochastic_equal")


@pytest.mark.parametrize("mode", SR_MODES)
@pytest.mark.parametrize("variant", ["exact", "fp32", "block", "pairwise"])
def test_stochastic_reproducible_and_seed_dependent(mode: str, variant: str) -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((12, 40)).astype(np.float32)
    b = rng.standard_normal((40, 9)).astype(np.float32)
    acc = {
        "exact": Accumulator(fp32_mantissa(4), mode=mode),
        "fp32": Accumulator(fp32_mantissa(4), mode=mode, staging="fp32"),
        "block": Accumulator(fp32_mantissa(4), mode=mode, block=8, block_fmt=bf16, block_mode=mode),
        "pairwise": Accumulator(fp32_mantissa(4), mode=mode, order="pairwise"),
    }[variant]
    r1 = matmul(a, b, acc, rng=123)
    assert_same_bits(matmul(a, b, acc, rng=123), r1)
    assert_same_bits(matmul(a, b, acc, rng=np.random.default_rng(123)), r1)
    assert_same_bits(matmul(a, b, acc, rng=np.int64(123)), r1)
    assert not np.array_equal(matmul(a, b, acc, rng=124), r1)
    g = np.random.default_rng(5)
    first, second = matmul(a, b, acc, rng=g), matmul(a, b, acc, rng=g)  # a Generator advances
    assert not np.array_equal(first, second)


def test_stochastic_needs_rng() -> None:
    a, b = f32([[1, 2]]), f32([[1], [1]])
    for acc in (
        Accumulator(fp16, mode="stochastic"),
        Accumulator(fp16, mode="stochastic_equal", staging="fp32"),
        Accumulator(fp16, block=2, block_mode="stochastic"),
        Accumulator(fp16, products=bf16, products_mode="stochastic"),
    ):
        with pytest.raises(ModeError, match="rng"):
            matmul(a, b, acc)
    with pytest.raises(ModeError, match="rng"):
        matmul(a, b, Accumulator(fp16, mode="stochastic"), rng=1.5)
    with pytest.raises(ModeError, match="rng"):
        linear(a, b, f32([1.0]), Accumulator(fp16, mode="stochastic"))


SR_CASES = [
    # terms, format: the exact sum is not representable and lies well inside a gap
    ([1.0, 3 / 32, 3 / 32, 3 / 32], fp32_mantissa(3)),  # nearest gives 1.375, exact 1.28125
    ([0.3], fp32_mantissa(2)),
    ([1.0] + [2**-12] * 7, fp16),  # nearest loses every small term: 1; exact 1 + 7 * 2**-12
    ([-2.5, 0.7, 0.7, 0.7, 0.7, -0.1], fp32_mantissa(4)),
    ([2**-140, 3 * 2**-141], fp32_mantissa(3)),  # subnormal accumulator (quantum 2**-129)
]


def _variance_bound(terms: list[float], fmt: FloatFormat) -> float:
    """Each rounding of a value in [x, y] adds variance at most ulp**2 / 4, with ulp the spacing at
    twice the sum of |t| (a bound on every partial sum); the sum's variance is at most K of those."""
    big = 2 * sum(abs(t) for t in terms)
    e = max(math.frexp(big)[1] - 1, fmt.emin)
    ulp = math.ldexp(1.0, e - fmt.p + 1)
    return len(terms) * ulp**2 / 4


@pytest.mark.parametrize(("terms", "fmt"), SR_CASES)
def test_stochastic_sum_is_unbiased(terms: list[float], fmt: FloatFormat) -> None:
    """E[s_k | s_(k-1)] = s_(k-1) + t_k at every step, so E[s_K] = sum(t) (no overflow). The mean over
    n = 1000 seeds is compared with the exact sum within 6 standard deviations of the mean (from the
    variance bound above: a false alarm has probability < 1e-8; the seeds are fixed, so the test is
    deterministic). Where round-to-nearest is biased, the same tolerance rejects it: the test has power."""
    a = f32([terms])
    b = np.ones((len(terms), 1), np.float32)
    exact = math.fsum(float(t) for t in a[0])
    n = 1000
    tol = 6 * math.sqrt(_variance_bound(list(map(float, a[0])), fmt) / n)
    acc = Accumulator(fmt, mode="stochastic")
    samples = np.array([float(matmul(a, b, acc, rng=seed)[0, 0]) for seed in range(n)])
    assert abs(samples.mean() - exact) <= tol, (samples.mean(), exact, tol)
    rn = float(matmul(a, b, Accumulator(fmt))[0, 0])
    if terms[0] == 1.0:
        assert abs(rn - exact) > tol


@pytest.mark.parametrize(("terms", "fmt"), SR_CASES)
def test_stochastic_unbiased_across_many_elements(terms: list[float], fmt: FloatFormat) -> None:
    """Same property with one Generator and n = 20000 identical rows (every element draws its own bits),
    for every order, float32 staging, and stochastic block sums."""
    n = 20000
    a = np.tile(f32(terms), (n, 1))
    b = np.ones((len(terms), 1), np.float32)
    exact = math.fsum(float(t) for t in a[0])
    tol = 6 * math.sqrt(_variance_bound(list(map(float, a[0])), fmt) / n)
    accs = [Accumulator(fmt, mode="stochastic", order=order) for order in ORDERS]
    accs.append(Accumulator(fmt, mode="stochastic", block=2, block_fmt=fmt, block_mode="stochastic"))
    if all(abs(t) > 2**-100 for t in terms):  # the float32 steps are exact for these terms
        accs.append(Accumulator(fmt, mode="stochastic", staging="fp32"))
    for acc in accs:
        samples = matmul(a, b, acc, rng=11).astype(np.float64)[:, 0]
        assert abs(samples.mean() - exact) <= tol, (acc, samples.mean(), exact, tol)


@pytest.mark.parametrize("mode", SR_MODES)
def test_stochastic_single_rounding_picks_a_neighbour(mode: str) -> None:
    """K = 1: the result is RD or RU of the product; stochastic picks RU with probability (x - RD)/ulp,
    stochastic_equal with probability 1/2 (binomial, n = 4000, 6 sigma)."""
    fmt = fp32_mantissa(3)
    n = 4000
    for x in (1.3, -1.3, 0.3, 5.0625, 2**-131 * 1.7):
        v = float(np.float32(x))
        a = np.full((n, 1), v, np.float32)
        got = matmul(a, f32([[1.0]]), Accumulator(fmt, mode=mode), rng=3).astype(np.float64)[:, 0]
        lo = mpfr_round_fraction(Fraction(v), fmt, "toward_neg")
        hi = mpfr_round_fraction(Fraction(v), fmt, "toward_pos")
        assert set(np.unique(got)) <= {lo, hi}
        q = (v - lo) / (hi - lo) if mode == "stochastic" else 0.5
        frac = float(np.mean(got == hi))
        assert abs(frac - q) <= 6 * math.sqrt(q * (1 - q) / n), (x, frac, q)
    # representable products are never moved
    a = f32([[1.25, -3.0, 0.0, -0.0]]).T
    assert_same_bits(matmul(a, f32([[1.0]]), Accumulator(fmt, mode=mode), rng=0), a)


# ------------------------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"fmt": "nope"}, FormatError, ["nope"]),
        ({"fmt": fp16, "mode": "nope"}, ModeError, ["mode", "nope"]),
        ({"fmt": fp16, "order": "nope"}, ModeError, ["order", "nope"]),
        ({"fmt": fp16, "staging": "nope"}, ModeError, ["staging", "nope"]),
        ({"fmt": fp16, "block": 0}, ModeError, ["block"]),
        ({"fmt": fp16, "block": -3}, ModeError, ["block"]),
        ({"fmt": fp16, "block": 2.0}, ModeError, ["block"]),
        ({"fmt": fp16, "block": True}, ModeError, ["block"]),
        ({"fmt": fp16, "fma": True}, ModeError, ["fma", "staging"]),
        ({"fmt": fp64, "staging": "fp32"}, FormatError, ["staging", "fmt"]),
        ({"fmt": FloatFormat(p=24, emax=200), "staging": "fp32"}, FormatError, ["staging", "fmt"]),
        ({"fmt": fp16, "staging": "fp32", "order": "reverse"}, ModeError, ["staging", "order"]),
        ({"fmt": fp16, "staging": "fp32", "products": bf16}, ModeError, ["staging", "products"]),
        (
            {"fmt": fp16, "staging": "fp32", "block": 2, "block_fmt": FloatFormat(p=24, emax=1023)},
            FormatError,
            ["staging", "block_fmt"],
        ),
        ({"fmt": FloatFormat(p=52, emax=1023)}, FormatError, ["fmt", "p"]),
        ({"fmt": fp64, "mode": "toward_zero"}, FormatError, ["fmt", "mode"]),
        ({"fmt": fp16, "block": 2, "block_fmt": FloatFormat(p=52, emax=1023)}, FormatError, ["block_fmt"]),
        ({"fmt": fp16, "products": FloatFormat(p=52, emax=1023)}, FormatError, ["products"]),
        ({"fmt": fp16, "products": "nope"}, ModeError, ["products", "nope"]),
        ({"fmt": fp16, "products": 3}, ModeError, ["products"]),
        ({"fmt": fp16, "block_fmt": "nope"}, FormatError, ["nope"]),
        ({"fmt": fp16, "block_mode": "nope"}, ModeError, ["block_mode", "nope"]),
        ({"fmt": fp16, "products_mode": "nope"}, ModeError, ["products_mode", "nope"]),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict, error: type, names: list[str]) -> None:
    with pytest.raises(error) as info:
        Accumulator(**kwargs)
    assert isinstance(info.value, LamprefError)
    assert isinstance(info.value, ValueError)
    for name in names:
        assert name in str(info.value), (name, str(info.value))


def test_bad_call_arguments() -> None:
    a, b = f32([[1, 2]]), f32([[1], [1]])
    with pytest.raises(ModeError, match="acc"):
        matmul(a, b, "fp16")  # type: ignore[arg-type]
    with pytest.raises(lampref.InputTypeError):
        matmul(np.array([["x", "y"]]), b, M10)


def test_accumulator_is_a_hashable_value() -> None:
    acc = Accumulator("fp16", block=np.int64(4), products="bf16")
    assert acc.fmt == fp16
    assert acc.block == 4
    assert type(acc.block) is int
    assert acc.products == bf16
    assert hash(acc) == hash(Accumulator(fp16, block=4, products=bf16))
    assert Accumulator.authors(10) == Accumulator(fp32_mantissa(10), staging="fp32", fma=True)
    assert Accumulator.authors(10, block=32).block == 32
    with pytest.raises(AttributeError):
        acc.mode = "odd"  # type: ignore[misc]


def test_no_acc_is_float32_blas() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 2, 5)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    assert_same_bits(matmul(a, b), np.matmul(a, b))
    assert matmul(a, b).dtype == np.float32


# ------------------------------------------------------------ exact sums beyond float64's range
F64_MAX = float(np.finfo(np.float64).max)
WIDE = FloatFormat(p=24, emax=1023)  # float32's precision with float64's exponent range
WIDE_FORMATS = [
    WIDE,
    FloatFormat(p=3, emax=1023),
    FloatFormat(p=51, emax=1023),
    FloatFormat(p=11, emax=1023, emin=-1000),
    FloatFormat(p=8, emax=1023, subnormals=False),
    fp64,
    FloatFormat(p=53, emax=1023, emin=-1000),  # p = 53 with a narrower normal range than float64's
]


def _edge_magnitudes() -> st.SearchStrategy[float]:
    """Finite float64 values near float64's overflow and underflow thresholds, and ordinary ones."""
    mantissa = st.floats(1.0, 2.0, exclude_max=True)
    exponent = st.one_of(st.integers(1000, 1023), st.integers(-1074, -960), st.integers(-3, 3))
    sign = st.sampled_from([1.0, -1.0])
    return st.builds(lambda m, e, s: s * math.ldexp(m, e), mantissa, exponent, sign)


@st.composite
def wide_accumulators(draw: st.DrawFn) -> Accumulator:
    """Accumulators whose formats reach float64's exponent range, products rounded to such a format."""

    def fmt_and_mode() -> tuple[FloatFormat, str]:
        fmt = draw(st.sampled_from(WIDE_FORMATS))
        return fmt, draw(st.sampled_from(("nearest_even",) if fmt.p == 53 else DETERMINISTIC_MODES))

    fmt, mode = fmt_and_mode()
    products, products_mode = fmt_and_mode()
    block = draw(st.sampled_from([1, 1, 2, 3]))
    block_fmt, block_mode = fmt_and_mode() if block > 1 else (fp32, "nearest_even")
    return Accumulator(
        fmt,
        mode,
        block=block,
        block_fmt=block_fmt,
        block_mode=block_mode,
        order=draw(st.sampled_from(ORDERS)),
        products=products,
        products_mode=products_mode,
    )


@st.composite
def edge_operands(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    M, N, K = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 5))
    elem = st.one_of(_edge_magnitudes(), st.sampled_from([1.0, -1.0, 0.5, 0.0]))
    a = draw(st.lists(elem, min_size=M * K, max_size=M * K))
    b = draw(st.lists(elem, min_size=K * N, max_size=K * N))
    return np.array(a).reshape(M, K), np.array(b).reshape(K, N)


TRUNCATING_WIDE = Accumulator(WIDE, "toward_zero", products=WIDE)
SUBNORMAL_53 = FloatFormat(p=53, emax=1023, emin=-1000)


@settings(max_examples=300)
@given(acc=wide_accumulators(), ab=edge_operands())
@example(acc=TRUNCATING_WIDE, ab=(np.array([[1e308, 1e308]]), np.array([[1.0], [1.0]])))
@example(acc=TRUNCATING_WIDE, ab=(np.array([[1e308, 1e308, -1e308]]), np.array([[1.0], [1.0], [1.0]])))
@example(  # the products overflow float64, the truncated products do not
    acc=Accumulator(WIDE, "toward_zero", products=WIDE, products_mode="toward_zero"),
    ab=(np.array([[1e200, -1e200]]), np.array([[1e200], [1e-200]])),
)
@example(  # a product below float64's smallest subnormal rounds up to WIDE's smallest one
    acc=Accumulator(WIDE, "toward_pos", products=WIDE, products_mode="toward_pos"),
    ab=(np.array([[1e-200]]), np.array([[1e-200]])),
)
@example(  # float64 rounds the sum to a tie of the p = 53 format below its normal range: double rounding
    acc=Accumulator(SUBNORMAL_53, products=fp64),
    ab=(np.array([[2.0**-1001, 2.0**-1053 + 2.0**-1070]]), np.array([[1.0], [1.0]])),
)
@example(  # block sums overflowing float64 mid-block
    acc=Accumulator(WIDE, "toward_neg", block=3, block_fmt=WIDE, block_mode="odd", products=fp64),
    ab=(np.array([[1e308, 1e308, -1e308]]), np.array([[1.0], [1.0], [1.0]])),
)
@example(  # the block's double-double stays finite, its final normalisation overflows: the sum is 2**1024
    acc=Accumulator(WIDE, "toward_zero", block=3, block_fmt=WIDE, block_mode="toward_zero", products=fp64),
    ab=(np.array([[F64_MAX, 2.0**969, 2.0**969]]), np.ones((3, 1))),
)
@example(  # 2**1024 - 2**960: above float64's largest value, below 2**1024
    acc=Accumulator(WIDE, "toward_zero", products=fp64),
    ab=(np.array([[F64_MAX, 2.0**1000 - 2.0**960]]), np.ones((2, 1))),
)
@example(
    acc=Accumulator(FloatFormat(p=51, emax=1023), "odd", products=fp64, order="reverse"),
    ab=(np.array([[F64_MAX, 2.0**1000 - 2.0**960]]), np.ones((2, 1))),
)
@example(  # a zero product of a huge operand keeps its sign
    acc=Accumulator(fp64, products=SUBNORMAL_53), ab=(np.array([[-1.0715086071862673e301]]), np.zeros((1, 1)))
)
def test_issue11_item02_exact_sum_beyond_float64_range(acc: Accumulator, ab: tuple) -> None:
    """Intermediates of the exact path that leave float64's range must not turn into an accidental inf/0."""
    a, b = ab
    with np.errstate(all="ignore"):
        want = reference_matmul(a, b, acc)
    assert_same_bits(matmul(a, b, acc), want, f"{acc!r}\na={a.tolist()}\nb={b.tolist()}")


def test_issue11_item02_fp32_staging_declines_wide_block_formats() -> None:
    """staging='fp32' adds block sums in float32: a wider block format is refused, not cast to inf."""
    with pytest.raises(FormatError, match="block_fmt"):
        Accumulator(fp16, block=2, block_fmt=WIDE, staging="fp32")


def test_issue11_item02_the_reported_instances() -> None:
    """1e308 + 1e308 truncates to F.max in F = (p=24, emax=1023); minus 1e308 that is 7.977e307, not inf."""
    two = matmul([[1e308, 1e308]], [[1.0], [1.0]], TRUNCATING_WIDE)
    assert two[0, 0] == WIDE.max
    three = matmul([[1e308, 1e308, -1e308]], [[1.0], [1.0], [1.0]], TRUNCATING_WIDE)
    f_1e308 = float(Fraction(1e308).limit_denominator(1))  # 1e308 is an integer: rounded toward 0 in WIDE
    lo = mpfr_round_fraction(Fraction(f_1e308), WIDE, "toward_zero")
    assert three[0, 0] == mpfr_round_fraction(Fraction(WIDE.max) - Fraction(lo), WIDE, "toward_zero")
    assert 7.97e307 < three[0, 0] < 7.98e307


@settings(max_examples=150)
@given(
    fmt=st.sampled_from(WIDE_FORMATS),
    mode=st.sampled_from(DETERMINISTIC_MODES),
    y=_edge_magnitudes(),
    bias=_edge_magnitudes(),
    exact=st.booleans(),
)
@example(fmt=WIDE, mode="toward_zero", y=1e308, bias=1e308, exact=False)
@example(fmt=WIDE, mode="toward_pos", y=-1e308, bias=-F64_MAX, exact=False)
@example(fmt=WIDE, mode="toward_pos", y=-(2.0**127), bias=-F64_MAX, exact=True)
def test_issue11_item02_linear_bias_beyond_float64_range(
    fmt: FloatFormat, mode: str, y: float, bias: float, exact: bool
) -> None:
    """The bias step of linear is exact too: y + bias beyond float64's range rounds like the exact sum
    (with a products format, and with exact products of float32 operands)."""
    if fmt.p == 53:
        mode = "nearest_even"
    if exact:  # a float32 operand
        y = float(np.float32(np.clip(y, -(2.0**127), 2.0**127)))
        acc = Accumulator(fmt, mode)
    else:
        acc = Accumulator(fmt, mode, products=fmt, products_mode=mode)
    out = linear([[y]], [[1.0]], [bias], acc)
    with np.errstate(all="ignore"):
        prod = reference_matmul(np.array([[y]]), np.array([[1.0]]), acc)[0, 0]
    total = Fraction(prod) + Fraction(bias) if math.isfinite(prod) else None
    if total is None:
        want = prod
    elif total == 0:
        want = -0.0 if mode == "toward_neg" else 0.0
    else:
        want = mpfr_round_fraction(total, fmt, mode)
    assert_same_bits(out, [[want]], f"{acc!r} y={y!r} bias={bias!r}")


@pytest.mark.parametrize("mode", ["toward_pos", *SR_MODES])
def test_issue11_item02_products_below_float64(mode: str) -> None:
    """A product below float64's subnormals rounds as its exact value: up to the format's smallest value
    toward +inf; under stochastic rounding (probability 1e-400 / 2**-1045) not pulled up to float64's."""
    acc = Accumulator(WIDE, mode, products=WIDE, products_mode=mode)
    a = np.full((400, 1), 1e-200)
    got = matmul(a, np.array([[1e-200]]), acc, rng=3)  # exact 1e-400
    want = WIDE.smallest_subnormal if mode == "toward_pos" else 0.0
    assert_same_bits(got, np.full((400, 1), want))
    big = matmul(np.full((50, 2), 1e308), np.ones((2, 1)), acc, rng=4)  # exact 2e308 >= 2**1024
    assert np.isposinf(big).all()


# ------------------------------------------------------------------ one call, one random stream
@pytest.mark.parametrize("staging", ["exact", "fp32"])
@pytest.mark.parametrize("mode", SR_MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_issue11_item03_linear_bias_rounding_independent_of_first_step(
    staging: str, mode: str, seed: int
) -> None:
    """linear(..., rng=<int>) must not reuse the first step's random words for the bias rounding."""
    # p = 4: x = 1 + 2**-4 lies halfway between 1 and 1.125, and so do y + 2**-4 for both y: two fair coins
    acc = Accumulator(fp32_mantissa(3), mode=mode, staging=staging)
    n = 400
    x = np.full((n, 1), 1 + 2**-4, np.float32)
    out = np.asarray(linear(x, f32([[1.0]]), f32([2**-4]), acc, rng=seed), dtype=np.float64)
    y = np.asarray(matmul(x, f32([[1.0]]), acc, rng=seed), dtype=np.float64)  # the first step alone
    first_up = y == 1.125
    assert set(np.unique(out)) <= {1.0, 1.125, 1.25}
    second_up = out == np.where(first_up, 1.25, 1.125)
    table = [int(((first_up == i) & (second_up == j)).sum()) for i in (0, 1) for j in (0, 1)]
    # independent fair coins: each cell ~ Binomial(400, 1/4), mean 100, sd 8.7; reused words: 0, 200, 200, 0
    assert min(table) >= 60, table


SR_CALLS = {
    "round_to": lambda rng, mode: lampref.round_to(np.linspace(0, 1, 37), fp32_mantissa(3), mode, rng=rng),
    "matmul": lambda rng, mode: matmul(
        np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6),
        np.linspace(1, 2, 18, dtype=np.float32).reshape(6, 3),
        Accumulator(fp32_mantissa(3), mode, products=bf16, products_mode=mode),
        rng=rng,
    ),
    "dot": lambda rng, mode: dot(
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6),
        np.linspace(1, 2, 6, dtype=np.float32),
        Accumulator(fp32_mantissa(3), mode, block=2, block_fmt=bf16, block_mode=mode),
        rng=rng,
    ),
    "linear": lambda rng, mode: linear(
        np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6),
        np.linspace(1, 2, 18, dtype=np.float32).reshape(6, 3),
        f32([0.3, -0.7, 0.1]),
        Accumulator(fp32_mantissa(3), mode),
        rng=rng,
    ),
    "linear_fp32": lambda rng, mode: linear(
        np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6),
        np.linspace(1, 2, 18, dtype=np.float32).reshape(6, 3),
        f32([0.3, -0.7, 0.1]),
        Accumulator(fp32_mantissa(3), mode, staging="fp32"),
        rng=rng,
    ),
}


@settings(max_examples=40)
@given(call=st.sampled_from(sorted(SR_CALLS)), mode=st.sampled_from(SR_MODES), seed=st.integers(0, 2**63))
@example(call="linear", mode="stochastic", seed=0)
def test_issue11_item03_a_seed_is_one_generator_stream(call: str, mode: str, seed: int) -> None:
    """A seed must give the bits of default_rng(seed) drawn once through the call (never re-seeded)."""
    with_seed = SR_CALLS[call](seed, mode)
    with_generator = SR_CALLS[call](np.random.default_rng(seed), mode)
    assert_same_bits(with_seed, with_generator, (call, mode, seed))


@settings(max_examples=150)
@given(
    fmt=st.sampled_from([f for f in WIDE_FORMATS if f.p <= 51]),
    mode=st.sampled_from(SR_MODES),
    x=_edge_magnitudes(),
    y=_edge_magnitudes(),
    seed=st.integers(0, 2**32),
)
@example(fmt=WIDE, mode="stochastic", x=1e200, y=1e-200 / 3, seed=0)
@example(fmt=WIDE, mode="stochastic", x=3e-170, y=3e-170, seed=0)
def test_stochastic_products_beyond_float64_range_are_faithful(
    fmt: FloatFormat, mode: str, x: float, y: float, seed: int
) -> None:
    """A stochastically rounded product (exact value beyond float64's range or below its subnormals) is
    one of the two neighbours of the exact product."""
    acc = Accumulator(fp64, products=fmt, products_mode=mode)
    got = float(np.asarray(matmul([[x]], [[y]], acc, rng=seed))[0, 0])
    exact = Fraction(x) * Fraction(y)
    down = mpfr_round_fraction(exact, fmt, "toward_neg")
    up = mpfr_round_fraction(exact, fmt, "toward_pos")
    assert got in (down, up), (got, down, up)
    if abs(exact) >= Fraction(2) ** 1024:  # beyond the neighbour above the largest value: always overflows
        assert math.isinf(got)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "out_shape"),
    [((2, 3, 0), (2, 0, 4), (2, 3, 4)), ((0, 3, 2), (2, 4), (0, 3, 4)), ((2, 0, 5), (1, 5, 3), (2, 0, 3))],
)
def test_empty_batched_products(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> None:
    """Empty operands of stacked products give numpy.matmul's shape, and zeros for the empty sums."""
    a, b = np.ones(a_shape, np.float32), np.ones(b_shape, np.float32)
    out = matmul(a, b, Accumulator("fp16"))
    assert out.shape == np.matmul(a, b).shape == out_shape
    assert not out.any()
    assert not np.signbit(out).any()
