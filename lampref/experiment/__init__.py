r"""The LAMP study: KL divergence and flip rate against the float32 model, over a grid of settings.

For every corpus and every setting of the grid (mantissa bits ``m`` of the key-query products, LAMP
threshold ``tau``, selection rule, random baseline or not, accumulation model), the runner computes the
next-token distributions of the model with the emulated score site and compares them with the float32
model's: :func:`lampref.metrics.kl_divergence` (KL(P_fp32 || P_test) averaged over positions) and
:func:`lampref.metrics.flip_rate` (share of positions whose argmax changes), plus the recomputed fraction of
the attention scores (per layer and overall). A flip rate counts changed argmaxes over the ``positions`` of a
row, so it moves in steps of ``1 / positions``; :func:`summary_table` states that resolution.

Results are appended to a CSV, one row per (corpus, setting), each row written with a single ``write`` on a
file opened for appending and flushed to disk: an interrupted run loses at most the row being computed, and
running the same command again skips every row whose configuration hash is already in the file.

The CSV has the columns of the LAMP authors' results (``model, seed, nbatches, dataset, shuffle, fake_lamp,
m_bits, tau, kl_div, flip_rate, sparsity``) followed by lampref's (``accumulation, rule, seq_len,
positions, layer_sparsity, baseline, model_digest, corpus_digest, config_hash``):

* ``baseline`` says what a row measures: ``none`` (uniform low precision at ``tau = 2``, LAMP below),
  ``random`` (lampref's random baseline: as many scores per row as LAMP selects, drawn among the row's
  causal entries) or ``authors`` (the authors' "fake LAMP": the draws permute all ``T`` positions of the
  row, masked ones included, so part of them recompute nothing). ``fake_lamp`` is ``baseline != "none"``,
  kept for the authors' tools.
* ``model`` is a label; ``model_digest`` identifies the model by content (a digest of its configuration,
  ``row_block`` and every parameter array's bytes), ``corpus_digest`` the token windows a row was
  computed on (so the corpus text, ``seq_len``, ``sequences`` and the shuffle).
* ``config_hash`` is a digest of everything that determines a row's numbers: ``model_digest``,
  ``corpus_digest`` and the corpus name, ``seed``, ``seq_len``, ``sequences``, ``shuffle`` and every field
  of the :class:`Setting`. lampref's own version is not part of it: results from a version whose
  arithmetic differs belong in a new file.

A results file holds one run. :func:`run_experiment` appends to an existing file only if its header is
exactly :data:`CSV_COLUMNS` and every row in it has the run's ``model_digest``, ``seed``, ``nbatches``,
``seq_len`` and ``shuffle``, and, for each corpus of the run already in the file, its ``corpus_digest``;
otherwise it raises :class:`ExperimentError` before computing anything, naming the file, the line and the
field, and nothing is written. New corpora and new settings can be added to a file. :func:`read_results`
also reads the authors' CSVs and lampref's earlier header (:data:`CSV_COLUMNS_V1`, without ``baseline``
and the digests), filling in ``baseline`` from ``fake_lamp`` (``authors`` in the authors' files, ``random``
in lampref's).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..accumulate import Accumulator
from ..errors import ExperimentError, expected_one_of
from ..formats import fp32_mantissa

__all__ = [
    "ACCUMULATIONS",
    "AUTHORS_COLUMNS",
    "AUTHORS_M_BITS",
    "AUTHORS_TAUS",
    "BASELINE_KINDS",
    "CSV_COLUMNS",
    "CSV_COLUMNS_V1",
    "ExperimentError",
    "Setting",
    "grid",
    "plot_results",
    "read_results",
    "run_experiment",
    "summary_table",
    "windows",
]

AUTHORS_M_BITS: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
AUTHORS_TAUS: tuple[float, ...] = (2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.08, 1.06, 1.04, 1.02)

AUTHORS_COLUMNS: tuple[str, ...] = (
    "model",
    "seed",
    "nbatches",
    "dataset",
    "shuffle",
    "fake_lamp",
    "m_bits",
    "tau",
    "kl_div",
    "flip_rate",
    "sparsity",
)
"""The columns of the LAMP authors' results CSV."""

CSV_COLUMNS_V1: tuple[str, ...] = (
    *AUTHORS_COLUMNS,
    "accumulation",
    "rule",
    "seq_len",
    "positions",
    "layer_sparsity",
    "config_hash",
)
"""lampref's earlier columns (no ``baseline``, no digests): read, never appended to."""

CSV_COLUMNS: tuple[str, ...] = (
    *CSV_COLUMNS_V1[:-1],
    "baseline",
    "model_digest",
    "corpus_digest",
    "config_hash",
)
"""The columns of the results CSV :func:`run_experiment` writes, in order."""

BASELINE_KINDS: tuple[str, ...] = ("none", "random", "authors")
"""Values of :attr:`Setting.baseline` and of the ``baseline`` column (module notes)."""

_LAMP_BASELINE = {"none": None, "random": "random", "authors": "random_authors"}  # -> LampConfig.baseline
_NEEDED = ("dataset", "fake_lamp", "m_bits", "tau", "kl_div", "flip_rate", "sparsity")  # summary and plots
_RUN_FIELDS = ("model_digest", "seed", "nbatches", "seq_len", "shuffle")  # one value per results file


def _strict(m: int) -> Accumulator:
    return Accumulator(fp32_mantissa(m))


def _blocked(m: int) -> Accumulator:
    return Accumulator(fp32_mantissa(m), block=32)


def _authors(m: int) -> Accumulator:
    return Accumulator.authors(m)


