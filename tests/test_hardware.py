"""Tests of lampref.hardware: the tensor-core models against real-GPU vectors and an independent oracle.

The vectors (tests/fixtures/tensor_core/, see its README) are outputs of V100, A100, Ada and H100 matrix
instructions; each is reproduced bit for bit by the matching preset. The oracle below is the model of the
module notes written again with Python integers and Fractions, one dot product at a time.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import _helpers
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lampref as L  # noqa: N812
from lampref import hardware
from lampref.bert import BertConfig, BertModel
from lampref.bert.model import hf_shapes
from lampref.errors import HardwareError, PlanError, ShapeError
from lampref.gpt2 import GPT2, GPT2Config, PrecisionPlan
from lampref.gpt2.weights import random_params

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tensor_core"
INF = float("inf")

# (file, GPU of the preset, input format, output format); H200 has the H100 model, L40S Ada's, A2/A30 A100's
VECTORS = [
    (f"{gpu}_{fmt}", model_gpu, fmt.lower(), out)
    for gpu, fmts in [
        ("V100", ["fp16"]),
        ("A100", ["fp16", "bf16", "tf32"]),
        ("Ada", ["fp16", "bf16", "tf32", "E4M3", "E5M2"]),
        ("H100", ["fp16", "bf16", "tf32", "E4M3", "E5M2"]),
    ]
    for fmt in fmts
    for model_gpu in {"V100": ["V100"], "A100": ["A100", "A2", "A30"], "Ada": ["Ada", "L40S"]}.get(
        gpu, ["H100", "H200"]
    )
    for out in ["fp32", "fp16"]
    if out == "fp32" or fmt in ("fp16", "E4M3", "E5M2")
]


def load_vectors(name: str, out: str) -> tuple[np.ndarray, ...]:
    """Inputs ``a``, ``b``, the addend ``c`` of the instruction, the addend ``c_after`` added to its result
    afterwards (zeros where none was), and the GPU's ``d``."""
    with np.load(FIXTURES / f"{name}.npz") as f:
        a, b, c = (f[k].view(np.float32) for k in ("a", "b", "c"))
        d = f[f"d_{out}"].view(np.float32)
    if out == "fp16":
        c = np.asarray(L.round_to(c, "fp16"), dtype=np.float32)  # CUDA's __float2half
    after = np.zeros_like(c)
    if name.startswith("H100_E"):  # run as D = A*B + D with D = 0 (WGMMA)
        c, after = np.zeros_like(c), (c if out == "fp16" else after)  # fp16: c added to D afterwards
    return a, b, c, after, d


# ------------------------------------------------------------------------------------------ real GPUs
@pytest.mark.parametrize(("name", "gpu", "fmt", "out"), VECTORS)
def test_real_gpu_vectors_bit_for_bit(name: str, gpu: str, fmt: str, out: str) -> None:
    a, b, c, after, d = load_vectors(name, out)
    got = hardware.gemm(
        a[:, None, :], b[:, :, None], c[:, None, None], gpu=gpu, in_format=fmt, out_format=out
    )[:, 0, 0]
    if after.any():  # one binary16 addition: the exact sum (float64 holds it) rounded to nearest even
        got = np.asarray(L.round_to(got.astype(np.float64) + after, "fp16"), dtype=np.float32)
    bad = np.flatnonzero(got.view(np.uint32) != d.view(np.uint32))
    assert bad.size == 0, (
        f"{bad.size} of {d.size} differ; first row {bad[0]}: {got[bad[0]]!r} != {d[bad[0]]!r}"
    )


def test_h100_fp8_fp16_output_needs_the_interleaved_groups() -> None:
    """The vectors tell the H100 fp8 -> fp16 grouping apart: one group of 32 (the float32 path), or two
    groups of 16 consecutive products, miss many rows; two groups of alternating pairs reproduce them."""
    a, b, _, after, d = load_vectors("H100_E4M3", "fp16")
    model = hardware.preset("H100", "e4m3", "fp16")
    assert (model.group, model.interleave) == (16, 2)

    def mismatches(m: hardware.TensorCoreModel) -> int:
        got = m.gemm(a[:, None, :], b[:, :, None])[:, 0, 0].astype(np.float64)
        return int((np.asarray(L.round_to(got + after, "fp16"), dtype=np.float32) != d).sum())

    assert mismatches(model) == 0
    assert mismatches(model.replace(interleave=0)) > 1000
    assert mismatches(model.replace(group=32, extra_bits=-10, interleave=0)) > 1000


