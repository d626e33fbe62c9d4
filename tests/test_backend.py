"""Tests of the accumulation backends (:mod:`lampref._backend`): compiled kernels give the NumPy path's bits.

Oracle: the NumPy implementation of :mod:`lampref.accumulate`, itself checked against Fractions and MPFR in
``tests/test_accumulate.py`` (which runs on both backends). Results are compared as bit patterns (signed
zeros included; a NaN equals any NaN, as IEEE 754 leaves its sign and payload open) on random shapes,
formats, modes, orders and stagings, and on the edge cases that exercise every branch of the compiled
rounding: ties, subnormal partial sums, overflow, signed zeros, non-finite operands, K = 0 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampref
from lampref import Accumulator, FloatFormat, ModeError, _backend, fp32_mantissa, get_format, matmul
from lampref.rounding import DETERMINISTIC_MODES
from lampref.testing import reference_matmul

HAVE_NUMBA = _backend._load_kernels() is not None
needs_numba = pytest.mark.skipif(
    not HAVE_NUMBA, reason="numba cannot be imported here (pip install 'lampref[fast]')"
)

FORMATS = (
    get_format("fp16"),
    get_format("bf16"),
    get_format("e5m2"),
    fp32_mantissa(0),
    fp32_mantissa(1),
    fp32_mantissa(4),
    fp32_mantissa(10),
    fp32_mantissa(23),
    get_format("fp16").replace(subnormals=False),
    FloatFormat(p=6, emax=127, emin=-126),
    FloatFormat(p=24, emax=2, emin=-3),
)
TINY = math.ldexp(1.0, -149)
F32_MAX = float(np.finfo(np.float32).max)
VALUES = (0.0, -0.0, 1.0, -1.0, 1.5, 2.0**-11, 3 * 2.0**-12, TINY, -TINY, 2.0**-126, 2.0**-130, 65504.0)
SPECIALS = (math.inf, -math.inf, math.nan, F32_MAX, -F32_MAX, 2.0**100)


@pytest.fixture
def restore_backend() -> Iterator[None]:
    yield
    lampref.set_backend(None)


def both_backends(a: np.ndarray, b: np.ndarray, acc: Accumulator) -> tuple[np.ndarray, np.ndarray]:
    """The product under the NumPy backend and under the numba backend."""
    try:
        lampref.set_backend("numpy")
        want = np.asarray(matmul(a, b, acc))
        lampref.set_backend("numba")
        got = np.asarray(matmul(a, b, acc))
    finally:
        lampref.set_backend(None)
    return got, want


def assert_same_bits(got: np.ndarray, want: np.ndarray, context: object) -> None:
    assert got.dtype == want.dtype, context
    assert got.shape == want.shape, context
    differ = (got.view(np.uint32) != want.view(np.uint32)) & ~(np.isnan(got) & np.isnan(want))
    if differ.any():
        i = tuple(np.argwhere(differ)[0])
        raise AssertionError(
            f"{int(differ.sum())} of {differ.size} elements differ; first at {i}: numba {got[i]!r} "
            f"({float(got[i]).hex()}), numpy {want[i]!r} ({float(want[i]).hex()}); {context}"
        )


def configurations() -> st.SearchStrategy[Accumulator]:
    modes = st.sampled_from(DETERMINISTIC_MODES)
    orders = st.sampled_from(("sequential", "reverse", "pairwise"))
    exact = st.builds(Accumulator, st.sampled_from(FORMATS), mode=modes, order=orders)
    fp32 = st.builds(
        Accumulator, st.sampled_from(FORMATS), mode=modes, staging=st.just("fp32"), fma=st.booleans()
    )
    authors = st.builds(Accumulator.authors, st.sampled_from((0, 1, 4, 10, 22, 23)), fma=st.booleans())
    blocks = st.sampled_from((2, 3, 4, 8, 32))
    blocked = st.builds(
        Accumulator,
        st.sampled_from(FORMATS),
        mode=modes,
        order=orders,
        block=blocks,
        block_fmt=st.sampled_from(FORMATS),
        block_mode=modes,
    )
    blocked_fp32 = st.builds(
        Accumulator,
        st.sampled_from(FORMATS),
        mode=modes,
        staging=st.just("fp32"),
        block=blocks,
        block_fmt=st.sampled_from(FORMATS),
        block_mode=modes,
    )
    blocked_authors = st.builds(Accumulator.authors, st.sampled_from((0, 1, 4, 10, 23)), block=blocks)
    return st.one_of(exact, fp32, authors, blocked, blocked_fp32, blocked_authors)


@st.composite
def operands(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    G, M, K, N = draw(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 40), st.integers(1, 5)))
    scale = draw(st.sampled_from((1.0, 2.0**-120, 2.0**-60, 2.0**12, 2.0**60)))
    element = st.one_of(
        st.sampled_from(VALUES),
        st.floats(-4.0, 4.0, width=32),
        st.integers(-64, 64).map(float),
    )
    if draw(st.integers(0, 3)) == 0:
        element = st.one_of(element, st.sampled_from(SPECIALS))
    a = np.array(draw(st.lists(element, min_size=G * M * K, max_size=G * M * K)), np.float32)
    b = np.array(draw(st.lists(element, min_size=G * K * N, max_size=G * K * N)), np.float32)
    with np.errstate(over="ignore", under="ignore"):
        a = (a * np.float32(scale)).reshape(G, M, K)
    return a, b.reshape(G, K, N)


@needs_numba
@settings(max_examples=200)
@given(operands(), configurations())
@example((np.float32([[1.0, 2.0**-11]]), np.float32([[1.0], [1.0]])), Accumulator("fp16"))  # a tie
@example(
    (np.float32([[1.0, 3 * 2.0**-11]]), np.float32([[1.0], [1.0]])), Accumulator("fp16", mode="nearest_away")
)
@example((np.float32([[TINY, TINY, -TINY]]), np.float32([[1.0], [0.5], [1.0]])), Accumulator("fp16"))
@example((np.float32([[2.0**-130, 2.0**-131]]), np.float32([[1.0], [1.0]])), Accumulator(fp32_mantissa(3)))
@example((np.float32([[F32_MAX, F32_MAX]]), np.float32([[1.0], [1.0]])), Accumulator("bf16"))
@example((np.float32([[F32_MAX, F32_MAX]]), np.float32([[1.0], [1.0]])), Accumulator("bf16", mode="odd"))
@example((np.float32([[F32_MAX, F32_MAX]]), np.float32([[1.0], [1.0]])), Accumulator.authors(10, fma=False))
@example((np.float32([[1.0, -1.0]]), np.float32([[1.0], [1.0]])), Accumulator("fp16", mode="toward_neg"))
@example((np.float32([[-0.0, 0.0]]), np.float32([[1.0], [1.0]])), Accumulator("fp16", mode="toward_neg"))
@example((np.float32([[-0.0, -0.0]]), np.float32([[1.0], [1.0]])), Accumulator.authors(10))
@example((np.float32([[math.inf, 1.0]]), np.float32([[0.0], [1.0]])), Accumulator("fp16"))
@example((np.float32([[math.inf, -math.inf]]), np.float32([[1.0], [1.0]])), Accumulator.authors(4))
@example((np.float32([[math.nan, 1.0]]), np.float32([[1.0], [1.0]])), Accumulator("e5m2", order="reverse"))
@example((np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)), Accumulator("fp16"))  # K = 0
@example((np.float32([[3.0], [-3.0]]), np.float32([[1.0, 0.5]])), Accumulator(fp32_mantissa(0)))  # K = 1
@example((np.float32([[3.0], [6.0]]), np.float32([[1.0, 0.5]])), Accumulator.authors(0))  # m = 0 tie rule
@example(  # a block sum the double-double cannot hold: 2**80 + 1 + 2**-80 - 2**80 (rational arithmetic)
    (
        np.float32([[2.0**40, 1.0, 2.0**-40, -(2.0**40)]]),
        np.float32([[2.0**40], [1.0], [2.0**-40], [2.0**40]]),
    ),
    Accumulator("fp16", block=4, block_mode="toward_pos"),
)
@example(  # a block sum on a tie of the block format (1 + 2**-11 in fp16)
    (np.float32([[1.0, 2.0**-11, 1.0]]), np.float32([[1.0], [1.0], [1.0]])),
    Accumulator("bf16", block=2, block_fmt="fp16"),
)
@example(  # block sums cancelling exactly: -0 toward -inf
    (np.float32([[1.0, -1.0, 0.0, 0.0]]), np.float32([[1.0], [1.0], [1.0], [1.0]])),
    Accumulator("fp16", block=2, block_mode="toward_neg", mode="toward_neg"),
)
@example(  # -0 block sums, the authors' float32 steps from +0
    (np.float32([[-0.0, 0.0, -0.0]]), np.float32([[1.0], [1.0], [1.0]])),
    Accumulator.authors(4, block=2),
)
@example(  # a block sum beyond float32's range, and infinite and NaN products in a block
    (np.float32([[F32_MAX, F32_MAX, math.inf, 0.0]]), np.float32([[2.0], [2.0], [0.0], [1.0]])),
    Accumulator("bf16", block=2),
)
@example(  # block sums below the block format's normal range (subnormal and flushed)
    (np.float32([[TINY, TINY, -(2.0**-130)]]), np.float32([[1.0], [0.5], [1.0]])),
    Accumulator(fp32_mantissa(3), block=2, block_fmt=get_format("fp16").replace(subnormals=False)),
)
def test_backends_give_the_same_bits(ab: tuple[np.ndarray, np.ndarray], acc: Accumulator) -> None:
    a, b = ab
    with np.errstate(over="ignore", invalid="ignore"):
        got, want = both_backends(a, b, acc)
    assert_same_bits(got, want, f"{acc!r}, a {a.shape}, b {b.shape}")


@needs_numba
@pytest.mark.parametrize(
    "acc",
    [
        Accumulator(fp32_mantissa(10)),
        Accumulator("bf16", order="reverse", mode="toward_neg"),
        Accumulator("e5m2", mode="odd"),
        Accumulator.authors(10),
        Accumulator.authors(10, fma=False),
        Accumulator.authors(0),
        Accumulator("fp16", staging="fp32", mode="toward_pos"),
        Accumulator(fp32_mantissa(10), block=32),
        Accumulator("fp16", block=4, block_fmt="bf16", block_mode="odd", order="reverse"),
        Accumulator.authors(10, block=32),
    ],
)
def test_covered_accumulations_use_a_compiled_kernel(acc: Accumulator, restore_backend: None) -> None:
    lampref.set_backend("numba")
    assert _backend.compiled_matmul(acc, stochastic=False) is not None


@pytest.mark.parametrize(
    "acc",
    [
        Accumulator("fp16", order="pairwise"),
        Accumulator("fp16", block=4, order="pairwise"),
        Accumulator("fp16", block=4, block_mode="stochastic"),
        Accumulator("fp16", block=4, block_fmt=FloatFormat(p=30, emax=127)),
        Accumulator("fp16", products="bf16"),
        Accumulator("fp16", mode="stochastic"),
        Accumulator(FloatFormat(p=24, emax=1023)),
        Accumulator("e4m3"),
    ],
)
def test_other_accumulations_run_on_numpy(acc: Accumulator, restore_backend: None) -> None:
    stochastic = "stochastic" in (acc.mode, acc.block_mode)
    assert _backend.compiled_matmul(acc, stochastic=stochastic) is None
    if HAVE_NUMBA:
        lampref.set_backend("numba")
        assert _backend.compiled_matmul(acc, stochastic=stochastic) is None


def test_numpy_backend_never_compiles(restore_backend: None) -> None:
    lampref.set_backend("numpy")
    assert lampref.backend() == "numpy"
    assert _backend.compiled_matmul(Accumulator("fp16"), stochastic=False) is None


def test_default_backend_is_numba_when_importable(
    restore_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_backend.ENV_VAR, raising=False)
    lampref.set_backend(None)
    assert lampref.backend() == ("numba" if HAVE_NUMBA else "numpy")


def test_environment_forces_numpy(restore_backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_backend.ENV_VAR, "numpy")
    lampref.set_backend(None)
    assert lampref.backend() == "numpy"
    assert lampref.set_backend("numpy") is None
    assert lampref.set_backend(None) == "numpy"
    monkeypatch.setenv(_backend.ENV_VAR, "fortran")
    with pytest.raises(ModeError, match="LAMPREF_BACKEND"):
        lampref.backend()


def test_unknown_backend_names_the_argument(restore_backend: None) -> None:
    with pytest.raises(ModeError, match="backend"):
        lampref.set_backend("cuda")


def test_numba_unavailable_names_the_extra(restore_backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_backend, "_kernels", [None])
    monkeypatch.delenv(_backend.ENV_VAR, raising=False)
    lampref.set_backend(None)
    assert lampref.backend() == "numpy"
    with pytest.raises(ModeError, match=r"lampref\[fast\]"):
        lampref.set_backend("numba")
    monkeypatch.setenv(_backend.ENV_VAR, "numba")
    with pytest.raises(ModeError, match=r"lampref\[fast\]"):
        lampref.backend()


@needs_numba
def test_block_sums_beyond_the_double_double_go_to_rationals(restore_backend: None) -> None:
    """A block sum 2**80 + 1 + 2**-80 - 2**80 is flagged by the compiled kernel and recomputed with
    rationals; the result is the oracle's (Fractions and MPFR)."""
    a = np.float32([[2.0**40, 1.0, 2.0**-40, -(2.0**40)], [1.0, 2.0, 3.0, 4.0]])
    b = np.float32([[2.0**40], [1.0], [2.0**-40], [2.0**40]])
    acc = Accumulator("fp16", block=4, block_mode="toward_pos")
    lampref.set_backend("numba")
    kernel = _backend.compiled_matmul(acc, stochastic=False)
    assert kernel is not None
    out = np.empty((1, 2, 1), np.float32)
    redo = kernel(a[None].astype(np.float64), b[None].astype(np.float64), out)
    assert redo is not None
    assert redo.tolist() == [[[True], [False]]]
    assert_same_bits(np.asarray(matmul(a, b, acc)), reference_matmul(a, b, acc).astype(np.float32), acc)


