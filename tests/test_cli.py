"""The command line, run in-process through `main` (and as a process where the exit path matters).

Every expected failure of a command is one line on stderr, ``lampref <command>: ...``, with a non-zero exit
status and no traceback; what is knowable before the model is loaded is refused before it is loaded.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import errno
import functools
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import lampref.experiment as experiment
import lampref.gpt2 as gpt2
import lampref.lamp as lamp
from lampref import get_format
from lampref.cli import build_parser, main
from lampref.gpt2 import GPT2, GPT2Config, Tokenizer, random_params, save

CORPORA = Path(gpt2.__file__).parents[1] / "data" / "corpora"


def test_formats_table_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("fp64", "fp32", "tf32", "bf16", "fp16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"):
        assert f"\n{name} " in out
    assert "448" in out
    assert str(get_format("e4m3").p) in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


TINY = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257)  # the tokenizer's ids


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tiny")
    save(random_params(TINY, 1), TINY, path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir: str) -> GPT2:
    return GPT2.load(tiny_model_dir)


def _call(argv: list[str]) -> tuple[int, str, str]:
    """Run ``lampref argv`` in-process: (exit status, stdout, stderr); argparse's exit counts as a status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse; a message given as the code would be printed by Python
            status = exc.code if isinstance(exc.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def _assert_one_line_error(status: int, err: str, command: str) -> str:
    """A failed command: non-zero status, one line ``lampref <command>: ...`` on stderr, no traceback."""
    assert "Traceback" not in err
    assert status != 0, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lampref {command}: "), err
    return lines[0]


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model fails the test: the command must be refused before it loads one."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was loaded although the command line could be refused before")

    monkeypatch.setattr(GPT2, "load", refuse)
    monkeypatch.setattr(gpt2, "default_model", refuse)


# -- generate ---------------------------------------------------------------------------------------------


@functools.cache
def _tokenizer() -> Tokenizer:
    return Tokenizer()


def _greedy(model: GPT2, ids: list[int], n: int) -> list[int]:
    """``n`` tokens, each the argmax of the logits of the whole sequence so far (lowest id on ties)."""
    seq = list(ids)
    for _ in range(n):
        seq.append(int(np.argmax(model.logits(np.asarray(seq))[-1])))
    return seq[len(ids) :]


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.text(min_size=1, max_size=12), n=st.integers(1, 8))
@example(prompt="Alan Turing theorized that", n=6)
@example(prompt="a", n=1)
@example(prompt=" x" * 57, n=8)  # 57 + 8 - 1 = 64 positions: the whole context
@example(prompt=" x" * 57, n=9)  # past the context: refused
def test_issue11_item01_generate_prints_the_prompt_and_n_greedy_tokens(
    tiny_model_dir: str, tiny_model: GPT2, prompt: str, n: int
) -> None:
    """`generate` dropped the first len(prompt) new tokens: it prints the prompt and exactly N greedy ones."""
    status, out, err = _call(["generate", "--model", tiny_model_dir, "--tokens", str(n), prompt])
    tok = _tokenizer()
    ids = tok.encode(prompt, allowed_special="all")
    if len(ids) + n - 1 > TINY.n_positions:
        assert "--tokens" in _assert_one_line_error(status, err, "generate")
        return
    assert (status, err) == (0, "")
    assert out == prompt + tok.decode(_greedy(tiny_model, ids, n)) + "\n"


def test_generate_reports_a_missing_model_without_traceback() -> None:
    status, _, err = _call(["generate", "--model", "/nonexistent/weights", "hi"])
    assert status == 1
    assert "/nonexistent/weights" in _assert_one_line_error(status, err, "generate")


