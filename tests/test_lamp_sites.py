"""Look-ahead recomputation beyond softmax: the selections (against MPFR), the dense rules inside GPT-2
(against a float64 reference), joint plans with per-site statistics, and operand storage formats (against
ml_dtypes and by the axis each block format sees)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gmpy2
import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.typing import NDArray

from lampref import Accumulator, fp32_mantissa, get_format
from lampref.accumulate import linear
from lampref.analysis import elementwise_select, layernorm_select
from lampref.bert import BertModel
from lampref.bert.config import BertConfig
from lampref.bert.model import hf_shapes
from lampref.errors import AnalysisError, InputTypeError, PlanError
from lampref.gpt2 import GPT2, GPT2Config, PrecisionPlan, random_params
from lampref.gpt2.plan import DenseOutput, ScoreStats
from lampref.lamp import LampConfig
from lampref.lamp_sites import GeluLamp, HeadLamp, NormLamp, site_fractions
from lampref.nn import store_operand
from lampref.testing.site_strategies import element_taus, layernorm_rows, preactivations

PREC = 320  # MPFR bits of the oracles
SLACK = 1e-9  # relative: float64 evaluation of the same first-order quantity next to the MPFR one


# ------------------------------------------------------------------------------------------- oracles
def _mpfr_kappa_gelu(z: float, form: str) -> float:
    """GELU's condition number |z phi'(z) / phi(z)| in MPFR, from the derivative written out (1 at z = 0)."""
    with gmpy2.context(gmpy2.get_context(), precision=PREC):
        x = gmpy2.mpfr(float(z))
        if x == 0:
            return 1.0
        if form == "tanh":
            c = gmpy2.sqrt(2 / gmpy2.const_pi())
            a = gmpy2.mpfr("0.044715")
            v = c * (x + a * x**3)
            one_plus_tanh = 2 / (1 + gmpy2.exp(-2 * v))  # 1 + tanh v, no cancellation
            sech2 = 4 / (gmpy2.exp(v) + gmpy2.exp(-v)) ** 2
            phi = x / 2 * one_plus_tanh
            dphi = one_plus_tanh / 2 + x / 2 * sech2 * c * (1 + 3 * a * x * x)
        else:
            cdf = gmpy2.erfc(-x / gmpy2.sqrt(2)) / 2
            pdf = gmpy2.exp(-x * x / 2) / gmpy2.sqrt(2 * gmpy2.const_pi())
            phi, dphi = x * cdf, cdf + x * pdf
        return float(abs(x * dphi / phi))


def _mpfr_layernorm(row: list[Any], eps: float) -> list[Any]:
    n = len(row)
    mu = sum(row) / n
    var = sum((v - mu) ** 2 for v in row) / n
    sig = gmpy2.sqrt(var + eps)
    return [(v - mu) / sig for v in row]


def _mpfr_bound(x: NDArray[np.float64], err: NDArray[np.float64], keep: NDArray[np.bool_]) -> float:
    """max_i sum_{j kept} |dy_i/dx_j| err_j / |y_i| for LayerNorm (no affine part, norm_eps 1e-5), the
    Jacobian from central differences in MPFR (step 2^-120: the truncation error is far below float64)."""
    with gmpy2.context(gmpy2.get_context(), precision=PREC):
        base = [gmpy2.mpfr(float(v)) for v in x]
        eps = gmpy2.mpfr(1e-5)
        y = _mpfr_layernorm(base, eps)
        h = gmpy2.mpfr(2) ** -120
        total = [gmpy2.mpfr(0)] * len(base)
        for j in np.nonzero(keep)[0]:
            up, down = list(base), list(base)
            up[j] += h
            down[j] -= h
            yu, yd = _mpfr_layernorm(up, eps), _mpfr_layernorm(down, eps)
            for i in range(len(base)):
                total[i] += abs((yu[i] - yd[i]) / (2 * h)) * gmpy2.mpfr(float(err[j]))
        return max(float(total[i] / abs(y[i])) if y[i] != 0 else math.inf for i in range(len(base)))


# ------------------------------------------------------------------------------------ GELU selection
@pytest.mark.parametrize("form", ["tanh", "erf"])
@given(z=preactivations(), tau=element_taus())
@example(z=np.float32([0.0, -0.0, -0.7517916, -30.0, 30.0]), tau=1.0)
@example(z=np.float32([-4.0, -2.0, -1.0]), tau=3.75)
@example(z=np.float32([float.fromhex("0x1p-149"), -1e-30]), tau=0.999)
def test_gelu_selection_meets_its_bound_against_mpfr(z: NDArray[np.float32], tau: float, form: str) -> None:
    """Every component left unselected has GELU amplification kappa(z) <= tau (MPFR evaluation); every
    selected one has kappa >= tau (up to the float64 evaluation's rounding)."""
    sel = elementwise_select(f"gelu_{form}", z, tau)
    for zi, s in zip(z.tolist(), sel.tolist(), strict=True):
        k = _mpfr_kappa_gelu(zi, form)
        if s:
            assert k >= tau * (1 - SLACK) - 1e-12, (zi, k, tau)
        else:
            assert k <= tau * (1 + SLACK) + 1e-12, (zi, k, tau)


@given(z=preactivations(), taus=st.lists(element_taus(), min_size=2, max_size=2))
def test_gelu_selection_is_monotone_in_tau(z: NDArray[np.float32], taus: list[float]) -> None:
    lo, hi = sorted(taus)
    sel_lo, sel_hi = elementwise_select("gelu_tanh", z, lo), elementwise_select("gelu_tanh", z, hi)
    assert not (sel_hi & ~sel_lo).any()  # a larger tau never selects more


@given(z=preactivations())
def test_gelu_selection_boundaries(z: NDArray[np.float32]) -> None:
    assert elementwise_select("gelu_tanh", z, 0.0).all()
    assert not elementwise_select("gelu_tanh", z, math.inf).any()


def test_gelu_selection_refuses_bad_thresholds() -> None:
    for tau in (-1.0, math.nan):
        with pytest.raises(AnalysisError, match="tau"):
            elementwise_select("gelu_tanh", [1.0], tau)


# ------------------------------------------------------------------------------- LayerNorm selection
@given(data=layernorm_rows(), frac=st.floats(0.0, 1.2))
@example(data=(np.array([1.0, 2.0, 4.0, -2.0]), np.full(4, 1e-6)), frac=0.5)
def test_layernorm_selection_meets_its_bound_against_mpfr(
    data: tuple[NDArray[np.float64], NDArray[np.float64]], frac: float
) -> None:
    """The unselected inputs leave every output a first-order relative error bound <= tau (MPFR finite
    differences of LayerNorm), and dropping the last selected input of the prefix would not."""
    x, err = data
    full = _mpfr_bound(x, err, np.ones(x.size, dtype=bool))
    tau = frac * full
    sel = layernorm_select(x, err, tau)
    assert _mpfr_bound(x, err, ~sel) <= tau * (1 + SLACK) + 1e-300


@given(data=layernorm_rows(), fracs=st.lists(st.floats(0.0, 1.2), min_size=2, max_size=2))
def test_layernorm_selection_is_monotone_and_bounded(
    data: tuple[NDArray[np.float64], NDArray[np.float64]], fracs: list[float]
) -> None:
    x, err = data
    lo, hi = sorted(fracs)
    scale = _mpfr_bound(x, err, np.ones(x.size, dtype=bool))
    sel_lo, sel_hi = layernorm_select(x, err, lo * scale), layernorm_select(x, err, hi * scale)
    assert not (sel_hi & ~sel_lo).any()
    assert not layernorm_select(x, err, math.inf).any()
    assert layernorm_select(x, err, 0.0).all()  # every input harms some output


# ------------------------------------------------------------------------------------ inside GPT-2
CFG = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=48)
TOKENS = np.arange(20) % 48
LOW = Accumulator(fp32_mantissa(5))


