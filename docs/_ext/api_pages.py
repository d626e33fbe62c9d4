"""MkDocs hook: generate the API reference pages from the ``__all__`` of each public module.

``API_MODULES`` below is the one list of documented modules. For each module, the hook writes a page
``api/<module>.md`` (it exists only in the build, never on disk) that renders the module's docstring and then
exactly the names of its ``__all__`` through mkdocstrings. Names are grouped by the submodule that defines
them, each group introduced by that submodule's docstring. Groups follow the package's dependency order (a
submodule after those it imports from), a group made only of exception classes comes last, and within a group
objects appear in source order. A name served lazily by a module ``__getattr__`` (as in
``lampref.testing``) is looked up in the module's submodules. ``api/index.md`` lists every module and name
with its one-line summary, and the nav entry ``api/index.md`` in ``mkdocs.yml`` is expanded into a section
holding all these pages.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import griffe
from hook_tools import expand_nav
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

# The public modules whose API is documented, in the order of the nav.
API_MODULES = [
    "lampref",
    "lampref.special",
    "lampref.mx",
    "lampref.analysis",
    "lampref.nn",
    "lampref.gpt2",
    "lampref.bert",
    "lampref.lamp",
    "lampref.lamp_sites",
    "lampref.hardware",
    "lampref.metrics",
    "lampref.validate",
    "lampref.course",
    "lampref.experiment",
    "lampref.fetch",
    "lampref.testing",
]

API_DIR = "api"
INDEX = f"{API_DIR}/index.md"


def _page_uri(module: str) -> str:
    return f"{API_DIR}/{module}.md"


def _markup() -> Any:
    """The sibling griffe extension (its ``convert`` turns summaries into Markdown)."""
    path = Path(__file__).with_name("docstring_markup.py")
    spec = importlib.util.spec_from_file_location("_lampref_docstring_markup", path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load the griffe extension {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ nav
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    section = [INDEX, *({m: _page_uri(m)} for m in API_MODULES)]

    expand_nav(config.nav, INDEX, "API reference", section)
    return config


# ---------------------------------------------------------------------------- pages
class _Entry:
    """One public name: the identifier mkdocstrings renders and the object that defines it."""

    def __init__(self, name: str, identifier: str, obj: griffe.Object) -> None:
        self.name = name
        self.identifier = identifier
        self.obj = obj

    @property
    def home(self) -> str:
        return self.obj.module.path

    @property
    def line(self) -> int:
        return self.obj.lineno or 0

    @property
    def is_exception(self) -> bool:
        return self.obj.is_class and self.name.endswith(("Error", "Exception", "Warning"))


def _public_names(module: str) -> list[str]:
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise PluginError(
            f"API page for {module!r}: cannot import it ({err}); is lampref installed?"
        ) from err
    names = getattr(mod, "__all__", None)
    if names is None:
        raise PluginError(f"API page for {module!r}: the module has no __all__ listing its public names")
    return list(names)


def _resolve(gmod: griffe.Module, name: str) -> _Entry:
    if name in gmod.members:
        member = gmod.members[name]
        try:
            obj = member.final_target if member.is_alias else member  # type: ignore[union-attr]
        except (griffe.AliasResolutionError, griffe.CyclicAliasError) as err:
            raise PluginError(f"{gmod.path}.{name} (in __all__) cannot be resolved: {err}") from err
        return _Entry(name, f"{gmod.path}.{name}", obj)  # type: ignore[arg-type]
    # served lazily (module __getattr__): the submodule that defines it
    found = [
        sub.members[name]
        for sub in gmod.modules.values()
        if name in sub.members and not sub.members[name].is_alias
    ]
    if len(found) != 1:
        where = "no submodule defines it" if not found else f"defined in {[f.path for f in found]}"
        raise PluginError(f"{gmod.path}.__all__ lists {name!r}, but {where}")
    obj = found[0]
    return _Entry(name, obj.path, obj)  # type: ignore[arg-type]


def _summary(obj: griffe.Object) -> str:
    if obj.docstring is None or not obj.docstring.value.strip():
        value = getattr(obj, "value", None) if obj.is_attribute else None
        return f"`= {value}`" if value is not None and len(str(value)) <= 80 else ""
    first = obj.docstring.value.strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in first.splitlines())


def _options(**options: Any) -> str:
    lines = ["    options:"]
    lines += [
        f"      {key}: {str(value).lower() if isinstance(value, bool) else value}"
        for key, value in options.items()
    ]
    return "\n".join(lines)


def _group_order(module: str, gmod: griffe.Module, groups: dict[str, list[_Entry]]) -> list[str]:
    """The page module first, then the defining submodules in dependency order (a submodule comes after the
    ones it imports from, ties by name), then the groups made only of exception classes."""
    collection = gmod.modules_collection
    homes = [h for h in groups if h != module]
    exceptions = sorted(h for h in homes if all(e.is_exception for e in groups[h]))
    rest = [h for h in homes if h not in exceptions]

    def depends(home: str, other: str) -> bool:
        try:
            imports = collection[home].imports.values()
        except KeyError:
            return False
        return any(path == other or path.startswith(other + ".") for path in imports)

    before = {h: {o for o in rest if o != h and depends(h, o)} for h in rest}
    ordered: list[str] = []
    while before:
        ready = sorted(h for h, deps in before.items() if not deps - set(ordered)) or sorted(before)[:1]
        ordered.append(ready[0])
        del before[ready[0]]
    return ([module] if module in groups else []) + ordered + exceptions


def _module_page(module: str, gmod: griffe.Module, entries: list[_Entry]) -> str:
    out = [
        f"# `{module}`",
        "",
        f"::: {module}",
        _options(members=False, show_root_heading=False, show_root_toc_entry=False),
        "",
    ]
    groups: dict[str, list[_Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.home, []).append(entry)
    for home in _group_order(module, gmod, groups):
        level = 2
        if home != module:
            out += [
                f"::: {home}",
                _options(members=False, show_root_heading=True, show_root_full_path=True, heading_level=2),
                "",
            ]
            level = 3
        for entry in sorted(groups[home], key=lambda e: e.line):
            out += [f"::: {entry.identifier}", _options(show_root_heading=True, heading_level=level), ""]
    return "\n".join(out)


def _index_page(sections: list[tuple[str, griffe.Module, list[_Entry]]]) -> str:
    out = [
        "# API reference",
        "",
        "One page per public module. Each page documents exactly the names the module exports "
        "(its `__all__`), "
        "grouped by the submodule that defines them.",
        "",
    ]
    for module, gmod, entries in sections:
        out += [f"## [`{module}`]({module}.md)", ""]
        if _summary(gmod):
            out += [_summary(gmod), ""]
        for entry in sorted(entries, key=lambda e: e.name.lower()):
            summary = _summary(entry.obj)
            separator = " " if summary.startswith("`= ") else ": "
            out.append(f"- [`{entry.name}`][{entry.identifier}]" + (separator + summary if summary else ""))
        out.append("")
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    markup = _markup()
    loader = griffe.GriffeLoader(extensions=griffe.load_extensions(markup.DocstringMarkup))
    sections = []
    for module in API_MODULES:
        top = module.split(".", 1)[0]
        if top not in loader.modules_collection:
            loader.load(top)
        gmod = loader.modules_collection[module]
        entries = [_resolve(gmod, name) for name in _public_names(module)]
        sections.append((module, gmod, entries))
        files.append(File.generated(config, _page_uri(module), content=_module_page(module, gmod, entries)))
    files.append(File.generated(config, INDEX, content=_index_page(sections)))
    return files
