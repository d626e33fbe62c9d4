"""Generate the GPT-2 golden fixtures in tests/fixtures/gpt2/ from Hugging Face transformers (torch, CPU).

The reference is an independent implementation: ``transformers.GPT2LMHeadModel`` built offline from a
``GPT2Config`` (no download), eager attention, float32, eval mode, with every parameter randomised
(``lampref.gpt2.weights.random_params``: LayerNorm scales around 1 and shifts around 0 with visible spread,
nonzero biases and position embeddings), so that a bug in a bias, a LayerNorm shift or the GELU variant
shows. The weights are copied into torch tensor by tensor; lampref's own writer is not involved.

Fixtures written:

``small.npz``
    A 2-layer model (width 64, 4 heads, vocabulary 512, context 128): inputs, full logits, per-layer
    intermediates (embedding, attention probabilities, residual after attention, block outputs, final
    hidden state), the logits of the same weights with the erf GELU, and a greedy continuation.
``small_hf/``
    The same model as ``save_pretrained`` writes it (config.json + model.safetensors), read by lampref's
    loader in the tests.
``gpt2_124m.npz``
    The 124M shape on 64 tokens. Its weights are not stored: the test regenerates them from the seed with
    ``random_params`` (the manifest records a sha256 of the generated weights, so a change in NumPy's random
    stream is reported as such). Stored: the inputs, logits on a fixed subset of vocabulary columns, the
    argmax and log-sum-exp of every full logits row, per-layer summaries of the block outputs (first 16
    channels, row norms) and a greedy continuation.
``manifest.json``
    As ``scripts/_fixtures.py`` describes (generator, the sha256 of this script and that module, versions,
    the sha256, dtype and shape of every stored array and file), with the seeds and configurations. The test
    fails when the manifest and the fixtures, or the scripts, disagree.

Run from the repository root: ``python scripts/make_gpt2_fixtures.py`` (needs ``torch`` and
``transformers``; about a minute on two cores).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _fixtures import captured_outputs, new_manifest, pin_files, save_arrays, write_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lampref.gpt2.config import GPT2Config  # noqa: E402
from lampref.gpt2.weights import RANDOM_PARAMS_VERSION, GPT2Params, random_params  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "gpt2"

SMALL = {
    "config": {"n_layer": 2, "n_head": 4, "n_embd": 64, "n_positions": 128, "vocab_size": 512},
    "seed": 20240326,
    "std": 0.2,
    "ln_spread": 0.2,
    "input_seed": 1,
    "batch": 2,
    "T": 48,
    "greedy_prompt": 16,
    "greedy_new": 12,
}
BIG = {
    "config": {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50257},
    "seed": 124,
    "std": 0.02,
    "ln_spread": 0.1,
    "input_seed": 2,
    "T": 64,
    "columns": 256,
    "channels": 16,
    "greedy_prompt": 16,
    "greedy_new": 4,
}
MIN_MARGIN = 1e-3  # greedy steps must win by this much, or float32 reorderings could flip them


def params_sha256(params: GPT2Params) -> str:
    """sha256 of every parameter's little-endian float32 bytes, in Hugging Face checkpoint order."""
    h = hashlib.sha256()
    for _, arr in params.named_arrays():
        h.update(np.ascontiguousarray(arr, dtype="<f4").tobytes())
    return h.hexdigest()


def torch_model(params: GPT2Params, config: GPT2Config) -> Any:
    """A transformers GPT2LMHeadModel (eager attention, eval mode) holding exactly ``params``."""
    import torch
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2LMHeadModel

    hf = HFConfig(
        vocab_size=config.vocab_size,
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        layer_norm_epsilon=config.layer_norm_epsilon,
        activation_function="gelu_new" if config.gelu == "tanh" else "gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        bos_token_id=50256 if config.vocab_size > 50256 else None,
        eos_token_id=50256 if config.vocab_size > 50256 else None,
    )
    hf._attn_implementation = "eager"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(hf).eval()
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in params.state_dict().items()}
    missing, unexpected = model.transformer.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    assert not missing, missing
    assert not unexpected, unexpected
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "head not tied"
    return model


