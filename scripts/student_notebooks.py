"""Write the student set of the course: every ``notebooks/*.py`` as a Jupyter notebook, without the solutions.

Usage::

    python scripts/student_notebooks.py OUT

Each notebook of ``notebooks/`` (jupytext ``py:percent``) becomes ``OUT/<name>.ipynb``: the same cells, no
outputs (nothing is executed), and no jupytext pairing, so that the files open as plain notebooks in Jupyter.
The files of ``notebooks/solutions/`` are never written. ``OUT/README.md`` lists the notebooks in order, one
line each (its title), and says how to run them. ``OUT`` is created if missing; files of the same names
are overwritten, other files are left alone. Needs jupytext (the ``notebooks`` extra).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_HEADING = re.compile(r"^#\s+(.+)$")


def _jupytext() -> Any:
    try:
        import jupytext
    except ImportError:
        raise SystemExit(
            "student_notebooks.py needs jupytext, which is not installed; install the notebooks extra: "
            "python -m pip install -e '.[notebooks]'"
        ) from None
    return jupytext


def _title(notebook: Any, path: Path) -> str:
    """The first level-1 heading of the first markdown cell, without its Markdown markup."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                match = _HEADING.match(line)
                if match:
                    return re.sub(r"[`*_$]", "", match.group(1)).strip()
            break
    raise SystemExit(f"{path}: the first markdown cell has no '# Title' heading")


def _student_copy(notebook: Any) -> Any:
    """The notebook with no outputs, no execution counts and no jupytext metadata."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("jupytext", None)
    return notebook


def _readme(titles: list[tuple[str, str]]) -> str:
    lines = [
        "# lampref: the course notebooks",
        "",
        "Open them in Jupyter (`jupyter lab`), in order; each ends with exercises.",
        "",
    ]
    lines += [f"{number}. `{name}`: {title}" for number, (name, title) in enumerate(titles, start=1)]
    lines += [
        "",
        "They need lampref with its `notebooks` extra (`python -m pip install 'lampref[notebooks]'`)",
        "and download nothing. Set the environment variable `LAMPREF_SMALL=1` before starting Jupyter",
        "to run them with small sizes, in seconds.",
        "",
    ]
    return "\n".join(lines)


def write_student_set(out: Path) -> list[Path]:
    """Write the ``.ipynb`` files and ``README.md`` into ``out``; the notebooks written, in order."""
    jupytext = _jupytext()
    sources = sorted(NOTEBOOKS.glob("*.py"))
    if not sources:
        raise SystemExit(f"no notebook (*.py) in {NOTEBOOKS}")
    out.mkdir(parents=True, exist_ok=True)
    written, titles = [], []
    for path in sources:
        notebook = jupytext.read(path)
        titles.append((f"{path.stem}.ipynb", _title(notebook, path)))
        target = out / f"{path.stem}.ipynb"
        jupytext.write(_student_copy(notebook), target, fmt="ipynb")
        written.append(target)
    (out / "README.md").write_text(_readme(titles), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out", type=Path, help="folder for the .ipynb files and README.md (created if missing)"
    )
    args = parser.parse_args(argv)
    for path in write_student_set(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
