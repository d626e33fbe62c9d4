"""Train lampref's embedded default model: a small GPT-2 with the real GPT-2 vocabulary.

Development tool, not part of the library: it needs torch and transformers (``pip install -e '.[dev]'
torch transformers``). The library only reads the result (``lampref.gpt2.default_model()``).

Data: the training text written by ``scripts/build_corpora.py`` into ``build/train/<domain>.txt``; the
held-out evaluation corpora are the bundled ``lampref/data/corpora/<domain>.txt`` (never trained on).

Output (``--out``, default ``lampref/gpt2/data/default``): ``config.json`` and ``model.safetensors`` with
float16 storage (widened exactly to float32 by the loader), and ``MODEL_CARD.md`` recording the data,
hyperparameters, training time, and held-out loss per domain next to a unigram baseline.

Usage::

    python scripts/build_corpora.py
    python scripts/train_default_model.py --minutes 60
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("prose", "code", "abstracts")


def tokenize(path: Path, cache: Path) -> np.ndarray:
    """GPT-2 token ids of a text file (cached as .npy next to the build files)."""
    from lampref.gpt2 import Tokenizer

    if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
        return np.load(cache)
    ids = np.asarray(
        Tokenizer().encode(path.read_text(encoding="utf-8"), disallowed_special=()), dtype=np.int32
    )
    np.save(cache, ids)
    return ids


def unigram_loss(train: np.ndarray, held_out: np.ndarray, vocab: int) -> float:
    """Cross-entropy (nats/token) of an add-one-smoothed unigram model fitted on the training tokens."""
    counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[held_out].mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-dir", type=Path, default=ROOT / "build" / "train")
    parser.add_argument("--eval-dir", type=Path, default=ROOT / "lampref" / "data" / "corpora")
    parser.add_argument("--out", type=Path, default=ROOT / "lampref" / "gpt2" / "data" / "default")
    parser.add_argument("--n-layer", type=int, default=6)
    parser.add_argument("--n-head", type=int, default=3)
    parser.add_argument("--n-embd", type=int, default=192)
    parser.add_argument("--n-positions", type=int, default=512)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=10**9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument(
        "--init-from",
        type=Path,
        help="continue training from an exported model directory (its training.json is carried over)",
    )
    parser.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up steps")
    args = parser.parse_args()

    import torch
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2LMHeadModel

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cache = args.train_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    train = {d: tokenize(args.train_dir / f"{d}.txt", cache / f"{d}.npy") for d in DOMAINS}
    held = {d: tokenize(args.eval_dir / f"{d}.txt", cache / f"eval_{d}.npy") for d in DOMAINS}
    sizes = {d: int(v.size) for d, v in train.items()}
    weights = np.array([sizes[d] for d in DOMAINS], dtype=np.float64)
    weights /= weights.sum()

    hf = HFConfig(
        vocab_size=50257,
        n_positions=args.n_positions,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    previous: dict = {}
    if args.init_from is not None:
        model = GPT2LMHeadModel.from_pretrained(args.init_from, torch_dtype=torch.float32).to(args.device)
        hf = model.config
        meta = args.init_from / "training.json"
        previous = json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}
    else:
        model = GPT2LMHeadModel(hf).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    budget = args.minutes * 60.0
    warmup = args.warmup

    def batch() -> torch.Tensor:
        rows = []
        for d in rng.choice(len(DOMAINS), size=args.batch, p=weights):
            ids = train[DOMAINS[d]]
            s = int(rng.integers(0, ids.size - args.seq_len - 1))
            rows.append(ids[s : s + args.seq_len + 1])
        return torch.as_tensor(np.stack(rows).astype(np.int64), device=args.device)

    def evaluate(max_windows: int = 64) -> dict[str, float]:
        model.eval()
        out = {}
        with torch.no_grad():
            for d in DOMAINS:
                ids = held[d]
                n = min(max_windows, ids.size // (args.seq_len + 1))
                x = torch.as_tensor(
                    ids[: n * (args.seq_len + 1)].reshape(n, args.seq_len + 1).astype(np.int64),
                    device=args.device,
                )
                losses = [model(x[i : i + 8], labels=x[i : i + 8]).loss.item() for i in range(0, n, 8)]
                out[d] = float(np.mean(losses))
        model.train()
        return out

    start = time.time()
    step = 0
    log = []
    model.train()
    while step < args.max_steps:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        frac = min(elapsed / budget, 1.0)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = batch()
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0:
            log.append((step, round(time.time() - start, 1), float(loss.item())))
            print(f"step {step} {log[-1][1]:.0f}s loss {loss.item():.3f} lr {lr:.2e}", flush=True)
    train_seconds = time.time() - start
    stages = list(previous.get("stages", []))
    stages.append(
        {
            "steps": step,
            "tokens_seen": step * args.batch * args.seq_len,
            "training_seconds": round(train_seconds, 1),
            "lr": args.lr,
            "warmup": warmup,
            "init_from": "previous stage" if args.init_from is not None else "random",
        }
    )
    total_steps = sum(st["steps"] for st in stages)
    total_tokens = sum(st["tokens_seen"] for st in stages)
    total_seconds = sum(st["training_seconds"] for st in stages)
    held_loss = evaluate()
    unigram = {d: unigram_loss(np.concatenate(list(train.values())), held[d], 50257) for d in DOMAINS}
    print("held-out loss", held_loss, "unigram", unigram)

    from lampref.gpt2 import load, save

    with tempfile.TemporaryDirectory() as tmp:
        model.to("cpu").save_pretrained(tmp, safe_serialization=True)
        params, config = load(tmp)
    args.out.mkdir(parents=True, exist_ok=True)
    save(params, config, args.out, dtype="F16")
    card = {
        "architecture": "GPT-2 (pre-norm, tied embeddings, gelu_new), real GPT-2 vocabulary (50257)",
        "config": config.to_hf(),
        "parameters": n_params,
        "storage": "float16 safetensors, widened exactly to float32 by lampref",
        "training_tokens_per_domain": sizes,
        "tokens_seen": total_tokens,
        "hyperparameters": {k: getattr(args, k) for k in ("seq_len", "batch", "lr", "weight_decay", "seed")},
        "steps": total_steps,
        "training_seconds": round(total_seconds, 1),
        "stages": stages,
        "device": f"{args.device} ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "held_out_loss_nats": held_loss,
        "unigram_baseline_nats": unigram,
        "loss_log": log[-20:],
    }
    (args.out / "training.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# lampref's default model",
        "",
        "A GPT-2-architecture model with the real GPT-2 vocabulary:",
        f"{config.n_layer} layers, {config.n_head} heads, width {config.n_embd},",
        f"context {config.n_positions},",
        f"{n_params / 1e6:.1f} M parameters, stored in float16. Trained from scratch by",
        "`scripts/train_default_model.py` on the training split of the three corpora described in",
        "`lampref/data/corpora/README.md` (provenance and licences there); the bundled evaluation corpora",
        "are held out.",
        "",
        f"- tokens seen: {total_tokens:,} in {total_steps} steps ({len(stages)} stage(s), each a cosine",
        "  learning-rate schedule; a later stage continues from the weights of the one before)",
        f"- training time: {total_seconds / 60:.1f} min on {card['device']}",
        f"- hyperparameters: {card['hyperparameters']}",
        "",
        "| domain | held-out loss (nats/token) | unigram baseline |",
        "|---|---|---|",
        *(f"| {d} | {held_loss[d]:.3f} | {unigram[d]:.3f} |" for d in DOMAINS),
        "",
        f"Limitations: a small model trained for {total_seconds / 60:.0f} minutes on {card['device']}",
        f"({total_tokens / sum(sizes.values()):.2f} passes over the training text); it is far from converged",
        "and much weaker than GPT-2, and its attention is less peaked than a fully trained model's. The",
        "abstracts domain is all biomedical, and the held-out articles differ in topic from the training",
        "ones, hence its high loss. `training.json` beside this card has the full record (configuration,",
        "data sizes, training stages, loss log).",
        "",
    ]
    (args.out / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


if __name__ == "__main__":
    main()
