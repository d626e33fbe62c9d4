"""Tests of the BERT encoder: configuration, parameters from a state dict, the forward pass and its plans.

The forward pass is checked against golden fixtures from Hugging Face transformers (torch, CPU) with every
parameter randomised, LayerNorm scales and shifts included (tests/fixtures/bert/random/, written by
scripts/make_bert_fixtures.py; the manifest there pins the generator, versions, seeds and the sha256 of
every array and file). These comparisons always run; a live comparison with transformers on fresh inputs
runs in addition when torch and transformers are importable.

Tolerances (float32, unit roundoff u = 2**-24 ~ 6e-8): both implementations compute the same float32
operations and differ only in the order of the sums (BLAS blocking, fused bias additions), in ulp-level
differences of erf/exp/rsqrt and in ``/ sqrt(d)`` against ``* d**-0.5``. Element-wise
``|ours - ref| <= atol + rtol |ref|`` with rtol = 1e-5 (~170 u) and atol = 1e-5 * rms(ref) for hidden
states (an element of a cancelling sum carries the absolute error of its terms) or 1e-5 for probabilities
and unit-norm embeddings. In float64 (the reference plan against ``model.double()``) the same ~170 units of
roundoff: rtol = 170 * 2**-53. Measured: at most 3.3e-6 in float32 (values up to 3.4) and 6.3e-15 in float64.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import _helpers
import numpy as np
import pytest

from lampref import Accumulator, fp32_mantissa, is_representable
from lampref.bert import BertConfig, BertModel, BertParams, BertTrace
from lampref.bert.model import hf_shapes
from lampref.errors import (
    ConfigError,
    InputTypeError,
    InputValueError,
    PlanError,
    ShapeError,
    WeightsError,
    WeightsNotFoundError,
)
from lampref.gpt2.plan import PrecisionPlan
from lampref.gpt2.safetensors import load_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "bert" / "random"
RTOL = 1e-5
RTOL64 = 170 * 2.0**-53
BERT_SITES = ("attn.qkv", "attn.score", "attn.value", "attn.proj", "mlp.fc", "mlp.proj")


# ------------------------------------------------------------------------------------------ helpers
assert_close = partial(_helpers.assert_close, rtol=RTOL)  # atol stated by each call


def rms(a: Any) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(a, dtype=np.float64)))))


def assert_layers_close(trace: BertTrace, ref: dict[str, Any], b: int, *, rtol: float = RTOL) -> None:
    """Compare a trace with a reference layer by layer, in execution order, so that a failure names the
    first stage that diverges (embedding, then per layer: probabilities, after attention, output)."""
    stages: list[tuple[str, Any, Any, float]] = [
        ("embedding", trace.embedding, ref["hidden_states"][0, b], 0)
    ]
    for layer in range(len(trace.hidden)):
        if "attentions" in ref:
            stages.append((f"layer {layer} probs", trace.probs[layer], ref["attentions"][layer, b], 1))
        if "attn_residual" in ref:
            after = ref["attn_residual"][layer, b]
            stages.append((f"layer {layer} after attention", trace.attn_residual[layer], after, 0))
        stages.append((f"layer {layer} output", trace.hidden[layer], ref["hidden_states"][layer + 1, b], 0))
    for what, ours, want, unit in stages:
        atol = rtol * (unit or rms(want))
        assert_close(ours, want, what=f"sequence {b}, {what} (first diverging stage)", atol=atol, rtol=rtol)


def hf_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model_type": "bert",
        "vocab_size": 100,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    out: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    return out


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    with np.load(FIXTURES / "outputs.npz") as f:
        out: dict[str, Any] = {k: f[k] for k in f.files}
    return out


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return load_file(FIXTURES / "model.safetensors")


@pytest.fixture(scope="module")
def config() -> BertConfig:
    return BertConfig.from_hf(FIXTURES / "config.json")


@pytest.fixture(scope="module")
def model(state: dict[str, np.ndarray], config: BertConfig) -> BertModel:
    return BertModel.from_state_dict(state, config)


def inputs(ref: dict[str, Any], b: int | None = None) -> dict[str, Any]:
    keys = ("attention_mask", "token_type_ids")
    if b is None:
        return {"input_ids": ref["input_ids"], **{k: ref[k] for k in keys}}
    return {"input_ids": ref["input_ids"][b], **{k: ref[k][b] for k in keys}}


def test_manifest_pins_the_fixtures(manifest: dict[str, Any]) -> None:
    _helpers.check_fixture_manifest(manifest, FIXTURES)
    assert manifest["generator"] == "scripts/make_bert_fixtures.py"
    assert set(manifest["arrays"]) == {"outputs.npz"}
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 2_000_000


def test_fixture_parameters_are_all_random(state: dict[str, np.ndarray]) -> None:
    # a default initialisation (LayerNorm weight 1, bias 0, zero biases) would hide the bugs fixtures catch
    for name, arr in state.items():
        assert np.unique(arr).size > arr.size // 2, f"{name} looks initialised, not random"


# ------------------------------------------------------------------------------------------- config
def test_config_reads_transformers_config_json(config: BertConfig, manifest: dict[str, Any]) -> None:
    assert {f: getattr(config, f) for f in manifest["config"]} == manifest["config"]
    assert BertConfig.from_hf(FIXTURES) == config  # the directory
    assert BertConfig.from_hf(json.loads((FIXTURES / "config.json").read_text())) == config  # the dict
    assert BertConfig.from_hf(config.to_hf()) == config
    assert config.head_dim == 8
    assert hash(config) == hash(BertConfig.from_hf(FIXTURES))


def test_config_n_params_counts_every_tensor(config: BertConfig, state: dict[str, np.ndarray]) -> None:
    assert config.n_params == sum(math.prod(s) for s in hf_shapes(config).values())
    assert config.n_params == sum(v.size for k, v in state.items() if not k.startswith("pooler."))


def test_config_reads_a_sentence_transformers_minilm_config() -> None:
    # the fields of all-MiniLM-L6-v2's config.json (written by transformers 4.8.2)
    minilm = {
        "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 384,
        "initializer_range": 0.02,
        "intermediate_size": 1536,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": 12,
        "num_hidden_layers": 6,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.8.2",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": 30522,
    }
    cfg = BertConfig.from_hf(minilm)
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim) == (6, 12, 32)
    assert cfg.n_params + 384 * 384 + 384 == 22_713_216  # with the pooler: the 22.7M published


def test_config_defaults_are_hugging_faces() -> None:
    cfg = BertConfig.from_hf(hf_dict(model_type=...))
    assert (cfg.type_vocab_size, cfg.layer_norm_eps, cfg.hidden_act) == (2, 1e-12, "gelu")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"model_type": "gpt2"}, "model_type='gpt2'; expected 'bert'"),
        ({"model_type": 3}, "model_type=3 is not valid; expected a string"),
        ({"hidden_size": ...}, "missing key.*'hidden_size'"),
        ({"hidden_size": "32"}, "hidden_size='32' is not valid; expected an integer"),
        ({"num_hidden_layers": True}, "num_hidden_layers=True is not valid; expected an integer"),
        ({"intermediate_size": 0}, "intermediate_size=0 is not valid; expected a positive integer"),
        ({"num_attention_heads": 5}, "num_attention_heads=5 does not divide hidden_size=32"),
        ({"layer_norm_eps": -1e-12}, "layer_norm_eps=-1e-12 is not valid"),
        ({"layer_norm_eps": "1e-12"}, "layer_norm_eps='1e-12' is not valid; expected a number"),
        ({"type_vocab_size": 0}, "type_vocab_size=0 is not valid"),
        ({"hidden_act": "gelu_new"}, "hidden_act='gelu_new' is not valid; expected one of: 'gelu'"),
        ({"hidden_act": "relu"}, "hidden_act='relu'"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key' changes"),
        ({"is_decoder": True}, "is_decoder=True changes the forward pass"),
        ({"add_cross_attention": "no"}, "add_cross_attention='no' is not valid; expected true or false"),
    ],
)
def test_config_refuses_what_is_not_modelled(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        BertConfig.from_hf(hf_dict(**overrides))


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"config\.json: no such file"):
        BertConfig.from_hf(tmp_path)
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=f"{path}: the configuration is not valid JSON"):
        BertConfig.from_hf(path)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        BertConfig.from_hf(path)
    path.write_text(json.dumps(hf_dict(hidden_act="tanh")))
    with pytest.raises(ConfigError, match=f"{path}: hidden_act='tanh'"):
        BertConfig.from_hf(path)


def test_config_constructor_checks() -> None:
    with pytest.raises(ConfigError, match="hidden_act"):
        BertConfig(10, 8, 1, 2, 16, 4, hidden_act="erf")
    with pytest.raises(ConfigError, match="layer_norm_eps=nan"):
        BertConfig(10, 8, 1, 2, 16, 4, layer_norm_eps=float("nan"))
    assert BertConfig(np.int64(10), 8, 1, 2, 16, 4).vocab_size == 10  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- parameters
def test_params_keep_the_checkpoint_exactly(state: dict[str, np.ndarray], model: BertModel) -> None:
    back = model.params.state_dict()
    assert set(back) == set(hf_shapes(model.config))
    for name, arr in back.items():
        assert arr.dtype == np.float32, name
        assert np.array_equal(arr, state[name]), name
    q = state["encoder.layer.1.attention.self.query.weight"]  # torch (out, in)
    assert np.array_equal(model.params.layers[1].query.w, q.T)  # stored (in, out)


def test_params_accept_the_bert_prefix_and_ignore_the_pooler(
    state: dict[str, np.ndarray], config: BertConfig, model: BertModel, ref: dict[str, Any]
) -> None:
    prefixed = {"bert." + k: v for k, v in state.items()}
    prefixed["embeddings.position_ids"] = np.arange(64)[None, :]
    other = BertModel.from_state_dict(prefixed, config)
    assert np.array_equal(other.hidden_states(**inputs(ref, 0)), model.hidden_states(**inputs(ref, 0)))
    no_pooler = {k: v for k, v in state.items() if not k.startswith("pooler.")}
    BertModel.from_state_dict(no_pooler, config)


def test_params_float16_tensors_are_widened_exactly(state: dict[str, np.ndarray], config: BertConfig) -> None:
    half = {k: v.astype(np.float16) for k, v in state.items()}
    p = BertParams.from_state_dict(half, config)
    for name, arr in p.named_arrays():
        assert arr.dtype == np.float32, name
        assert np.array_equal(arr, half[name].astype(np.float32)), name


def _edited(state: dict[str, np.ndarray], **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(state)
    for key, value in changes.items():
        name = key.replace("__", ".")
        if value is None:
            del out[name]
        else:
            out[name] = value
    return out


W0 = "encoder.layer.0.intermediate.dense.weight"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({W0: None}, r"missing tensor\(s\) \['encoder.layer.0.intermediate.dense.weight'\]"),
        ({"encoder.layer.2.output.dense.bias": np.zeros(32, np.float32)}, r"unexpected tensor\(s\).*layer.2"),
        (
            {"cls.predictions.bias": np.zeros(100, np.float32)},
            r"unexpected tensor\(s\) \['cls.predictions.bias'\]",
        ),
        (
            {W0: np.zeros((32, 64), np.float32)},
            f"tensor '{W0}' has shape \\(32, 64\\); expected \\(64, 32\\)",
        ),
        (
            {W0: np.zeros((64, 32), np.float64)},
            f"tensor '{W0}' has dtype float64; expected float32 or float16",
        ),
        ({W0: np.zeros((64, 32), np.int32)}, f"tensor '{W0}' has dtype int32"),
        (
            {"bert.embeddings.LayerNorm.bias": np.zeros(32, np.float32)},
            "tensor 'embeddings.LayerNorm.bias' appears both with and without the 'bert.' prefix",
        ),
        ({"embeddings.position_ids": np.arange(64)[::-1].copy()}, "'embeddings.position_ids' is not 0, 1, 2"),
        ({"embeddings.position_ids": np.arange(64.0)}, "'embeddings.position_ids' is not 0, 1, 2"),
    ],
)
def test_params_refuse_a_bad_state_dict(
    state: dict[str, np.ndarray], config: BertConfig, change: dict[str, Any], match: str
) -> None:
    bad = dict(state)
    for name, value in change.items():
        if value is None:
            del bad[name]
        else:
            bad[name] = value
    with pytest.raises(WeightsError, match=f"^my.safetensors: {match}"):
        BertParams.from_state_dict(bad, config, source="my.safetensors")


def test_params_refuse_nonfinite_values_unless_asked(
    state: dict[str, np.ndarray], config: BertConfig
) -> None:
    bad = dict(state)
    w = state["encoder.layer.1.output.LayerNorm.bias"].copy()
    w[5] = np.inf
    bad["encoder.layer.1.output.LayerNorm.bias"] = w
    with pytest.raises(
        WeightsError, match=r"'encoder.layer.1.output.LayerNorm.bias' holds inf at index \(5,\)"
    ):
        BertParams.from_state_dict(bad, config)
    p = BertParams.from_state_dict(bad, config, allow_nonfinite=True)
    assert np.isinf(p.layers[1].out_ln.b[5])
    with pytest.raises(InputTypeError, match="allow_nonfinite=1 is not valid"):
        BertParams.from_state_dict(state, config, allow_nonfinite=1)  # type: ignore[arg-type]


def test_params_check_the_config(state: dict[str, np.ndarray], config: BertConfig) -> None:
    wider = BertConfig(100, 32, 2, 4, 128, 64)
    with pytest.raises(
        WeightsError, match=r"intermediate\.dense\.weight' has shape \(64, 32\); expected \(128, 32\)"
    ):
        BertParams.from_state_dict(state, wider)
    with pytest.raises(InputTypeError, match="config must be a BertConfig"):
        BertParams.from_state_dict(state, config.to_hf())  # type: ignore[arg-type]
    p = BertParams.from_state_dict(state, config)
    with pytest.raises(InputValueError, match="params have dtype float64"):
        BertModel(p.astype(np.float64), config)
    with pytest.raises(WeightsError, match=r"2 layers; config\.num_hidden_layers=3"):
        BertModel(p, BertConfig(100, 32, 3, 4, 64, 64))


# --------------------------------------------------------------------- forward against transformers
@pytest.mark.parametrize("b", [0, 1])
def test_trace_matches_transformers_layer_by_layer(model: BertModel, ref: dict[str, Any], b: int) -> None:
    trace = model.trace(**inputs(ref, b))
    assert trace.embedding.dtype == np.float32
    assert len(trace.hidden) == 2
    assert_layers_close(trace, ref, b)


def test_hidden_states_of_a_padded_batch_match_transformers(model: BertModel, ref: dict[str, Any]) -> None:
    h = model.hidden_states(**inputs(ref))
    assert h.shape == (2, 40, 32)
    assert h.dtype == np.float32
    want = ref["last_hidden_state"]
    assert_close(h, want, what="last hidden states (padding rows included)", atol=RTOL * rms(want))


def test_padding_keys_get_probability_zero(model: BertModel, ref: dict[str, Any]) -> None:
    n = int(ref["attention_mask"][1].sum())
    trace = model.trace(**inputs(ref, 1))
    for layer in range(2):
        assert np.all(trace.probs[layer][..., n:] == 0)
        assert np.all(np.isneginf(trace.scores[layer][..., n:]))
        assert np.isfinite(trace.scores[layer][..., :n]).all()
    alone = model.hidden_states(ref["input_ids"][1, :n])  # the same tokens without padding
    want = ref["last_hidden_state"][1, :n]
    assert_close(alone, want, what="unpadded sequence against the padded one", atol=RTOL * rms(want))


@pytest.mark.parametrize("n", [1, 5, 40])
def test_right_padding_leaves_the_real_rows(model: BertModel, ref: dict[str, Any], n: int) -> None:
    # positions count from 0 whatever the mask (as in transformers), so right padding with any pad ids and
    # any amount must leave the real rows as the unpadded sequence gives them (up to float32 reordering)
    rng = np.random.default_rng(n)
    ids = ref["input_ids"][0, :n]
    alone = model.hidden_states(ids)
    padded_ids = np.concatenate([ids, rng.integers(0, 100, 64 - n)])
    mask = (np.arange(64) < n).astype(np.int64)
    padded = model.hidden_states(padded_ids, attention_mask=mask)
    assert_close(padded[:n], alone, what=f"{n} real tokens padded to 64", atol=RTOL * rms(alone))
    batch = model.hidden_states(
        np.stack([padded_ids, padded_ids[::-1]]), attention_mask=np.stack([mask, mask])
    )
    assert np.array_equal(batch[0], padded)  # each sequence of a batch as it is alone


def test_token_types_default_to_zero(model: BertModel, ref: dict[str, Any]) -> None:
    ids, mask = ref["input_ids"][1], ref["attention_mask"][1]
    assert np.array_equal(
        model.hidden_states(ids, attention_mask=mask), model.hidden_states(**inputs(ref, 1))
    )
    without = model.hidden_states(ref["input_ids"][0])  # sequence 0 has a second segment: types matter
    assert np.abs(without[20:] - ref["last_hidden_state"][0, 20:]).max() > 1e-2


def test_embed_matches_sentence_transformers_pooling(model: BertModel, ref: dict[str, Any]) -> None:
    # sequence 1 of the fixture: one segment, padded in the batch transformers ran (embed runs it unpadded)
    n = int(ref["attention_mask"][1].sum())
    ids = [ref["input_ids"][1, :n].tolist(), ref["input_ids"][1, :n]]
    e = model.embed(ids)
    assert e.shape == (2, 32)
    assert e.dtype == np.float32
    want = ref["sentence_embeddings"][[1, 1]]
    assert_close(e, want, what="sentence embeddings", atol=RTOL)
    cos = (e.astype(np.float64) * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 1 - 1e-6
    assert np.array_equal(model.embed(np.stack([ids[1], ids[1]])), e)  # a 2-D array: one sequence per row
    e64 = model.embed(ids[:1], PrecisionPlan.reference())
    want64 = ref["sentence_embeddings_f64"][1:]
    assert_close(e64, want64, what="float64 sentence embeddings", atol=RTOL64, rtol=RTOL64)


def test_reference_plan_matches_transformers_in_float64(model: BertModel, ref: dict[str, Any]) -> None:
    h = model.hidden_states(**inputs(ref), plan=PrecisionPlan.reference())
    assert h.dtype == np.float64
    want = ref["last_hidden_state_f64"]
    assert_close(h, want, what="float64 last hidden states", atol=RTOL64 * rms(want), rtol=RTOL64)
    for b in range(2):
        trace = model.trace(**inputs(ref, b), plan=PrecisionPlan.reference())
        assert_layers_close(trace, {"hidden_states": ref["hidden_states_f64"]}, b, rtol=RTOL64)


# --------------------------------------------------------------------------------- precision plans
def test_float32_accumulators_at_every_site_match_transformers(model: BertModel, ref: dict[str, Any]) -> None:
    # Accumulator(fp32_mantissa(23)) rounds every partial sum to float32: the emulated path of every site
    # (the dense layers with their bias step, the score site's scale and second rounding, the value
    # product) must then agree with transformers' float32 forward like BLAS does.
    plan = PrecisionPlan.uniform(Accumulator(fp32_mantissa(23)))
    for b in range(2):
        assert_layers_close(model.trace(**inputs(ref, b), plan=plan), ref, b)


def _exact_scores(state: dict[str, np.ndarray], x: np.ndarray, layer: int, H: int) -> tuple[np.ndarray, ...]:
    """q k^T / sqrt(d) and sum |q_i k_i| / sqrt(d) per head in float64, from the layer's input ``x`` and the
    checkpoint's torch-layout weights (x W^T + b)."""
    pre = f"encoder.layer.{layer}.attention.self."
    x64 = x.astype(np.float64)
    q, k = (
        (x64 @ state[pre + n + ".weight"].astype(np.float64).T + state[pre + n + ".bias"]).reshape(
            len(x), H, -1
        )
        for n in ("query", "key")
    )
    d = q.shape[-1]
    s = np.einsum("thi,uhi->htu", q, k) / math.sqrt(d)
    mag = np.einsum("thi,uhi->htu", np.abs(q), np.abs(k)) / math.sqrt(d)
    return s, mag


