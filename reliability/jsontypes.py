"""Types for JSON as it crosses a boundary (HTTP APIs, journals, files), and narrowing helpers.

Imports nothing from ``reliability``. Where a value's shape is known, prefer a pydantic model or a
``TypedDict``; :data:`JsonValue` is for data that really is arbitrary JSON until it is checked, and
the helpers below narrow it with a one-line error instead of a ``KeyError`` deep in a caller.

Example::

    body: JsonValue = json.loads(text)
    proxy = as_object(body, "proxy")          # dict[str, JsonValue] or ValueError
    listen = as_str(proxy.get("listen"), "proxy.listen")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JsonValue: TypeAlias = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
JsonArray: TypeAlias = list[JsonValue]
#: JSON as a producer hands it over, read-only: ``list[str]``, ``dict[str, int]`` or a tuple fit
#: where a :data:`JsonValue` (whose ``list`` and ``dict`` are invariant) would not
JsonData: TypeAlias = str | int | float | bool | None | Sequence["JsonData"] | Mapping[str, "JsonData"]


def as_object(value: JsonValue, what: str) -> JsonObject:
    """``value`` as a JSON object, or ValueError naming ``what``."""
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def as_array(value: JsonValue, what: str) -> JsonArray:
    """``value`` as a JSON array, or ValueError naming ``what``."""
    if not isinstance(value, list):
        raise ValueError(f"{what}: expected an array, got {type(value).__name__}")
    return value


def as_str(value: JsonValue, what: str) -> str:
    """``value`` as a string, or ValueError naming ``what``."""
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def as_number(value: JsonValue, what: str) -> float:
    """``value`` as a number (bool is not one), or ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what}: expected a number, got {type(value).__name__}")
    return float(value)
