r"""The results file: a CSV with one row per (corpus, setting), appended a row at a time.

Each row is written with a single ``write`` on a file opened for appending and flushed to disk: an
interrupted run loses at most the row being computed, and running the same command again skips every row
whose configuration hash is already in the file.

The CSV has the columns of the LAMP authors' results (``model, seed, nbatches, dataset, shuffle, fake_lamp,
m_bits, tau, kl_div, flip_rate, sparsity``) followed by lampref's (``accumulation, rule, seq_len,
positions, layer_sparsity, baseline, model_digest, corpus_digest``, the encoder metrics,
then the sites columns (:data:`SITE_COLUMNS`), then ``config_hash``). The columns keep the authors' names:
``nbatches`` is the number of sequences, ``sparsity`` and ``layer_sparsity`` the recomputed fraction of the
causal scores (overall and per layer), ``fake_lamp`` whether the row is a random baseline.

* ``baseline`` says what a row measures: ``none`` (uniform low precision at ``tau = 2``, LAMP below),
  ``random`` (lampref's random baseline: as many scores per row as LAMP selects, drawn among the row's
  causal entries) or ``authors`` (the authors' "fake LAMP": the draws permute all ``T`` positions of the
  row, masked ones included, so part of them recompute nothing). ``fake_lamp`` is ``baseline != "none"``,
  kept for the authors' tools.
* An encoder's rows (:mod:`lampref.bert`) leave ``kl_div`` and ``flip_rate`` empty (an encoder has no
  next-token distribution) and fill the encoder columns (:data:`ENCODER_COLUMNS`), each averaged over the
  corpus's windows against the float32 model: ``hidden_err``, the relative error
  $\|H - H_{32}\|_F / \|H_{32}\|_F$ of the last hidden states; ``embedding_err``, the relative error of the
  window's sentence embedding (mean pooling, L2 normalisation); ``cosine_err``, $1 - \cos$ of the two
  embeddings; and ``retrieval_flip``, over a fixed set of ``sentences`` sentences of the corpus, the share
  whose nearest neighbour by cosine similarity differs from the float32 model's
  (:func:`lampref.metrics.retrieval_flip_rate`; it moves in steps of ``1 / sentences``). ``positions`` is
  the number of tokens of the windows and ``sparsity`` the recomputed fraction of the visible scores (every
  row sees every token). A decoder's rows leave the encoder columns empty.
* The sites columns say where the model ran in low precision and where look-ahead recomputation applied
  (:mod:`lampref.lamp_sites`): ``sites`` (the GEMM sites under the low-precision accumulator, comma
  separated), ``lamp_sites`` (where LAMP applies), ``gelu_tau`` and ``norm_tau`` (the thresholds of
  :class:`~lampref.lamp_sites.GeluLamp` at ``mlp.fc`` and :class:`~lampref.lamp_sites.NormLamp` at the
  output projections; empty: none), ``storage`` (the operand storage format of the low-precision sites,
  ``none`` for none), ``site_sparsity`` (the recomputed fraction of each site with a rule,
  ``site=fraction`` separated by ``;``) and ``recomputed_macs`` (the recomputed multiply-adds over all
  multiply-adds of the low-precision sites; empty for an encoder). ``sparsity`` stays the recomputed
  fraction of the attention scores. Files with the earlier header (:data:`CSV_COLUMNS_V3`) read with the
  defaults (``sites`` and ``lamp_sites`` ``attn.score``, ``storage`` ``none``).
* ``model`` is a label; ``model_digest`` identifies the model by content (a digest of its configuration,
  ``row_block`` and every parameter array's bytes), ``corpus_digest`` the token windows a row was
  computed on (so the corpus text, ``seq_len``, ``sequences`` and the shuffle).
* ``config_hash`` is a digest of everything that determines a row's numbers: ``model_digest``,
  ``corpus_digest`` and the corpus name, ``seed``, ``seq_len``, ``sequences``, ``shuffle`` and every field
  of the :class:`~lampref.experiment.Setting` (the sites fields only where they differ from their
  defaults, :data:`SETTING_DEFAULTS`, so a setting of the score-site study keeps its hash). lampref's own
  version is not part of it: results from a version whose arithmetic differs belong in a new file.

A results file holds one run. :func:`~lampref.experiment.run_experiment` appends to an existing file only
if its header is exactly :data:`CSV_COLUMNS` and every row in it has the run's ``model_digest``, ``seed``,
``nbatches``, ``seq_len`` and ``shuffle``, and, for each corpus of the run already in the file, its
``corpus_digest``; otherwise it raises :class:`~lampref.errors.ExperimentError` before computing anything,
naming the file, the line and the field, and nothing is written. New corpora and new settings can be added
to a file. :func:`read_results` also reads the authors' CSVs and lampref's earlier header
(:data:`CSV_COLUMNS_V1`, without ``baseline`` and the digests), filling in ``baseline`` from ``fake_lamp``
(``authors`` in the authors' files, ``random`` in lampref's).

The functions here without a leading underscore and outside ``__all__`` serve the run and the report.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExperimentError

__all__ = [
    "AUTHORS_COLUMNS",
    "BASELINE_KINDS",
    "CSV_COLUMNS",
    "CSV_COLUMNS_V1",
    "CSV_COLUMNS_V2",
    "CSV_COLUMNS_V3",
    "ENCODER_COLUMNS",
    "SETTING_DEFAULTS",
    "SITE_COLUMNS",
    "read_results",
]

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

CSV_COLUMNS_V2: tuple[str, ...] = (
    *CSV_COLUMNS_V1[:-1],
    "baseline",
    "model_digest",
    "corpus_digest",
    "config_hash",
)
"""lampref's columns before the encoder study (no encoder metrics): read, never appended to."""

