"""The ``lampref`` command line (also ``python -m lampref``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lampref`` command."""
    parser = argparse.ArgumentParser(prog="lampref", description="Exact floating-point emulation and LAMP.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_formats = sub.add_parser("formats", help="print the table of preset formats")
    p_formats.set_defaults(func=_cmd_formats)
    p_gen = sub.add_parser(
        "generate",
        help="greedy continuation of a prompt with GPT-2 weights (HF directory, .safetensors, llm.c .bin, .npz)",
    )
    p_gen.add_argument("prompt", help="the text to continue")
    p_gen.add_argument("--model", required=True, help="path to the weights")
    p_gen.add_argument("--tokens", type=int, default=20, help="number of tokens to generate (default 20)")
    p_gen.set_defaults(func=_cmd_generate)
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