@pytest.fixture(scope="module")
def model() -> GPT2:
    return GPT2(random_params(CFG, rng=3, std=0.5), CFG, row_block=8)


@dataclass(frozen=True)
class RecordingGelu(GeluLamp):
    """GeluLamp that keeps what each call saw and returned (for the float64 checks)."""

    calls: ClassVar[list[tuple[Any, ...]]] = []

    def dense_output(self, x: Any, w: Any, b: Any, **kw: Any) -> DenseOutput:
        res = super().dense_output(x, w, b, **kw)
        RecordingGelu.calls.append((x.copy(), w, b, res.out.copy()))
        return res


def test_gelu_lamp_recomputes_to_float32_accuracy_against_float64(model: GPT2) -> None:
    """In a small random GPT-2, each fc output LAMP recomputes is within float32's bound of the float64
    product of the same operands; each one left alone is within the m-bit bound; and every GELU input left
    in low precision has kappa < tau (MPFR)."""
    tau = 1.5
    RecordingGelu.calls.clear()
    model.logits(TOKENS, PrecisionPlan.only("mlp.fc", RecordingGelu(LOW, tau)))
    assert len(RecordingGelu.calls) == CFG.n_layer
    K = CFG.n_embd
    for x, w, b, out in RecordingGelu.calls:
        x64, w64, b64 = (np.asarray(a, np.float64) for a in (x, w, b))
        ref = x64 @ w64 + b64  # [n, 4C], float64 reference
        scale = np.abs(x64) @ np.abs(w64) + np.abs(b64)
        low = np.asarray(linear(x, w, b, LOW), np.float32)
        sel = out != low
        assert sel.any()
        assert not sel.all()
        u32, um = 2.0**-24, LOW.fmt.unit_roundoff
        g32, gm = (K + 1) * u32 / (1 - (K + 1) * u32), (K + 2) * um / (1 - (K + 2) * um)
        assert (np.abs(out - ref)[sel] <= (g32 * scale)[sel]).all()
        assert (np.abs(out - ref)[~sel] <= (gm * scale)[~sel]).all()
        for zi in out[~sel][:200].tolist():
            assert _mpfr_kappa_gelu(zi, "tanh") <= tau * (1 + SLACK)


