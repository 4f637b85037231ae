"""The incident state machine of one run: breach, escalation to page, recovery, run end
(see :mod:`reliability.alerts`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from reliability.alerts.burn import BurnRule, CountSeries, RuleBurn, window_burn
from reliability.alerts.spec import SEVERITY_RANK, Severity
from reliability.units import iso, round_finite

EventKind = Literal["breach", "escalation", "recovery", "run_end"]


@dataclass(frozen=True)
class AlertEvent:
    """What happened (``kind``) at ``epoch_s``: ``severity`` is the incident's, ``reasons`` what held.
    ``down_since_s`` (since the run started) is the start of the first down second (uptime's rule)
    in the windows that fired, None when none was down (budget burnt by a trickle of errors);
    ``time_to_detect_s`` is the time from there to this event."""

    kind: EventKind
    severity: Severity
    epoch_s: float
    t_s: float  # since the run started
    reasons: tuple[str, ...]
    burns: tuple[RuleBurn, ...]
    incident: int  # 1, 2 ... per run
    down_since_s: float | None = None
    time_to_detect_s: float | None = None

    @property
    def resolved(self) -> bool:
        return self.kind in ("recovery", "run_end")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "status": "resolved" if self.resolved else "firing",
                "incident": self.incident, "at": iso(self.epoch_s), "t_s": round(self.t_s, 3),
                "reasons": list(self.reasons), "burn_rates": [b.to_dict() for b in self.burns],
                "down_since_s": round_finite(self.down_since_s, 3),
                "time_to_detect_s": round_finite(self.time_to_detect_s, 3)}


@dataclass
class _Incident:
    number: int
    severity: Severity
    opened_at: float
    clear_since: float | None = None


@dataclass
class BurnRateAlerts:
    """The alert state machine of one run; see the module docstring."""

    rules: tuple[BurnRule, ...]
    budget_ratio: float | None
    uptime_budget_ratio: float | None = None  # down seconds' budget (None: only requests burn)
    min_requests: int = 10
    clear_s: float = 5.0
    sla_breach: bool = True
    started_at: float = 0.0
    rolling_s: int = 60  # the rolling verdict's window: where a breach by the SLA alone finds its onset
    events: list[AlertEvent] = field(default_factory=list)
    last_burns: tuple[RuleBurn, ...] = ()
    level: Severity | None = None  # what holds at the last evaluation
    _incident: _Incident | None = None
    _count: int = 0
    _quiet_from_t: int | None = None  # the first second after the last incident closed
    _series: CountSeries | None = None
    _end_t: int = 0

    @property
    def severity(self) -> Severity | None:
        """The open incident's severity (its peak), None when no alert is open."""
        return self._incident.severity if self._incident is not None else None

    def burns(self, series: CountSeries, start_t: int, end_t: int) -> tuple[RuleBurn, ...]:
        def rate(window_s: int) -> tuple[float | None, str | None]:
            return window_burn(series, max(start_t, end_t - window_s), end_t, self.budget_ratio,
                               self.uptime_budget_ratio, self.min_requests)

        out = []
        for rule in self.rules:
            (long, long_by), (short, short_by) = rate(rule.long_s), rate(rule.short_s)
            out.append(RuleBurn(rule, long, short, long_by, short_by))
        return tuple(out)

    def evaluate(self, series: CountSeries, start_t: int, end_t: int, now: float,
                 sla_failing: Sequence[str] = (), sla_inconclusive: Sequence[str] = ()) -> list[AlertEvent]:
        """Grade the closed seconds ``[start_t, end_t)``; return the events this step produced.
        ``sla_failing``: the rolling verdict's criteria failing on evidence (empty when none does);
        ``sla_inconclusive``: its criteria without enough evidence either way. Those open no
        incident (they are not a breach) and hold an open one (they are not a recovery either)."""
        burns = self.burns(series, start_t, end_t) if self.budget_ratio or self.uptime_budget_ratio else ()
        self._series, self._end_t = series, end_t
        self.last_burns = burns
        firing = [b for b in burns if b.firing]
        reasons = [b.describe() for b in firing]
        level: Severity | None = None
        if firing:
            level = "page" if any(b.rule.severity == "page" for b in firing) else "warning"
        if self.sla_breach and sla_failing:
            reasons += [f"SLA failing: {c}" for c in sla_failing]
            level = level or "warning"
        self.level = level
        out: list[AlertEvent] = []
        incident = self._incident
        if incident is None:
            if level is not None:
                self._count += 1
                self._incident = _Incident(self._count, level, now)
                out.append(self._event("breach", level, now, reasons, burns))
        elif level is not None:
            incident.clear_since = None
            if SEVERITY_RANK[level] > SEVERITY_RANK[incident.severity]:
                incident.severity = level
                out.append(self._event("escalation", level, now, reasons, burns))
        elif self.sla_breach and sla_inconclusive:
            incident.clear_since = None  # no evidence of recovery: the quiet time starts again later
        else:
            if incident.clear_since is None:
                incident.clear_since = now
            if now - incident.clear_since >= self.clear_s:
                self._incident = None
                self._quiet_from_t = end_t
                quiet = f"nothing has fired for {now - incident.clear_since:.0f} s"
                out.append(self._event("recovery", incident.severity, now, [quiet], burns, incident.number))
        self.events.extend(out)
        return out

    def close(self, now: float, why: str = "the run ended") -> AlertEvent | None:
        """End the run: a ``run_end`` event when an incident is still open."""
        incident = self._incident
        if incident is None:
            return None
        self._incident = None
        event = self._event("run_end", incident.severity, now, [f"{why} with the alert open"], self.last_burns,
                            incident.number)
        self.events.append(event)
        return event

    def _down_since(self, burns: tuple[RuleBurn, ...]) -> int | None:
        """The first down second in the longest window that fired, after the last incident closed."""
        series = self._series
        if series is None:
            return None
        window_s = max((b.rule.long_s for b in burns if b.firing), default=0)
        rolling = self.rolling_s if window_s == 0 else 0
        lo = self._end_t - max(window_s, rolling)
        if self._quiet_from_t is not None:
            lo = max(lo, self._quiet_from_t)
        return series.first_down(lo, self._end_t)

    def _event(self, kind: EventKind, severity: Severity, now: float, reasons: Sequence[str],
               burns: tuple[RuleBurn, ...], number: int | None = None) -> AlertEvent:
        since = ttd = None
        if kind in ("breach", "escalation"):
            down_t = self._down_since(burns)
            if down_t is not None:
                since = max(0.0, down_t - self.started_at)
                ttd = max(0.0, now - max(float(down_t), self.started_at))
        return AlertEvent(kind, severity, now, now - self.started_at, tuple(reasons), burns,
                          number if number is not None else self._count, since, ttd)


def wants(event: AlertEvent, min_severity: Severity) -> bool:
    """Whether a receiver with ``min_severity`` gets ``event``. A page-only receiver gets the
    escalation (its first news of the incident) and the recovery of an incident that paged."""
    return SEVERITY_RANK[event.severity] >= SEVERITY_RANK[min_severity]
