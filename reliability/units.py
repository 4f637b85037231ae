"""Units and the small helpers every layer shares; the bottom of the import graph.

Imports nothing from ``reliability`` (only the standard library and pydantic), so any module may
import it without a circle. What lives here:

* parsing units of scenario values: :func:`parse_duration_s` ("250ms", "30s", "2m", "1h"),
  :func:`parse_latency_ms` ("200ms", "1.5s"), :func:`parse_percentile` ("p99.9"), and the
  annotated field types :data:`DurationS` / :data:`LatencyMs` that apply them in a spec;
* :class:`FrozenSpec`, the base of every parsed scenario section (frozen, unknown keys rejected),
  and :func:`raise_at` for a cross-field check that names the exact field;
* formatting: :func:`percentile_label` (``99.9 -> "p99.9"``), :func:`iso` (epoch seconds to UTC
  ISO 8601 with milliseconds) and :func:`round_finite` (None for NaN/inf, so JSON stays valid).

Example::

    class PauseSpec(FrozenSpec):
        hold_s: DurationS = 30.0     # accepts 30, "30s", "500ms"

    PauseSpec.model_validate({"hold_s": "2m"}).hold_s   # 120.0
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration_s(value: object) -> float:
    """Seconds from a number (seconds) or a string like "250ms", "30s", "2m", "1h"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, '30s' or '250ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30, '30s' or '250ms', got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_latency_ms(value: object) -> float:
    """Milliseconds from a number (ms) or a string like "200ms", "1.5s"."""
    if isinstance(value, str) and value.strip().endswith(("ms", "s", "m", "h")):
        return parse_duration_s(value) * 1000.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a latency such as 200 or '200ms', got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a latency such as 200 or '200ms', got {value!r}") from None


def parse_percentile(value: object) -> float:
    """Percentile (0-100, exclusive) from 95, "95", "p95" or "p99.9"."""
    text = str(value).strip().lower().removeprefix("p")
    try:
        pct = float(text)
    except ValueError:
        raise ValueError(f"expected a percentile such as p95 or 99.9, got {value!r}") from None
    if not 0.0 < pct < 100.0:
        raise ValueError(f"a percentile must be between 0 and 100 (exclusive), got {value!r}")
    return pct


def percentile_label(pct: float) -> str:
    """"p95", "p99.9" for 95.0, 99.9."""
    return f"p{pct:g}"


def iso(epoch_s: float) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: ``2026-01-02T03:04:05.678Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def round_finite(value: float | None, digits: int = 3) -> float | None:
    """``round(value, digits)``; None for None, NaN and infinities (JSON has no NaN)."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
"""A spec field in seconds that also accepts "250ms", "30s", "2m", "1h"."""

LatencyMs = Annotated[float, BeforeValidator(parse_latency_ms)]
"""A spec field in milliseconds that also accepts "200ms", "1.5s"."""


class FrozenSpec(BaseModel):
    """Base of the parsed scenario sections: immutable, and an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def raise_at(loc: tuple[int | str, ...], message: str, value: object) -> None:
    """Raise a validation error at ``loc`` below the field being validated (so paths stay exact)."""
    error = InitErrorDetails(type=PydanticCustomError("scenario", message), loc=loc, input=value)
    raise ValidationError.from_exception_data("scenario", [error])