def test_dense_rules_at_their_boundaries_give_float32_or_uniform_bits(model: GPT2) -> None:
    """tau = 0 recomputes every output: the logits are the float32 model's bit for bit; tau = inf recomputes
    none: the logits are those of the site under the plain accumulator."""
    f32 = model.logits(TOKENS)
    for site, rule in (("mlp.fc", GeluLamp), ("mlp.proj", NormLamp), ("attn.proj", NormLamp)):
        everything = model.logits(TOKENS, PrecisionPlan.only(site, rule(LOW, 0.0)))
        nothing = model.logits(TOKENS, PrecisionPlan.only(site, rule(LOW, math.inf)))
        uniform = model.logits(TOKENS, PrecisionPlan.only(site, LOW))
        assert np.array_equal(everything, f32), site
        assert np.array_equal(nothing, uniform), site
        assert not np.array_equal(uniform, f32)


def test_joint_plan_reports_per_site_statistics(model: GPT2) -> None:
    plan = (
        PrecisionPlan()
        .set("attn.score", LampConfig(LOW, 1.5))
        .set("mlp.fc", GeluLamp(LOW, 2.0))
        .set("mlp.proj", NormLamp(LOW, 4096.0))
    )
    _, stats = model.logits_and_stats(TOKENS, plan)
    fr = site_fractions(stats)
    assert list(fr) == ["attn.score", "mlp.fc", "mlp.proj"]
    for site, f in fr.items():
        assert 0.0 <= f.recomputed <= 1.0, site
        assert f.per_layer.shape == (CFG.n_layer,), site
    assert fr["mlp.fc"].amp_max < 2.0  # every GELU input left in low precision: kappa < tau
    assert fr["mlp.proj"].amp_max <= 4096.0 * (1 + SLACK)
    assert fr["attn.score"].amp_max <= 1.5 + 0.05  # the upper edge of the kappa histogram's bin
    summed = [ScoreStats.sum_totals([s, s]) for s in stats]
    assert site_fractions(summed)["mlp.fc"].recomputed == fr["mlp.fc"].recomputed
    assert float(summed[0]["mlp.fc:amp_max"]) == float(stats[0]["mlp.fc:amp_max"])


def test_random_baseline_recomputes_the_same_counts(model: GPT2) -> None:
    lamp = site_fractions(model.logits_and_stats(TOKENS, PrecisionPlan.only("mlp.fc", GeluLamp(LOW, 2.0)))[1])
    rnd_plan = PrecisionPlan.only("mlp.fc", GeluLamp(LOW, 2.0, baseline="random", seed=7))
    rnd = site_fractions(model.logits_and_stats(TOKENS, rnd_plan)[1])
    assert rnd["mlp.fc"].recomputed == lamp["mlp.fc"].recomputed
    assert rnd["mlp.fc"].amp_max >= lamp["mlp.fc"].amp_max


def test_cached_generation_keeps_the_bits_of_a_full_pass(model: GPT2) -> None:
    plan = PrecisionPlan.only("mlp.fc", GeluLamp(LOW, 1.5, baseline="random")).set(
        "attn.proj", NormLamp(LOW, 64.0)
    )
    _, steps = model.generate(TOKENS[:9], 3, plan, return_logits=True)
    for i in range(3):
        seq = np.concatenate([TOKENS[:9], np.argmax(steps[:i], axis=-1)]) if i else TOKENS[:9]
        assert np.array_equal(steps[i], model.logits(seq, plan)[-1])


