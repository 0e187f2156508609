"""JSON-like values (what ``json.loads`` gives: dicts, lists, and tuples read as lists) walked without recursion.

A hostile event may nest as deep as the JSON reader went; code that walks it recursively would raise
RecursionError at a depth that depends on the stack in use, so two readers of one event could disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _same(value: Any) -> Any:
    return value


def mapped(value: Any, leaf: Callable[[Any], Any], key: Callable[[Any], Any] = _same) -> Any:
    """A copy of ``value`` with ``leaf`` applied to every value that is not a dict, list or tuple (tuples are
    copied as lists), and ``key`` to every dict key."""
    if not isinstance(value, dict | list | tuple):
        return leaf(value)
    root: Any = {} if isinstance(value, dict) else [None] * len(value)
    pending: list[tuple[Any, Any]] = [(value, root)]
    while pending:
        source, target = pending.pop()
        for name, child in (source.items() if isinstance(source, dict) else enumerate(source)):
            if isinstance(child, dict | list | tuple):
                copy: Any = {} if isinstance(child, dict) else [None] * len(child)
                pending.append((child, copy))
            else:
                copy = leaf(child)
            target[key(name) if isinstance(source, dict) else name] = copy
    return root
