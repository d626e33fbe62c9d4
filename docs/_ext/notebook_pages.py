"""MkDocs hook: render every notebook of ``notebooks/`` (jupytext ``py:percent``) as a page of the site.

Each notebook is executed when the site is built, in this process: its code cells run in order in one fresh
namespace, from an empty temporary directory, with the full sizes (``LAMPREF_SMALL`` unset) and a
non-interactive matplotlib backend. The hook writes a page ``notebooks/<stem>.md`` (it exists only in the
build, never on disk) holding the markdown cells as they are, each code cell as a ``python`` block followed
by what it printed (a ``text`` block) and the figures it showed or left open (PNG files added to the build,
shown as images). A cell that raises fails the build, naming the notebook, the cell and the line. The
notebook's own file is shipped next to its page for download, and ``notebooks/index.md`` lists the
notebooks in order, one line each, and says how to open them and make the student set; the nav entry
``notebooks/index.md`` in ``mkdocs.yml`` is expanded into the "Course" section holding all these pages, each
titled by its notebook's first heading. The solutions (``notebooks/solutions/``) are not rendered: they are
for teachers, in the repository.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import sys
import tempfile
import traceback
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hook_tools import expand_nav
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

PAGE_DIR = "notebooks"
INDEX = f"{PAGE_DIR}/index.md"
SECTION = "Course"  # the nav title of the section, where mkdocs.yml gives none
SIZE_VARIABLE = "LAMPREF_SMALL"  # set, the notebooks run with small sizes: unset here
BACKEND = "_lampref_notebook_figures"  # the matplotlib backend module that collects the shown figures
FIGURE_DPI = 100

_HEADING = re.compile(r"^#{1,6}\s")
_INLINE_MATH = re.compile(r"\$([^$\n]+)\$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def _notebooks(config: MkDocsConfig) -> list[Path]:
    root = Path(config.config_file_path).resolve().parent
    found = sorted((root / "notebooks").glob("*.py"))
    if not found:
        raise PluginError(f"no notebook (*.py) in {root / 'notebooks'}")
    return found


def _jupytext() -> Any:
    try:
        import jupytext
    except ImportError as err:
        raise PluginError(
            "rendering the notebooks needs jupytext and matplotlib, which are not installed; install the "
            "docs extra: python -m pip install -e '.[docs]'"
        ) from err
    return jupytext


def _plain(text: str) -> str:
    """A heading's text without its Markdown markup and formula delimiters (for the navigation)."""
    return re.sub(r"[`*_$]", "", text).strip()


def _title(cells: list[Any], path: Path) -> str:
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if _HEADING.match(line):
                    return _plain(line.lstrip("#"))
    raise PluginError(f"{path.name}: the notebook has no Markdown heading to title its page")


def _summary(cells: list[Any]) -> str:
    """The first sentence of the first paragraph of text (no heading, list or bold label) of the first
    markdown cell, on one line; empty if there is none."""
    first = next((cell.source for cell in cells if cell.cell_type == "markdown"), "")
    for paragraph in re.split(r"\n\s*\n", first):
        text = " ".join(line.strip() for line in paragraph.splitlines())
        if text and not _HEADING.match(text) and not re.match(r"[-*+]\s|\d+\.\s|\*\*|What you will", text):
            return re.split(r"(?<=[.?!])\s+", text, maxsplit=1)[0]
    return ""


def _page_uri(path: Path) -> str:
    return f"{PAGE_DIR}/{path.stem}.md"


# ------------------------------------------------------------------------------ nav
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    jupytext = _jupytext()
    section: list[Any] = [INDEX]
    section += [{_title(jupytext.read(p).cells, p): _page_uri(p)} for p in _notebooks(config)]

    expand_nav(config.nav, INDEX, SECTION, section)
    return config


# ------------------------------------------------------------------------ execution
class _Output:
    """What one code cell printed (stdout and stderr in order) and the PNG images of its figures."""

    def __init__(self) -> None:
        self.text = ""
        self.figures: list[bytes] = []


def _collect_figures(into: list[bytes]) -> None:
    """Render every open figure as a PNG, in the order they were opened, and close it."""
    import matplotlib.pyplot as plt

    for number in plt.get_fignums():
        buffer = io.BytesIO()
        plt.figure(number).savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
        into.append(buffer.getvalue())
    plt.close("all")


