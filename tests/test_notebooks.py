"""The notebooks: every ``notebooks/*.py`` (jupytext ``py:percent``) is converted to ``.ipynb`` and executed.

Each notebook runs in a fresh Jupyter kernel of this interpreter, through nbmake in a separate pytest process
that ignores this repository's pytest configuration, with ``LAMPREF_SMALL=1`` (small sizes) and the Agg
matplotlib backend. A NumPy ``RuntimeWarning`` (overflow, invalid value, ...) in a notebook is an error, as
in the test suite. The check is execution, not comparison of outputs.
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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
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
