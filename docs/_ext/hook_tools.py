"""What the documentation hooks share (``api_pages.py``, ``notebook_pages.py``).

mkdocs puts this folder on ``sys.path`` while it imports a hook, so the hooks import this module by name.
"""

from __future__ import annotations

from typing import Any


def expand_nav(nav: list[Any] | None, placeholder: str, title: str, section: list[Any]) -> None:
    """Replace the nav entry whose page is ``placeholder`` (at any depth, keeping the title it was given)
    by ``section``; append ``section`` under ``title`` when the nav has no such entry."""

    def expand(items: list[Any]) -> bool:
        for i, item in enumerate(items):
            if isinstance(item, dict) and len(item) == 1:
                ((name, value),) = item.items()
                if value == placeholder:
                    items[i] = {name: section}
                    return True
                if isinstance(value, list) and expand(value):
                    return True
            elif item == placeholder:
                items[i] = {title: section}
                return True
        return False

    if nav is not None and not expand(nav):
        nav.append({title: section})
