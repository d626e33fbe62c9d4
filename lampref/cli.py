"""The ``lampref`` command line (also ``python -m lampref``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .formats import format_names, get_format

__all__ = ["main"]


def _format_table() -> str:
    header = (
        "name",
        "bits",
        "p",
        "emin",
        "emax",
        "max",
        "smallest normal",
        "smallest subnormal",
        "u",
        "encoding",
    )
    rows = [header]
    for name in format_names():
        f = get_format(name)
        rows.append(
            (
                name,
                str(f.bits),
                str(f.p),
                str(f.emin),
                str(f.emax),
                f"{f.max:.6g}",
                f"{f.smallest_normal:.6g}",
                f"{f.smallest_subnormal:.6g}",
                f"2^-{f.p}",
                f.encoding + (", saturating" if f.saturate and f.encoding != "none" else ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_formats(args: argparse.Namespace) -> int:
    print(_format_table())
    print(
        "\nfp32_mantissa(m), m = 0..23: p = m + 1 with float32's exponent range (names fp32_m0 ... fp32_m23)."
    )
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .errors import LamprefError
    from .gpt2 import GPT2, Tokenizer

    if args.tokens < 1:
        raise SystemExit("lampref generate: --tokens must be at least 1")
    try:
        model = GPT2.load(args.model)
        tok = Tokenizer()
        prompt = tok.encode(args.prompt, allowed_special="all")
        if not prompt:
            raise SystemExit("lampref generate: the prompt is empty")
        n = min(args.tokens, model.config.n_positions - len(prompt))
        if n < 1:
            raise SystemExit(
                f"lampref generate: the prompt has {len(prompt)} tokens, the model's limit is "
                f"{model.config.n_positions}"
            )
        out = model.generate(prompt, n)
    except LamprefError as err:
        print(f"lampref generate: {err}", file=sys.stderr)
        return 1
    new = [int(t) for t in out[len(prompt) :]] if out.ndim == 1 else [int(t) for t in out[0, len(prompt) :]]
    print(args.prompt + tok.decode(new))
    return 0


# --quick: a small grid for a first look (under a minute on 2 cores). The default: the authors' grid
# (m = 2..22 step 2, tau = 2, 1.9, ..., 1.1, 1.08, ..., 1.02, 200 sequences of 1024 tokens) scaled to a CPU:
# m up to 12, tau = 2, 1.9, 1.8, 1.6, 1.4, 1.2, 1.1, 1.05, 1.02, and 4 sequences of 256 tokens per corpus
# (306 rows, about 45 minutes on 2 cores with the embedded model).
QUICK = {"seq_len": 64, "sequences": 2, "m_bits": [4, 8], "tau": [2.0, 1.5, 1.1]}
FULL = {
    "seq_len": 256,
    "sequences": 4,
    "m_bits": [2, 4, 6, 8, 10, 12],
    "tau": [2.0, 1.9, 1.8, 1.6, 1.4, 1.2, 1.1, 1.05, 1.02],
}


def _read_corpus(spec: str) -> tuple[str, str]:
    """A corpus by bundled name, text file or folder (its .txt, .md, .py and .rst files, sorted)."""
    from pathlib import Path

    from .experiment import ExperimentError

    bundled = Path(__file__).parent / "data" / "corpora" / f"{spec}.txt"
    path = bundled if bundled.is_file() else Path(spec)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.suffix in (".txt", ".md", ".py", ".rst") and p.is_file()
        )
        if not files:
            raise ExperimentError(f"corpus folder {path} holds no .txt, .md, .py or .rst file")
        return path.name, "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)
    if path.is_file():
        return path.stem, path.read_text(encoding="utf-8", errors="replace")
    raise ExperimentError(f"corpus {spec!r} is neither a bundled corpus nor a file or folder")


def _cmd_experiment(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from .errors import LamprefError
    from .experiment import grid, plot_results, run_experiment
    from .gpt2 import GPT2, Tokenizer

    preset = QUICK if args.quick else FULL
    seq_len = args.seq_len or preset["seq_len"]
    sequences = args.sequences or preset["sequences"]
    m_bits = args.m_bits or preset["m_bits"]
    taus = args.tau or preset["tau"]
    try:
        if args.model is None:
            from .gpt2 import default_model

            model, model_name = default_model(), "lampref-default"
        else:
            model, model_name = GPT2.load(args.model), Path(args.model).name
        tok = Tokenizer()
        corpora = {}
        for spec in args.corpus:
            name, text = _read_corpus(spec)
            corpora[name] = np.asarray(tok.encode(text, disallowed_special=()), dtype=np.int64)
        settings = grid(
            m_bits, taus, baseline=args.baseline == "random", rule=args.rule, accumulation=args.accumulation
        )
        out = Path(args.out)
        rows = run_experiment(
            model,
            corpora,
            settings,
            model_name=model_name,
            seq_len=seq_len,
            sequences=sequences,
            seed=args.seed,
            shuffle=args.shuffle_tokens,
            out=out / "results.csv",
            progress=not args.no_progress,
        )
        _print_summary(rows, args)
        for p in plot_results(rows, out):
            print(f"wrote {p}")
        print(f"wrote {out / 'results.csv'}")
    except LamprefError as err:
        print(f"lampref experiment: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import LamprefError
    from .experiment import plot_results, read_results

    try:
        rows = read_results(args.results)
        out = Path(args.out) if args.out else Path(args.results).parent
        _print_summary(rows, args)
        for p in plot_results(rows, out):
            print(f"wrote {p}")
    except LamprefError as err:
        print(f"lampref plot: {err}", file=sys.stderr)
        return 1
    return 0


def _print_summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The summary table, and with --max-recomputed the one restricted to low recomputation rates."""
    from .experiment import summary_table

    print(summary_table(rows, markdown=args.markdown))
    if args.max_recomputed is not None:
        print(f"\nbest LAMP with at most {100 * args.max_recomputed:g}% of the scores recomputed:")
        print(summary_table(rows, max_recomputed=args.max_recomputed, markdown=args.markdown))


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lampref`` command."""
    parser = argparse.ArgumentParser(prog="lampref", description="Exact floating-point emulation and LAMP.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_formats = sub.add_parser("formats", help="print the table of preset formats")
    p_formats.set_defaults(func=_cmd_formats)
    p_gen = sub.add_parser(
        "generate",
        help="greedy continuation of a prompt with GPT-2 weights (HF directory, safetensors, llm.c, npz)",
    )
    p_gen.add_argument("prompt", help="the text to continue")
    p_gen.add_argument("--model", required=True, help="path to the weights")
    p_gen.add_argument("--tokens", type=int, default=20, help="number of tokens to generate (default 20)")
    p_gen.set_defaults(func=_cmd_generate)

    p_exp = sub.add_parser("experiment", help="the LAMP study: KL and flip rate against float32 over a grid")
    p_exp.add_argument(
        "--model", help="GPT-2 weights (HF directory, safetensors, llm.c .bin, npz); default: embedded"
    )
    p_exp.add_argument(
        "--corpus",
        nargs="+",
        default=["prose", "code", "abstracts"],
        help="bundled corpus names, text files or folders (default: the bundled three)",
    )
    p_exp.add_argument("--seq-len", type=int, help="tokens per sequence")
    p_exp.add_argument("--sequences", type=int, help="sequences per corpus")
    p_exp.add_argument("--m-bits", type=_ints, help="mantissa bits of the key-query products, e.g. 2,4,8")
    p_exp.add_argument("--tau", type=_floats, help="LAMP thresholds in (0, 2], e.g. 2,1.5,1.1 (2: none)")
    p_exp.add_argument(
        "--baseline",
        choices=["random", "none"],
        default="random",
        help="also run random recomputation of the same count (default)",
    )
    p_exp.add_argument("--rule", choices=["prefix", "optimal", "authors"], default="prefix")
    p_exp.add_argument("--accumulation", choices=["strict", "blocked", "authors"], default="strict")
    p_exp.add_argument("--shuffle-tokens", action="store_true", help="permute the tokens of each sequence")
    p_exp.add_argument("--seed", type=int, default=42)
    p_exp.add_argument("--out", default="lampref-results", help="output folder (CSV and PNG)")
    p_exp.add_argument("--quick", action="store_true", help="a small grid that runs in a couple of minutes")
    p_exp.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_exp.set_defaults(func=_cmd_experiment)

    p_plot = sub.add_parser("plot", help="draw the figures and the summary of a results CSV")
    p_plot.add_argument("results", help="results CSV (lampref's or the LAMP authors')")
    p_plot.add_argument("--out", help="output folder (default: the CSV's folder)")
    for p in (p_exp, p_plot):
        p.add_argument(
            "--max-recomputed",
            type=_fraction,
            metavar="FRACTION",
            help="also print the best LAMP result among settings recomputing at most this fraction, e.g. 0.1",
        )
        p.add_argument("--markdown", action="store_true", help="print the summary as Markdown tables")
    p_plot.set_defaults(func=_cmd_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    status: int = args.func(args)
    return status