def run_torch(model: Any, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """Logits and per-layer intermediates of a batch, from hooks and output_hidden_states/attentions."""
    import torch

    blocks = model.transformer.h
    with (
        captured_outputs(blocks) as block_out,
        captured_outputs([blk.attn for blk in blocks]) as attn_out,
        torch.no_grad(),
    ):
        out = model(torch.from_numpy(tokens), output_hidden_states=True, output_attentions=True)
        # hidden_states[i] is the input of block i (the last entry is after ln_f)
        mid = [out.hidden_states[i] + attn_out[i] for i in range(len(blocks))]
    return {
        "logits": out.logits.numpy(),
        "embedding": out.hidden_states[0].numpy(),
        "final": out.hidden_states[-1].numpy(),
        "probs": np.stack([a.numpy() for a in out.attentions], axis=1),  # [B, L, H, T, T]
        "attn_residual": np.stack([m.numpy() for m in mid], axis=1),  # [B, L, T, C]
        "hidden": np.stack([b.numpy() for b in block_out], axis=1),  # [B, L, T, C]
    }


def greedy(model: Any, prompt: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy continuation by full recomputation; returns the tokens and each step's top-2 margin."""
    import torch

    seq = list(prompt)
    margins = []
    for _ in range(n):
        with torch.no_grad():
            z = model(torch.tensor([seq])).logits[0, -1].numpy().astype(np.float64)
        top = np.sort(z)[-2:]
        margins.append(top[1] - top[0])
        seq.append(int(np.argmax(z)))
    return np.array(seq[len(prompt) :], dtype=np.int64), np.array(margins)


def make_small(manifest: dict[str, Any]) -> None:
    cfg = GPT2Config(**SMALL["config"])
    params = random_params(cfg, rng=SMALL["seed"], std=SMALL["std"], ln_spread=SMALL["ln_spread"])
    model = torch_model(params, cfg)
    rng = np.random.default_rng(SMALL["input_seed"])
    tokens = rng.integers(0, cfg.vocab_size, (SMALL["batch"], SMALL["T"]), dtype=np.int64)
    res = run_torch(model, tokens)
    erf_cfg = GPT2Config(**SMALL["config"], gelu="erf")
    logits_erf = run_torch(torch_model(params, erf_cfg), tokens)["logits"]
    prompt = tokens[0, : SMALL["greedy_prompt"]]
    new, margins = greedy(model, prompt, SMALL["greedy_new"])
    assert margins.min() > MIN_MARGIN, f"greedy margins too small: {margins}"
    arrays = {
        "tokens": tokens,
        **res,
        "logits_erf": logits_erf,
        "greedy_prompt": prompt,
        "greedy_tokens": new,
        "greedy_margins": margins,
    }
    save_arrays(manifest, OUT, "small.npz", arrays)
    hf_dir = OUT / "small_hf"
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    model.save_pretrained(hf_dir, safe_serialization=True)
    for extra in hf_dir.iterdir():
        if extra.name not in ("config.json", "model.safetensors"):
            extra.unlink()  # generation_config.json: nothing lampref reads
    pin_files(manifest, OUT, [f"small_hf/{p.name}" for p in sorted(hf_dir.iterdir())])
    manifest["models"]["small"] = {**SMALL, "params_sha256": params_sha256(params)}


def make_big(manifest: dict[str, Any]) -> None:
    cfg = GPT2Config(**BIG["config"])
    params = random_params(cfg, rng=BIG["seed"], std=BIG["std"], ln_spread=BIG["ln_spread"])
    model = torch_model(params, cfg)
    rng = np.random.default_rng(BIG["input_seed"])
    tokens = rng.integers(0, cfg.vocab_size, (1, BIG["T"]), dtype=np.int64)
    columns = np.sort(rng.choice(cfg.vocab_size, BIG["columns"], replace=False)).astype(np.int64)
    res = run_torch(model, tokens)
    z = res["logits"][0]  # [T, V]
    z64 = z.astype(np.float64)
    m = z64.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(z64 - m).sum(axis=-1, keepdims=True)))[:, 0]
    C = BIG["channels"]
    hidden = res["hidden"][0]  # [L, T, C]
    prompt = tokens[0, : BIG["greedy_prompt"]]
    new, margins = greedy(model, prompt, BIG["greedy_new"])
    assert margins.min() > MIN_MARGIN, f"greedy margins too small: {margins}"
    arrays = {
        "tokens": tokens[0],
        "columns": columns,
        "logits_columns": z[:, columns],
        "argmax": z.argmax(axis=-1).astype(np.int64),
        "logsumexp": lse,
        "hidden_channels": hidden[:, :, :C],
        "hidden_norms": np.linalg.norm(hidden.astype(np.float64), axis=-1),
        "final_channels": res["final"][0][:, :C],
        "greedy_prompt": prompt,
        "greedy_tokens": new,
        "greedy_margins": margins,
    }
    save_arrays(manifest, OUT, "gpt2_124m.npz", arrays)
    manifest["models"]["gpt2_124m"] = {**BIG, "params_sha256": params_sha256(params)}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(
        __file__,
        reference="transformers.GPT2LMHeadModel, eager attention, float32, eval mode, torch CPU",
        random_params_version=RANDOM_PARAMS_VERSION,
        min_greedy_margin=MIN_MARGIN,
        models={},
    )
    make_small(manifest)
    make_big(manifest)
    write_manifest(manifest, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