@pytest.mark.parametrize("m", [4, 10])
def test_score_site_meets_the_accumulation_bound(
    model: BertModel, state: dict[str, np.ndarray], ref: dict[str, Any], m: int
) -> None:
    # Oracle: exact float64 scores from the layer input and the checkpoint weights. The score site
    # accumulates d = 8 exact products rounding every partial sum to p = m + 1 bits (error at most
    # gamma_d(u) sum|q_i k_i|, u = 2**-(m+1)), divides by sqrt(d) in float32, and rounds again to p bits
    # (u |s|); the float32 q and k add at most ~1e-6 sum|q_i k_i| (slack 1e-5).
    acc = Accumulator(fp32_mantissa(m))
    n = int(ref["attention_mask"][1].sum())
    for layer in range(2):
        trace = model.trace(**inputs(ref, 1), plan=PrecisionPlan.only("attn.score", acc, layers=[layer]))
        x = trace.embedding if layer == 0 else trace.hidden[layer - 1]
        s, mag = _exact_scores(state, x, layer, 4)
        got = trace.scores[layer][..., :n].astype(np.float64)
        s, mag = s[..., :n], mag[..., :n]
        u = 2.0 ** -(m + 1)
        gamma = 8 * u / (1 - 8 * u)
        bound = (gamma + 1e-5) * mag * (1 + u) + u * np.abs(s) + 1e-7 * np.abs(s)
        err = np.abs(got - s)
        assert (err <= bound).all(), (
            f"layer {layer}: error {err.max():.3g} beyond the bound (ratio {(err / bound).max():.3g})"
        )
        assert is_representable(trace.scores[layer][..., :n], fp32_mantissa(m)).all()
        assert err.max() > 0.1 * u * np.abs(s).max(), (
            "the scores were not rounded to the accumulator's format"
        )
        if layer == 0:  # layer 1's scores are float32 BLAS: not p-bit values in general
            assert not is_representable(trace.scores[1][..., :n], fp32_mantissa(m)).all()


