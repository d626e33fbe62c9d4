"""LAMP on bidirectional attention: :class:`lampref.lamp.LampConfig` with a visible-key mask, and in the BERT
encoder (random small model and the real all-MiniLM-L6-v2 weights).

Oracles: :func:`lampref.analysis.lamp_select` run on the attention probabilities that :meth:`BertModel.trace`
reports (the selection LAMP must have made, recounted from the model's own low-precision probabilities);
numpy's softmax over the visible keys, written out here; the uniform low-precision plan (LAMP at tau = 2
recomputes nothing, so it must give the same bits); and the float32 model (LAMP recomputing everything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lampref import Accumulator, fp32_mantissa
from lampref.analysis import lamp_select
from lampref.bert import BertModel
from lampref.bert.config import BertConfig
from lampref.bert.model import hf_shapes
from lampref.errors import InputTypeError, InputValueError, ShapeError
from lampref.gpt2.plan import PrecisionPlan
from lampref.lamp import LampConfig, recompute_fraction
from lampref.nn import causal_mask

LOW = Accumulator(fp32_mantissa(3))


def _qk(seed: int, H: int, n: int, N: int, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.normal(scale=2.0, size=(H, n, d)).astype(np.float32)
    k = rng.normal(scale=2.0, size=(H, N, d)).astype(np.float32)
    return q, k


@st.composite
def visible_masks(draw: st.DrawFn) -> np.ndarray:
    """A ``[n, N]`` visible-key mask in which every row sees a key (padding-like or arbitrary)."""
    n, N = draw(st.integers(1, 6)), draw(st.integers(1, 9))
    bits = draw(st.lists(st.booleans(), min_size=n * N, max_size=n * N))
    mask = np.array(bits, dtype=bool).reshape(n, N)
    for i in np.flatnonzero(~mask.any(axis=1)):
        mask[i, draw(st.integers(0, N - 1))] = True
    return mask


# ---------------------------------------------------------------------------------- LampConfig alone
@settings(max_examples=60, deadline=None)
@given(visible=visible_masks(), tau=st.sampled_from([2.0, 1.8, 1.4, 1.1, 1.02]), seed=st.integers(0, 99),
       baseline=st.sampled_from([None, "random", "random_authors"]))  # fmt: skip
@example(visible=np.ones((3, 5), bool), tau=1.1, seed=0, baseline=None)
@example(visible=np.eye(4, dtype=bool), tau=1.02, seed=1, baseline="random")  # one key per row
def test_bidirectional_rows_stay_within_the_visible_keys(
    visible: np.ndarray, tau: float, seed: int, baseline: str | None
) -> None:
    n, N = visible.shape
    q, k = _qk(seed, 2, n, N)
    lamp = LampConfig(LOW, tau, baseline=baseline, seed=seed)
    low, probs_low, sel = lamp.select(q, k, start=0, visible=visible)
    assert not (sel & ~visible).any()  # nothing outside the visible keys is recomputed
    # the low-precision softmax over the visible keys, written out in float64 from the scores
    z = np.where(visible, low.astype(np.float64), -np.inf)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(probs_low, e / e.sum(axis=-1, keepdims=True), rtol=1e-6, atol=1e-7)
    want = lamp_select(probs_low, tau, valid=np.broadcast_to(visible, sel.shape))
    if baseline == "random_authors":  # draws over the whole row: those on invisible keys are dropped
        assert (sel.sum(axis=-1) <= want.sum(axis=-1)).all()
    else:  # LAMP's count per row, for LAMP and its random baseline
        assert np.array_equal(sel.sum(axis=-1), want.sum(axis=-1))
    if baseline is None:
        assert np.array_equal(sel, want)
    ap = lamp.attention_probs(q, k, start=0, layer=0, rng=None, visible=visible)
    assert not ap.probs[:, ~visible].any()  # invisible keys get probability exactly 0
    np.testing.assert_allclose(ap.probs.sum(axis=-1), 1.0, rtol=1e-6)
    assert ap.stats["valid"].tolist() == [int(visible.sum())] * 2
    assert ap.stats["selected"].tolist() == sel.sum(axis=(1, 2)).tolist()


@pytest.mark.parametrize("baseline", [None, "random", "random_authors"])
def test_an_explicit_causal_mask_is_the_default(baseline: str | None) -> None:
    q, k = _qk(3, 3, 5, 16)
    lamp = LampConfig(LOW, 1.2, baseline=baseline, seed=4)
    a = lamp.attention_probs(q, k, start=7, layer=2, rng=None)
    b = lamp.attention_probs(q, k, start=7, layer=2, rng=None, visible=causal_mask(7, 5, 16))
    assert np.array_equal(a.scores, b.scores)
    assert np.array_equal(a.probs, b.probs)
    assert all(np.array_equal(a.stats[name], b.stats[name]) for name in a.stats)


def test_a_bad_visible_mask_is_refused_naming_it() -> None:
    q, k = _qk(0, 1, 2, 3)
    lamp = LampConfig(LOW, 1.5)
    with pytest.raises(ShapeError, match=r"visible has shape \(3, 3\); expected \(2, 3\)"):
        lamp.attention_probs(q, k, start=0, layer=0, rng=None, visible=np.ones((3, 3), bool))
    with pytest.raises(InputTypeError, match="visible has dtype int64; expected bool"):
        lamp.attention_probs(q, k, start=0, layer=0, rng=None, visible=np.ones((2, 3), np.int64))
    with pytest.raises(InputValueError, match="visible row 1 sees no key"):
        lamp.attention_probs(q, k, start=0, layer=0, rng=None, visible=np.array([[1, 0, 0], [0, 0, 0]], bool))


# ------------------------------------------------------------------------------- the encoder, random
@pytest.fixture(scope="module")
def small() -> BertModel:
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    rng = np.random.default_rng(11)
    state = {k: rng.normal(scale=0.5, size=s).astype(np.float32) for k, s in hf_shapes(cfg).items()}
    return BertModel.from_state_dict(state, cfg)


def _layer_plan(lamp: LampConfig, layer: int, n_layers: int) -> PrecisionPlan:
    """LAMP in the layers before ``layer``, uniform low precision at ``layer`` (and float32 after)."""
    plan = PrecisionPlan.only("attn.score", lamp.score, layers=[layer])
    return plan.set("attn.score", lamp, layers=list(range(layer))) if layer else plan


def _check_stats_against_trace(model: BertModel, ids: Any, mask: Any, lamp: LampConfig) -> None:
    """Each layer's LAMP statistics equal lamp_select run on the low-precision probabilities that trace
    reports for that layer (same inputs: the layers before it under LAMP)."""
    L = model.config.num_hidden_layers
    tr = model.trace(ids, PrecisionPlan.only("attn.score", lamp), attention_mask=mask)
    for layer in range(L):
        low = model.trace(ids, _layer_plan(lamp, layer, L), attention_mask=mask)
        probs = low.probs[layer]  # [H, T, T], the low-precision probabilities LAMP selects from
        valid = np.broadcast_to(low.attention_mask[None, None, :], probs.shape)
        want = lamp_select(probs, lamp.tau, valid=valid)
        assert tr.stats[layer]["selected"].tolist() == want.sum(axis=(1, 2)).tolist(), layer
        assert tr.stats[layer]["valid"].tolist() == valid.sum(axis=(1, 2)).tolist(), layer


@pytest.mark.parametrize("tau", [1.6, 1.1])
def test_encoder_lamp_statistics_equal_lamp_select_on_the_traced_probabilities(
    small: BertModel, tau: float
) -> None:
    ids = np.arange(3, 23) % 40
    mask = np.r_[np.ones(16, int), np.zeros(4, int)]  # 4 padding positions
    _check_stats_against_trace(small, ids, mask, LampConfig(LOW, tau))


def test_encoder_lamp_at_tau_2_is_uniform_low_precision_and_everything_recomputed_is_float32(
    small: BertModel,
) -> None:
    ids = np.arange(5, 29) % 40
    uniform = small.hidden_states(ids, PrecisionPlan.only("attn.score", LOW))
    nothing, stats = small.hidden_states_and_stats(
        ids, PrecisionPlan.only("attn.score", LampConfig(LOW, 2.0))
    )
    assert np.array_equal(nothing, uniform)
    assert recompute_fraction(stats).total == 0.0
    f32 = small.hidden_states(ids)
    every, stats = small.hidden_states_and_stats(ids, PrecisionPlan.only("attn.score", LampConfig(LOW, 1e-9)))
    assert recompute_fraction(stats).total == 1.0
    np.testing.assert_allclose(every, f32, rtol=1e-5, atol=1e-5 * float(np.abs(f32).max()))
    assert np.abs(uniform - f32).max() > 100 * np.abs(every - f32).max()  # 4-bit scores are far off


def test_encoder_padding_keys_are_never_recomputed(small: BertModel) -> None:
    ids = np.arange(1, 13) % 40
    mask = np.r_[np.ones(9, int), np.zeros(3, int)]
    lamp = LampConfig(LOW, 1.02, baseline="random", seed=3)
    tr = small.trace(ids, PrecisionPlan.only("attn.score", lamp), attention_mask=mask)
    H = small.config.num_attention_heads
    for probs, stats in zip(tr.probs, tr.stats, strict=True):
        assert not probs[:, :, 9:].any()
        assert stats["valid"].tolist() == [12 * 9] * H  # every row (padding rows too) x the real keys
        assert (stats["selected"] <= stats["valid"]).all()
    # under LAMP (whose selection, unlike the random draws, depends on the real keys only) the real rows of
    # a right-padded sequence are those of the sequence alone, up to float32 summation order
    plan = PrecisionPlan.only("attn.score", LampConfig(LOW, 1.2))
    padded = small.hidden_states(ids, plan, attention_mask=mask)[:9]
    np.testing.assert_allclose(padded, small.hidden_states(ids[:9], plan), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------- the encoder, MiniLM
@pytest.fixture(scope="module")
def minilm(minilm_wheel: Path) -> BertModel:
    return BertModel.load(minilm_wheel)


def test_minilm_lamp_statistics_equal_lamp_select_on_the_traced_probabilities(minilm: BertModel) -> None:
    assert minilm.tokenizer is not None
    text = "Rounding errors in the attention scores are amplified by the softmax when a row is peaked. " * 2
    ids = minilm.tokenizer.encode(text)
    _check_stats_against_trace(minilm, ids, None, LampConfig(Accumulator(fp32_mantissa(4)), 1.4))


def test_minilm_lamp_recomputes_few_scores_and_cuts_the_error(minilm: BertModel) -> None:
    """On real trained attention LAMP's selection matters: recomputing about 11% of the scores (tau = 1.4)
    removes more than half the error of 4-bit scores, while as many random recomputations barely help."""
    assert minilm.tokenizer is not None
    ids = minilm.tokenizer.encode("The encoder reads the whole sentence at once, in both directions. " * 3)
    low = Accumulator(fp32_mantissa(4))
    f32 = minilm.hidden_states(ids)
    uniform = minilm.hidden_states(ids, PrecisionPlan.only("attn.score", low))
    lamp, stats = minilm.hidden_states_and_stats(ids, PrecisionPlan.only("attn.score", LampConfig(low, 1.4)))
    rand = minilm.hidden_states(
        ids, PrecisionPlan.only("attn.score", LampConfig(low, 1.4, baseline="random"))
    )
    frac = recompute_fraction(stats).total
    err_uniform, err_lamp, err_random = (
        float(np.linalg.norm(h - f32) / np.linalg.norm(f32)) for h in (uniform, lamp, rand)
    )
    assert 0.0 < frac < 0.25
    assert err_lamp < err_uniform / 2
    assert err_random > 2 * err_lamp
