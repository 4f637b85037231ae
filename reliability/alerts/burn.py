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


def uptime_budget_ratio_for(spec: AlertsSpec | None, tier_uptime_ratio: float | None,
                            budget_ratio: float | None) -> float | None:
    """The budget of down seconds (1 - uptime SLO) as a ratio: ``uptime_slo_pct``, else the tier's
    uptime, else the request budget; None when nothing defines one."""
    if spec is not None and spec.uptime_slo_pct is not None:
        return 1.0 - spec.uptime_slo_pct / 100.0
    if tier_uptime_ratio is not None and tier_uptime_ratio < 1.0:
        return 1.0 - tier_uptime_ratio
    return budget_ratio


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

# a second's window state as ``reliability.sla.second_state`` names it (None: idle), as a small code
# (an ``edge`` second, one the run covered less than half of, counts neither way: as idle)
_STATE_CODES: dict[str | None, int] = {None: 0, "edge": 0, "up": 1, "errors": 2, "stalled": 3, "slow": 4}
_DOWN_FROM = 2  # errors, stalled, slow: down (uptime's rule)
_BAD_FROM = 3  # stalled, slow: what the seconds SLI counts (errors already burn through the requests)


class CountSeries:
    """Per second from ``start_t`` on: requests, failures, the second's window state (the uptime
    rule: ``up``, ``errors``, ``stalled``, ``slow``, None for idle) and its demand (requests sent
    plus requests held in flight through it), with prefix sums: any window's counts in O(1).
    Seconds without data count as zero and idle. :meth:`put` revises a second already added
    (a request counts in the second it was sent, so one that completes late changes it).

    Example::

        series = CountSeries(start_t=1_700_000_000)
        series.add(1_700_000_003, requests=50, failures=2)
        series.counts(1_700_000_000, 1_700_000_010)   # (50, 2)
        series.put(1_700_000_004, requests=0, failures=0, state="stalled", held=50)
        series.seconds(1_700_000_000, 1_700_000_010)  # (1, 1, 50): counted, stalled or slow, demand
    """

    def __init__(self, start_t: int) -> None:
        self.start_t = start_t
        self._requests: array[int] = array("q")  # per second; index i = second start_t + i
        self._failures: array[int] = array("q")
        self._demand: array[int] = array("q")
        self._states: array[int] = array("b")
        # cumulative; index i = before second start_t + i; valid up to index _summed
        self._sums: tuple[array[int], ...] = tuple(array("q", [0]) for _ in range(5))
        self._summed = 0

    @property
    def end_t(self) -> int:
        """The first second not yet added."""
        return self.start_t + len(self._requests)

    def add(self, t: int, requests: int, failures: int, state: str | None = None, held: int = 0) -> None:
        """Add second ``t`` (at or after :attr:`end_t`; a gap counts as seconds without traffic)."""
        if t < self.end_t:
            raise ValueError(f"second {t} was already added (series ends at {self.end_t})")
        self.put(t, requests, failures, state, held)

    def put(self, t: int, requests: int, failures: int, state: str | None = None, held: int = 0) -> None:
        """Set second ``t``: add it, or replace what an earlier read said about it."""
        i = t - self.start_t
        if i < 0:
            raise ValueError(f"second {t} is before the series starts ({self.start_t})")
        self.extend_to(t + 1)
        self._requests[i] = requests
        self._failures[i] = failures
        self._demand[i] = requests + held
        self._states[i] = _STATE_CODES[state]
        self._summed = min(self._summed, i)

    def extend_to(self, end_t: int) -> None:
        """Mark every second before ``end_t`` as added (no traffic where nothing was added)."""
        while self.end_t < end_t:
            for values in (self._requests, self._failures, self._demand, self._states):
                values.append(0)

    def _prefix(self) -> tuple[array[int], ...]:
        lo, n = self._summed, len(self._requests)
        if lo < n:
            requests, failures, demand, counted, bad = self._sums
            for sums in self._sums:
                del sums[lo + 1:]
            for i in range(lo, n):
                code = self._states[i]
                requests.append(requests[-1] + self._requests[i])
                failures.append(failures[-1] + self._failures[i])
                demand.append(demand[-1] + self._demand[i])
                counted.append(counted[-1] + (code > 0))
                bad.append(bad[-1] + (code >= _BAD_FROM))
            self._summed = n
        return self._sums

    def _span(self, start_t: int, end_t: int) -> tuple[int, int]:
        n = len(self._requests)
        return min(max(start_t - self.start_t, 0), n), min(max(end_t - self.start_t, 0), n)

    def counts(self, start_t: int, end_t: int) -> tuple[int, int]:
        """``(requests, failures)`` in ``[start_t, end_t)``, clipped to what was added."""
        lo, hi = self._span(start_t, end_t)
        if hi <= lo:
            return 0, 0
        requests, failures = self._prefix()[:2]
        return requests[hi] - requests[lo], failures[hi] - failures[lo]

    def seconds(self, start_t: int, end_t: int) -> tuple[int, int, int]:
        """``(counted, stalled_or_slow, demand)`` in ``[start_t, end_t)``: the seconds uptime counts
        (not idle), those of them down because nothing completed or the latency was too high, and
        the requests sent or held in flight through them."""
        lo, hi = self._span(start_t, end_t)
        if hi <= lo:
            return 0, 0, 0
        demand, counted, bad = self._prefix()[2:]
        return counted[hi] - counted[lo], bad[hi] - bad[lo], demand[hi] - demand[lo]

    def first_down(self, start_t: int, end_t: int) -> int | None:
        """The first second in ``[start_t, end_t)`` that uptime counts as down, else None."""
        lo, hi = self._span(start_t, end_t)
        for i in range(lo, hi):
            if self._states[i] >= _DOWN_FROM:
                return self.start_t + i
        return None