ENCODER_COLUMNS: tuple[str, ...] = (
    "hidden_err",
    "embedding_err",
    "cosine_err",
    "retrieval_flip",
    "sentences",
)
"""The encoder study's metrics (module notes); empty in the rows of a decoder."""

CSV_COLUMNS_V3: tuple[str, ...] = (*CSV_COLUMNS_V2[:-1], *ENCODER_COLUMNS, "config_hash")
"""lampref's columns before the sites study (no sites columns): read, never appended to."""

SITE_COLUMNS: tuple[str, ...] = (
    "sites",
    "lamp_sites",
    "gelu_tau",
    "norm_tau",
    "storage",
    "site_sparsity",
    "recomputed_macs",
)
"""Where the model ran in low precision, where LAMP applied, and what it recomputed (module notes)."""

SETTING_DEFAULTS: dict[str, Any] = {
    "sites": "attn.score",
    "lamp_sites": "attn.score",
    "gelu_tau": None,
    "norm_tau": None,
    "storage": "none",
}
"""The sites fields of a :class:`~lampref.experiment.Setting` in the score-site study (and in files written
before the sites columns)."""

CSV_COLUMNS: tuple[str, ...] = (*CSV_COLUMNS_V3[:-1], *SITE_COLUMNS, "config_hash")
"""The columns of the results CSV :func:`~lampref.experiment.run_experiment` writes, in order."""

BASELINE_KINDS: tuple[str, ...] = ("none", "random", "authors")
"""Values of :attr:`Setting.baseline <lampref.experiment.Setting.baseline>` and of the ``baseline`` column
(module notes)."""

_NEEDED = ("dataset", "fake_lamp", "m_bits", "tau", "kl_div", "flip_rate", "sparsity")  # summary and plots
_NEEDED_VALUES = ("dataset", "fake_lamp", "m_bits", "tau", "sparsity")  # kl_div and flip_rate: a decoder's
_RUN_FIELDS = ("model_digest", "seed", "nbatches", "seq_len", "shuffle")  # one value per results file
_FIX = "choose another output folder"


def baseline_of(row: Mapping[str, Any]) -> str:
    """The baseline a row measures (one of :data:`BASELINE_KINDS`), from ``fake_lamp`` where the row has no
    ``baseline``."""
    value = row.get("baseline")
    if value in BASELINE_KINDS:
        return str(value)
    return "random" if row["fake_lamp"] else "none"