# -- option values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--seq-len", "0"),
        ("--seq-len", "1"),
        ("--seq-len", "-3"),
        ("--seq-len", "1.5"),
        ("--seq-len", "\u0663\u0662"),  # Arabic-Indic digits: int() would take them
        ("--sequences", "0"),
        ("--sequences", ""),
        ("--m-bits", ""),
        ("--m-bits", " , "),
        ("--m-bits", "4,,8"),
        ("--m-bits", "4,4"),
        ("--tau", ""),
        ("--tau", "1.5,1.50"),
        ("--tau", "nan"),
        ("--seed", "-1"),
        ("--corpus", ""),
        ("--corpus", " "),
    ],
)
def test_issue11_item11_invalid_experiment_values_are_refused(
    no_model_load: None, tmp_path: Path, option: str, value: str
) -> None:
    """--seq-len 0, --sequences 0, --m-bits "" (and the like) fell back to the preset: they are refused."""
    argv = ["experiment", "--quick", "--out", str(tmp_path / "o"), "--no-progress", option, value]
    status, out, err = _call(argv)
    assert option in _assert_one_line_error(status, err, "experiment")
    assert out == ""
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["0", "-2", "", "two"])
def test_issue11_item11_invalid_token_counts_are_refused(no_model_load: None, value: str) -> None:
    """`generate --tokens 0` (or another count below one) is refused in one line, before the model loads."""
    status, _, err = _call(["generate", "--model", "m", "--tokens", value, "hi"])
    assert "--tokens" in _assert_one_line_error(status, err, "generate")


def _parse_error(argv: list[str]) -> str:
    """The stderr of an argument list argparse refuses (parsing only: nothing runs)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    return err.getvalue()


@given(n=st.integers(-(10**6), 10**6))
@example(n=0)
@example(n=1)
@example(n=2)
def test_issue11_item11_counts_are_taken_as_given_or_refused(n: int) -> None:
    """A count option is the value given (no fallback to the preset) or an argparse error."""
    for command, option, low in (
        (["experiment"], "--seq-len", 2),
        (["experiment"], "--sequences", 1),
        (["generate", "hi", "--model", "m"], "--tokens", 1),
    ):
        argv = [*command, option, str(n)]
        if n >= low:
            assert getattr(build_parser().parse_args(argv), option[2:].replace("-", "_")) == n
        else:
            assert option in _assert_one_line_error(2, _parse_error(argv), command[0])


@given(values=st.lists(st.integers(0, 23), min_size=1, max_size=6), sep=st.sampled_from([",", ", ", " "]))
@example(values=[4, 4], sep=",")
def test_issue11_item11_lists_are_taken_as_given_or_refused(values: list[int], sep: str) -> None:
    """--m-bits and --tau are the values given, in order; a repeated value is refused, never dropped."""
    taus = [f"{v / 12:.3f}" for v in values]
    for option, text, expected in (
        ("--m-bits", sep.join(map(str, values)), values),
        ("--tau", sep.join(taus), [float(t) for t in taus]),
    ):
        argv = ["experiment", option, text]
        if len(set(values)) == len(values):
            assert getattr(build_parser().parse_args(argv), option[2:].replace("-", "_")) == expected
        else:
            assert "given twice" in _assert_one_line_error(2, _parse_error(argv), "experiment")


def test_issue11_item14_baseline_choices_reach_the_grid(
    no_model_load: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--baseline random|authors|none selects grid(baseline='random' | 'authors' | None)."""
    seen: list[Any] = []

    def spy(m_bits: Any, taus: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["baseline"])
        raise experiment.ExperimentError("stopped by the test")

    monkeypatch.setattr(experiment, "grid", spy)
    for choice in ("random", "authors", "none"):
        _call(["experiment", "--quick", "--out", str(tmp_path), "--baseline", choice])
    assert seen == ["random", "authors", None]
    status, out, _ = _call(["experiment", "--help"])
    assert status == 0
    assert "fake LAMP" in " ".join(out.split())


@pytest.mark.parametrize(
    ("option", "keyword", "library"),
    [("--rule", "rule", "RULES"), ("--accumulation", "accumulation", "ACCUMULATIONS")],
)
def test_rule_and_accumulation_choices_are_the_librarys(
    no_model_load: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    option: str,
    keyword: str,
    library: str,
) -> None:
    """--rule and --accumulation take every value of lamp.RULES and experiment.ACCUMULATIONS (the grid gets
    it as given) and nothing else."""
    values = tuple(getattr(lamp if library == "RULES" else experiment, library))
    seen: list[Any] = []

    def spy(m_bits: Any, taus: Any, **kwargs: Any) -> Any:
        seen.append(kwargs[keyword])
        raise experiment.ExperimentError("stopped by the test")

    monkeypatch.setattr(experiment, "grid", spy)
    for value in values:
        _call(["experiment", "--quick", "--out", str(tmp_path), option, value])
    assert seen == list(values)
    status, _, err = _call(["experiment", "--quick", "--out", str(tmp_path), option, "nope"])
    assert status == 2
    assert "invalid choice: 'nope'" in err