def test_every_site_is_used_and_lm_head_is_not(model: BertModel, ref: dict[str, Any]) -> None:
    args = inputs(ref, 1)
    base = model.hidden_states(**args)
    acc = Accumulator(fp32_mantissa(4))
    for site in BERT_SITES:
        low = model.hidden_states(**args, plan=PrecisionPlan.only(site, acc))
        assert np.abs(low - base).max() > 1e-3, f"{site} under a 5-bit accumulator changed nothing"
        first = model.hidden_states(**args, plan=PrecisionPlan.only(site, acc, layers=[1]))
        t = model.trace(**args, plan=PrecisionPlan.only(site, acc, layers=[1]))
        assert np.array_equal(t.hidden[0], model.trace(**args).hidden[0]), f"{site}[1] changed layer 0"
        assert np.abs(first - base).max() > 1e-3
    assert np.array_equal(model.hidden_states(**args, plan=PrecisionPlan.only("lm_head", acc)), base)


def test_stochastic_rounding_follows_rng(model: BertModel, ref: dict[str, Any]) -> None:
    plan = PrecisionPlan.only("attn.value", Accumulator(fp32_mantissa(6), mode="stochastic"))
    args = inputs(ref, 0)
    a = model.hidden_states(**args, plan=plan, rng=5)
    assert np.array_equal(a, model.hidden_states(**args, plan=plan, rng=np.random.default_rng(5)))
    assert not np.array_equal(a, model.hidden_states(**args, plan=plan, rng=6))