def make_row(
    identity: Mapping[str, Any],
    *,
    model: str,
    positions: int,
    recomputed: float,
    recomputed_per_layer: Sequence[float],
    config_hash: str,
    site_sparsity: str = "",
    recomputed_macs: float | None = None,
    **metrics: float | int | None,
) -> dict[str, Any]:
    """The CSV row of one (corpus, setting), keys in :data:`CSV_COLUMNS` order.

    ``identity`` holds every column that determines the row's numbers (the run's, the corpus's and the
    setting's: what ``config_hash`` digests); the recomputed fraction goes to the authors' ``sparsity`` and
    ``layer_sparsity`` columns, and ``fake_lamp`` is derived from ``baseline``; the sites fields missing
    from ``identity`` take their :data:`SETTING_DEFAULTS`. ``metrics`` are a decoder's
    ``kl_div`` and ``flip_rate`` or an encoder's :data:`ENCODER_COLUMNS`; the others stay empty (None).
    """
    unknown = sorted(set(metrics) - {"kl_div", "flip_rate", *ENCODER_COLUMNS})
    if unknown:
        raise ExperimentError(f"make_row got the unknown metrics {unknown}")
    values = {
        **dict.fromkeys(("kl_div", "flip_rate", *ENCODER_COLUMNS)),
        **metrics,
        **SETTING_DEFAULTS,
        **identity,
        "site_sparsity": site_sparsity,
        "recomputed_macs": recomputed_macs,
        "model": model,
        "fake_lamp": identity["baseline"] != "none",
        "positions": positions,
        "sparsity": recomputed,
        "layer_sparsity": ";".join(f"{v:.6g}" for v in recomputed_per_layer),
        "config_hash": config_hash,
    }
    return {k: values[k] for k in CSV_COLUMNS}


# ------------------------------------------------------------------------------------ identity
def digest(*parts: Any) -> str:
    """A short hex digest of arrays (dtype, shape and bytes) and JSON-able values."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"array {a.dtype.str} {a.shape}\n".encode())
            h.update(a.reshape(-1).view(np.uint8).data)
        else:
            h.update(json.dumps(part, sort_keys=True, default=repr).encode() + b"\n")
    return h.hexdigest()[:16]


def config_hash(fields: Mapping[str, Any]) -> str:
    """The ``config_hash`` of a row whose identity columns are ``fields`` (module notes)."""
    return digest(dict(fields))


def model_digest(model: Any) -> str:
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
    return digest(*parts)


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
    "hidden_err": (float, "a number"),
    "embedding_err": (float, "a number"),
    "cosine_err": (float, "a number"),
    "retrieval_flip": (float, "a number"),
    "sentences": (_parse_int, "an integer"),
    "sparsity": (float, "a number"),
    "shuffle": (_parse_bool, "True or False"),
    "fake_lamp": (_parse_bool, "True or False"),
    "layer_sparsity": (_parse_layers, "numbers separated by ';'"),
    "gelu_tau": (float, "a number"),
    "norm_tau": (float, "a number"),
    "recomputed_macs": (float, "a number"),
}


def _parse_row(header: Sequence[str], fields: Sequence[str], where: str) -> dict[str, Any]:
    """One CSV record as a typed row; ExperimentError naming ``where`` and the column on a bad value."""
    row: dict[str, Any] = {}
    for key, text in zip(header, fields, strict=True):
        parse, what = _PARSERS.get(key, (str, "text"))
        if any(c < " " or c == "\x7f" for c in text):
            raise ExperimentError(f"{where}, column {key}: {text[:40]!r} holds a control character")
        if text == "" and key in _PARSERS and key not in _NEEDED_VALUES:
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
    if row["kl_div"] is None and row.get("hidden_err") is None:
        raise ExperimentError(
            f"{where}: neither kl_div (a decoder's) nor hidden_err (an encoder's) holds a value"
        )
    for key, value in SETTING_DEFAULTS.items():
        row.setdefault(key, value)  # files written before the sites columns
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

    Reads lampref's CSVs (:data:`CSV_COLUMNS`, or the earlier :data:`CSV_COLUMNS_V2` and
    :data:`CSV_COLUMNS_V1`) and the authors' (:data:`AUTHORS_COLUMNS`); rows without a ``baseline``
    column get one from ``fake_lamp``, rows without the sites columns their :data:`SETTING_DEFAULTS`
    (module notes).

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
def append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append one CSV row (the header first if the file is new) with a single write, flushed to disk."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    try:
        if not path.exists() or path.stat().st_size == 0:
            writer.writeheader()
        writer.writerow({k: row[k] for k in CSV_COLUMNS})
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, buf.getvalue().encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise ExperimentError(f"cannot write to the results file {path}: {err.strerror}") from None


def prepare_output(path: Path) -> None:
    """Create the folder of the results CSV and check that both can be written, or raise ExperimentError."""
    if path.is_dir():
        raise ExperimentError(f"cannot write results to {path}: it is a folder, not a file; {_FIX}")
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ExperimentError(
                    f"cannot write results to {path}: {folder} is a file, not a folder; {_FIX}"
                )
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExperimentError(
            f"cannot create the output folder {path.parent}: {err.strerror}; {_FIX}"
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ExperimentError(f"the output folder {path.parent} is not writable; {_FIX}")
    if path.exists():
        if not path.is_file():
            raise ExperimentError(f"cannot write results to {path}: it is not a regular file; {_FIX}")
        try:
            if not os.access(path, os.W_OK):
                raise PermissionError(13, "Permission denied")
            with open(path, "ab"):
                pass
        except OSError as err:
            raise ExperimentError(
                f"cannot write to the results file {path}: {err.strerror}; {_FIX}"
            ) from None


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the results file ``path`` (created empty if missing) while a run writes it,
    so that a second run on the same file is refused instead of interleaving its rows.

    The lock is POSIX ``flock`` on the file itself (released when the run ends, also by a crash); where
    ``fcntl`` does not exist (Windows) no lock is taken.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        handle = open(path, "ab")  # noqa: SIM115 -- held open for the whole run
    except OSError as err:
        raise ExperimentError(f"cannot write to the results file {path}: {err.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExperimentError(
                f"{path}: another run is writing this results file; wait for it to finish, or give this "
                "run another output folder"
            ) from None
        yield


def existing_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """The ``(line, row)`` pairs of an existing results file that a run may append to, and the length to
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


