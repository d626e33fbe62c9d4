"""The notebooks: every ``notebooks/*.py`` and ``notebooks/solutions/*.py`` (jupytext ``py:percent``) is
converted to ``.ipynb`` and executed.

Each notebook runs in a fresh Jupyter kernel of this interpreter, through nbmake in a separate pytest process
that ignores this repository's pytest configuration, with ``LAMPREF_SMALL=1`` (small sizes) and the Agg
matplotlib backend. A NumPy ``RuntimeWarning`` (overflow, invalid value, ...) in a notebook is an error, as
in the test suite. The check is execution, not comparison of outputs. Every notebook ends with exercises and
has a solutions file of the same name, and the student set (``scripts/student_notebooks.py``) holds the
notebooks and never the solutions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.py"))
STUDENT_SET = ROOT / "scripts" / "student_notebooks.py"
KERNEL = "lampref-notebook-test"
NEEDED = {"jupytext": "jupytext", "nbmake": "nbmake", "ipykernel": "ipykernel", "matplotlib": "matplotlib"}


def _require() -> None:
    missing = [name for module, name in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        pytest.fail(
            f"running the notebooks needs {', '.join(missing)}, which is not installed; "
            "install the test extra: python -m pip install -e '.[test]' "
            "(or the notebooks extra: '.[notebooks]')",
            pytrace=False,
        )


def _kernelspec(directory: Path) -> Path:
    """A Jupyter data directory with one kernel: this very interpreter (whatever ``python3`` may be)."""
    spec = directory / "kernels" / KERNEL
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (lampref tests)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
    return directory


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks/*.py found"


def _exercises_heading(notebook: Path) -> bool:
    """Whether a markdown cell holds a heading "Exercises" (``# ## Exercises`` in the percent format)."""
    text = notebook.read_text(encoding="utf-8")
    return re.search(r"^# #{1,6} (?:\d+\.\s*)?Exercises\s*$", text, re.M) is not None


def test_every_notebook_has_exercises_and_solutions() -> None:
    """The course pairs each notebook, which ends with exercises, with a solutions file of the same name."""
    problems = [
        f"{p.name}: no solutions/{p.name}"
        for p in NOTEBOOKS
        if not (p.parent / "solutions" / p.name).is_file()
    ]
    problems += [f"{p.name}: no 'Exercises' heading" for p in NOTEBOOKS if not _exercises_heading(p)]
    problems += [
        f"solutions/{p.name}: no notebook {p.name}"
        for p in SOLUTIONS
        if not (p.parents[1] / p.name).is_file()
    ]
    assert not problems, "the course notebooks and their solutions do not match:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "notebook", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix()
)
def test_notebook_runs(notebook: Path, tmp_path: Path) -> None:
    _require()
    import jupytext

    work = tmp_path / "notebooks"
    work.mkdir()
    target = work / f"{notebook.stem}.ipynb"
    jupytext.write(jupytext.read(notebook), target)
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    jupyter_data = _kernelspec(tmp_path / "jupyter")

    env = {
        **os.environ,
        "LAMPREF_SMALL": "1",
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "error::RuntimeWarning",
        "JUPYTER_PATH": os.pathsep.join(filter(None, [str(jupyter_data), os.environ.get("JUPYTER_PATH")])),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "nbmake.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-c",
        str(ini),
        "--rootdir",
        str(work),
        "--nbmake",
        f"--nbmake-kernel={KERNEL}",
        "--nbmake-timeout=300",
        "-q",
        str(target),
    ]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)[-20_000:]  # without terminal colours
        pytest.fail(f"{notebook.relative_to(ROOT)} failed (exit {proc.returncode}):\n{log}", pytrace=False)


def test_student_set_holds_the_notebooks_without_solutions(tmp_path: Path) -> None:
    """``scripts/student_notebooks.py OUT`` writes one valid ``.ipynb`` per notebook (its cells, no outputs),
    never a solutions file (they have the same names), and a README listing them."""
    _require()
    import jupytext
    import nbformat

    out = tmp_path / "student"
    cmd = [sys.executable, str(STUDENT_SET), str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{STUDENT_SET.name} failed (exit {proc.returncode}):\n{proc.stderr}"
    sources = sorted((ROOT / "notebooks").glob("*.py"))  # as the script saw them
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"{p.stem}.ipynb" for p in sources] + ["README.md"]), f"wrote {written}"
    readme = (out / "README.md").read_text(encoding="utf-8")
    for source in sources:
        name = f"{source.stem}.ipynb"
        notebook = nbformat.read(out / name, as_version=4)
        nbformat.validate(notebook)
        cells = [(c.cell_type, c.source) for c in notebook.cells]
        assert cells == [(c.cell_type, c.source) for c in jupytext.read(source).cells], (
            f"{name}: not {source.name}"
        )
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: holds outputs"
        assert "jupytext" not in notebook.metadata, f"{name}: still paired with a jupytext text file"
        assert name in readme, f"README.md does not list {name}"