def _figure_backend(into: list[bytes]) -> str:
    """A matplotlib backend (Agg) whose ``show`` hands the open figures to ``into``; returns its name."""
    from matplotlib.backend_bases import FigureManagerBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    module = types.ModuleType(BACKEND)
    module.FigureCanvas = FigureCanvasAgg  # type: ignore[attr-defined]
    module.FigureManager = FigureManagerBase  # type: ignore[attr-defined]
    module.show = lambda *args, **kwargs: _collect_figures(into)  # type: ignore[attr-defined]
    sys.modules[BACKEND] = module
    return f"module://{BACKEND}"


@contextlib.contextmanager
def _sandbox(figures: list[bytes]) -> Iterator[None]:
    """An empty working directory, full sizes, the figure-collecting backend and the rc settings restored."""
    import matplotlib
    import matplotlib.pyplot as plt

    old_cwd, old_size, old_backend = (
        os.getcwd(),
        os.environ.pop(SIZE_VARIABLE, None),
        matplotlib.get_backend(),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="lampref-notebook-") as work, matplotlib.rc_context():
            os.chdir(work)
            plt.switch_backend(_figure_backend(figures))
            yield
    finally:
        plt.close("all")
        os.chdir(old_cwd)
        plt.switch_backend(old_backend)
        sys.modules.pop(BACKEND, None)
        if old_size is not None:
            os.environ[SIZE_VARIABLE] = old_size


def _cell_lines(path: Path, n_cells: int) -> list[int]:
    """The line of each cell's ``# %%`` marker in the file (0 each where they cannot be matched to cells)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    markers = [i + 1 for i, line in enumerate(lines) if line.startswith("# %%")]
    return markers if len(markers) == n_cells else [0] * n_cells


def _run_cell(source: str, namespace: dict[str, Any], path: Path, line: int) -> _Output:
    """Execute one code cell, as Jupyter does: the value of a last bare expression is shown as its repr."""
    output, stream = _Output(), io.StringIO()
    tree = ast.parse(source, filename=str(path))
    ast.increment_lineno(tree, line)  # tracebacks give the lines of the notebook's file
    last, tail = None, tree.body[-1] if tree.body else None
    if isinstance(tail, ast.Expr) and not source.rstrip().endswith(";"):
        tree.body.pop()
        last = ast.Expression(tail.value)
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("error", RuntimeWarning)  # as when the test suite runs the notebooks
        exec(compile(tree, str(path), "exec"), namespace)
        if last is not None:
            value = eval(compile(last, str(path), "eval"), namespace)
            if value is not None and not _is_figure(value):
                print(repr(value))
        _collect_figures(output.figures)
    output.text = stream.getvalue()
    return output


def _is_figure(value: object) -> bool:
    from matplotlib.figure import Figure

    return isinstance(value, Figure)  # drawn below, as Jupyter shows it


def _failure(path: Path, number: int, err: Exception) -> str:
    """The message for a cell that raised: the notebook, the cell, the line, and the traceback from there."""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != str(path):
        tb = tb.tb_next
    frames = traceback.extract_tb(tb) if tb is not None else []
    line = next((f" line {f.lineno}" for f in frames if f.filename == str(path)), "")
    trace = "".join(traceback.format_exception(type(err), err, tb or err.__traceback__))
    return f"notebook {path.name}, cell {number},{line} raised {err!r}\n{trace}"


def _execute(path: Path, cells: list[Any]) -> list[_Output | None]:
    """Run the code cells of a notebook in order; the output of each cell (None for a markdown cell)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    lines = _cell_lines(path, len(cells))
    outputs: list[_Output | None] = []
    shown: list[bytes] = []
    with _sandbox(shown):
        for number, (cell, line) in enumerate(zip(cells, lines, strict=True), start=1):
            if cell.cell_type != "code":
                outputs.append(None)
                continue
            try:
                output = _run_cell(cell.source, namespace, path, line)
            except Exception as err:
                raise PluginError(_failure(path, number, err)) from err
            output.figures[:0] = shown  # the figures shown by plt.show() come first
            shown.clear()
            outputs.append(output)
    return outputs


# ---------------------------------------------------------------------------- pages
def _fence(text: str, language: str) -> list[str]:
    ticks = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    return [f"{ticks}{language}", text.rstrip("\n"), ticks, ""]


