"""Benchmark of the LAMP study: one LAMP forward pass of GPT-2 124M, and the quick study on 1 and 2 workers.

Run ``python benchmarks/bench_experiment.py`` (``--tokens 256`` for a shorter forward pass,
``--skip-forward`` or ``--skip-study`` to time one part only).

* One forward pass of the GPT-2 124M shape (12 layers, 12 heads, 768 wide, the real vocabulary, random
  weights from :func:`lampref.gpt2.random_params`) on ``--tokens`` random token ids (default 1024), with
  the key-query products accumulated at m = 8 mantissa bits and LAMP at tau = 1.1 (the setting
  ``Setting(8, 1.1)`` of the study). The float32 forward pass is timed beside it.
* The quick study of ``lampref experiment --quick`` (the embedded model, the bundled corpora, 2 sequences
  of 64 tokens, m = 4, 8, tau = 2, 1.5, 1.1 with the random baseline: 30 rows) run with ``jobs=1`` and
  ``jobs=2`` (``--jobs`` to compare other counts) into fresh CSVs, and with ``jobs=1`` under one BLAS
  thread (with threadpoolctl: each worker of ``jobs=2`` on 2 cores has one); the rows of every run are
  checked to be the same, and the speedup over ``jobs=1`` is printed. A worker's start (spawning Python,
  importing lampref, receiving the model) is part of the time.

Times are the best of ``--repeat`` runs (default 1; the machine's other load shows as noise).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import best_time

import lampref
from lampref import gpt2
from lampref.cli import QUICK
from lampref.experiment import Setting, bundled_corpora, grid, read_results, run_experiment
from lampref.lamp import recompute_fraction

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # no serial run with one BLAS thread
    threadpool_limits = None

GPT2_124M = gpt2.GPT2Config(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)
M_BITS, TAU = 8, 1.1


def cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def time_forward(tokens: int, repeat: int) -> None:
    """One float32 and one LAMP forward pass of the 124M shape on ``tokens`` random ids."""
    model = gpt2.GPT2(gpt2.random_params(GPT2_124M, 0), GPT2_124M)
    ids = np.random.default_rng(0).integers(0, GPT2_124M.vocab_size, tokens)  # [T]
    plan = Setting(M_BITS, TAU).plan(seed=42)
    t32, _ = best_time(lambda: model.logits(ids), repeat)
    tlamp, (_, stats) = best_time(lambda: model.logits_and_stats(ids, plan), repeat)
    recomputed = float(recompute_fraction(stats).total)
    print(f"GPT-2 124M shape, {tokens} tokens, random weights; accumulation backend: {lampref.backend()}")
    print(f"  float32 forward pass                  {t32:8.2f} s")
    print(f"  LAMP m={M_BITS} tau={TAU} forward pass         {tlamp:8.2f} s  ({recomputed:.1%} recomputed)")


def quick_study() -> tuple[gpt2.GPT2, dict[str, np.ndarray], list[Setting]]:
    """The model, corpora and settings of ``lampref experiment --quick``."""
    tok = gpt2.Tokenizer()
    corpora = {
        name: np.asarray(tok.encode(path.read_text(encoding="utf-8"), disallowed_special=()), np.int64)
        for name, path in bundled_corpora().items()
    }
    return gpt2.default_model(), corpora, grid(QUICK.m_bits, QUICK.tau)


def run_study(jobs: int, out: Path) -> float:
    """The wall time of the quick study with ``jobs`` workers, into ``out``."""
    model, corpora, settings = quick_study()
    t0 = time.perf_counter()
    run_experiment(
        model, corpora, settings, model_name="lampref-default", seq_len=QUICK.seq_len,
        sequences=QUICK.sequences, out=out, progress=False, jobs=jobs,
    )  # fmt: skip
    return time.perf_counter() - t0


def time_study(jobs: list[int], repeat: int) -> None:
    """The quick study with each worker count (and serially with one BLAS thread), rows checked equal,
    speedups against ``jobs=1``."""
    _, corpora, settings = quick_study()
    print(f"\nquick study: {len(corpora)} corpora x {len(settings)} settings, {cores()} cores")
    runs: list[tuple[str, int, int | None]] = [(f"jobs={n}", n, None) for n in jobs]
    if threadpool_limits is not None and 1 in jobs:
        runs.insert(jobs.index(1) + 1, ("jobs=1, 1 BLAS thread", 1, 1))
    times: dict[str, float] = {}
    rows: dict[str, list[dict[str, object]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, blas in runs:
            limit = threadpool_limits(blas, user_api="blas") if blas else contextlib.nullcontext()
            with limit:
                for r in range(repeat):
                    out = Path(tmp) / f"{label}-{r}.csv"
                    times[label] = min(times.get(label, float("inf")), run_study(n, out))
                    rows[label] = sorted(read_results(out), key=lambda row: str(row["config_hash"]))
            base = times[runs[0][0]]
            print(f"  {label:24s} {times[label]:8.2f} s  speedup {base / times[label]:5.2f}x")
    if any(r != rows[runs[0][0]] for r in rows.values()):
        sys.exit("WRONG RESULT: the runs with different worker counts wrote different rows")
    print("  the rows of every run are the same")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1024, help="tokens of the 124M forward pass (default 1024)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each timing, best kept (default 1)")
    ap.add_argument("--skip-forward", action="store_true", help="do not time the 124M forward pass")
    ap.add_argument("--skip-study", action="store_true", help="do not time the quick study")
    args = ap.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {cores()} cores, Python {platform.python_version()}"
    )
    if not args.skip_forward:
        time_forward(args.tokens, args.repeat)
    if not args.skip_study:
        time_study(args.jobs, args.repeat)


if __name__ == "__main__":
    main()