def numpy_entry_scores(q: np.ndarray, k: np.ndarray, sel: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The scores with the selected entries recomputed one at a time in float32, as LAMP's NumPy path does:
    float32 products summed by NumPy along the last axis, divided by sqrt(d) in float32."""
    h, i, j = np.nonzero(sel)
    dots = np.multiply(q[h, i], k[h, j], dtype=np.float32).sum(axis=-1, dtype=np.float32)
    out = low.copy()
    out[h, i, j] = dots / np.sqrt(np.float32(q.shape[-1]))
    return out


def pairwise_f32(x: np.ndarray) -> np.float32:
    """NumPy's pairwise float32 sum written out for len(x) <= 128 (the order the compiled kernel follows)."""
    f = np.float32
    n = len(x)
    if n < 8:
        res = f(0.0)
        for v in x:
            res = f(res + v)
        return f(f(0.0) + res)
    r = [f(v) for v in x[:8]]
    m = n - n % 8
    for i in range(8, m, 8):
        r = [f(r[t] + x[i + t]) for t in range(8)]
    res = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])))
    for v in x[m:]:
        res = f(res + v)
    return f(f(0.0) + res)


@needs_numba
@settings(max_examples=100)
@given(
    st.integers(1, 128),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
    st.sampled_from((0.0, 0.5, 1.0)),
)
@example(64, 2, 3, 4, 0, 1.0)
@example(7, 1, 1, 1, 1, 1.0)  # fewer than 8 terms
@example(65, 1, 2, 2, 2, 0.5)  # a rest after the multiples of 8
def test_lamp_float32_recomputation_gives_the_same_bits(
    d: int, H: int, n: int, N: int, seed: int, fraction: float
) -> None:
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((H, n, d)) * 2.0 ** rng.integers(-40, 40, (H, n, d))).astype(np.float32)
    k = (rng.standard_normal((H, N, d)) * 2.0 ** rng.integers(-40, 40, (H, N, d))).astype(np.float32)
    q[0, 0, : d // 2] = -0.0  # signed zeros among the products
    low = rng.standard_normal((H, n, N)).astype(np.float32)
    sel = rng.random((H, n, N)) < fraction
    previous = lampref.set_backend("numba")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            want = numpy_entry_scores(q, k, sel, low)
            got = _backend.f32_scores_where(q, k, sel, low)
    finally:
        lampref.set_backend(previous)
    assert got is not None
    assert_same_bits(got, want, f"d={d}")
    for h, i, j in np.argwhere(sel)[:3]:  # and the order written out (the kernel's specification)
        oracle = pairwise_f32(np.multiply(q[h, i], k[h, j], dtype=np.float32)) / np.sqrt(np.float32(d))
        assert_same_bits(got[h, i, j][None], np.float32([oracle]), f"d={d} entry {(h, i, j)}")


def test_lamp_float32_recomputation_beyond_the_kernel_is_left_to_numpy(restore_backend: None) -> None:
    q = np.ones((1, 1, 129), np.float32)
    sel = np.ones((1, 1, 1), bool)
    low = np.zeros((1, 1, 1), np.float32)
    assert _backend.f32_scores_where(q, q, sel, low) is None  # d > 128
    lampref.set_backend("numpy")
    assert _backend.f32_scores_where(q[..., :64], q[..., :64], sel, low) is None