# -- corpora ----------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("layout", "specs"),
    [
        ({"c1/mycorp.txt": "a", "c2/mycorp.txt": "b"}, ["c1/mycorp.txt", "c2/mycorp.txt"]),
        ({"c1/mycorp/a.txt": "a", "c2/mycorp.md": "b"}, ["c1/mycorp", "c2/mycorp.md"]),
        ({"x/prose.txt": "a"}, ["prose", "x/prose.txt"]),
        ({"c.txt": "a"}, ["c.txt", "./c.txt"]),
        ({}, ["code", "code"]),
        ({"x/c.txt": "a"}, ["x", "x/../x"]),
    ],
    ids=[
        "two-files",
        "folder-and-file",
        "bundled-and-file",
        "same-file-twice",
        "bundled-twice",
        "same-folder",
    ],
)
def test_issue11_item09_corpus_names_must_be_unique(
    no_model_load: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    layout: dict[str, str],
    specs: list[str],
) -> None:
    """Two corpora with one name kept only one (silently): refused, naming both specs."""
    monkeypatch.chdir(tmp_path)
    for rel, text in layout.items():
        _write(tmp_path / rel, text)
    status, _, err = _call(["experiment", "--corpus", *specs, "--out", "o", "--no-progress"])
    line = _assert_one_line_error(status, err, "experiment")
    assert all(repr(s) in line for s in specs)


@pytest.fixture
def spy_corpora(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The corpora the study is handed (token lists by name); the study itself is not run."""
    seen: dict[str, list[int]] = {}

    def spy(model: Any, corpora: Any, settings: Any, **kwargs: Any) -> Any:
        seen.update({name: [int(t) for t in tokens] for name, tokens in corpora.items()})
        raise experiment.ExperimentError("stopped by the test")

    monkeypatch.setattr(experiment, "run_experiment", spy)
    return seen


@pytest.mark.parametrize("spec", ["./prose", "prose/", "ABS/prose", "./code.txt", "ABS/code.txt"])
def test_issue11_item09_a_path_means_the_path(
    tiny_model_dir: str,
    spy_corpora: dict[str, list[int]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    spec: str,
) -> None:
    """`--corpus ./prose` with a local prose/ folder used the bundled corpus: a path is the path."""
    monkeypatch.chdir(tmp_path)
    local = "A local corpus that shares a bundled corpus's name.\n"
    _write(tmp_path / "prose" / "notes.txt", local)
    _write(tmp_path / "code.txt", local)
    spec = spec.replace("ABS", str(tmp_path))
    status, _, err = _call(
        ["experiment", "--model", tiny_model_dir, "--corpus", spec, "--seq-len", "8", "--no-progress"]
    )
    assert "stopped by the test" in _assert_one_line_error(status, err, "experiment")
    name = "code" if "code" in spec else "prose"
    assert spy_corpora == {name: Tokenizer().encode(local, disallowed_special=())}


def test_issue11_item09_bare_bundled_names(
    tiny_model_dir: str, spy_corpora: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bare bundled name is the bundled corpus; if a local path has that name too, it is ambiguous."""
    monkeypatch.chdir(tmp_path)
    tok = Tokenizer()
    bundled = {
        n: tok.encode((CORPORA / f"{n}.txt").read_text("utf-8"), disallowed_special=())
        for n in ("prose", "code", "abstracts")
    }
    _call(["experiment", "--model", tiny_model_dir, "--corpus", "prose", "--seq-len", "8", "--no-progress"])
    assert spy_corpora == {"prose": bundled["prose"]}
    _write(tmp_path / "code" / "main.py", "print(1)\n")  # the defaults stay the bundled corpora
    spy_corpora.clear()
    _call(["experiment", "--model", tiny_model_dir, "--seq-len", "8", "--no-progress"])
    assert spy_corpora == bundled
    spy_corpora.clear()
    status, _, err = _call(
        ["experiment", "--model", tiny_model_dir, "--corpus", "code", "--seq-len", "8", "--no-progress"]
    )
    line = _assert_one_line_error(status, err, "experiment")
    assert "./code" in line
    assert str(CORPORA / "code.txt") in line
    assert spy_corpora == {}
    status, out, _ = _call(["experiment", "--help"])
    assert "write ./NAME for a local file or folder with a bundled name" in " ".join(out.split())


# -- hostile inputs to `experiment` and `plot` ------------------------------------------------------------

BASE = ["--seq-len", "8", "--sequences", "1", "--m-bits", "4", "--tau", "2,1.5", "--baseline", "none"]
CORPUS_TEXT = "The quick brown fox jumps over the lazy dog. " * 4


def _experiment(model: str | Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "experiment",
        "--model",
        str(model),
        "--corpus",
        str(corpus),
        *BASE,
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="module")
def finished(tiny_model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of a finished tiny run (the corpus file beside it)."""
    root = tmp_path_factory.mktemp("finished")
    corpus = _write(root / "c.txt", CORPUS_TEXT)
    status, _, err = _call(_experiment(tiny_model_dir, corpus, root / "out"))
    assert status == 0, err
    return root / "out"


def _make_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write under ``folder`` fails with EACCES, as in a read-only folder (for root too)."""
    folder = folder.resolve()

    def inside(path: Any) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        return Path(os.fsdecode(path)).resolve().is_relative_to(folder)

    def denied(path: Any) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    real_os_open, real_open, real_mkdir = os.open, builtins.open, os.mkdir
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & writing and inside(path):
            raise denied(path)
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+") and inside(file):
            raise denied(file)
        return real_open(file, mode, *args, **kwargs)

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path):
            raise denied(path)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)