def test_plans_the_encoder_cannot_run_are_refused(model: BertModel, ref: dict[str, Any]) -> None:
    ids = ref["input_ids"][0]
    with pytest.raises(PlanError, match="the model has 2 layers"):
        model.hidden_states(ids, PrecisionPlan.only("mlp.fc", Accumulator(fp32_mantissa(4)), layers=[2]))
    with pytest.raises(PlanError, match="plan must be a PrecisionPlan or None, got dict"):
        model.embed([[1, 2]], {})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- bad input
BadCall = Callable[[BertModel], Any]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda m: m.hidden_states([1, 100]),
            InputValueError,
            r"input_ids holds 100; expected values in 0..99",
        ),
        (lambda m: m.hidden_states([-1, 2]), InputValueError, "input_ids holds -1"),
        (
            lambda m: m.hidden_states(np.ones(65, int)),
            InputValueError,
            "65 positions.*max_position_embeddings=64",
        ),
        (lambda m: m.hidden_states([1.0, 2.0]), InputTypeError, "input_ids has dtype float64"),
        (lambda m: m.hidden_states([]), InputValueError, "input_ids is empty"),
        (lambda m: m.hidden_states(np.ones((1, 1, 2), int)), InputValueError, "expected 1-D or 2-D"),
        (lambda m: m.hidden_states([[1, 2], [3]]), ShapeError, "input_ids is a ragged nested sequence"),
        (
            lambda m: m.hidden_states([1, 2], attention_mask=[1]),
            ShapeError,
            r"attention_mask has shape \(1,\)",
        ),
        (lambda m: m.hidden_states([1, 2], attention_mask=[1, 2]), InputValueError, "attention_mask holds 2"),
        (
            lambda m: m.hidden_states([1, 2], attention_mask=[0.0, 1.0]),
            InputTypeError,
            "attention_mask has dtype",
        ),
        (
            lambda m: m.hidden_states([[1, 2], [3, 4]], attention_mask=[[1, 1], [0, 0]]),
            InputValueError,
            r"attention_mask has no real token \(sequence 1\)",
        ),
        (
            lambda m: m.hidden_states([1, 2], token_type_ids=[0, 2]),
            InputValueError,
            "token_type_ids holds 2.*type_vocab",
        ),
        (lambda m: m.trace([[1, 2]]), InputValueError, "expected 1-D"),
        (lambda m: m.embed("hello"), InputTypeError, "id_lists must be a sequence of token-id sequences"),
        (lambda m: m.embed([]), InputValueError, "id_lists is empty"),
        (lambda m: m.embed(np.array([1, 2])), InputTypeError, "id_lists must be a sequence.*got ndarray"),
        (lambda m: m.embed([[1], "ab"]), InputTypeError, r"id_lists\[1\] is a str"),
        (lambda m: m.embed([[1], []]), InputValueError, "input_ids is empty"),
        (lambda m: m.embed([[[1, 2]]]), ShapeError, r"id_lists\[0\] has shape \(1, 2\)"),
        (lambda m: m.hidden_states([1, 2], rng=-1), ValueError, "rng=-1 is not valid"),
    ],
)
def test_bad_input_is_refused_with_its_name(model: BertModel, call: BadCall, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(model)


def test_bool_attention_mask_is_accepted(model: BertModel, ref: dict[str, Any]) -> None:
    ids, mask = ref["input_ids"][1], ref["attention_mask"][1]
    assert np.array_equal(
        model.hidden_states(ids, attention_mask=mask.astype(bool)),
        model.hidden_states(ids, attention_mask=mask),
    )


# ------------------------------------------------------------------------------ live transformers
def test_live_transformers_on_fresh_inputs(model: BertModel, state: dict[str, np.ndarray]) -> None:
    torch = pytest.importorskip(
        "torch",
        reason="torch is not installed: the live comparison with transformers is skipped "
        "(the committed-fixture comparisons above still ran)",
    )
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    hf_config = transformers.BertConfig.from_json_file(str(FIXTURES / "config.json"))
    hf_config._attn_implementation = "eager"
    hf = transformers.BertModel(hf_config, add_pooling_layer=True).eval()
    hf.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    assert model.config.n_params == sum(
        p.numel() for n, p in hf.named_parameters() if not n.startswith("pooler.")
    )
    rng = np.random.default_rng(2026)
    B, T = 3, 64  # every position embedding
    ids = rng.integers(0, 100, (B, T))
    mask = (np.arange(T)[None, :] < np.array([[T], [1], [37]])).astype(np.int64)
    types = rng.integers(0, 2, (B, T))
    feed = {
        k: torch.from_numpy(v)
        for k, v in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types))
    }
    for dtype, plan, rtol in (
        (torch.float32, None, RTOL),
        (torch.float64, PrecisionPlan.reference(), RTOL64),
    ):
        with torch.no_grad():
            out = hf.to(dtype)(**feed, output_hidden_states=True, output_attentions=True)
        want = {
            "hidden_states": np.stack([h.numpy() for h in out.hidden_states]),
            "attentions": np.stack([a.numpy() for a in out.attentions]),
        }
        for b in range(B):
            trace = model.trace(ids[b], plan, attention_mask=mask[b], token_type_ids=types[b])
            assert_layers_close(trace, want, b, rtol=rtol)
    # sentence embeddings: the sentence-transformers pipeline on a padded batch of one-segment sentences
    with torch.no_grad():
        single = {"input_ids": feed["input_ids"], "attention_mask": feed["attention_mask"]}
        h = hf.to(torch.float32)(**single).last_hidden_state
        weights = feed["attention_mask"].unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / torch.clamp(weights.sum(1), min=1e-9)
        want_e = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    e = model.embed([ids[b, : mask[b].sum()] for b in range(B)])
    assert_close(e, want_e, what="sentence embeddings", atol=RTOL)
