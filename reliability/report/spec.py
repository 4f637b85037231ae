"""The scenario's ``cost`` section: what a minute of downtime, a failed request and a minute over
the latency threshold cost the business.

Imports only pydantic and :mod:`reliability.units`: ``reliability.config`` imports this module.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from reliability.units import FrozenSpec, parse_latency_ms


class CostSpec(FrozenSpec):
    """Cost model of a scenario; every rate is in ``currency`` and 0 means "not counted".

    ``latency_threshold_ms`` is the per-second p95 above which a second counts as slow; by default
    it is the run's own SLA latency threshold (the total ``p95_ms`` criterion).

    Example::

        cost:
          currency: EUR
          per_downtime_minute: 1200
          per_failed_request: 0.05
          per_slow_minute: 150

        CostSpec(currency="EUR", per_downtime_minute=1200, per_failed_request=0.05, per_slow_minute=150)
    """

    currency: str = Field(default="USD", min_length=1, max_length=8)
    per_downtime_minute: float = Field(default=0.0, ge=0)
    per_failed_request: float = Field(default=0.0, ge=0)
    per_slow_minute: float = Field(default=0.0, ge=0)
    latency_threshold_ms: float | None = Field(default=None, gt=0)

    @field_validator("latency_threshold_ms", mode="before")
    @classmethod
    def _latency(cls, value: object) -> object:
        if value is None:
            return None
        return parse_latency_ms(value)
