"""SLA alerting: error-budget burn rates over several windows, escalation from warning to page,
recovery, and the webhook payloads (generic JSON and Slack-compatible text).

Pure: no locust, no gevent. The plugin extension in :mod:`reliability.web.alerting` feeds it the
per-second counts of the run and sends what it returns from greenlets.

The rules are the SRE Workbook's multiwindow, multi-burn-rate alerts for a 30-day SLO, with
every window multiplied by ``run length / 10 h`` (so its 1 h window is a tenth of the run) and
none shorter than ``min_window_s``. A rule fires when the burn rate over its long *and* its short
window both reach its threshold; the short window makes an alert end soon after the errors stop:

============  ==========  =====================  ===================  ============================
severity      burn rate   long window            short window         SRE original (30-day SLO)
============  ==========  =====================  ===================  ============================
page          >= 14.4     run / 10               run / 120            1 h / 5 min (2 % of budget)
page          >= 6        run * 0.6              run / 20             6 h / 30 min (5 %)
warning       >= 1        run * 7.2 (the run)    run * 0.6            3 d / 6 h (10 %)
============  ==========  =====================  ===================  ============================

Burn rate = error ratio / (1 - SLO); the SLO is ``slo_pct`` or, by default, what the selected
tier allows (``100 - error_pct``: gold's 0.5 % errors make a 99.5 % SLO). A window with fewer than
``min_requests`` requests never fires. With ``sla_breach`` (default on) a failing rolling SLA
verdict (latency too) is a warning by itself.

An incident opens with ``breach`` at the severity that holds, moves once to ``page`` with
``escalation``, and closes with ``recovery`` when nothing has held for ``clear_s``. A run that
ends with an incident open sends ``run_end``. Example::

    alerts = BurnRateAlerts(scaled_rules(run_length_s=600, min_window_s=5), budget_ratio=0.005)
    series.add(t, requests=120, failures=30)
    for event in alerts.evaluate(series, start_t, end_t, now=time.time(), sla_failing=()):
        send(json_payload(event, context))
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from reliability.masking import mask

Severity = Literal["warning", "page"]
SEVERITY_RANK: Mapping[str, int] = {"warning": 1, "page": 2}
SCALE_REFERENCE_S = 36_000.0  # 10 h: the SRE windows are multiplied by run length / this
DEFAULT_RUN_LENGTH_S = 600.0  # when neither the scenario, -t nor the shape says how long the run is
HOUR_S = 3600.0


def _duration(value: object) -> float:
    # imported here: reliability.config imports this module while it is being defined
    from reliability.config import parse_duration_s

    return parse_duration_s(value)


DurationS = Annotated[float, BeforeValidator(_duration)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSpec(_Spec):
    """One receiver. ``url`` is a secret (Slack's carries its token in the path): write it as
    ``${ENV_VAR}``; it is never shown, logged or written, only ``scheme://host/***``.
    A bare string is taken as the URL. Example: ``{url: "${SLACK_WEBHOOK}", format: slack,
    min_severity: page}``."""

    url: SecretStr
    format: Literal["json", "slack"] = "json"
    min_severity: Severity | None = None  # default: the section's min_severity
    timeout_s: DurationS = Field(default=5.0, gt=0, le=30)

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _http(self) -> WebhookSpec:
        if urlsplit(self.url.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("url: must be an http:// or https:// URL")
        return self


class AlertsSpec(_Spec):
    """The scenario's ``alerts:`` section.

    Example::

        alerts:
          slo_pct: 99.5             # default: 100 - the selected tier's error_pct
          run_length_s: 30m         # what the windows scale to (default: -t, else the shape, else 10m)
          webhooks:
            - ${ALERT_WEBHOOK_URL}                                   # generic JSON
            - {url: "${SLACK_WEBHOOK}", format: slack, min_severity: page}
    """

    webhooks: tuple[WebhookSpec, ...] = ()
    slo_pct: float | None = Field(default=None, gt=0, lt=100)
    run_length_s: DurationS | None = Field(default=None, gt=0)
    min_window_s: DurationS = Field(default=5.0, ge=1, le=3600)
    min_requests: int = Field(default=10, ge=1)
    clear_s: DurationS = Field(default=5.0, ge=0)
    sla_breach: bool = True
    min_severity: Severity = "warning"

    def secrets(self) -> tuple[str, ...]:
        """Every webhook URL, for scrubbing text that is shown, logged or written."""
        return tuple(sorted({w.url.get_secret_value() for w in self.webhooks}, key=len, reverse=True))


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
                "long_s": self.rule.long_s, "long": _round(self.long), "short_s": self.rule.short_s,
                "short": _round(self.short), "firing": self.firing}


EventKind = Literal["breach", "escalation", "recovery", "run_end"]


@dataclass(frozen=True)
class AlertEvent:
    """What happened (``kind``) at ``epoch_s``: ``severity`` is the incident's, ``reasons`` what held."""

    kind: EventKind
    severity: Severity
    epoch_s: float
    t_s: float  # since the run started
    reasons: tuple[str, ...]
    burns: tuple[RuleBurn, ...]
    incident: int  # 1, 2 ... per run

    @property
    def resolved(self) -> bool:
        return self.kind in ("recovery", "run_end")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "status": "resolved" if self.resolved else "firing",
                "incident": self.incident, "at": _iso(self.epoch_s), "t_s": round(self.t_s, 3),
                "reasons": list(self.reasons), "burn_rates": [b.to_dict() for b in self.burns]}


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
    min_requests: int = 10
    clear_s: float = 5.0
    sla_breach: bool = True
    started_at: float = 0.0
    events: list[AlertEvent] = field(default_factory=list)
    last_burns: tuple[RuleBurn, ...] = ()
    level: Severity | None = None  # what holds at the last evaluation
    _incident: _Incident | None = None
    _count: int = 0

    @property
    def severity(self) -> Severity | None:
        """The open incident's severity (its peak), None when no alert is open."""
        return self._incident.severity if self._incident is not None else None

    def burns(self, series: CountSeries, start_t: int, end_t: int) -> tuple[RuleBurn, ...]:
        def rate(window_s: int) -> float | None:
            requests, failures = series.counts(max(start_t, end_t - window_s), end_t)
            return burn_rate(requests, failures, self.budget_ratio) if requests >= self.min_requests else None

        return tuple(RuleBurn(rule, rate(rule.long_s), rate(rule.short_s)) for rule in self.rules)

    def evaluate(self, series: CountSeries, start_t: int, end_t: int, now: float,
                 sla_failing: Sequence[str] = ()) -> list[AlertEvent]:
        """Grade the closed seconds ``[start_t, end_t)``; return the events this step produced.
        ``sla_failing``: the rolling verdict's failing criteria (empty when it passes)."""
        burns = self.burns(series, start_t, end_t) if self.budget_ratio else ()
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
        else:
            if incident.clear_since is None:
                incident.clear_since = now
            if now - incident.clear_since >= self.clear_s:
                self._incident = None
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

    def _event(self, kind: EventKind, severity: Severity, now: float, reasons: Sequence[str],
               burns: tuple[RuleBurn, ...], number: int | None = None) -> AlertEvent:
        return AlertEvent(kind, severity, now, now - self.started_at, tuple(reasons), burns,
                          number if number is not None else self._count)