def _markdown(source: str, path: Path, number: int) -> list[str]:
    """A markdown cell as it is, but for formulas in headings, which become italic text: headings are
    also navigation and search entries, where no formula is typeset."""
    out, fence = [], ""
    for line in source.splitlines():
        opening = _FENCE.match(line)
        if opening and (not fence or opening.group(1).startswith(fence)):
            fence = "" if fence else opening.group(1)
        elif not fence and _HEADING.match(line) and "$" in line:
            if "\\" in line:
                raise PluginError(
                    f"notebook {path.name}, cell {number}: the heading {line!r} holds a formula with TeX "
                    "commands; headings are also navigation and search entries, where no formula is "
                    "typeset: write it in plain text"
                )
            line = _INLINE_MATH.sub(r"*\1*", line)
        out.append(line)
    return [*out, ""]


def _source_note(path: Path) -> str:
    return (
        f"This page is [`notebooks/{path.name}`]({path.name}), executed when the site was built (with the "
        "full sizes). To run it yourself, see [Course](index.md)."
    )


def _page(path: Path, cells: list[Any], outputs: list[_Output | None], figures: dict[str, bytes]) -> str:
    """The Markdown of a notebook's page; ``figures`` receives the PNG file of each image it shows."""
    out: list[str] = []
    for number, (cell, output) in enumerate(zip(cells, outputs, strict=True), start=1):
        if cell.cell_type == "markdown":
            lines = _markdown(cell.source, path, number)
            if not out and lines and _HEADING.match(lines[0]):  # below the title
                lines[1:1] = ["", _source_note(path)]
            out += lines
        elif cell.cell_type == "code" and output is not None:
            out += _fence(cell.source, "python")
            if output.text.strip():
                out += _fence(output.text, "text")
            for k, png in enumerate(output.figures, start=1):
                name = f"{path.stem}/cell{number:02d}-{k}.png"
                figures[f"{PAGE_DIR}/{name}"] = png
                out += [f"![Figure {k} of cell {number}]({name})", ""]
    return "\n".join(out)


def _index_page(entries: list[tuple[Path, str, str]]) -> str:
    """The course index: each notebook (path, title, summary) on one line, then how to open them."""
    out = [
        "# Course",
        "",
        "A course in floating-point arithmetic and rounding-error analysis, one notebook per idea, to be "
        "followed in order. Each page is a notebook of the repository's `notebooks/` folder, executed when "
        "this site was built, with its output and figures; each ends with exercises. They use only the "
        "public API of lampref and download nothing.",
        "",
    ]
    out += [
        f"- [{title}]({path.stem}.md)" + (f" — {summary}" if summary else "")
        for path, title, summary in entries
    ]
    out += [
        "",
        "## Open the notebooks locally",
        "",
        "Each notebook is a Python script in the jupytext *percent* format, `notebooks/NN_name.py`. With "
        "the `notebooks` extra installed (`python -m pip install -e '.[notebooks]'`), convert one to a "
        "Jupyter notebook, or open the `.py` file itself as a notebook with the jupytext Jupyter extension "
        "(in JupyterLab: right-click the file, *Open With*, *Notebook*):",
        "",
        "```bash",
        "jupytext --to ipynb notebooks/NN_name.py   # writes notebooks/NN_name.ipynb",
        "jupyter lab",
        "```",
        "",
        "A notebook also runs as a plain script (`python notebooks/NN_name.py`), and the environment "
        "variable `LAMPREF_SMALL=1` runs it with small sizes, in seconds.",
        "",
        "## For teachers",
        "",
        "The solutions to the exercises are in the repository, one file per notebook in "
        "`notebooks/solutions/`, and run in the test suite; they are not shown on this site. The student "
        "set, every notebook as an `.ipynb` file without outputs and without the solutions, with a README "
        "listing them, is written by one command:",
        "",
        "```bash",
        "python scripts/student_notebooks.py student-notebooks/",
        "```",
        "",
    ]
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    jupytext = _jupytext()
    entries = []
    for path in _notebooks(config):
        cells = jupytext.read(path).cells
        figures: dict[str, bytes] = {}
        page = _page(path, cells, _execute(path, cells), figures)
        files.append(File.generated(config, _page_uri(path), content=page))
        files.append(File.generated(config, f"{PAGE_DIR}/{path.name}", content=path.read_bytes()))
        for uri, png in figures.items():
            files.append(File.generated(config, uri, content=png))
        entries.append((path, _title(cells, path), _summary(cells)))
    files.append(File.generated(config, INDEX, content=_index_page(entries)))
    return files