def test_vendored_files_and_licence() -> None:
    files = sorted(p.name for p in FIXTURES.glob("*.npz"))
    assert files == sorted(f"{n}.npz" for n in {v[0] for v in VECTORS})
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 4_200_000
    assert "BSD 2-Clause" in (FIXTURES / "LICENCE").read_text()
    assert "b12b5a700957655375a1b0c1d0c26e76065da015" in (FIXTURES / "README.md").read_text()


# ------------------------------------------------------------------------------------------ the oracle
def exponent(x: Fraction, emin: int) -> int:
    """max(floor(log2 |x|), emin) for x != 0."""
    n, d = abs(x.numerator), x.denominator
    e = n.bit_length() - d.bit_length()
    if Fraction(n, d) < Fraction(2) ** e:
        e -= 1
    return max(e, emin)


def round_fraction(v: Fraction, p: int, emin: int, emax: int, mode: str) -> float:
    """v rounded to p bits (subnormals below 2**emin), toward zero or to nearest even; infinity at or
    beyond 2**(emax + 1) in both modes (the models' overflow rule)."""
    if v == 0:
        return 0.0
    if abs(v) >= Fraction(2) ** (emax + 1):
        return math.copysign(INF, v)
    q = Fraction(2) ** (exponent(v, emin) - p + 1)
    t = abs(v) / q
    n = t.numerator // t.denominator
    rest = t - n
    if mode == "nearest_even" and (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2)):
        n += 1
    r = n * q
    if r >= Fraction(2) ** (emax + 1):
        return math.copysign(INF, v)
    return math.copysign(float(r), v)


def oracle_group(model: hardware.TensorCoreModel, a: list[float], b: list[float], c: float) -> float:
    """One fused group of the global-alignment model, from the module notes, for finite operands."""
    emin_in = model.input_format.emin
    assert emin_in is not None
    terms = [(Fraction(x) * Fraction(y), exponent(Fraction(x), emin_in) + exponent(Fraction(y), emin_in))
             for x, y in zip(a, b, strict=True) if x != 0 and y != 0]  # fmt: skip
    if c != 0:
        terms.append((Fraction(c), exponent(Fraction(c), -126)))
    if not terms:
        return 0.0
    E = max(e for _, e in terms)
    if model.min_exponent is not None:
        E = max(E, model.min_exponent)
    u = Fraction(2) ** (E - 23 - model.extra_bits)
    S = sum(int(t / u) for t, _ in terms)  # int() truncates toward zero
    out = model.fmt
    p = min(out.p, 24 + model.extra_bits)
    assert out.emin is not None
    return round_fraction(S * u, p, out.emin, out.emax, model.rounding)


def oracle(model: hardware.TensorCoreModel, a: list[float], b: list[float], c: float) -> float:
    prods = [x * y for x, y in zip(a, b, strict=True)]  # float64: exact for finite inputs, NaN for inf * 0
    if any(math.isnan(v) for v in [*prods, c]) or (INF in [*prods, c] and -INF in [*prods, c]):
        return math.nan
    if INF in [*prods, c] or -INF in [*prods, c]:
        return INF if INF in [*prods, c] else -INF
    d, G = c, model.group
    for ks in group_indices(len(a), G, model.interleave):
        d = oracle_group(model, [a[k] for k in ks], [b[k] for k in ks], d)
        if math.isinf(d):
            return d
    return d