def wants(event: AlertEvent, min_severity: Severity) -> bool:
    """Whether a receiver with ``min_severity`` gets ``event``. A page-only receiver gets the
    escalation (its first news of the incident) and the recovery of an incident that paged."""
    return SEVERITY_RANK[event.severity] >= SEVERITY_RANK[min_severity]


# -- payloads and delivery ----------------------------------------------------------------------------


def json_payload(event: AlertEvent, context: Mapping[str, Any]) -> dict[str, Any]:
    """The generic JSON body: the event plus ``context`` (scenario, tier, budget ...)."""
    return {"source": "locust-reliability", **event.to_dict(), **context}


_TITLES = {"breach": "SLA breach", "escalation": "SLA breach escalated", "recovery": "SLA recovered",
           "run_end": "run ended with the SLA alert open"}


def slack_payload(event: AlertEvent, context: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack-compatible body (``{"text": ...}``, also read by Mattermost, Rocket.Chat, Teams
    connectors that take Slack format)."""
    label = "RESOLVED" if event.resolved else event.severity.upper()
    scenario = context.get("scenario") or "load test"
    tier = context.get("tier")
    head = f"[{label}] {_TITLES[event.kind]}: {scenario}" + (f" ({tier})" if tier else "")
    lines = [head, f"at +{event.t_s:.0f} s ({_iso(event.epoch_s)}), incident #{event.incident}"]
    lines += [f"- {r}" for r in event.reasons]
    budget = context.get("budget_remaining")
    if isinstance(budget, int | float):
        lines.append(f"error budget left: {budget * 100:.1f} %")
    return {"text": "\n".join(lines)}


def webhook_label(url: str) -> str:
    """A printable name for a webhook: scheme and host only (``https://hooks.slack.com/***``)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}/***"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one POST: ``status`` (None when no answer), ``error`` (scrubbed)."""

    status: int | None
    error: str | None
    elapsed_ms: float
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "elapsed_ms": round(self.elapsed_ms, 1),
                "attempts": self.attempts}


Opener = Callable[[urllib.request.Request, float], Any]


def _open(request: urllib.request.Request, timeout_s: float) -> Any:
    return urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 - http(s) checked by the spec


def deliver(url: str, body: Mapping[str, Any], timeout_s: float, *, attempts: int = 2,
            opener: Opener = _open, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST ``body`` as JSON to ``url``: 2xx is delivered; a failed connection or a 5xx is tried
    again once after 0.5 s. Blocking (bounded by ``timeout_s`` per attempt): call it from a
    greenlet or thread. Error text never contains the URL."""
    data = json.dumps(body).encode()
    started = clock()
    status: int | None = None
    error: str | None = None
    tries = 0
    for tries in range(1, attempts + 1):  # noqa: B007 - the count is reported
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "locust-reliability-alerts"})
        try:
            with opener(request, timeout_s) as response:
                status = int(response.status)
                response.read(65536)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            status = None
            reason = getattr(exc, "reason", exc)
            error = mask(f"{type(exc).__name__}: {reason}", (url,))
        if error is None or (status is not None and status < 500):
            break
        if tries < attempts:
            sleep(0.5)
    return Delivery(status, error, (clock() - started) * 1000.0, tries)


def _iso(epoch_s: float) -> str:
    from reliability.record import iso  # late: reliability.config (which record imports) imports this module

    return iso(epoch_s)


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)
