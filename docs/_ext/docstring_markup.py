"""Griffe extension: turn the reStructuredText bits of numpydoc docstrings into Markdown for mkdocstrings.

lampref's docstrings follow numpydoc, which borrows a few constructs from reStructuredText that Markdown does
not know. Before the docstrings are parsed, this extension rewrites them:

* cross-reference roles -- ``:func:`round_to```, ``:class:`~lampref.FloatFormat```,
  ``:mod:`lampref.rounding```, ``:attr:`dtype``` -- become mkdocs-autorefs links such as
  ``[`round_to()`][lampref.rounding.round_to]``. A target is looked up as written, then relative to the object
  that carries the docstring and to each of its parents up to the top-level package; a leading ``~`` shows
  only the last component. A target that exists is an *optional* cross-reference: a link where the object is
  documented, plain code where it is not (a private helper, or another library: no inventories are fetched,
  the build is offline). A target found nowhere (a misspelt or removed name) is left as a plain link, so that
  ``mkdocs build --strict`` reports it;
* ``:math:`...``` becomes ``$...$`` and a ``.. math::`` directive a ``$$ ... $$`` display;
* a literal block introduced by ``::`` at the end of a line becomes a fenced ``python`` code block;
* a ``>>>`` session outside an Examples section becomes a fenced ``pycon`` block;
* a definition list (a line of inline code followed by an indented description, as in a module's list of
  rounding modes) outside the numpydoc sections becomes a Markdown definition list (the ``def_list``
  extension).

Math written ``$...$`` and ``$$...$$`` is marked up by ``pymdownx.arithmatex`` and typeset by the KaTeX
shipped in ``docs/vendor/katex``.

Configured in ``mkdocs.yml`` under the python handler's ``options.extensions``.
"""

from __future__ import annotations