def _refuse_load(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the model was loaded although the command line could be refused before")


Setup = Callable[[Path, str, pytest.MonkeyPatch], list[str]]
"""Sets a hostile input up in a fresh folder (tmp, model folder, monkeypatch) and returns the command."""


def _edited_csv(finished: Path, tmp: Path, edit: Callable[[bytes], bytes]) -> Path:
    path = tmp / "out" / "results.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(edit((finished / "results.csv").read_bytes()))
    return path


def _foreign_csv(finished: Path, tmp: Path, columns: list[str] | None) -> Path:
    """The finished run's rows under the authors' 11 columns, or under ``columns``."""
    rows = list(csv.DictReader(io.StringIO((finished / "results.csv").read_text("utf-8"))))
    buf = io.StringIO()
    w = csv.DictWriter(
        buf, fieldnames=columns or list(rows[0])[:11], extrasaction="ignore", lineterminator="\n"
    )
    w.writeheader()
    w.writerows(rows)
    return _write(tmp / "out" / "results.csv", buf.getvalue())


CSV_EDITS: dict[str, Callable[[bytes], bytes]] = {
    "garbage-line": lambda b: b + b"garbage\n",
    "unparseable-value": lambda b: b.replace(b",4,", b",four,", 1),
    "empty-value": lambda b: b.replace(b",4,", b",,", 1),
    "nul-bytes": lambda b: b + b"\0\0,\0\n",
    "short-row": lambda b: b + b.splitlines()[1].rsplit(b",", 5)[0] + b"\n",
    "non-utf8": lambda b: b.replace(b",c,", b",\xe9\xff,"),
}


def _hostile(finished: Path) -> dict[str, tuple[bool, Setup]]:
    """Hostile inputs of `experiment` and `plot` by name: (must fail, setup).

    A results folder holds one run: other weights, an edited corpus or another seed are refused, not mixed.
    """
    cases = {**_hostile_runs(finished), **_hostile_outputs(finished)}

    def edited(name: str, command: str) -> Setup:
        def setup(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
            path = _edited_csv(finished, tmp, CSV_EDITS[name])
            return _exp(finished, path.parent, model) if command == "experiment" else ["plot", str(path)]

        return setup

    for name in CSV_EDITS:
        for command in ("experiment", "plot"):
            cases[f"item10-{command}-{name}"] = (True, edited(name, command))
    return cases


def _exp(finished: Path, out: Path, model: str, *extra: str) -> list[str]:
    """An `experiment` command line on the corpus of the finished run."""
    return _experiment(model, finished.parent / "c.txt", out, *extra)


def _hostile_runs(finished: Path) -> dict[str, tuple[bool, Setup]]:
    """Runs that a results folder must refuse to mix with its own (:func:`_hostile`)."""

    def exp(out: Path, model: str, *extra: str) -> list[str]:
        return _exp(finished, out, model, *extra)

    def other_weights(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
        a, b = tmp / "A" / "gpt2", tmp / "B" / "gpt2"
        shutil.copytree(model, a)
        b.parent.mkdir()
        save(random_params(TINY, 2), TINY, b)
        assert _call(exp(tmp / "out", str(a)))[0] == 0
        return exp(tmp / "out", str(b))

    def corpus_edited(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
        c = _write(tmp / "c.txt", CORPUS_TEXT)
        assert _call(_experiment(model, c, tmp / "out"))[0] == 0
        c.write_text(CORPUS_TEXT.upper(), encoding="utf-8")
        return _experiment(model, c, tmp / "out")

    def other_seed(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
        shutil.copytree(finished, tmp / "out")  # seed 42
        return exp(tmp / "out", model, "--seed", "7")

    def plot_mixed_seeds(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
        assert _call(exp(tmp / "s7", model, "--seed", "7"))[0] == 0
        text = (tmp / "s7" / "results.csv").read_text("utf-8")
        seed42 = (finished / "results.csv").read_text("utf-8").split("\n", 1)[1]
        return ["plot", str(_write(tmp / "mixed.csv", text + seed42)), "--out", str(tmp / "fig")]

    return {
        "item07-same-folder-name-other-weights": (True, other_weights),
        "item07-corpus-edited-in-place": (True, corpus_edited),
        "item08-authors-columns": (True, lambda t, m, mp: exp(_foreign_csv(finished, t, None).parent, m)),
        "item08-reordered-columns": (
            True,
            lambda t, m, mp: exp(_foreign_csv(finished, t, list(reversed(experiment.CSV_COLUMNS))).parent, m),
        ),
        "item08-other-seed": (True, other_seed),
        "item08-plot-mixed-seeds": (False, plot_mixed_seeds),
        "item09-duplicate-names": (
            True,
            lambda t, m, mp: [
                "experiment",
                "--model",
                m,
                "--corpus",
                str(_write(t / "c1" / "x.txt", CORPUS_TEXT)),
                str(_write(t / "c2" / "x.txt", CORPUS_TEXT)),
                *BASE,
                "--out",
                str(t / "out"),
                "--no-progress",
            ],
        ),
    }


def _hostile_outputs(finished: Path) -> dict[str, tuple[bool, Setup]]:
    """Output folders, results files and option values that must be refused (:func:`_hostile`)."""

    def exp(out: Path, model: str, *extra: str) -> list[str]:
        return _exp(finished, out, model, *extra)

    def read_only(finished_csv: bool) -> Setup:
        def setup(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
            shutil.copytree(finished, tmp / "out") if finished_csv else (tmp / "out").mkdir()
            mp.setattr(GPT2, "load", _refuse_load)
            _make_read_only(tmp / "out", mp)
            return exp(tmp / "out", model)

        return setup

    def bad_out(build: Callable[[Path], Path]) -> Setup:
        def setup(tmp: Path, model: str, mp: pytest.MonkeyPatch) -> list[str]:
            mp.setattr(GPT2, "load", _refuse_load)
            return exp(build(tmp), model)

        return setup

    def csv_is_a_folder(tmp: Path) -> Path:
        (tmp / "out" / "results.csv").mkdir(parents=True)
        return tmp / "out"

    def args(*extra: str) -> Setup:
        return lambda tmp, model, mp: exp(tmp / "out", model, *extra)

    return {
        "item10-out-is-a-file": (True, bad_out(lambda t: _write(t / "out", "x"))),
        "item10-out-under-a-file": (True, bad_out(lambda t: _write(t / "f", "x") / "out")),
        "item10-results-csv-is-a-folder": (True, bad_out(csv_is_a_folder)),
        "item10-read-only-folder": (True, read_only(False)),
        "item10-read-only-folder-finished-csv": (True, read_only(True)),
        "item10-plot-missing-file": (True, lambda t, m, mp: ["plot", str(t / "none.csv")]),
        "item10-plot-a-folder": (True, lambda t, m, mp: ["plot", str(t)]),
        "item10-plot-empty-file": (True, lambda t, m, mp: ["plot", str(_write(t / "r.csv", ""))]),
        "item10-shuffle-negative-seed": (True, args("--shuffle-tokens", "--seed", "-1")),
        "item11-seq-len-0": (True, args("--seq-len", "0")),
        "item11-sequences-0": (True, args("--sequences", "0")),
        "item11-m-bits-empty": (True, args("--m-bits", "")),
        "item11-seq-len-past-the-context": (True, args("--seq-len", str(TINY.n_positions + 1))),
    }


@pytest.mark.parametrize("name", list(_hostile(Path("/unused"))))
def test_issue11_item10_no_traceback_on_hostile_input(
    finished: Path, tiny_model_dir: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """`experiment` and `plot` printed tracebacks on hostile inputs: each is one line (or a success)."""
    must_fail, setup = _hostile(finished)[name]
    argv = setup(tmp_path, tiny_model_dir, monkeypatch)
    status, _, err = _call(argv)
    if must_fail or status:
        _assert_one_line_error(status, err, argv[0])
    else:
        assert "Traceback" not in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes in read-only folders")
@pytest.mark.parametrize("finished_csv", [False, True])
def test_issue11_item10_read_only_folder_for_real(
    finished: Path, tiny_model_dir: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, finished_csv: bool
) -> None:
    """A read-only output folder was found after a row (or the whole run): refused before the model loads."""
    out = tmp_path / "out"
    shutil.copytree(finished, out) if finished_csv else out.mkdir()
    monkeypatch.setattr(GPT2, "load", _refuse_load)
    out.chmod(0o555)
    try:
        status, _, err = _call(_experiment(tiny_model_dir, finished.parent / "c.txt", out))
    finally:
        out.chmod(0o755)
    assert str(out) in _assert_one_line_error(status, err, "experiment")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), header=st.booleans())
@example(data=b"\xff\xfe", header=False)
@example(data=b"garbage\n", header=True)
@example(data=b"x,4,2.0,,,,\n", header=True)
def test_issue11_item10_plot_of_arbitrary_bytes(
    finished: Path, tmp_path: Path, data: bytes, header: bool
) -> None:
    """`lampref plot` on any bytes (after a valid header or not): a success, or one `lampref plot:` line."""
    path = tmp_path / "r.csv"
    head = (finished / "results.csv").read_bytes() if header else b""
    path.write_bytes(head + data)
    status, out, err = _call(["plot", str(path), "--out", str(tmp_path / "fig")])
    if status:
        _assert_one_line_error(status, err, "plot")
    else:
        assert "Traceback" not in err
        assert "KL uniform" in out


@pytest.mark.parametrize("command", ["experiment", "plot"])
def test_issue11_item10_process_prints_one_line(tmp_path: Path, command: str) -> None:
    """As a process: `python -m lampref experiment --out FILE` and `plot GARBAGE` print one line, exit 1."""
    bad = tmp_path / "bad"
    bad.write_bytes(b"m_bits,tau,kl_div\n4,2.0,abc\n\xff\n")
    argv = ["experiment", "--quick", "--out", str(bad)] if command == "experiment" else ["plot", str(bad)]
    proc = subprocess.run(
        [sys.executable, "-m", "lampref", *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1
    assert str(bad) in _assert_one_line_error(proc.returncode, proc.stderr, command)


def test_an_interrupted_command_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ctrl-C during a run: one line and the conventional status 130, no traceback."""

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "read_results", interrupted)
    csv_path = _write(tmp_path / "r.csv", "m_bits,tau,kl_div\n")
    status, _, err = _call(["plot", str(csv_path)])
    assert status == 130
    assert "interrupted" in _assert_one_line_error(status, err, "plot")


def test_a_closed_stdout_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """`lampref formats | head -1`: the closed pipe ends the command without a message or traceback."""

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    err = io.StringIO()
    with contextlib.redirect_stdout(ClosedPipe()), contextlib.redirect_stderr(err):
        assert main(["formats"]) == 1
    assert err.getvalue() == ""