# -- evaluation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleBurn:
    """One rule's burn rates at one evaluation (None: too few requests in that window); ``long_by``
    / ``short_by`` name the SLI that burned faster there: ``requests`` (failed requests) or
    ``seconds`` (stalled or slow seconds)."""

    rule: BurnRule
    long: float | None
    short: float | None
    long_by: str | None = None
    short_by: str | None = None

    @property
    def firing(self) -> bool:
        return (self.long is not None and self.short is not None
                and self.long >= self.rule.burn_rate and self.short >= self.rule.burn_rate)

    def describe(self) -> str:
        def fmt(v: float | None, by: str | None) -> str:
            if v is None:
                return "n/a"
            return f"{v:.1f}x" + (" (stalled/slow seconds)" if by == "seconds" else "")

        return (f"burn rate {fmt(self.long, self.long_by)} over {self.rule.long_s} s and "
                f"{fmt(self.short, self.short_by)} over {self.rule.short_s} s "
                f"(>= {self.rule.burn_rate:g}x: {self.rule.severity})")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.name, "severity": self.rule.severity, "threshold": self.rule.burn_rate,
                "long_s": self.rule.long_s, "long": round_finite(self.long), "long_by": self.long_by,
                "short_s": self.rule.short_s, "short": round_finite(self.short), "short_by": self.short_by,
                "firing": self.firing}


def window_burn(series: CountSeries, start_t: int, end_t: int, budget_ratio: float | None,
                uptime_budget_ratio: float | None, min_requests: int) -> tuple[float | None, str | None]:
    """The burn rate over ``[start_t, end_t)`` and the SLI it comes from: the larger of failed
    requests / requests and stalled-or-slow seconds / counted seconds, each over its own budget.
    A window with fewer than ``min_requests`` requests (sent, or held in flight by a stall) has
    no rate for that SLI."""
    requests, failures = series.counts(start_t, end_t)
    counted, bad, demand = series.seconds(start_t, end_t)
    by_requests = burn_rate(requests, failures, budget_ratio) if requests >= min_requests else None
    by_seconds = burn_rate(counted, bad, uptime_budget_ratio) if demand >= min_requests else None
    if by_seconds is not None and (by_requests is None or by_seconds > by_requests):
        return by_seconds, "seconds"
    return (by_requests, "requests") if by_requests is not None else (None, None)