def group_indices(K: int, G: int, r: int) -> list[list[int]]:
    """The indices of K that each fused group takes, in order: G consecutive ones, or (r > 0) per instruction
    of 2G, first the runs of r at even positions of the instruction, then those at odd positions."""
    if not r:
        return [list(range(k0, min(k0 + G, K))) for k0 in range(0, max(K, 1), G)]
    out = []
    for k0 in range(0, max(K, 1), 2 * G):
        block = range(k0, min(k0 + 2 * G, K))
        out += [[k for k in block if (k - k0) // r % 2 == half] for half in (0, 1)]
    return out


def test_group_indices_of_an_h100_fp8_instruction() -> None:
    first, second = group_indices(32, 16, 2)
    assert first == [0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29]
    assert second == [k + 2 for k in first]


def same_bits(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))


GLOBAL_MODELS = [
    hardware.preset(*key)
    for key in [
        ("V100", "fp16", "fp32"),
        ("V100", "fp16", "fp16"),
        ("A100", "bf16", "fp32"),
        ("A100", "fp16", "fp16"),
        ("H100", "fp16", "fp32"),
        ("H100", "tf32", "fp32"),
        ("Ada", "e4m3", "fp32"),
        ("Ada", "e5m2", "fp16"),
        ("H100", "e4m3", "fp16"),
        ("B200-RN", "bf16", "fp32"),
    ]
]


def fmt_values(fmt: L.FloatFormat, special: bool) -> st.SearchStrategy[float]:
    """Values of ``fmt``: random bit patterns (subnormals, zeros of both signs, the extremes) rounded in."""
    finite = st.floats(-fmt.max, fmt.max, width=32).map(lambda v: float(L.round_to(v, fmt, "toward_zero")))
    tiny = st.integers(-8, 8).map(lambda k: k * fmt.smallest_subnormal)
    extremes = st.sampled_from([fmt.max, -fmt.max, fmt.smallest_normal, -0.0, 0.0])
    out = st.one_of(finite, tiny, extremes)
    if special:
        out = st.one_of(out, st.sampled_from([INF, -INF, math.nan] if fmt.has_inf else [math.nan]))
    return out


@st.composite
def cases(draw: Any) -> tuple[hardware.TensorCoreModel, list[float], list[float], float]:
    model = draw(st.sampled_from(GLOBAL_MODELS))
    K = draw(st.integers(1, 2 * model.group + 1))
    special = draw(st.booleans()) and draw(st.booleans())
    vals = fmt_values(model.input_format, special)
    a = draw(st.lists(vals, min_size=K, max_size=K))
    b = draw(st.lists(vals, min_size=K, max_size=K))
    c = draw(fmt_values(model.fmt, special))
    return model, a, b, c


H100 = hardware.preset("H100", "fp16", "fp32")
V100H = hardware.preset("V100", "fp16", "fp16")
BF16 = hardware.preset("A100", "bf16", "fp32")


@settings(max_examples=300, deadline=None)
@given(cases())
@example((H100, [1.0, -1.0], [1.0, 1.0], 0.0))  # exact cancellation: +0
@example((H100, [-0.0, 0.0], [1.0, -1.0], -0.0))  # zeros of every sign: +0
@example((H100, [2.0**-24, 2.0**-24], [2.0**-10, 1.0], 0.0))  # subnormal inputs
@example((V100H, [2.0**-14, -(2.0**-14)], [2.0**-10, 2.0**-11], 0.0))  # a subnormal fp16 result
@example((V100H, [65504.0, 65504.0], [1.0, 1.0], 0.0))  # overflow of the fp16 output
@example((BF16, [2.0**127, 2.0**127], [2.0**127, -(2.0**127)], 0.0))  # huge products that cancel exactly
@example((BF16, [2.0**127, 2.0], [2.0**127, 1.0], 0.0))  # overflow to infinity
@example((H100, [math.nan, 1.0], [1.0, 1.0], 0.0))  # NaN
@example((H100, [INF, -INF], [1.0, 1.0], 0.0))  # inf - inf
@example((H100, [INF, 0.0], [0.0, 1.0], 1.0))  # inf * 0
@example((H100, [1.0, 2.0**-15], [1.0, 2.0**-15], -(2.0**-40)))  # the addend truncated with the products
def test_global_alignment_matches_oracle(
    case: tuple[hardware.TensorCoreModel, list[float], list[float], float],
) -> None:
    model, a, b, c = case
    got = model.gemm(np.float32([a]), np.float32(b)[:, None], np.float32([[c]]))[0, 0]
    want = oracle(model, a, b, c)
    assert same_bits(float(got), want), (
        f"{model.gpu} {model.in_format}->{model.out_format}: {got!r} != {want!r}"
    )


def test_exact_summation_is_one_rounding() -> None:
    """CDNA1: the exact sum of a group's products and the addend, rounded once to nearest even."""
    rng = np.random.default_rng(1)
    a = np.asarray(L.round_to(rng.standard_normal((40, 12)) * 2.0 ** rng.integers(-12, 12, (40, 12)), "fp16"))
    b = np.asarray(L.round_to(rng.standard_normal((12, 30)), "fp16"))
    got = hardware.gemm(a, b, gpu="MI100", in_format="fp16")
    d = np.zeros((40, 30))
    for i in range(40):
        for j in range(30):
            s = 0.0
            for k0 in range(0, 12, 4):
                pairs = zip(a[i, k0 : k0 + 4], b[k0 : k0 + 4, j], strict=True)
                ex = Fraction(s) + sum(Fraction(float(x)) * Fraction(float(y)) for x, y in pairs)
                s = round_fraction(ex, 24, -126, 127, "nearest_even")
            d[i, j] = s
    np.testing.assert_array_equal(got, d.astype(np.float32))


def test_pairwise_summation_is_a_float32_tree() -> None:
    """CDNA2: float32 products, ((p0 + p1) + (p2 + p3)) in float32, then the addend; subnormals flushed."""
    rng = np.random.default_rng(2)
    a = np.asarray(L.round_to(rng.standard_normal((6, 8)), "bf16"))
    b = np.asarray(L.round_to(rng.standard_normal((8, 5)), "bf16"))
    c = rng.standard_normal((6, 5)).astype(np.float32)
    got = hardware.gemm(a, b, c, gpu="MI250", in_format="bf16")
    want = c.copy()
    for k0 in (0, 4):
        p = a[:, None, k0 : k0 + 4] * np.swapaxes(b[k0 : k0 + 4], 0, 1)[None]  # exact in float32
        want = want + ((p[..., 0] + p[..., 1]) + (p[..., 2] + p[..., 3]))
    np.testing.assert_array_equal(got, want)
    tiny = np.float32([[2.0**-130, 1.0]])
    assert hardware.gemm(tiny, np.float32([[1.0], [0.0]]), gpu="MI210", in_format="bf16")[0, 0] == 0.0


def test_cdna3_late_addend_and_odd_even() -> None:
    """CDNA3: the addend after the products (toward -inf alignment); fp8 fnuz inputs, odd/even sums."""
    one = np.float32([[1.0]])
    m = hardware.preset("MI300X", "fp16")
    # 1 + 2**-24 + 2**-40 rounds up to 1 + 2**-23; aligned to c, the products' 2**-40 is dropped (rounding
    # toward -inf at 31 bits) and the tie 1 + 2**-24 goes to even: 1
    a, b = np.float32([[2.0**-12, 2.0**-20]]), np.float32([[2.0**-12], [2.0**-20]])
    assert m.gemm(a, b, one)[0, 0] == 1.0
    assert m.gemm(-a, b, -one)[0, 0] == -1.0 - 2.0**-23  # toward -inf: the dropped bits make it larger
    fp8 = hardware.preset("MI300A", "e4m3")
    assert fp8.input_format.max == 240.0
    assert fp8.input_format.emin == -7
    assert fp8.gemm(np.float32([[240.0, 2.0**-10]]), np.float32([[1.0], [1.0]]))[0, 0] == np.float32(
        240 + 2.0**-10
    )
    with pytest.raises(HardwareError, match="e4m3fnuz"):
        fp8.gemm(np.float32([[448.0]]), one)


# ------------------------------------------------------------------------------------------ the API
def test_presets_cover_the_gpus_and_formats() -> None:
    nvidia = ["V100", "A100", "A2", "A30", "Ada", "L40S", "H100", "H200", "B200", "RTXPRO6000", "B200-RN"]
    assert hardware.gpus() == [*nvidia, "MI100", "MI210", "MI250", "MI300A", "MI300X"]
    modes = {(m.gpu, m.in_format, m.out_format) for m in hardware.presets()}
    assert ("H200", "e5m2", "fp16") in modes
    assert ("B200", "e4m3", "fp16") not in modes
    assert hardware.preset("h100", "binary16", "float32") is hardware.preset("H100")
    assert hardware.preset("L40S", "fp16").replace(gpu="Ada") == hardware.preset("Ada", "fp16")
    assert hash(hardware.tensor_core("A100", "tf32"))


def test_bad_input_names_the_problem() -> None:
    one = np.float32([[1.0]])
    with pytest.raises(HardwareError) as err:
        hardware.gemm(one, one, gpu="TPU")
    _helpers.check_error(err, "gpu='TPU'", "'H100'", "'MI300X'")
    with pytest.raises(HardwareError, match=r"in_format='fp64'.*'tf32'"):
        hardware.gemm(one, one, in_format="fp64")
    with pytest.raises(HardwareError, match=r"no tf32 -> fp16.*fp16->fp32"):
        hardware.gemm(one, one, gpu="A100", in_format="tf32", out_format="fp16")
    with pytest.raises(HardwareError, match=r"a\[0, 1\] = .*0.1.* fp16"):
        hardware.gemm(np.float32([[1.0, 0.1]]), np.float32([[1.0], [1.0]]))
    with pytest.raises(HardwareError, match=r"c\[0, 0\].*fp16"):
        hardware.gemm(one, one, np.float32([[0.1]]), out_format="fp16")
    with pytest.raises(ShapeError, match=r"\(1, 2\).*\(3, 1\)"):
        hardware.gemm(np.ones((1, 2), np.float32), np.ones((3, 1), np.float32))
    with pytest.raises(ShapeError, match="broadcast"):
        hardware.gemm(np.ones((2, 1, 2), np.float32), np.ones((3, 2, 1), np.float32))
    with pytest.raises(ShapeError, match="c has shape"):
        hardware.gemm(one, one, np.ones((2, 2), np.float32))
    with pytest.raises(HardwareError, match="group"):
        hardware.preset("H100").replace(group=0)
    with pytest.raises(HardwareError, match="late_addend"):
        hardware.preset("H100").replace(summation="odd_even")
    with pytest.raises(HardwareError, match=r"interleave=3.*divisor of group=16"):
        hardware.preset("H100").replace(interleave=3)


def test_batches_broadcast_like_matmul() -> None:
    rng = np.random.default_rng(3)
    a = np.asarray(L.round_to(rng.standard_normal((3, 1, 4, 40)), "fp16"))
    b = np.asarray(L.round_to(rng.standard_normal((2, 40, 5)), "fp16"))
    got = hardware.gemm(a, b, gpu="A100")
    assert got.shape == (3, 2, 4, 5)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[2, 1], hardware.gemm(a[2, 0], b[1], gpu="A100"))
    assert np.abs(got - np.matmul(a.astype(np.float64), b)).max() < 1e-4