def truncate(path: Path, size: int) -> None:
    """Cut the results file to ``size`` bytes (drop a line cut short by a crash)."""
    try:
        with open(path, "rb+") as f:
            f.truncate(size)
    except OSError as err:
        raise ExperimentError(f"cannot write to the results file {path}: {err.strerror}") from None


def _foreign_header(header: tuple[str, ...]) -> str:
    if header == CSV_COLUMNS_V1:
        return (
            "written by an earlier lampref, without the baseline and digest columns, so its rows cannot be "
            "checked against this run (the file stays readable by read_results and `lampref plot`)"
        )
    if header == CSV_COLUMNS_V3:
        return (
            "written by an earlier lampref, without the sites columns; rows are never appended under another "
            "header (the file stays readable by read_results and `lampref plot`)"
        )
    if header == CSV_COLUMNS_V2:
        return (
            "written by an earlier lampref, without the encoder columns; rows are never appended under "
            "another header (the file stays readable by read_results and `lampref plot`)"
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


def check_identity(
    path: Path,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    run: Mapping[str, Any],
    corpora: Mapping[str, str],
) -> None:
    """Refuse a results file holding rows of another run (module notes).

    ``run`` holds the run's value of each field of a results file's identity, ``corpora`` the
    ``corpus_digest`` of each corpus of the run.
    """
    fix = f"use another output folder, or delete {path} to start over"
    for line, row in rows:
        for key in _RUN_FIELDS:
            if row[key] != run[key]:
                raise ExperimentError(
                    f"{path}, line {line}: computed with {_FIELD_NAMES[key]} ({key}={row[key]!r}, this run: "
                    f"{run[key]!r}); {fix}"
                )
        expected = corpora.get(row["dataset"])
        if expected is not None and row["corpus_digest"] != expected:
            raise ExperimentError(
                f"{path}, line {line}: the corpus {row['dataset']!r} is not the one this row was computed on "
                f"(corpus_digest={row['corpus_digest']!r}, this run: {expected!r}); {fix}"
            )