import builtins
import html
import importlib.util
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?P<role>func|class|meth|attr|mod|data|obj|exc|const|term):`(?P<body>[^`]+)`")
_MATH_ROLE = re.compile(r":math:`(?P<body>[^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. math::\s*(?P<rest>.*)$")
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$")
_NUMPY_SECTIONS = {
    "parameters",
    "other parameters",
    "returns",
    "yields",
    "receives",
    "raises",
    "warns",
    "warnings",
    "see also",
    "notes",
    "references",
    "examples",
    "attributes",
    "methods",
    "deprecated",
}
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_TERM = re.compile(r"^``[^`]+``(?:,\s*``[^`]+``)*\s*$")


def _exists(collection: Any, path: str) -> bool:
    try:
        collection.get_member(path) if hasattr(collection, "get_member") else collection[path]
    except (KeyError, ValueError, IndexError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True


def _lookup(obj: griffe.Object, target: str) -> str | None:
    """The full path of ``target`` seen from ``obj``, or None."""
    package = obj.package
    collection = obj.modules_collection
    candidates = []
    if target.split(".", 1)[0] == package.name:
        candidates.append(target)
    scope: griffe.Object | None = obj
    while scope is not None:
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    for path in candidates:
        if _exists(collection, path):
            return path
    return None


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    body = match.group("body").strip()
    explicit = _EXPLICIT.match(body)
    if explicit:
        text, target = explicit.group("text"), explicit.group("target")
    else:
        short = body.startswith("~")
        target = body.lstrip("~").lstrip(".")
        text = target.rsplit(".", 1)[-1] if short else target
    target = target.lstrip("~").lstrip(".").removesuffix("()")
    if match.group("role") in ("func", "meth") and not text.endswith("()"):
        text += "()"
    path = _lookup(obj, target)
    if path is None and (target.split(".", 1)[0] == obj.package.name or not _is_external(target)):
        return f"[`{text}`][{target}]"  # unknown: mkdocs build --strict reports it
    # a name of the package (linked if it is documented, plain code if not) or of another library
    identifier = html.escape(path or target)
    return f'<autoref identifier="{identifier}" optional><code>{html.escape(text)}</code></autoref>'


def _is_external(target: str) -> bool:
    """Whether ``target`` names something of the standard library or an installed package."""
    first = target.split(".", 1)[0]
    if hasattr(builtins, first):
        return True
    try:
        return importlib.util.find_spec(first) is not None
    except (ImportError, ValueError):
        return False


def _literal_blocks(lines: list[str]) -> list[str]:
    """``text::`` followed by an indented block -> ``text:`` and a fenced code block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.strip().startswith(">>>"):
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block_indent = len(lines[j]) - len(lines[j].lstrip()) if j < len(lines) else 0
            if j < len(lines) and block_indent > indent:
                k = j
                while k < len(lines) and (
                    not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent
                ):
                    k += 1
                while k > j and not lines[k - 1].strip():
                    k -= 1
                head = line.rstrip()[:-2].rstrip()
                out.append(head + ":" if head.strip() else "")
                out.append("")
                pad = " " * indent
                out.append(pad + "```python")
                out.extend(pad + text[block_indent:] if text.strip() else "" for text in lines[j:k])
                out.append(pad + "```")
                i = k
                continue
        out.append(line)
        i += 1
    return out


def _definition_lists(lines: list[str]) -> list[str]:
    """RST definition lists with inline-code terms, outside numpydoc sections -> Markdown ``def_list``."""
    out: list[str] = []
    in_numpy_section = False
    in_definition = False
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _UNDERLINE.match(nxt):
            in_numpy_section = line.strip().lower() in _NUMPY_SECTIONS
        indented = line.startswith("    ") and bool(line.strip())
        if not in_numpy_section and _TERM.match(line) and nxt.startswith("    ") and nxt.strip():
            if out and out[-1].strip():
                out.append("")
            out.append(line)
            in_definition = True
        elif in_definition and indented:
            out.append((":   " if _TERM.match(out[-1]) else "    ") + line.strip())
        else:
            in_definition = False
            out.append(line)
    return out


def _math_blocks(lines: list[str]) -> list[str]:
    """``.. math::`` directives -> ``$$ ... $$`` display math."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match.group("indent"))
        body = [match.group("rest")] if match.group("rest").strip() else []
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j].strip())
            j += 1
        while body and not body[-1]:
            body.pop()
        pad = " " * indent
        if out and out[-1].strip():
            out.append("")
        out += [pad + "$$", *(pad + b for b in body if b), pad + "$$", ""]
        i = j
    return out


def _bare_doctests(lines: list[str]) -> list[str]:
    """``>>>`` sessions outside an Examples section -> fenced ``pycon`` blocks (Markdown would read ``>>>`` as
    nested block quotes)."""
    out: list[str] = []
    section = ""
    in_fence = False
    in_session = False
    out_pad = ""
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        stripped = line.strip()
        if stripped and _UNDERLINE.match(nxt):
            section = stripped.lower()
        if stripped.startswith("```"):
            in_fence = not in_fence
        pad = line[: len(line) - len(line.lstrip())]
        if in_session and not stripped:
            out += [out_pad + "```", line]
            in_session = False
            continue
        if not in_fence and not in_session and section != "examples" and stripped.startswith(">>>"):
            if out and out[-1].strip():
                out.append("")
            out_pad = pad
            out.append(pad + "```pycon")
            in_session = True
        out.append(line)
    if in_session:
        out.append(out_pad + "```")
    return out


def convert(obj: griffe.Object, text: str) -> str:
    """The Markdown form of one docstring of ``obj``."""
    lines = text.splitlines()
    lines = _math_blocks(lines)
    lines = _literal_blocks(lines)
    lines = _definition_lists(lines)
    lines = _bare_doctests(lines)
    text = _MATH_ROLE.sub(lambda m: f"${m.group('body')}$", "\n".join(lines))
    return _ROLE.sub(lambda m: _link(obj, m), text)


def _is_composite(func: griffe.Function) -> bool:
    return any(str(d.value).split(".")[-1] == "composite" for d in func.decorators)


class DocstringMarkup(griffe.Extension):
    """Rewrite every docstring of a loaded package (see the module docstring).

    Also shows a Hypothesis ``@composite`` strategy as it is called: without its ``draw`` parameter, and
    returning a ``SearchStrategy`` of what the decorated function returns.
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj, obj.docstring.value)
        if (
            isinstance(obj, griffe.Function)
            and _is_composite(obj)
            and len(obj.parameters)
            and (obj.parameters[0].name == "draw")
        ):
            del obj.parameters[0]
            if obj.returns is not None:
                obj.returns = f"SearchStrategy[{obj.returns}]"
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
