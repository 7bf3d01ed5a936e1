"""Dotted paths into parsed JSON: `document[].paragraph[].form`, `[].text`, `meta.text`.

`name[]` descends into the field and then iterates its list; a bare `[]` iterates the current
value. The empty path selects the value itself.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Step = tuple[str, int]  # (field name or "" for none, number of list levels to iterate)


def parse_path(path: str) -> list[Step]:
    steps: list[Step] = []
    for token in filter(None, path.split(".")):
        name = token.rstrip("[]")
        depth = (len(token) - len(name)) // 2
        if token != name + "[]" * depth:
            raise ValueError(f"bad JSON path {path!r}: only 'field', 'field[]' and '[]' steps are allowed")
        steps.append((name, depth))
    return steps


def select(value: Any, steps: list[Step], missing: list[str], _done: str = "") -> Iterator[Any]:
    """Yield every value `steps` reaches; record in `missing` each dotted prefix that was absent."""
    if not steps:
        yield value
        return
    (name, depth), rest = steps[0], steps[1:]
    here = f"{_done}.{name}" if _done and name else (name or _done)
    if name:
        if not isinstance(value, dict) or name not in value:
            missing.append(here)
            return
        value = value[name]
    for level in range(depth):
        here += "[]"
        if not isinstance(value, list):
            missing.append(here)
            return
        if level + 1 < depth:
            value = [item for sub in value if isinstance(sub, list) for item in sub]
    items = value if depth else [value]
    for item in items:
        yield from select(item, rest, missing, here)
