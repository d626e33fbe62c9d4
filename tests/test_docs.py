"""The documentation: the site builds with ``mkdocs build --strict``, and every Python example in it runs.

Every fenced code block marked ``python``, ``py``, ``python3`` or ``pycon`` in ``docs/**/*.md`` and in
``README.md`` (and any unmarked block that starts with ``>>>``) is executed. The blocks of one page run in
order in one namespace; a block written as a ``>>>`` session is checked as a doctest, any other block is
executed as a script.

The built site is also checked to work offline (formulas typeset by the vendored KaTeX, no asset fetched from
a CDN), to keep TeX out of its headings, to wrap long signatures, and to show the study's figures and tables.
"""

from __future__ import annotations

import csv
import doctest
import hashlib
import html
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from html.parser import HTMLParser
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


def _load_hook(name: str):
    """A documentation hook, imported as mkdocs does: its folder on ``sys.path`` while it loads."""
    spec = importlib.util.spec_from_file_location(f"_lampref_{name}", DOCS / "_ext" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    return module


def _api_hook():
    return _load_hook("api_pages")


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


# ------------------------------------------------------------------- the built site, offline
VENDOR_KATEX = DOCS / "vendor" / "katex"
_TEX_IN_TEXT = re.compile(r"\\[(\[]|\\[A-Za-z]+|\$|arithmatex")


class _Tags(HTMLParser):
    """The start tags of an HTML page with their attributes, and the text of its headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = []
        elif self._heading is not None and "arithmatex" in (dict(attrs).get("class") or ""):
            self._heading.append("arithmatex")  # a formula in a heading

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self.headings.append("".join(self._heading).replace("¶", "").strip())
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)


def _parse(page: Path) -> _Tags:
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _resolve(site: Path, page: Path, url: str) -> Path:
    """The file of the built site that a relative URL of ``page`` names."""
    path = url.split("#")[0].split("?")[0]
    return (site / path.lstrip("/")) if path.startswith("/") else (page.parent / path).resolve()


def _formulas(site: Path) -> list[tuple[str, str, str]]:
    """(page, tag, text) of every element that pymdownx.arithmatex marks as a formula."""
    found = []
    pattern = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.S)
    for page in sorted(site.rglob("*.html")):
        for tag, body in pattern.findall(page.read_text(encoding="utf-8")):
            found.append((str(page.relative_to(site)), tag, html.unescape(body)))
    return found


def test_issue11_item17_site_loads_only_local_assets(site: Path) -> None:
    """The built site fetches no script, stylesheet or font from a CDN: the math renderer ships with it."""
    remote, missing = [], []
    for page in sorted(site.rglob("*.html")):
        for tag, attrs in _parse(page).tags:
            url = attrs.get("src") if tag in ("script", "img") else None
            if tag == "link" and set(attrs.get("rel", "").split()) & {"stylesheet", "preload", "preconnect"}:
                url = attrs.get("href")
            if not url:
                continue
            where = f"{page.relative_to(site)}: <{tag}> {url}"
            if re.match(r"(?i)([a-z][a-z0-9+.-]*:|//)", url):
                remote.append(where)
            elif not _resolve(site, page, url).is_file():
                missing.append(where)
    assert not remote, "assets loaded from the network:\n" + "\n".join(sorted(set(remote))[:20])
    assert not missing, "assets missing from the site:\n" + "\n".join(sorted(set(missing))[:20])

    # every page with a formula loads the vendored KaTeX and the script that runs it
    pages = sorted({page for page, _, _ in _formulas(site)})
    assert pages, "no formula in the site: the arithmatex markup changed?"
    needed = {"vendor/katex/katex.min.js", "vendor/katex/katex.min.css", "javascripts/katex.js"}
    for name in pages:
        page = site / name
        loaded = {
            _resolve(site, page, a.get("src") or a.get("href", "")).relative_to(site.resolve()).as_posix()
            for t, a in _parse(page).tags
            if (t == "script" and a.get("src")) or (t == "link" and a.get("href"))
        }
        assert needed <= loaded, f"{name} does not load {sorted(needed - loaded)}"

    # the fonts named by KaTeX's stylesheet (the woff2 of each, the format browsers pick) are there
    css = (site / "vendor" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    woff2 = set(re.findall(r"url\((fonts/[\w.-]+\.woff2)\)", css))
    assert woff2, "katex.min.css names no woff2 font"
    absent = sorted(f for f in woff2 if not (site / "vendor" / "katex" / f).is_file())
    assert not absent, f"fonts missing from the site: {absent}"


def test_issue11_item17_vendored_renderer_matches_its_pinned_sums() -> None:
    """Every vendored KaTeX file is listed in SHA256SUMS with its sha256, and the licence ships with it."""
    sums_file = VENDOR_KATEX / "SHA256SUMS"
    assert sums_file.is_file(), f"{sums_file} is missing"
    pinned = dict(
        reversed(line.split(maxsplit=1)) for line in sums_file.read_text().splitlines() if line.strip()
    )
    shipped = {
        p.relative_to(VENDOR_KATEX).as_posix()
        for p in VENDOR_KATEX.rglob("*")
        if p.is_file() and p.name not in ("SHA256SUMS", "README.md")
    }
    assert shipped == set(pinned), (
        f"unlisted: {sorted(shipped - set(pinned))}, absent: {sorted(set(pinned) - shipped)}"
    )
    assert {"LICENSE", "katex.min.js", "katex.min.css"} <= shipped
    wrong = [n for n, h in pinned.items() if hashlib.sha256((VENDOR_KATEX / n).read_bytes()).hexdigest() != h]
    assert not wrong, f"files that differ from their pinned sha256: {wrong}"


def _check_formula_markup(site: Path) -> None:
    """Every formula is arithmatex markup with the delimiters katex.js expects; no raw TeX elsewhere."""
    bad = [
        (page, tag, text[:80])
        for page, tag, text in _formulas(site)
        if not (
            (tag == "span" and text.startswith("\\(") and text.endswith("\\)"))
            or (tag == "div" and text.strip().startswith("\\[") and text.strip().endswith("\\]"))
        )
    ]
    assert not bad, f"formulas the renderer would not typeset: {bad[:10]}"
    leftovers = []
    for page in sorted(site.rglob("*.html")):
        article = re.search(r"<article\b.*?</article>", page.read_text(encoding="utf-8"), re.S)
        if not article:
            continue
        text = re.sub(r"<(pre|code)\b.*?</\1>", "", article.group(0), flags=re.S)
        text = re.sub(r'<(span|div) class="arithmatex">.*?</\1>', "", text, flags=re.S)
        text = re.sub(r"<[^>]+>", "", text)
        for m in re.finditer(r".{0,40}(\\[(\[]|\$[^$\s][^$]*\$).{0,40}", html.unescape(text)):
            leftovers.append(f"{page.relative_to(site)}: {m.group(0)!r}")
    assert not leftovers, "TeX outside formula markup (shown raw):\n" + "\n".join(leftovers[:10])


_KATEX_HARNESS = r"""
// Runs docs/javascripts/katex.js on stand-ins for the page's arithmatex elements, with the vendored KaTeX.
const fs = require("fs");
const real = require(process.argv[2]);
const items = JSON.parse(fs.readFileSync(0, "utf-8"));
const errors = [];
const els = items.map(([tag, text]) => ({
  tagName: tag.toUpperCase(), textContent: text, attrs: {}, html: null,
  setAttribute(k, v) { this.attrs[k] = v; },
}));
global.katex = {
  render(tex, el, opts) {
    try { el.html = real.renderToString(tex, { ...opts, throwOnError: true }); }
    catch (e) { errors.push([el.textContent.slice(0, 120), String(e.message).slice(0, 200)]); el.html = ""; }
  },
};
global.document = {
  readyState: "complete",
  body: { querySelectorAll: () => els.filter((e) => !("data-katex" in e.attrs)) },
};
require(process.argv[3]);
const unrendered = els.filter((e) => e.html === null).length;
const display = els.filter((e) => e.tagName === "DIV" && !(e.html || "").includes("katex-display")).length;
process.stdout.write(JSON.stringify({ errors, unrendered, display, n: els.length }));
"""


def test_issue11_item17_local_katex_typesets_every_formula(site: Path, tmp_path: Path) -> None:
    """The formulas are marked up for the shipped katex.js, which typesets each one without an error."""
    _check_formula_markup(site)
    renderer = [VENDOR_KATEX / "katex.min.js", DOCS / "javascripts" / "katex.js"]
    assert all(p.is_file() for p in renderer), f"the renderer is not shipped: {renderer}"
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the formulas were checked but not typeset")
    harness = tmp_path / "harness.js"
    harness.write_text(_KATEX_HARNESS, encoding="utf-8")
    formulas = [(tag, text) for _, tag, text in _formulas(site)]
    proc = subprocess.run(
        [node, str(harness), *map(str, renderer)],
        input=json.dumps(formulas),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["n"] == len(formulas) > 0
    assert result["unrendered"] == 0, f"{result['unrendered']} formulas left untouched by katex.js"
    assert result["display"] == 0, f"{result['display']} display formulas typeset inline"
    assert not result["errors"], f"KaTeX cannot typeset: {result['errors'][:10]}"


def test_issue11_item17_no_raw_tex_in_headings(site: Path) -> None:
    """Headings, and so the table of contents, navigation and search index, are plain text, never TeX."""
    found = []
    for page in sorted(site.rglob("*.html")):
        parsed = _parse(page)
        found += [f"{page.relative_to(site)}: {h!r}" for h in parsed.headings if _TEX_IN_TEXT.search(h)]
        text = page.read_text(encoding="utf-8")
        for link in re.findall(r'<a [^>]*class="md-nav__link[^"]*"[^>]*>(.*?)</a>', text, re.S):
            label = " ".join(html.unescape(re.sub(r"<[^>]+>", "", link)).split())
            if _TEX_IN_TEXT.search(label):
                found.append(f"{page.relative_to(site)}: navigation {label!r}")
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    titles = [d["title"] for d in index["docs"]]
    assert titles, "empty search index"
    found += [f"search index: {t!r}" for t in titles if _TEX_IN_TEXT.search(html.unescape(t))]
    assert not found, "TeX in headings:\n" + "\n".join(sorted(set(found))[:20])
    for page in DOCS.rglob("*.md"):  # the source, for a clearer message
        for line in page.read_text(encoding="utf-8").splitlines():
            assert not (line.startswith("#") and _TEX_IN_TEXT.search(line)), f"{page.name}: {line}"


def test_issue11_item17_long_signatures_are_wrapped(site: Path) -> None:
    """The docs extra installs a code formatter, so mkdocstrings wraps long signatures at line_length."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    extra = re.search(r"^docs = \[(.*?)^\]", pyproject, re.M | re.S)
    assert extra, "pyproject.toml has no docs extra"
    requirements = re.findall(r'^\s*"([A-Za-z0-9_.-]+)', extra.group(1), re.M)
    assert {"ruff", "black"} & {r.lower() for r in requirements}, (
        f"the docs extra {requirements} has no formatter"
    )
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+separate_signature: true$", config, re.M)
    width = re.search(r"^\s+line_length: (\d+)$", config, re.M)
    assert width, "mkdocs.yml sets no line_length for the signatures"
    limit = int(width.group(1))

    too_long, wrapped = [], 0
    for page in sorted((site / "api").rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r'<div class="doc-signature[^"]*"[^>]*>(.*?)</div>', text, re.S):
            lines = html.unescape(re.sub(r"<[^>]+>", "", block)).strip("\n").splitlines()
            too_long += [line for line in lines if len(line) > limit]
            wrapped += len(" ".join(s.strip() for s in lines)) > limit and len(lines) > 1
    assert wrapped >= 10, f"only {wrapped} long signatures are split over several lines"
    assert not too_long, f"signature lines over {limit} characters: {too_long[:5]}"


def test_issue11_item17_results_figures_and_tables_are_shown(site: Path) -> None:
    """Every figure in docs/results is shown on a page; the study page has the summary tables of the CSV."""
    shown: set[Path] = set()
    for page in sorted(site.rglob("*.html")):
        for tag, attrs in _parse(page).tags:
            if tag == "img" and attrs.get("src"):
                target = _resolve(site, page, attrs["src"])
                assert target.is_file(), f"{page.relative_to(site)}: broken image {attrs['src']}"
                shown.add(target.relative_to(site.resolve()))
    figures = {p.relative_to(DOCS) for p in (DOCS / "results").rglob("*.png")}
    assert figures, "no figure in docs/results"
    assert not figures - shown, f"figures no page shows: {sorted(map(str, figures - shown))}"

    # the uniform low-precision KL of each table row, from the CSV itself (tau = 2 recomputes nothing)
    page = (site / "experiment" / "index.html").read_text(encoding="utf-8")
    tables = re.findall(r"<table>(.*?)</table>", page, re.S)
    assert tables, "docs/experiment.md shows no table"
    with (DOCS / "results" / "results.csv").open(encoding="utf-8", newline="") as f:
        uniform = {
            (r["dataset"], int(r["m_bits"])): float(r["kl_div"])
            for r in csv.DictReader(f)
            if float(r["tau"]) == 2
        }
    rows = [
        [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
        for tr in re.findall(r"<tr>(.*?)</tr>", tables[0], re.S)
    ]
    rows = [r for r in rows if r]
    assert {(r[0], int(r[1])) for r in rows} == set(uniform), "the first table does not cover the CSV"
    for r in rows:
        assert float(r[2]) == pytest.approx(uniform[r[0], int(r[1])], rel=5e-3), r


def test_issue11_item17_lamp_page_uses_the_library_metric_and_shows_outputs() -> None:
    """docs/lamp.md measures with lampref.metrics.kl_divergence (no private copy) and shows what it prints."""
    page = DOCS / "lamp.md"
    blocks = [b for b in fenced_blocks(page.read_text(encoding="utf-8"), "lamp.md") if b.is_python]
    code = "".join(b.code for b in blocks)
    assert "from lampref.metrics import kl_divergence" in code
    assert "kl_divergence(" in code
    own = re.findall(r"^(?:\.\.\.)?\s*def (\w+)|lambda\b", code, re.M)
    assert not own, f"the page defines its own functions: {own}"
    parser = doctest.DocTestParser()
    for block in blocks:
        if block.is_session:
            examples = parser.get_examples(block.code)
            silent = [e.source for e in examples if "print(" in e.source and not e.want.strip()]
            assert not silent, f"lamp.md:{block.line}: prints without showing the output: {silent}"
        else:
            assert "print(" not in block.code, f"lamp.md:{block.line}: output printed but never shown"
    sessions = [b for b in blocks if b.is_session]
    assert len(sessions) >= 3, "lamp.md shows no output"


# ------------------------------------------------------------------------- the notebooks
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _notebook_hook():
    return _load_hook("notebook_pages")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_pages_show_the_executed_notebooks(site: Path, notebook: Path) -> None:
    """Each notebook has a page in the nav with its code, printed output and figures (local PNG files)."""
    page = site / "notebooks" / notebook.stem / "index.html"
    assert page.is_file(), f"no page for {notebook.name}"
    text = page.read_text(encoding="utf-8")
    article = re.search(r"<article\b.*?</article>", text, re.S)
    assert article, f"{notebook.name}: the page has no article"
    assert "# %%" not in html.unescape(article.group(0)), f"{notebook.name}: cell markers shown raw"
    code_cells = notebook.read_text(encoding="utf-8").splitlines().count("# %%")
    blocks = article.group(0).count('<div class="highlight">')
    assert 'class="kn">import</span>' in article.group(0), f"{notebook.name}: no Python code shown"
    assert blocks > code_cells, f"{notebook.name}: {blocks} code blocks, no output of {code_cells} cells"

    parsed = _parse(page)
    first_heading = next(
        line for line in notebook.read_text(encoding="utf-8").splitlines() if line[:4] == "# # "
    )
    title = re.sub(r"[`*_$]", "", first_heading[4:]).strip()
    assert parsed.headings[0] == title, f"{notebook.name}: the page is titled {parsed.headings[0]!r}"
    images = [a["src"] for t, a in parsed.tags if t == "img" and a.get("src")]
    assert images, f"{notebook.name}: the page shows no figure"
    for src in images:
        target = _resolve(site, page, src)
        assert target.is_file(), f"{notebook.name}: broken image {src}"
        assert target.read_bytes()[:8] == _PNG_SIGNATURE, f"{notebook.name}: {src} is not a PNG"
    assert (site / "notebooks" / notebook.name).read_bytes() == notebook.read_bytes(), "source not shipped"

    home = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="notebooks/{notebook.stem}/"' in home, f"{notebook.name}: not in the navigation"


def test_course_section_in_the_site(site: Path) -> None:
    """The nav section "Course" opens on the index of the notebooks; the solutions get no page."""
    index = site / "notebooks" / "index.html"
    assert index.is_file(), "no course index page"
    assert _parse(index).headings[0] == "Course"
    home = (site / "index.html").read_text(encoding="utf-8")
    assert re.search(r">\s*Course\s*<", home), "no 'Course' section in the navigation"
    assert not (site / "notebooks" / "solutions").exists(), "the solutions are rendered"


def test_course_index_lists_the_notebooks_in_order() -> None:
    """Without building the site: the nav section is "Course", with the notebooks (never the solutions) in
    order; the index has one line per notebook and says how to open them and make the student set."""
    import types

    import jupytext

    hook = _notebook_hook()
    expected = [f"notebooks/{p.stem}.md" for p in NOTEBOOKS]
    for nav in ([{"Home": "index.md"}, {"Course": "notebooks/index.md"}], ["index.md", "notebooks/index.md"]):
        config = types.SimpleNamespace(config_file_path=str(ROOT / "mkdocs.yml"), nav=nav)
        ((title, section),) = hook.on_config(config).nav[1].items()
        assert title == "Course"
        assert section[0] == "notebooks/index.md"
        assert [next(iter(entry.values())) for entry in section[1:]] == expected

    entries = []
    for path in NOTEBOOKS:
        cells = jupytext.read(path).cells
        entries.append((path, hook._title(cells, path), hook._summary(cells)))
    page = hook._index_page(entries)
    assert page.startswith("# Course\n")
    lines = [line for line in page.splitlines() if line.startswith("- [")]
    assert len(lines) == len(NOTEBOOKS), lines
    for line, (path, title, summary) in zip(lines, entries, strict=True):
        assert line.startswith(f"- [{title}]({path.stem}.md)"), line
        assert summary, f"{path.name}: no sentence of text in its first markdown cell"
        assert line.endswith(f" — {summary}"), line
    for needed in ("jupytext --to ipynb notebooks/NN_name.py", "scripts/student_notebooks.py", "solutions"):
        assert needed in page, f"the course index does not mention {needed!r}"


def test_notebook_pages_exist_only_in_the_build() -> None:
    """The pages are generated: the examples test never runs the notebooks a second time."""
    assert not (DOCS / "notebooks").exists()
    assert not [p for p in PAGES if "notebooks" in p.relative_to(ROOT).parts]


_TINY_NOTEBOOK = """\
# %% [markdown]
# # A tiny notebook with $x$ in its title

# %%
import os
import matplotlib.pyplot as plt
print("small:", os.environ.get("LAMPREF_SMALL"), "files here:", os.listdir("."))
fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
plt.show()
plt.subplots()
6 * 7

# %%
x = 1
1 / 0
"""


def test_notebook_hook_runs_cells_like_jupyter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full sizes in an empty directory, shown and open figures kept in order, the last expression's repr;
    a cell that raises names the notebook, the cell and the line; the caller's state is restored."""
    import jupytext
    import matplotlib
    from mkdocs.exceptions import PluginError

    hook = _notebook_hook()
    path = tmp_path / "tiny.py"
    path.write_text(_TINY_NOTEBOOK, encoding="utf-8")
    cells = jupytext.read(path).cells
    monkeypatch.setenv("LAMPREF_SMALL", "1")
    cwd, backend = Path.cwd(), matplotlib.get_backend()

    with pytest.raises(PluginError, match=r"notebook tiny\.py, cell 3, line 16 raised ZeroDivisionError"):
        hook._execute(path, cells)
    assert (Path.cwd(), matplotlib.get_backend(), os.environ["LAMPREF_SMALL"]) == (cwd, backend, "1")

    outputs = hook._execute(path, cells[:2])
    assert outputs[0] is None
    assert outputs[1].text == "small: None files here: []\n42\n"
    assert len(outputs[1].figures) == 2
    assert all(png[:8] == _PNG_SIGNATURE for png in outputs[1].figures)
    assert len(outputs[1].figures[0]) > len(outputs[1].figures[1])  # the plot, then the empty axes

    figures: dict[str, bytes] = {}
    page = hook._page(path, cells[:2], outputs, figures)
    assert page.startswith("# A tiny notebook with *x* in its title\n")
    assert "```text\nsmall: None files here: []\n42\n```" in page
    assert list(figures) == ["notebooks/tiny/cell02-1.png", "notebooks/tiny/cell02-2.png"]
    assert "![Figure 2 of cell 2](tiny/cell02-2.png)" in page
