"""Data made safe to print on a terminal: what a producer put in an event never acts on the operator's screen.

An id, a reason or a SKU is data: a control character in it (ESC, which starts the sequences that clear the
screen or colour what follows; NUL; a carriage return or a newline, which would overwrite or split a line of
output) or a bidirectional override (which reorders what a terminal shows after it) is printed as the visible
escape ``repr`` gives it (``\\x1b``, ``\\r``, ``\\u202e``), never as the character itself. Everything else,
accents, CJK, emoji (joiners included), prints as it is. Only data goes through here: the lines and newlines the
CLI lays out itself are not data. ``--json`` output is not for a terminal and stays exact (``json.dumps``
escapes control characters itself).
"""

from __future__ import annotations

import re
from typing import Any

from functions.common.json_tree import mapped

# C0 controls and DEL, C1 controls; the bidirectional formatting characters (embeddings and overrides
# U+202A-U+202E, isolates U+2066-U+2069, the marks U+200E, U+200F, U+061C) and the Unicode line and paragraph
# separators U+2028, U+2029; and the UTF-16 surrogates, which a lone one (``"\ud800"``, valid JSON) put in a Python
# string: it has no UTF-8 form, so printing it failed the whole listing.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def shown(text: str) -> str:
    """``text`` with every character a terminal would act on written as its escape (``\\x1b``, ``\\u202e``)."""
    return UNSAFE.sub(lambda match: repr(match.group())[1:-1], text)


def terminal_safe(value: Any) -> Any:
    """A copy of a JSON-like ``value`` (dicts, lists, tuples, strings, numbers) with every string in it, keys
    included, ``shown``; other values are kept as they are. Iterative: a value nested however deep is copied
    without recursion."""
    return mapped(value, _shown_if_text, _shown_if_text)


def _shown_if_text(value: Any) -> Any:
    return shown(value) if isinstance(value, str) else value
