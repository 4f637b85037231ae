"""Text from the target or the user made safe to show: in a report, a terminal line, a log line or
a ``/metrics`` label.

A request name, an error message or a health detail can carry control characters (an ESC that
recolours the terminal, a CR that overwrites a line, a NUL that truncates it) or Unicode bidi
controls (a right-to-left override that makes ``exe.txt`` read ``txt.exe``). :func:`neutralize`
shows each as a visible escape (``\\x1b``, ``\\u202e``) instead of obeying it; :func:`shorten`
keeps the start of a long name, an ellipsis and a short hash of the whole (so two long names that
share a start stay distinct). The run record always keeps the full, raw text.

Example::

    >>> neutralize("GET /a\\x1b[31m\\u202etxt.exe")
    'GET /a\\\\x1b[31m\\\\u202etxt.exe'
    >>> shorten("/api/" + "x" * 300, 24)
    '/api/xxxxxxxxx…#ad837960'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import overload

from reliability.jsontypes import JsonData, JsonObject, JsonValue

MAX_NAME_CHARS = 160  # a request, endpoint, fault or component name in a report or terminal line
MAX_TEXT_CHARS = 2000  # any other text (an error message, a reason, a log line)
ELLIPSIS = "…"
# C0 and C1 controls (tab, newline and carriage return included: every place we show text is one
# line or a table cell), DEL, and the bidi embeddings, overrides, isolates and marks
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
_NAME_KEYS = frozenset({"name", "type", "request_type", "endpoint", "id", "scenario", "tier", "criterion",
                        "component", "fault", "scope", "label"})


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralize(text: str) -> str:
    """``text`` with every control and bidi character shown as a visible escape."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def shorten(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """``text`` if it fits in ``limit`` characters, else its start, ``…`` and 8 hex digits of its hash."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return text[:max(1, limit - 10)] + ELLIPSIS + "#" + digest


def shorten_line(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """A long line cut in the middle (``head…tail``), so a line's end (the numbers of a table
    row, the verdict of a criterion) survives a 10 kB name inside it."""
    if len(text) <= limit:
        return text
    tail = min(120, limit // 3)
    return text[:max(1, limit - tail - 1)] + ELLIPSIS + text[-tail:]


def display(text: object, limit: int = MAX_NAME_CHARS) -> str:
    """One value made safe to show: neutralized, then shortened to ``limit``."""
    return shorten(neutralize(str(text)), limit)


@overload
def display_data(data: Mapping[str, JsonData], key: str | None = None) -> JsonObject: ...


@overload
def display_data(data: JsonData, key: str | None = None) -> JsonValue: ...


def display_data(data: JsonData, key: str | None = None) -> JsonValue:
    """A copy of JSON-like ``data`` fit for rendering: every string neutralized; names (values of
    keys such as ``name``, ``type``, ``endpoint``) shortened to :data:`MAX_NAME_CHARS`, other
    text to :data:`MAX_TEXT_CHARS`, mapping keys to :data:`MAX_NAME_CHARS`."""
    if isinstance(data, str):
        return display(data, MAX_NAME_CHARS if key in _NAME_KEYS else MAX_TEXT_CHARS)
    if isinstance(data, Mapping):
        # a key that is not a string (a caller's int) is kept as it is, as json.dumps would take it
        return {display(k) if isinstance(k, str) else k: display_data(v, k if isinstance(k, str) else None)
                for k, v in data.items()}
    if isinstance(data, Sequence):  # a list or tuple (a string is handled above)
        return [display_data(v, key) for v in data]
    return data
