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
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_DURATION_S = 30 * 86400.0  # a month: longer than any soak, short enough that a typo is caught
MAX_LATENCY_MS = 86400_000.0  # a day
MAX_NUMBER = 1e12  # no count, rate or size of a scenario comes near; 1e300 is a typo or an attack


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
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most {MAX_DURATION_S / 86400:g} days, got {seconds:g} s")
    return seconds


def parse_latency_ms(value: object) -> float:
    """Milliseconds from a number (ms) or a string like "200ms", "1.5s"."""
    if isinstance(value, str) and value.strip().endswith(("ms", "s", "m", "h")):
        return parse_duration_s(value) * 1000.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a latency such as 200 or '200ms', got {value!r}")
    try:
        ms = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"expected a latency such as 200 or '200ms', got {value!r}") from None
    if not math.isfinite(ms):
        raise ValueError("a latency must be a finite number")
    if abs(ms) > MAX_LATENCY_MS:
        raise ValueError(f"a latency must be at most {MAX_LATENCY_MS:g} ms (a day), got {ms:g}")
    return ms


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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _sane_numbers(self) -> Self:
        # every number of a scenario finite and within MAX_NUMBER, however a field is declared
        for name in type(self).model_fields:
            bad = _out_of_range(getattr(self, name))
            if bad is not None:
                raise ValueError(f"{name}: {bad} is out of range (at most {MAX_NUMBER:g} in size)")
        return self


def _out_of_range(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (f"{value:.3e}" if abs(value) < 10**300 else "a huge integer") if abs(value) > MAX_NUMBER else None
    if isinstance(value, float):
        return f"{value:g}" if not math.isfinite(value) or abs(value) > MAX_NUMBER else None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        for item in value:
            found = _out_of_range(item)
            if found is not None:
                return found
    return None


def raise_at(loc: tuple[int | str, ...], message: str, value: object) -> None:
    """Raise a validation error at ``loc`` below the field being validated (so paths stay exact)."""
    error = InitErrorDetails(type=PydanticCustomError("scenario", message), loc=loc, input=value)
    raise ValidationError.from_exception_data("scenario", [error])
