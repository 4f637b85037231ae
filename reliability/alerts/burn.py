"""Burn-rate maths: the SRE rules scaled to a run, error budgets and burn rates, and the
per-second request/failure counts they are computed over (see :mod:`reliability.alerts`)."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

from reliability.alerts.spec import AlertsSpec, Severity
from reliability.units import round_finite

SCALE_REFERENCE_S = 36_000.0  # 10 h: the SRE windows are multiplied by run length / this
DEFAULT_RUN_LENGTH_S = 600.0  # when neither the scenario, -t nor the shape says how long the run is
HOUR_S = 3600.0


# -- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurnRule:
    """Fire at ``severity`` when the burn rate over both windows is at least ``burn_rate``."""

    name: str
    severity: Severity
    burn_rate: float
    long_s: int
    short_s: int
    sre_long_s: float
    sre_short_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "burn_rate": self.burn_rate,
                "long_s": self.long_s, "short_s": self.short_s,
                "sre_long_h": self.sre_long_s / HOUR_S, "sre_short_h": self.sre_short_s / HOUR_S}


SRE_RULES: tuple[tuple[str, Severity, float, float, float], ...] = (
    ("page-fast", "page", 14.4, 1 * HOUR_S, 5 * 60.0),
    ("page-slow", "page", 6.0, 6 * HOUR_S, 30 * 60.0),
    ("ticket", "warning", 1.0, 72 * HOUR_S, 6 * HOUR_S),
)


def scaled_rules(run_length_s: float, min_window_s: float = 5.0) -> tuple[BurnRule, ...]:
    """The SRE rules with windows scaled to a run of ``run_length_s`` (see the module docstring)."""
    if run_length_s <= 0 or min_window_s < 1:
        raise ValueError("run_length_s must be > 0 and min_window_s >= 1")
    factor = run_length_s / SCALE_REFERENCE_S
    floor = math.ceil(min_window_s)
    return tuple(
        BurnRule(name, severity, rate, max(floor, math.ceil(long_s * factor)), max(floor, math.ceil(short_s * factor)),
                 long_s, short_s)
        for name, severity, rate, long_s, short_s in SRE_RULES
    )


def budget_ratio_for(spec: AlertsSpec | None, tier_error_ratio: float | None,
                     tier_uptime_ratio: float | None = None) -> float | None:
    """The error budget (1 - SLO) as a ratio: ``slo_pct``, else the tier's error ratio, else its
    uptime; None when nothing defines one (then no burn rate is computed)."""
    if spec is not None and spec.slo_pct is not None:
        return 1.0 - spec.slo_pct / 100.0
    for ratio in (tier_error_ratio, None if tier_uptime_ratio is None else 1.0 - tier_uptime_ratio):
        if ratio is not None and ratio > 0:
            return ratio
    return None


def burn_rate(requests: int, failures: int, budget_ratio: float | None) -> float | None:
    """Error ratio / budget; None without requests or budget."""
    if not requests or not budget_ratio:
        return None
    return (failures / requests) / budget_ratio


def budget_remaining(requests: int, failures: int, budget_ratio: float | None) -> float | None:
    """Share of the error budget left: 1 untouched, 0 spent, below 0 overspent (None without data)."""
    if not requests or not budget_ratio:
        return None
    return 1.0 - failures / (budget_ratio * requests)


# -- the per-second counts ----------------------------------------------------------------------------


class CountSeries:
    """Requests and failures per second from ``start_t`` on, with prefix sums: any window's
    counts in O(1). Seconds without data count as zero.

    Example::

        series = CountSeries(start_t=1_700_000_000)
        series.add(1_700_000_003, requests=50, failures=2)
        series.counts(1_700_000_000, 1_700_000_010)   # (50, 2)
    """

    def __init__(self, start_t: int) -> None:
        self.start_t = start_t
        self._requests: array[int] = array("q", [0])  # cumulative; index i = before second start_t + i
        self._failures: array[int] = array("q", [0])

    @property
    def end_t(self) -> int:
        """The first second not yet added."""
        return self.start_t + len(self._requests) - 1

    def add(self, t: int, requests: int, failures: int) -> None:
        """Add second ``t`` (at or after :attr:`end_t`; a gap counts as seconds without traffic)."""
        if t < self.end_t:
            raise ValueError(f"second {t} was already added (series ends at {self.end_t})")
        while self.end_t < t:
            self._requests.append(self._requests[-1])
            self._failures.append(self._failures[-1])
        self._requests.append(self._requests[-1] + requests)
        self._failures.append(self._failures[-1] + failures)

    def extend_to(self, end_t: int) -> None:
        """Mark every second before ``end_t`` as added (no traffic where nothing was added)."""
        while self.end_t < end_t:
            self._requests.append(self._requests[-1])
            self._failures.append(self._failures[-1])

    def counts(self, start_t: int, end_t: int) -> tuple[int, int]:
        """``(requests, failures)`` in ``[start_t, end_t)``, clipped to what was added."""
        lo = min(max(start_t - self.start_t, 0), len(self._requests) - 1)
        hi = min(max(end_t - self.start_t, 0), len(self._requests) - 1)
        if hi <= lo:
            return 0, 0
        return self._requests[hi] - self._requests[lo], self._failures[hi] - self._failures[lo]


# -- evaluation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleBurn:
    """One rule's burn rates at one evaluation (None: too few requests in that window)."""

    rule: BurnRule
    long: float | None
    short: float | None

    @property
    def firing(self) -> bool:
        return (self.long is not None and self.short is not None
                and self.long >= self.rule.burn_rate and self.short >= self.rule.burn_rate)

    def describe(self) -> str:
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f}x"

        return (f"burn rate {fmt(self.long)} over {self.rule.long_s} s and {fmt(self.short)} over "
                f"{self.rule.short_s} s (>= {self.rule.burn_rate:g}x: {self.rule.severity})")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.name, "severity": self.rule.severity, "threshold": self.rule.burn_rate,
                "long_s": self.rule.long_s, "long": round_finite(self.long), "short_s": self.rule.short_s,
                "short": round_finite(self.short), "firing": self.firing}