# ------------------------------------------------------------------------------------------ plans
def test_lampref_matmul_and_linear_take_a_tensor_core() -> None:
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((5, 24)).astype(np.float32), rng.standard_normal((24, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    tc = hardware.tensor_core("H100", "fp16", "fp32")
    x16, w16 = (np.asarray(L.round_to(v, "fp16")) for v in (x, w))
    np.testing.assert_array_equal(L.matmul(x, w, tc), hardware.gemm(x16, w16))
    np.testing.assert_array_equal(
        L.linear(x, w, bias, tc), hardware.gemm(x16, w16, np.broadcast_to(bias, (5, 3)))
    )
    assert L.matmul(x[0], w, tc).shape == (3,)
    with pytest.raises(L.ModeError, match="MatmulModel"):
        L.matmul(x, w, "H100")  # type: ignore[arg-type]


def test_gpt2_and_bert_run_on_a_tensor_core() -> None:
    cfg = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=16, vocab_size=32)
    model = GPT2(random_params(cfg, rng=0, std=0.3), cfg)
    tokens = np.arange(8) % 32
    plan = PrecisionPlan.uniform(hardware.tensor_core("H100", "fp16", "fp32"))
    tc, ref = model.logits(tokens, plan), model.logits(tokens)
    assert tc.dtype == np.float32
    assert 0 < np.abs(tc - ref).max() < 0.05
    fp16_plan = PrecisionPlan.uniform(hardware.tensor_core("V100", "fp16", "fp16"))
    assert L.is_representable(model.logits(tokens, fp16_plan), "fp16").all()

    bcfg = BertConfig(50, 16, 1, 2, 32, 16)
    state = {
        k: np.random.default_rng(5).standard_normal(s).astype(np.float32) * 0.2
        for k, s in hf_shapes(bcfg).items()
    }
    bert = BertModel.from_state_dict(state, bcfg)
    h = bert.hidden_states(np.arange(6), PrecisionPlan.uniform(hardware.tensor_core("A100", "bf16")))
    assert np.abs(h - bert.hidden_states(np.arange(6))).max() < 0.1
    with pytest.raises(PlanError, match="MatmulModel"):
        PrecisionPlan.uniform("H100")  # type: ignore[arg-type]
