"""Generate the BERT golden fixtures in tests/fixtures/bert/random/ from Hugging Face transformers (torch,
CPU).

The reference is an independent implementation: ``transformers.BertModel`` built offline from a
``BertConfig`` (no download), eager attention, eval mode, with EVERY parameter drawn at random (LayerNorm
scales around 1 and shifts around 0 with visible spread, nonzero biases, position and token type
embeddings, the pooler too), so that a bug hidden by a default initialisation (a LayerNorm bias, a
transposed weight, a token type embedding) shows. The draws are NumPy float32 arrays copied into torch;
lampref is used only to write the safetensors file.

Files written:

``model.safetensors``
    The parameters under Hugging Face ``BertModel`` names (no prefix, pooler included), float32.
``config.json``
    The configuration as transformers writes it (``BertConfig.to_json_string``).
``outputs.npz``
    Inputs (a batch of two sequences: one of full length with two token types, one padded with an attention
    mask) and transformers' outputs on them: in float32 the hidden states after the embeddings and after
    every layer, the hidden state after each layer's attention (``LN(x + attn(x))``, from a hook), the
    attention probabilities and the mean-pooled, L2-normalised sentence embeddings (the sentence-transformers
    pipeline); in float64 (``model.double()``) the hidden states and sentence embeddings again.
``manifest.json``
    As ``scripts/_fixtures.py`` describes (generator, the sha256 of this script and that module, versions,
    the sha256, dtype and shape of every stored array and file), with the seeds and the configuration. The
    tests fail when the manifest and the fixtures, or the scripts, disagree.

Run from the repository root: ``python scripts/make_bert_fixtures.py`` (needs ``torch`` and
``transformers``; a few seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from _fixtures import (
    captured_outputs,
    new_manifest,
    pin_files,
    save_arrays,
    sentence_embeddings,
    write_manifest,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lampref.gpt2.safetensors import save_file  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "bert" / "random"

CONFIG: dict[str, Any] = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
}
PARAMS: dict[str, Any] = {
    "seed": 20260101,
    "weight_std": 0.25,  # linear weights ~ N(0, std^2): scores q.k/sqrt(d) of a few units, peaked attention
    "bias_std": 0.2,
    "ln_weight": "1 + 0.3 N(0, 1)",
    "ln_bias_std": 0.3,
    "word_std": 1.0,
    "position_std": 0.5,
    "token_type_std": 0.5,
}
INPUTS: dict[str, Any] = {"seed": 7, "T": 40, "padded_length": 23, "pad_id": 0, "second_segment_from": 20}


def draw(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One random parameter, by its Hugging Face name (every tensor drawn, none left at its default)."""
    n = rng.standard_normal(shape)
    if "LayerNorm" in name:
        v = 1.0 + 0.3 * n if name.endswith("weight") else PARAMS["ln_bias_std"] * n
    elif "word_embeddings" in name:
        v = PARAMS["word_std"] * n
    elif "position_embeddings" in name:
        v = PARAMS["position_std"] * n
    elif "token_type_embeddings" in name:
        v = PARAMS["token_type_std"] * n
    elif name.endswith("bias"):
        v = PARAMS["bias_std"] * n
    else:
        v = PARAMS["weight_std"] * n
    return np.asarray(v, dtype=np.float32)


def build_model() -> tuple[Any, dict[str, np.ndarray], Any]:
    """A transformers BertModel (eager attention, eval mode) with every parameter random."""
    import torch
    from transformers import BertConfig, BertModel

    hf = BertConfig(**CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf._attn_implementation = "eager"
    torch.manual_seed(0)
    model = BertModel(hf, add_pooling_layer=True).eval()
    rng = np.random.default_rng(PARAMS["seed"])
    state = {k: draw(k, tuple(v.shape), rng) for k, v in model.state_dict().items()}
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in state.items()}, strict=True
    )
    assert not missing, missing
    assert not unexpected, unexpected
    return model, state, hf


def make_inputs() -> dict[str, np.ndarray]:
    """Two sequences of T tokens: the first real throughout with two segments, the second padded."""
    rng = np.random.default_rng(INPUTS["seed"])
    T, n = INPUTS["T"], INPUTS["padded_length"]
    ids = rng.integers(1, CONFIG["vocab_size"], (2, T), dtype=np.int64)
    ids[1, n:] = INPUTS["pad_id"]
    mask = np.ones((2, T), dtype=np.int64)
    mask[1, n:] = 0
    types = np.zeros((2, T), dtype=np.int64)
    types[0, INPUTS["second_segment_from"] :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def run(model: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hidden states, hidden states after each layer's attention, probabilities and sentence embeddings."""
    import torch

    feed = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with captured_outputs([layer.attention for layer in model.encoder.layer]) as after_attn, torch.no_grad():
        out = model(**feed, output_hidden_states=True, output_attentions=True)
        sentence = sentence_embeddings(out.last_hidden_state, feed["attention_mask"])  # [B, C]
    return {
        "hidden_states": np.stack([h.numpy() for h in out.hidden_states]),  # [L + 1, B, T, C]
        "attn_residual": np.stack([a.numpy() for a in after_attn]),  # [L, B, T, C]
        "attentions": np.stack([a.numpy() for a in out.attentions]),  # [L, B, H, T, T]
        "last_hidden_state": out.last_hidden_state.numpy(),  # [B, T, C]
        "sentence_embeddings": sentence.numpy(),  # [B, C]
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model, state, hf = build_model()
    inputs = make_inputs()
    f32 = run(model, inputs)
    f64 = run(model.double(), inputs)
    arrays = {
        **inputs,
        **f32,
        "hidden_states_f64": f64["hidden_states"],
        "last_hidden_state_f64": f64["last_hidden_state"],
        "sentence_embeddings_f64": f64["sentence_embeddings"],
    }
    manifest = new_manifest(
        __file__,
        reference="transformers.BertModel, eager attention, eval mode, torch CPU; float32, then float64",
        config=CONFIG,
        params=PARAMS,
        inputs=INPUTS,
        tensors={k: list(v.shape) for k, v in state.items()},
    )
    save_file(state, OUT / "model.safetensors")
    (OUT / "config.json").write_text(hf.to_json_string(use_diff=False), encoding="utf-8")
    pin_files(manifest, OUT, ["config.json", "model.safetensors"])
    save_arrays(manifest, OUT, "outputs.npz", arrays)
    write_manifest(manifest, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
