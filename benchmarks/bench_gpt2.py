"""Benchmarks of the NumPy GPT-2 forward pass (124M shape, random weights).

Measures, and prints as a table:

1. the float32 forward pass on 128 and 1024 tokens, against transformers' GPT2LMHeadModel on torch CPU
   (eager attention, same threads) when torch and transformers are importable;
2. the score site under the LAMP authors' strict kernel model (``Accumulator.authors(10)``: fp32 staging,
   rounding to 10 mantissa bits after every product), as a ratio to the float32 forward;
3. the peak resident memory of loading an llm.c float32 checkpoint of the 124M model (written to a temporary
   file), in a fresh subprocess, against the file size: right after ``load`` (memory-mapped, nothing read)
   and after a forward pass on 64 tokens (every weight page touched).

Usage: ``python benchmarks/bench_gpt2.py [--tokens 128 1024] [--repeat 3] [--skip-score-1024]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import best_time  # noqa: E402

from lampref import Accumulator  # noqa: E402
from lampref.gpt2.config import GPT2Config  # noqa: E402
from lampref.gpt2.model import GPT2  # noqa: E402
from lampref.gpt2.plan import PrecisionPlan  # noqa: E402
from lampref.gpt2.weights import random_params, save_llmc  # noqa: E402

_MEMORY_PROBE = """
import resource, sys, numpy as np
from lampref.gpt2.model import GPT2
def peak_mib():
    # VmHWM: peak resident set of this process image (ru_maxrss would carry the parent's peak across exec)
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak_mib()
m = GPT2.load(sys.argv[1])
after_load = peak_mib()
m.logits(np.arange(64))
print(base, after_load, peak_mib())
"""


def torch_forward(params, cfg):  # pragma: no cover - optional
    try:
        import torch
        from transformers import GPT2Config as HFConfig
        from transformers import GPT2LMHeadModel
    except ImportError:
        return None
    hf = HFConfig(
        vocab_size=cfg.vocab_size, n_positions=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
        n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    hf._attn_implementation = "eager"
    model = GPT2LMHeadModel(hf).eval()
    state = {k: torch.from_numpy(np.array(v)) for k, v in params.state_dict().items()}
    model.transformer.load_state_dict(state, strict=False)

    def run(tokens: np.ndarray) -> None:
        with torch.no_grad():
            model(torch.from_numpy(tokens[None]))

    return run, torch.get_num_threads(), torch.__version__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[128, 1024])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-score-1024", action="store_true", help="time the emulated score site on 128 only")
    args = ap.parse_args()

    cfg = GPT2Config.gpt2_124m()
    params = random_params(cfg, rng=0)
    model = GPT2(params, cfg)
    rng = np.random.default_rng(0)
    torch_run = torch_forward(params, cfg)
    print(f"machine: {os.cpu_count()} CPUs, numpy {np.__version__}")
    if torch_run is not None:
        print(f"torch {torch_run[2]} with {torch_run[1]} threads")
    head = ("tokens", "numpy fp32 s", "torch s", "numpy/torch", "score m=10 s", "ratio")
    widths = (6, 13, 9, 12, 13, 7)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for T in args.tokens:
        tokens = rng.integers(0, cfg.vocab_size, T)
        model.logits(tokens[:8])  # warm up
        t_np = best_time(lambda tokens=tokens: model.logits(tokens), args.repeat)[0]
        t_torch = float("nan")
        if torch_run is not None:
            torch_run[0](tokens[:8])
            t_torch = best_time(lambda tokens=tokens: torch_run[0](tokens), args.repeat)[0]
        t_score = float("nan")
        if T <= 128 or not args.skip_score_1024:
            plan = PrecisionPlan.only("attn.score", Accumulator.authors(10))
            t_score = best_time(lambda tokens=tokens, plan=plan: model.logits(tokens, plan), 1)[0]
        row = (
            f"{T}",
            f"{t_np:.3f}",
            f"{t_torch:.3f}",
            f"{t_np / t_torch:.2f}",
            f"{t_score:.2f}",
            f"{t_score / t_np:.1f}",
        )
        print(" ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gpt2_124M.bin"
        save_llmc(params, cfg, path)
        size_mib = path.stat().st_size / 2**20
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, str(path)], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        base, after_load, after_forward = map(float, out.stdout.split())
        print(f"llm.c checkpoint {size_mib:.0f} MiB; peak RSS of a fresh interpreter {base:.0f} MiB")
        for what, peak in (("after load", after_load), ("after a 64-token forward", after_forward)):
            print(
                f"  {what}: {peak:.0f} MiB (+{peak - base:.0f} MiB, {(peak - base) / size_mib:.2f}x the file)"
            )


if __name__ == "__main__":
    main()
