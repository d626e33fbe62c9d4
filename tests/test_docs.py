"""The documentation: the site builds with ``mkdocs build --strict``, and every Python example in it runs.

Every fenced code block marked ``python``, ``py``, ``python3`` or ``pycon`` in ``docs/**/*.md`` and in
``README.md`` (and any unmarked block that starts with ``>>>``) is executed. The blocks of one page run in
order in one namespace; a block written as a ``>>>`` session is checked as a doctest, any other block is
executed as a script.
"""

from __future__ import annotations

import doctest
import importlib.util
import io
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
PYTHON_LANGUAGES = {"python", "py", "python3", "pycon"}
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_RST_LEFTOVER = re.compile(r":(?:func|class|meth|attr|mod|math|data|obj|exc|const):(?:<code>|`)")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # 1-based line of the first line of code in the page

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON_LANGUAGES or (not self.language and self.is_session)

    @property
    def is_session(self) -> bool:
        return self.code.lstrip().startswith(">>>")


def fenced_blocks(text: str, where: str) -> list[Block]:
    """Every fenced code block of a Markdown text (fences may be indented, as in lists and admonitions)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening.group("indent")), opening.group("fence")
        info = opening.group("info").strip("{} ")
        language = info.split()[0].lstrip(".").lower() if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and not closing.group("info")
            ):
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        else:
            raise AssertionError(f"{where}:{i + 1}: code fence {fence!r} is never closed")
        blocks.append(Block(language, textwrap.dedent("\n".join(body)) + "\n", i + 2))
        i = j + 1
    return blocks


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --------------------------------------------------------------------------- examples
def test_fence_parser() -> None:
    text = (
        "intro\n\n```python\nx = 1\n```\n\n"
        "- item\n\n    ```pycon\n    >>> x\n    1\n    ```\n\n"
        "```bash\nls\n```\n"
    )
    blocks = fenced_blocks(text, "t.md")
    assert [(b.language, b.code, b.line) for b in blocks] == [
        ("python", "x = 1\n", 4),
        ("pycon", ">>> x\n1\n", 10),
        ("bash", "ls\n", 15),
    ]
    assert [b.is_python for b in blocks] == [True, True, False]


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    where = _page_id(page)
    blocks = [b for b in fenced_blocks(page.read_text(encoding="utf-8"), where) if b.is_python]
    namespace: dict[str, object] = {"__name__": f"__docs_{page.stem.replace('-', '_')}__"}
    parser = doctest.DocTestParser()
    for block in blocks:
        if block.is_session:
            test = parser.get_doctest(block.code, namespace, where, str(page), block.line - 1)
            report = io.StringIO()
            runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS, verbose=False)
            result = runner.run(test, out=report.write, clear_globs=False)
            namespace.update(test.globs)
            if result.failed:
                pytest.fail(f"{where}:{block.line}: doctest failed\n{report.getvalue()}", pytrace=False)
        else:
            # padded so that tracebacks give the line numbers of the Markdown file
            code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
            exec(code, namespace)


# ------------------------------------------------------------------------------ build
def _require_mkdocs() -> None:
    missing = [
        m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python") if not _found(m)
    ]
    if missing:
        pytest.fail(
            f"the documentation build needs {', '.join(missing)}, which is not installed; install the test "
            "extra: python -m pip install -e '.[test]' (or the docs extra: '.[docs]')",
            pytrace=False,
        )


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_mkdocs()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    proc = subprocess.run(
        [*cmd, "--site-dir", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed (exit {proc.returncode}):\n{log}", pytrace=False)
    problems = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    if problems:
        pytest.fail("mkdocs build --strict logged:\n" + "\n".join(problems), pytrace=False)
    return out


def _api_hook():
    spec = importlib.util.spec_from_file_location("_lampref_api_pages", DOCS / "_ext" / "api_pages.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "formats-and-rounding" / "index.html").is_file()


def test_api_pages_document_exactly_all(site: Path) -> None:
    hook = _api_hook()
    assert hook.API_MODULES[0] == "lampref"
    for module in hook.API_MODULES:
        html = (site / "api" / module / "index.html").read_text(encoding="utf-8")
        documented = set(re.findall(r'<h[23] id="([\w.]+)" class="doc doc-heading"', html))
        names = importlib.import_module(module).__all__
        missing = [
            n for n in names if not any(d == f"{module}.{n}" or d.endswith(f".{n}") for d in documented)
        ]
        assert not missing, f"api/{module}: not rendered: {missing}"


def test_no_restructuredtext_left_in_html(site: Path) -> None:
    leftovers = {}
    for page in site.rglob("*.html"):
        found = _RST_LEFTOVER.findall(page.read_text(encoding="utf-8"))
        if found:
            leftovers[str(page.relative_to(site))] = found[:5]
    assert not leftovers, f"reStructuredText roles rendered literally: {leftovers}"