ACCUMULATIONS: dict[str, Callable[[int], Accumulator]] = {
    "strict": _strict,
    "blocked": _blocked,
    "authors": _authors,
}
"""How the key-query products are accumulated at ``m`` bits: exact rounding after every product,
exact 32-wide blocks, or the authors' float32-staged kernel after every product."""


REF_CACHE_BYTES = 2 * 2**30
"""The reference log-probabilities of a corpus (float64, sequences x seq_len x vocabulary) are computed
once and kept when they fit in this many bytes; larger runs keep the float32 reference logits instead and
recompute their log-softmax for every setting."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


@dataclass(frozen=True)
class Setting:
    """One point of the grid: the score site at ``m_bits``, LAMP at ``tau`` (2 = nothing recomputed), or a
    random baseline (``baseline``, one of :data:`BASELINE_KINDS`) recomputing as many scores per row as LAMP.

    >>> Setting(4, 1.5, "authors").fake_lamp
    True
    >>> Setting(4, 1.5, True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lampref.errors.ExperimentError: baseline=True is not valid; expected one of: 'none', 'random', ...
    """

    m_bits: int
    tau: float
    baseline: str = "none"
    rule: str = "prefix"
    accumulation: str = "strict"

    def __post_init__(self) -> None:
        from ..lamp import RULES

        if not _is_int(self.m_bits) or not 0 <= self.m_bits <= 23:
            raise ExperimentError(f"m_bits={self.m_bits!r} is out of range; expected an integer 0 <= m <= 23")
        if not _is_real(self.tau) or not 0.0 < float(self.tau) <= 2.0:
            raise ExperimentError(f"tau={self.tau!r} is out of range; expected 0 < tau <= 2")
        if not isinstance(self.baseline, str) or self.baseline not in BASELINE_KINDS:
            raise ExperimentError(expected_one_of("baseline", self.baseline, BASELINE_KINDS))
        if not isinstance(self.rule, str) or self.rule not in RULES:
            raise ExperimentError(expected_one_of("rule", self.rule, RULES))
        if not isinstance(self.accumulation, str) or self.accumulation not in ACCUMULATIONS:
            raise ExperimentError(expected_one_of("accumulation", self.accumulation, tuple(ACCUMULATIONS)))
        object.__setattr__(self, "m_bits", int(self.m_bits))
        object.__setattr__(self, "tau", float(self.tau))

    @property
    def fake_lamp(self) -> bool:
        """Whether this is a random baseline (the authors' column name)."""
        return self.baseline != "none"

    def plan(self, seed: int) -> Any:
        """The precision plan of this setting."""
        from ..gpt2 import PrecisionPlan
        from ..lamp import LampConfig

        acc = ACCUMULATIONS[self.accumulation](self.m_bits)
        if self.tau == 2.0 and not self.fake_lamp:
            return PrecisionPlan.only("attn.score", acc)
        rule = LampConfig(acc, self.tau, rule=self.rule, baseline=_LAMP_BASELINE[self.baseline], seed=seed)
        return PrecisionPlan.only("attn.score", rule)


def grid(
    m_bits: Iterable[int],
    taus: Iterable[float],
    *,
    baseline: str | None = "random",
    rule: str = "prefix",
    accumulation: str = "strict",
) -> list[Setting]:
    """The settings of a study: every ``m`` with every ``tau``, and a random baseline at every ``tau < 2``
    (same number of recomputed scores per row as LAMP).

    ``baseline`` is ``"random"`` (lampref's: draws among each row's causal entries), ``"authors"`` (the
    authors' "fake LAMP": draws over all positions of the row, masked ones included) or None (``"none"``)
    for no baseline rows.

    >>> [(s.m_bits, s.tau, s.baseline) for s in grid([4], [2.0, 1.5])]
    [(4, 2.0, 'none'), (4, 1.5, 'none'), (4, 1.5, 'random')]
    >>> [s.baseline for s in grid([4], [1.5], baseline="authors")]
    ['none', 'authors']
    """
    if baseline is None:
        baseline = "none"
    if not isinstance(baseline, str) or baseline not in BASELINE_KINDS:
        raise ExperimentError(expected_one_of("baseline", baseline, ("random", "authors")) + ", or None")
    ms, ts = _grid_values("m_bits", m_bits), _grid_values("taus", taus)
    out: list[Setting] = []
    for m in ms:
        for tau in ts:
            out.append(Setting(m, tau, "none", rule, accumulation))
            if baseline != "none" and float(tau) < 2.0:
                out.append(Setting(m, tau, baseline, rule, accumulation))
    return out


def _grid_values(name: str, values: Iterable[Any]) -> list[Any]:
    """The values of one grid axis, checked: at least one, none twice."""
    if isinstance(values, (str, bytes)):
        raise ExperimentError(f"{name}={values!r} is not valid; expected a sequence of numbers")
    try:
        out = list(values)
    except TypeError:
        raise ExperimentError(f"{name}={values!r} is not valid; expected a sequence of numbers") from None
    if not out:
        raise ExperimentError(f"{name} is empty; expected at least one value")
    for i, v in enumerate(out):
        if v in out[:i]:
            raise ExperimentError(f"{name} lists {v!r} twice; expected distinct values")
    return out


def _check_seed(seed: Any) -> int:
    if not _is_int(seed) or seed < 0:
        raise ExperimentError(f"seed={seed!r} is not valid; expected a non-negative integer")
    return int(seed)


def windows(
    tokens: Sequence[int] | NDArray[np.integer[Any]],
    seq_len: int,
    count: int,
    *,
    seed: int,
    shuffle: bool = False,
) -> NDArray[np.int64]:
    """``count`` non-overlapping windows of ``seq_len`` tokens, evenly spread over a tokenised corpus.

    With ``shuffle=True`` the tokens of each window are permuted (the paper's input-agnostic check), with a
    generator seeded by ``seed`` (a non-negative integer).

    >>> windows(list(range(10)), 3, 2, seed=0).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    if not _is_int(seq_len) or not _is_int(count) or seq_len < 2 or count < 1:
        raise ExperimentError(f"need seq_len >= 2 and count >= 1, got seq_len={seq_len!r}, count={count!r}")
    _check_seed(seed)
    arr = np.asarray(tokens)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ExperimentError(f"tokens have shape {arr.shape} and dtype {arr.dtype}; expected 1-D token ids")
    arr = arr.astype(np.int64)
    n_windows = arr.size // seq_len
    if n_windows < count:
        raise ExperimentError(
            f"the corpus has {arr.size} tokens: {n_windows} windows of {seq_len}, "
            f"fewer than the {count} asked for"
        )
    starts = (np.arange(count) * (n_windows // count)) * seq_len
    out = np.stack([arr[s : s + seq_len] for s in starts])
    if shuffle:
        rng = np.random.default_rng(int(seed))
        out = np.stack([rng.permutation(row) for row in out])
    return out


# ------------------------------------------------------------------------------------ identity
def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"array {a.dtype.str} {a.shape}\n".encode())
            h.update(a.reshape(-1).view(np.uint8).data)
        else:
            h.update(json.dumps(part, sort_keys=True, default=repr).encode() + b"\n")
    return h.hexdigest()[:16]


def _config_hash(fields: Mapping[str, Any]) -> str:
    return _digest(dict(fields))


def _model_digest(model: Any) -> str:
    """A digest of what determines the model's numbers: configuration, row block and parameter bytes."""
    params: Any = getattr(model, "params", None)
    config: Any = getattr(model, "config", None)
    if not hasattr(params, "named_arrays") or config is None:
        raise ExperimentError(
            f"model {type(model).__name__} has no params and config to identify it by; expected a "
            "lampref.gpt2.GPT2"
        )
    cfg = asdict(config) if is_dataclass(config) and not isinstance(config, type) else repr(config)
    parts: list[Any] = [cfg, getattr(model, "row_block", None)]
    for name, arr in params.named_arrays():
        parts += [name, np.asarray(arr)]
    return _digest(*parts)


# ------------------------------------------------------------------------------------ reading
def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        value = float(text)  # "4.0" from tools that write every number as a float
        if not value.is_integer():
            raise ValueError(text) from None
        return int(value)


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ValueError(text)


def _parse_layers(text: str) -> str:
    for v in text.split(";") if text else ():
        float(v)
    return text


_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "seed": (_parse_int, "an integer"),
    "nbatches": (_parse_int, "an integer"),
    "seq_len": (_parse_int, "an integer"),
    "positions": (_parse_int, "an integer"),
    "m_bits": (_parse_int, "an integer"),
    "tau": (float, "a number"),
    "kl_div": (float, "a number"),
    "flip_rate": (float, "a number"),
    "sparsity": (float, "a number"),
    "shuffle": (_parse_bool, "True or False"),
    "fake_lamp": (_parse_bool, "True or False"),
    "layer_sparsity": (_parse_layers, "numbers separated by ';'"),
}


def _parse_row(header: Sequence[str], fields: Sequence[str], where: str) -> dict[str, Any]:
    """One CSV record as a typed row; ExperimentError naming ``where`` and the column on a bad value."""
    row: dict[str, Any] = {}
    for key, text in zip(header, fields, strict=True):
        parse, what = _PARSERS.get(key, (str, "text"))
        if any(c < " " or c == "\x7f" for c in text):
            raise ExperimentError(f"{where}, column {key}: {text[:40]!r} holds a control character")
        if text == "" and key in _PARSERS and key not in _NEEDED:
            row[key] = None  # an optional number the writer left out
            continue
        try:
            row[key] = parse(text)
        except (ValueError, OverflowError):
            raise ExperimentError(f"{where}, column {key}: {text[:40]!r} is not {what}") from None
    if not 0 <= row["m_bits"] <= 23 or not 0.0 < row["tau"] <= 2.0:
        raise ExperimentError(
            f"{where}: m_bits={row['m_bits']}, tau={row['tau']} are out of range; expected 0 <= m_bits <= 23 "
            "and 0 < tau <= 2"
        )
    fake = row["fake_lamp"]
    if "baseline" not in row:  # the authors' CSVs hold their baseline, lampref's earlier ones its own
        row["baseline"] = ("random" if "config_hash" in row else "authors") if fake else "none"
    elif row["baseline"] not in BASELINE_KINDS or (row["baseline"] != "none") != fake:
        raise ExperimentError(
            f"{where}, column baseline: {row['baseline'][:40]!r} with fake_lamp={fake}; expected "
            + ("'random' or 'authors'" if fake else "'none'")
        )
    return row


def _parse_results(data: bytes, path: Path) -> tuple[tuple[str, ...], list[tuple[int, dict[str, Any]]]]:
    """The header and the ``(line, row)`` pairs of a results CSV's bytes."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ExperimentError(
            f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8 text; a results CSV is UTF-8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, Any]]] = []
    header: tuple[str, ...] = ()
    try:
        for fields in reader:
            line = reader.line_num
            if not header:
                header = tuple(fields)
                _check_columns(header, path)
                continue
            if not fields or fields == [""]:
                continue  # a blank line
            where = f"{path}, line {line}"
            if len(fields) != len(header):
                raise ExperimentError(
                    f"{where}: {len(fields)} fields where the header has {len(header)}; the line is damaged "
                    "or was written under another header"
                )
            rows.append((line, _parse_row(header, fields, where)))
    except csv.Error as err:
        raise ExperimentError(f"{path}, line {reader.line_num}: not CSV ({err})") from None
    return header, rows


def _check_columns(header: tuple[str, ...], path: Path) -> None:
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ExperimentError(f"{path}, line 1: the column {twice[0]!r} appears twice in the header")
    missing = [c for c in _NEEDED if c not in header]
    if missing:
        raise ExperimentError(
            f"{path} is not a results CSV: its header lacks the columns {', '.join(missing)}"
        )


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results CSV, values parsed.

    Reads lampref's CSVs (:data:`CSV_COLUMNS`, or the earlier :data:`CSV_COLUMNS_V1`) and the authors'
    (:data:`AUTHORS_COLUMNS`); rows without a ``baseline`` column get one from ``fake_lamp`` (module
    notes).

    Raises
    ------
    ExperimentError
        The file cannot be read, is not UTF-8, lacks a needed column, or a line is not a row of its
        header (wrong number of fields, a value that does not parse, ``m_bits`` or ``tau`` out of range):
        the message names the file, the line and the column.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ExperimentError(f"cannot read results file {p}: {err.strerror or err}") from None
    return [row for _, row in _parse_results(data, p)[1]]


# ------------------------------------------------------------------------------------ writing
def _append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append one CSV row (the header first if the file is new) with a single write, flushed to disk."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    new = not path.exists() or path.stat().st_size == 0
    if new:
        writer.writeheader()
    writer.writerow({k: row[k] for k in CSV_COLUMNS})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, buf.getvalue().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _prepare_output(path: Path) -> None:
    """Create the folder of the results CSV and check that both can be written, or raise ExperimentError."""
    fix = "choose another output folder"
    if path.is_dir():
        raise ExperimentError(f"cannot write results to {path}: it is a folder, not a file; {fix}")
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ExperimentError(
                    f"cannot write results to {path}: {folder} is a file, not a folder; {fix}"
                )
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExperimentError(
            f"cannot create the output folder {path.parent}: {err.strerror}; {fix}"
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ExperimentError(f"the output folder {path.parent} is not writable; {fix}")
    if path.exists():
        if not path.is_file():
            raise ExperimentError(f"cannot write results to {path}: it is not a regular file; {fix}")
        try:
            if not os.access(path, os.W_OK):
                raise PermissionError(13, "Permission denied")
            with open(path, "ab"):
                pass
        except OSError as err:
            raise ExperimentError(f"cannot write to the results file {path}: {err.strerror}; {fix}") from None


def _existing_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """The rows of an existing results file that :func:`run_experiment` may append to, and the length to
    cut it to when its last line was cut short by a crash (None: keep it whole)."""
    if not path.exists():
        return [], None
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ExperimentError(f"cannot read results file {path}: {err.strerror}") from None
    head = ",".join(CSV_COLUMNS).encode() + b"\n"
    cut: int | None = None
    if data and not data.endswith(b"\n"):  # a row (or the first write) interrupted: drop it, compute it again
        cut = data.rfind(b"\n") + 1
        if cut == 0 and not head.startswith(data):
            cut = None  # one unterminated line that is not ours: the header check below refuses it
    kept = data if cut is None else data[:cut]
    if not kept:
        return [], cut
    try:
        header, rows = _parse_results(kept, path)
    except ExperimentError as err:
        raise ExperimentError(
            f"{err}; use another output folder (nothing is appended to this file)"
        ) from None
    if header != CSV_COLUMNS:
        raise ExperimentError(f"{path}: {_foreign_header(header)}; use another output folder")
    return rows, cut


def _foreign_header(header: tuple[str, ...]) -> str:
    if header == CSV_COLUMNS_V1:
        return (
            "written by an earlier lampref, without the baseline and digest columns, so its rows cannot be "
            "checked against this run (the file stays readable by read_results and `lampref plot`)"
        )
    if header == AUTHORS_COLUMNS:
        return "has the LAMP authors' 11 columns, not lampref's; rows are never appended under another header"
    if set(header) == set(CSV_COLUMNS):
        return "has lampref's columns in another order; rows are never appended under another header"
    return f"has the columns {', '.join(header)}, not lampref's; rows are never appended under another header"


_FIELD_NAMES = {
    "model_digest": "other model weights or configuration",
    "seed": "another seed",
    "nbatches": "another number of sequences",
    "seq_len": "another sequence length",
    "shuffle": "another shuffle setting",
}


def _check_identity(
    path: Path,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    run: Mapping[str, Any],
    corpora: Mapping[str, str],
) -> None:
    """Refuse a results file holding rows of another run (module notes)."""
    fix = f"use another output folder, or delete {path} to start over"
    for line, row in rows:
        for key in _RUN_FIELDS:
            if row[key] != run[key]:
                raise ExperimentError(
                    f"{path}, line {line}: computed with {_FIELD_NAMES[key]} ({key}={row[key]!r}, this run: "
                    f"{run[key]!r}); {fix}"
                )
        digest = corpora.get(row["dataset"])
        if digest is not None and row["corpus_digest"] != digest:
            raise ExperimentError(
                f"{path}, line {line}: the corpus {row['dataset']!r} is not the one this row was computed on "
                f"(corpus_digest={row['corpus_digest']!r}, this run: {digest!r}); {fix}"
            )


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional (extra "progress")
        return None
    return tqdm(total=total, file=sys.stderr, dynamic_ncols=True)


def _check_run(
    model: Any,
    corpora: Mapping[str, Any],
    settings: Sequence[Setting],
    model_name: str,
    seq_len: int,
    sequences: int,
    seed: int,
    shuffle: bool,
) -> None:
    """Validate the arguments of :func:`run_experiment` (ExperimentError naming the one at fault)."""
    for name, value in (("seq_len", seq_len), ("sequences", sequences)):
        low = 2 if name == "seq_len" else 1
        if not _is_int(value) or value < low:
            raise ExperimentError(f"{name}={value!r} is not valid; expected an integer >= {low}")
    _check_seed(seed)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise ExperimentError(f"shuffle={shuffle!r} is not valid; expected True or False")
    n_positions: Any = getattr(getattr(model, "config", None), "n_positions", None)
    if _is_int(n_positions) and seq_len > n_positions:
        raise ExperimentError(f"seq_len={seq_len} exceeds the model's context n_positions={n_positions}")
    if not isinstance(corpora, Mapping) or not corpora:
        raise ExperimentError("corpora is empty; expected at least one named token array")
    for what, label in [("model_name", model_name), *(("corpus name", name) for name in corpora)]:
        if not isinstance(label, str) or not label or any(c < " " or c == "\x7f" for c in label):
            raise ExperimentError(f"{what} {label!r} is not valid; expected a non-empty one-line string")
    if not settings or not all(isinstance(s, Setting) for s in settings):
        raise ExperimentError("settings must be a non-empty sequence of Setting (see grid)")
    if len(set(settings)) != len(settings):
        twice = next(s for i, s in enumerate(settings) if s in settings[:i])
        raise ExperimentError(f"settings holds {twice} twice")


def _check_tokens(batch: NDArray[np.int64], dataset: str, model: Any) -> None:
    vocab: Any = getattr(getattr(model, "config", None), "vocab_size", None)
    if _is_int(vocab) and batch.size and (batch.min() < 0 or batch.max() >= vocab):
        bad = int(batch.min()) if batch.min() < 0 else int(batch.max())
        raise ExperimentError(
            f"the corpus {dataset!r} holds the token id {bad}; the model's ids are 0..{vocab - 1}"
        )


def run_experiment(
    model: Any,
    corpora: Mapping[str, NDArray[np.integer[Any]]],
    settings: Sequence[Setting],
    *,
    model_name: str,
    seq_len: int,
    sequences: int,
    seed: int = 42,
    shuffle: bool = False,
    out: str | Path,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run (or resume) a study and return its rows, in grid order.

    Parameters
    ----------
    model : lampref.gpt2.GPT2
        The model; its float32 forward pass is the reference. Identified by content (``model_digest``).
    corpora : mapping of name to token array
        Tokenised corpora; ``sequences`` windows of ``seq_len`` tokens are taken from each
        (:func:`windows`).
    settings : sequence of Setting
        The grid (:func:`grid`).
    model_name : str
        Recorded in the ``model`` column (a label: the model is identified by ``model_digest``).
    seq_len, sequences : int
        Tokens per window (at least 2) and windows per corpus (at least 1).
    seed : int, default 42
        A non-negative integer: seeds the random baselines and the shuffle.
    shuffle : bool, default False
        Permute the tokens of each window (:func:`windows`).
    out : path
        The results CSV; rows already in it (same configuration hash) are not recomputed. An existing
        file must have been written by a run with the same identity (module notes).
    progress : bool, default True
        A progress bar on stderr (with the ``progress`` extra).

    Returns
    -------
    list of dict
        One row per (corpus, setting), with the CSV's columns.

    Raises
    ------
    ExperimentError
        Before anything is computed: an invalid argument, a corpus too short for the windows, an output
        path that is a folder or lies under a file, an output folder or CSV that cannot be written, a CSV
        that is not UTF-8, has a damaged line or another header, or holds rows of another run (other
        weights, seed, sizes, shuffle, or other corpus contents under the same name).
    """
    from ..lamp import recompute_fraction
    from ..metrics import kl_from_log_probs, log_softmax

    _check_run(model, corpora, settings, model_name, seq_len, sequences, seed, shuffle)
    batches = {
        name: windows(tok, seq_len, sequences, seed=seed, shuffle=shuffle) for name, tok in corpora.items()
    }
    for name, batch in batches.items():
        _check_tokens(batch, name, model)
    path = Path(out)
    _prepare_output(path)
    existing, cut = _existing_rows(path)
    run = {
        "model_digest": _model_digest(model),
        "seed": int(seed),
        "nbatches": sequences,
        "seq_len": seq_len,
        "shuffle": bool(shuffle),
    }
    corpus_digest = {name: _digest(batch) for name, batch in batches.items()}
    _check_identity(path, existing, run, corpus_digest)
    if cut is not None:
        try:
            with open(path, "rb+") as f:
                f.truncate(cut)
        except OSError as err:
            raise ExperimentError(f"cannot write to the results file {path}: {err.strerror}") from None
    done = {r["config_hash"]: r for _, r in existing}
    jobs = []
    for dataset, batch in batches.items():
        for s in settings:
            fields = {**run, "dataset": dataset, "corpus_digest": corpus_digest[dataset], **asdict(s)}
            jobs.append((dataset, batch, s, _config_hash(fields)))
    bar = _progress(sum(1 for j in jobs if j[3] not in done), progress)
    refs: dict[str, list[tuple[NDArray[np.floating[Any]], NDArray[np.intp]]]] = {}
    rows: list[dict[str, Any]] = []
    try:
        for dataset, batch, s, h in jobs:
            if h in done:
                rows.append(done[h])
                continue
            if dataset not in refs:  # the reference of one corpus at a time (jobs are corpus-major)
                refs.clear()
                logits = [model.logits(seq) for seq in batch]  # float32 [T, V] each
                # float64 log-probabilities (8 bytes a logit) are kept when they fit in REF_CACHE_BYTES
                keep = sum(z.size for z in logits) * 8 <= REF_CACHE_BYTES
                refs[dataset] = [(log_softmax(z) if keep else z, z.argmax(axis=-1)) for z in logits]
                del logits
            plan = s.plan(seed)
            kl_sum = flips = 0.0
            stats_all: list[tuple[dict[str, Any], ...]] = []
            for seq, (ref, ref_top) in zip(batch, refs[dataset], strict=True):
                test, stats = model.logits_and_stats(seq, plan)
                ref_logp = np.asarray(ref if ref.dtype == np.float64 else log_softmax(ref), np.float64)
                kl_sum += float(kl_from_log_probs(ref_logp, log_softmax(test), "mean")) * len(seq)
                flips += float(np.count_nonzero(test.argmax(axis=-1) != ref_top))  # as flip_rate
                stats_all.append(stats)
            positions = int(batch.size)
            layer_stats = [_merge([st[layer] for st in stats_all]) for layer in range(len(stats_all[0]))]
            if any(layer_stats):
                frac = recompute_fraction(layer_stats)
                sparsity, per_layer = float(frac.total), [float(v) for v in frac.per_layer]
            else:
                sparsity, per_layer = 0.0, [0.0] * len(layer_stats)
            row = {
                "model": model_name,
                "seed": int(seed),
                "nbatches": sequences,
                "dataset": dataset,
                "shuffle": bool(shuffle),
                "fake_lamp": s.fake_lamp,
                "m_bits": s.m_bits,
                "tau": s.tau,
                "kl_div": kl_sum / positions,
                "flip_rate": flips / positions,
                "sparsity": sparsity,
                "accumulation": s.accumulation,
                "rule": s.rule,
                "seq_len": seq_len,
                "positions": positions,
                "layer_sparsity": ";".join(f"{v:.6g}" for v in per_layer),
                "baseline": s.baseline,
                "model_digest": run["model_digest"],
                "corpus_digest": corpus_digest[dataset],
                "config_hash": h,
            }
            try:
                _append_row(path, row)
            except OSError as err:
                raise ExperimentError(f"cannot write to the results file {path}: {err.strerror}") from None
            rows.append(row)
            if bar is not None:
                label = "" if s.baseline == "none" else f" {s.baseline} baseline"
                bar.set_description(f"{dataset} m={s.m_bits} tau={s.tau:g}{label}", refresh=False)
                bar.set_postfix(kl=f"{row['kl_div']:.2e}", flip=f"{row['flip_rate']:.3f}", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _merge(stats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the additive statistics of one layer over sequences (row statistics are dropped)."""
    out: dict[str, Any] = {}
    for st in stats:
        for key, value in st.items():
            if key.startswith("row_"):
                continue
            out[key] = out[key] + value if key in out else value
    return out


_GROUP_FIELDS = (
    "model",
    "seed",
    "nbatches",
    "seq_len",
    "positions",
    "shuffle",
    "accumulation",
    "rule",
)
"""Rows that differ in one of these fields are never summarised together (the model by its digest where the
rows have one, its label otherwise)."""


def _group_value(row: Mapping[str, Any], field: str) -> Any:
    if field == "model" and row.get("model_digest"):
        return str(row["model_digest"])
    return row.get(field)


def _baseline_of(row: Mapping[str, Any]) -> str:
    value = row.get("baseline")
    if value in BASELINE_KINDS:
        return str(value)
    return "random" if row["fake_lamp"] else "none"


def summary_table(
    rows: Sequence[Mapping[str, Any]],
    *,
    max_recomputed: float | None = None,
    markdown: bool = False,
) -> str:
    r"""For each corpus and ``m``: KL and flip rate with no recomputation, the best LAMP result (lowest KL),
    its recomputed fraction, and the improvement factors over uniform low precision and over random
    recomputation of the same count (the random baseline at the same ``tau``; a column per baseline, "x
    random" for lampref's and "x random (authors)" for the authors').

    Each table is followed by the number of positions per row and the flip-rate resolution it implies (a
    flip rate moves in steps of ``1 / positions``). Rows that differ in model (its weights' digest where
    the rows record one, its label otherwise), seed, sizes, shuffle, accumulation or rule are never
    summarised together: they get one table each, under a line that names what differs. Within a table,
    two corpora under one name (different ``corpus_digest``) get one line each.

    Parameters
    ----------
    rows : sequence of mapping
        Results rows (:func:`run_experiment`, :func:`read_results`).
    max_recomputed : float, optional
        Only LAMP settings that recompute at most this fraction of the causal scores compete for "best"
        (for example 0.1: the best result at a recomputation rate of 10% or less). A corpus and ``m`` with
        no such setting is left out.
    markdown : bool, default False
        Markdown tables instead of aligned text.

    Returns
    -------
    str
        The tables (one line per corpus and ``m``) and their notes, separated by blank lines.

    Examples
    --------
    >>> row = dict(dataset="prose", m_bits=4, positions=1024)
    >>> rows = [dict(row, tau=2.0, fake_lamp=False, kl_div=1e-2, flip_rate=0.1, sparsity=0),
    ...         dict(row, tau=1.1, fake_lamp=False, kl_div=1e-4, flip_rate=0.01, sparsity=0.05),
    ...         dict(row, tau=1.1, fake_lamp=True, kl_div=5e-3, flip_rate=0.05, sparsity=0.05),
    ...         dict(row, tau=1.02, fake_lamp=False, kl_div=1e-6, flip_rate=0.0, sparsity=0.5)]
    >>> print(summary_table(rows))  # doctest: +NORMALIZE_WHITESPACE
    dataset  m   KL uniform  flip uniform  best tau  KL LAMP   flip LAMP  recomputed  x uniform  x random
    prose    4   1.00e-02    0.1000        1.02      1.00e-06  0.0000     50.00%      10000.0    nan
    <BLANKLINE>
    1024 positions per row: a flip rate moves in steps of 1/1024 = 9.8e-04 (one changed argmax)
    >>> print(summary_table(rows, max_recomputed=0.1, markdown=True))
    | dataset | m | KL uniform | flip uniform | best tau | KL LAMP | flip LAMP | recomputed | x uniform | x random |
    |---|---|---|---|---|---|---|---|---|---|
    | prose | 4 | 1.00e-02 | 0.1000 | 1.1 | 1.00e-04 | 0.0100 | 5.00% | 100.0 | 50.0 |
    <BLANKLINE>
    1024 positions per row: a flip rate moves in steps of 1/1024 = 9.8e-04 (one changed argmax)
    >>> mixed = summary_table([dict(r, seed=7) for r in rows] + [dict(r, seed=42) for r in rows])
    >>> print("\n".join(mixed.splitlines()[:3]))
    these rows come from 2 runs that differ in seed: one table each, never averaged
    <BLANKLINE>
    seed=7:
    """  # noqa: E501 (a doctest line of Markdown output)
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(_group_value(r, k) for k in _GROUP_FIELDS), []).append(r)
    differ = [k for i, k in enumerate(_GROUP_FIELDS) if len({key[i] for key in groups}) > 1]
    parts = []
    if len(groups) > 1:
        parts.append(
            f"these rows come from {len(groups)} runs that differ in {', '.join(differ)}: one table each, "
            "never averaged"
        )
    for key, sel in groups.items():
        if len(groups) > 1:
            named = {**dict(zip(_GROUP_FIELDS, key, strict=True)), "model": sel[0].get("model")}
            if "model_digest" in sel[0]:
                named["model"] = f"{named['model']} (digest {sel[0]['model_digest']})"
            parts.append(", ".join(f"{k}={named[k]}" for k in differ) + ":")
        parts.append(_table(sel, max_recomputed, markdown))
        positions = key[_GROUP_FIELDS.index("positions")]
        if _is_int(positions) and positions > 0:
            parts.append(
                f"{positions} positions per row: a flip rate moves in steps of 1/{positions} = "
                f"{1 / positions:.1e} (one changed argmax)"
            )
        else:
            parts.append(
                "the rows do not record their number of positions: the flip-rate resolution is unknown"
            )
    return "\n\n".join(parts)


def _table(rows: Sequence[Mapping[str, Any]], max_recomputed: float | None, markdown: bool) -> str:
    """The summary table of rows of one run (:func:`summary_table`)."""
    kinds = [k for k in ("random", "authors") if any(_baseline_of(r) == k for r in rows)] or ["random"]
    header = (
        "dataset",
        "m",
        "KL uniform",
        "flip uniform",
        "best tau",
        "KL LAMP",
        "flip LAMP",
        "recomputed",
        "x uniform",
        *("x random" if k == "random" else "x random (authors)" for k in kinds),
    )
    digests: dict[str, set[Any]] = {}
    for r in rows:
        digests.setdefault(str(r["dataset"]), set()).add(r.get("corpus_digest"))

    def label(r: Mapping[str, Any]) -> str:  # two corpora under one name are told apart by their digest
        name = str(r["dataset"])
        return name if len(digests[name]) == 1 else f"{name}@{str(r.get('corpus_digest'))[:8]}"

    lines = [header]
    for dataset, m in sorted({(label(r), int(r["m_bits"])) for r in rows}):
        sel = [r for r in rows if label(r) == dataset and int(r["m_bits"]) == m]
        uniform = [r for r in sel if float(r["tau"]) == 2.0 and _baseline_of(r) == "none"]
        lamp = [r for r in sel if float(r["tau"]) < 2.0 and _baseline_of(r) == "none"]
        if max_recomputed is not None:
            lamp = [r for r in lamp if float(r["sparsity"]) <= max_recomputed]
        if not uniform or not lamp:
            continue
        u = uniform[0]
        best = min(lamp, key=lambda r: (float(r["kl_div"]), float(r["sparsity"])))
        kl_best = float(best["kl_div"])
        x_uniform = float(u["kl_div"]) / kl_best if kl_best > 0 else float("inf")
        x_random = []
        for kind in kinds:
            rnd = [r for r in sel if _baseline_of(r) == kind and float(r["tau"]) == float(best["tau"])]
            x_random.append(float(rnd[0]["kl_div"]) / kl_best if rnd and kl_best > 0 else float("nan"))
        lines.append(
            (
                dataset,
                str(m),
                f"{float(u['kl_div']):.2e}",
                f"{float(u['flip_rate']):.4f}",
                f"{float(best['tau']):g}",
                f"{kl_best:.2e}",
                f"{float(best['flip_rate']):.4f}",
                f"{100 * float(best['sparsity']):.2f}%",
                f"{x_uniform:.1f}",
                *(f"{x:.1f}" for x in x_random),
            )
        )
    if markdown:
        rule = "|" + "---|" * len(header)
        return "\n".join(
            ["| " + " | ".join(lines[0]) + " |", rule, *("| " + " | ".join(r) + " |" for r in lines[1:])]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


_PLOT_KINDS = (
    ("none", "o", "-", "LAMP"),
    ("random", "x", ":", "random"),
    ("authors", "+", "--", "random (authors)"),
)


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend on ``ax`` when it has labelled lines (a grid with nothing to draw leaves the panel bare)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def plot_results(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Draw the study's figures as PNG files in ``out_dir`` and return their paths.

    * ``kl_vs_m.png`` and ``flip_vs_m.png``: KL divergence and flip rate against ``m`` for each ``tau``
      (``tau = 2``: uniform low precision), one panel per corpus;
    * ``kl_vs_recomputed.png``: KL against the recomputed fraction, LAMP and the random baseline;
    * ``layer_recomputed.png``: the recomputed fraction per layer for each ``tau`` (lampref CSVs only).

    Works on the authors' CSVs too (their columns are a subset of lampref's). Needs matplotlib
    (``pip install 'lampref[plot]'``).

    Raises
    ------
    ExperimentError
        No rows, or ``out_dir`` cannot be created or written (the message names the path).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised only without the plot extra
        raise ImportError("plotting needs matplotlib: pip install 'lampref[plot]'") from err
    if not rows:
        raise ExperimentError("no rows to plot")
    out = Path(out_dir)
    fix = "choose another output folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExperimentError(
            f"cannot create the figures folder {out}: {err.strerror or err}; {fix}"
        ) from None
    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        paths.append(out / name)
        try:
            fig.savefig(paths[-1], dpi=120)
        except OSError as err:
            raise ExperimentError(
                f"cannot write the figure {paths[-1]}: {err.strerror or err}; {fix}"
            ) from None
        finally:
            plt.close(fig)

    datasets = sorted({str(r["dataset"]) for r in rows})
    taus = sorted({float(r["tau"]) for r in rows}, reverse=True)
    cmap = plt.get_cmap("viridis")

    def panels(title: str) -> tuple[Any, Any]:
        fig, axes = plt.subplots(
            1, len(datasets), figsize=(max(7.0, 5.0 * len(datasets)), 4.5), squeeze=False
        )
        fig.suptitle(title)
        return fig, axes[0]

    for metric, name, label in (
        ("kl_div", "kl_vs_m.png", "KL(fp32 || test)"),
        ("flip_rate", "flip_vs_m.png", "flip rate"),
    ):
        fig, axes = panels(f"{label} vs mantissa bits of q.k")
        for ax, dataset in zip(axes, datasets, strict=True):
            for i, tau in enumerate(taus):
                sel = sorted(
                    (
                        r
                        for r in rows
                        if r["dataset"] == dataset and float(r["tau"]) == tau and not r["fake_lamp"]
                    ),
                    key=lambda r: int(r["m_bits"]),
                )
                if sel:
                    ys = [max(float(r[metric]), 1e-12) for r in sel]
                    style = (
                        {"color": "black", "lw": 2}
                        if tau == 2.0
                        else {"color": cmap(i / max(len(taus) - 1, 1))}
                    )
                    ax.plot(
                        [int(r["m_bits"]) for r in sel],
                        ys,
                        marker="o",
                        ms=3,
                        label="no recomputation" if tau == 2.0 else f"LAMP tau={tau:g}",
                        **style,
                    )
            ax.set_yscale("log")
            ax.set_xlabel("mantissa bits m")
            ax.set_ylabel(label)
            ax.set_title(dataset)
            ax.grid(True, which="both", alpha=0.3)
        _legend(axes[-1], fontsize=7, ncol=2)
        fig.tight_layout()
        save(fig, name)

    fig, axes = panels("KL vs recomputed fraction: LAMP and random")
    for ax, dataset in zip(axes, datasets, strict=True):
        ms = sorted({int(r["m_bits"]) for r in rows if r["dataset"] == dataset})
        for j, m in enumerate(ms):
            color = cmap(j / max(len(ms) - 1, 1))
            for kind, marker, ls, name in _PLOT_KINDS:
                sel = sorted(
                    (
                        r
                        for r in rows
                        if r["dataset"] == dataset
                        and int(r["m_bits"]) == m
                        and _baseline_of(r) == kind
                        and float(r["tau"]) < 2.0
                    ),
                    key=lambda r: float(r["sparsity"]),
                )
                if sel:
                    ax.plot(
                        [100 * float(r["sparsity"]) for r in sel],
                        [max(float(r["kl_div"]), 1e-12) for r in sel],
                        marker=marker,
                        ls=ls,
                        color=color,
                        ms=3,
                        label=f"m={m} {name}",
                    )
        ax.set_yscale("log")
        ax.set_xlabel("recomputed scores (% of causal entries)")
        ax.set_ylabel("KL(fp32 || test)")
        ax.set_title(dataset)
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[-1], fontsize=6, ncol=2)
    fig.tight_layout()
    save(fig, "kl_vs_recomputed.png")

    layered = [r for r in rows if r.get("layer_sparsity") and not r["fake_lamp"] and float(r["tau"]) < 2.0]
    if layered:
        m = min(int(r["m_bits"]) for r in layered)  # the lowest precision recomputes the most
        fig, axes = panels(f"recomputed fraction per layer (m = {m})")
        for ax, dataset in zip(axes, datasets, strict=True):
            sel = [r for r in layered if r["dataset"] == dataset and int(r["m_bits"]) == m]
            for i, r in enumerate(sorted(sel, key=lambda r: -float(r["tau"]))):
                per_layer = [float(v) for v in str(r["layer_sparsity"]).split(";")]
                ax.plot(
                    range(len(per_layer)),
                    [100 * v for v in per_layer],
                    marker="o",
                    ms=3,
                    color=cmap(i / max(len(sel) - 1, 1)),
                    label=f"tau={float(r['tau']):g}",
                )
            ax.set_xlabel("layer")
            ax.set_ylabel("recomputed (%)")
            ax.set_title(dataset)
            ax.grid(True, alpha=0.3)
        _legend(axes[-1], fontsize=7)
        fig.tight_layout()
        save(fig, "layer_recomputed.png")
    return paths