def test_plan_refuses_rules_at_the_wrong_sites(model: GPT2) -> None:
    with pytest.raises(PlanError, match="DenseRule"):
        PrecisionPlan.only("mlp.fc", LampConfig(LOW, 1.5))
    with pytest.raises(PlanError, match="ScoreRule"):
        PrecisionPlan.only("attn.score", GeluLamp(LOW, 1.5))
    with pytest.raises(PlanError):
        PrecisionPlan.only("attn.qkv", GeluLamp(LOW, 1.5))
    with pytest.raises(PlanError, match="GELU"):
        model.logits(TOKENS, PrecisionPlan.only("attn.proj", GeluLamp(LOW, 1.5)))
    with pytest.raises(PlanError, match="rule"):
        PrecisionPlan.only("mlp.fc", GeluLamp(LOW, 1.5)).accumulator("mlp.fc")
    with pytest.raises(AnalysisError, match="tau"):
        GeluLamp(LOW, -1.0)
    with pytest.raises(InputTypeError, match="acc"):
        NormLamp("fp16", 1.0)  # type: ignore[arg-type]
    with pytest.raises(AnalysisError, match="baseline"):
        GeluLamp(LOW, 1.0, baseline="authors")


# ------------------------------------------------------------------------------------ storage formats
@pytest.mark.parametrize(
    ("name", "dtype"), [("bf16", ml_dtypes.bfloat16), ("e4m3fn", ml_dtypes.float8_e4m3fn)]
)
@given(x=st.lists(st.floats(-400.0, 400.0, width=32), min_size=1, max_size=32))
def test_store_operand_rounds_like_ml_dtypes(name: str, dtype: Any, x: list[float]) -> None:
    arr = np.array(x, dtype=np.float32)
    expected = arr.astype(dtype).astype(np.float32)  # ml_dtypes: nearest-even from float32
    assert np.array_equal(store_operand(arr, get_format(name), -1), expected)


@dataclass(frozen=True)
class AxisProbe:
    """A block format that changes nothing and records the shape and axis of each operand it sees."""

    seen: ClassVar[list[tuple[tuple[int, ...], int]]] = []

    def quantize_dequantize(self, x: Any, axis: int = -1) -> Any:
        AxisProbe.seen.append((np.shape(x), axis))
        return np.asarray(x, dtype=np.float32)


def test_block_formats_see_the_reduction_axis(model: GPT2) -> None:
    """Each operand reaches the block format with its reduction axis: q and k along d at attn.score,
    probabilities and values along the keys at attn.value, x along its features and w along its rows in a
    dense layer; a format that changes nothing changes no bit."""
    C, H = CFG.n_embd, CFG.n_head
    d = C // H
    for site in ("attn.score", "attn.value", "mlp.fc", "lm_head"):
        AxisProbe.seen.clear()
        plan = PrecisionPlan.only(site, LOW).with_storage(site, AxisProbe())
        assert np.array_equal(model.logits(TOKENS, plan), model.logits(TOKENS, PrecisionPlan.only(site, LOW)))
        reduced = {shape[axis] for shape, axis in AxisProbe.seen}
        expected = {"attn.score": {d}, "mlp.fc": {C}, "lm_head": {C}}.get(site)
        if site == "attn.value":  # the keys of each row block: multiples of row_block
            assert all(r % model.row_block == 0 for r in reduced)
        else:
            assert reduced == expected, (site, AxisProbe.seen[:4])


def test_storage_at_lm_head_against_ml_dtypes_and_float64(model: GPT2) -> None:
    """bf16 storage at lm_head: the logits are the float64 product of the bf16-rounded final hidden states
    and embedding matrix (ml_dtypes), within float32's accumulation bound."""
    plan = PrecisionPlan().with_storage("lm_head", get_format("bf16"))
    tr = model.trace(TOKENS)
    x = tr.final.astype(ml_dtypes.bfloat16).astype(np.float64)
    w = model.params.wte.astype(ml_dtypes.bfloat16).astype(np.float64).T
    ref = x @ w
    bound = (CFG.n_embd + 1) * 2.0**-24 * (np.abs(x) @ np.abs(w)) * 1.01
    got = model.logits(TOKENS, plan)
    assert (np.abs(got - ref) <= bound).all()
    assert not np.array_equal(got, tr.logits)


def test_mx_storage_of_keys_and_queries(model: GPT2) -> None:
    mx = pytest.importorskip("lampref.mx")
    if not hasattr(mx, "get_spec"):
        pytest.skip("lampref.mx has no get_spec yet")
    spec = mx.get_spec("mxfp8")
    plan = PrecisionPlan.only("attn.score", LampConfig(LOW, 1.5)).with_storage("attn.score", spec)
    _, stats = model.logits_and_stats(TOKENS, plan)
    assert 0 < site_fractions(stats)["attn.score"].recomputed < 1


def test_storage_is_checked(model: GPT2) -> None:
    bf16 = get_format("bf16")
    plan = PrecisionPlan().with_storage(["mlp.fc", "attn.qkv"], bf16)
    assert [s for s, _ in plan.storage] == ["attn.qkv", "mlp.fc"]
    assert plan.with_storage("mlp.fc", None).storage == (("attn.qkv", bf16),)
    assert hash(plan) == hash(PrecisionPlan().with_storage(["attn.qkv", "mlp.fc"], bf16))
    assert plan.set("mlp.fc", LOW).storage == plan.storage  # refining a plan keeps its storage
    with pytest.raises(PlanError, match="storage format"):
        PrecisionPlan().with_storage("mlp.fc", "bf16")
    with pytest.raises(PlanError, match="site"):
        PrecisionPlan().with_storage("mlp.fcc", bf16)
    with pytest.raises(PlanError, match="reference"):
        PrecisionPlan((), True, (("mlp.fc", bf16),))
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    rng = np.random.default_rng(0)
    bert = BertModel.from_state_dict(
        {k: rng.normal(scale=0.5, size=s).astype(np.float32) for k, s in hf_shapes(cfg).items()}, cfg
    )
    with pytest.raises(PlanError, match="storage"):
        bert.hidden_states(np.array([[1, 2, 3]]), plan)


# ------------------------------------------------------------------------------ the vocabulary softmax
def test_head_lamp_boundaries_and_float64_accuracy(model: GPT2) -> None:
    """LAMP at lm_head: tau = 2 gives the uniform accumulator's logits bit for bit, a tiny tau the float32
    model's; at tau = 1.5 the recomputed logits are within float32's bound of the float64 product, the others
    within the m-bit bound, and every row's kappa(S), computed here from its definition in float64, is at
    most tau."""
    f32 = model.logits(TOKENS)
    assert np.array_equal(model.logits(TOKENS, PrecisionPlan.only("lm_head", HeadLamp(LOW, 2.0))),
                          model.logits(TOKENS, PrecisionPlan.only("lm_head", LOW)))  # fmt: skip
    assert np.array_equal(model.logits(TOKENS, PrecisionPlan.only("lm_head", HeadLamp(LOW, 1e-9))), f32)
    tau = 1.5
    got, stats = model.logits_and_stats(TOKENS, PrecisionPlan.only("lm_head", HeadLamp(LOW, tau)))
    x = model.trace(TOKENS).final.astype(np.float64)  # the head's input (the layers are float32)
    w = model.params.wte.astype(np.float64).T
    ref, scale = x @ w, np.abs(x) @ np.abs(w)
    low = np.asarray(
        linear(x.astype(np.float32), w.astype(np.float32), np.zeros(w.shape[1], np.float32), LOW)
    )
    sel = got != low
    K, u32, um = CFG.n_embd, 2.0**-24, LOW.fmt.unit_roundoff
    assert (np.abs(got - ref)[sel] <= ((K + 1) * u32 * 1.01 * scale)[sel]).all()
    assert (np.abs(got - ref)[~sel] <= ((K + 2) * um * 1.01 * scale)[~sel]).all()
    p = np.exp(low - low.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    for row, s in zip(p, sel, strict=True):
        kappa = 2 - row[s].sum() - 2 * row[~s].min() if (~s).sum() > 1 else 1 - row[s].sum()
        assert kappa <= tau + 1e-6
    frac = site_fractions(stats)["lm_head"]
    assert frac.recomputed == pytest.approx(sel.mean())
    assert np.isnan(frac.per_layer[0])  # the head's statistics join the last layer's
    assert frac.per_layer[-1] == pytest.approx(sel.mean())


def test_head_lamp_in_cached_generation_and_in_plans(model: GPT2) -> None:
    plan = PrecisionPlan.only("lm_head", HeadLamp(LOW, 1.2)).set("mlp.fc", GeluLamp(LOW, 2.0))
    _, steps = model.generate(TOKENS[:9], 2, plan, return_logits=True)
    assert np.array_equal(steps[0], model.logits(TOKENS[:9], plan)[-1])
    with pytest.raises(PlanError, match="softmax"):
        model.logits(TOKENS, PrecisionPlan.only("mlp.fc", HeadLamp(LOW, 1.2)))
    with pytest.raises(AnalysisError, match="tau"):
        HeadLamp(LOW, 2.5)
