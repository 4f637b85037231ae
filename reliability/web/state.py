"""The live state behind the web UI tabs, the charts page and ``/metrics``: one JSON-ready dict.

Pure (no locust, gevent or flask): it reads the plugin's public state (``store``, ``sla``,
``live``, ``started_at``, ``scenario`` and the extensions named ``schedule``, ``health`` and
``alerts``) through the small protocols below (:class:`LiveSource` and the extensions' views), so
tests hand it a stand-in; what it returns is typed (:class:`State`). Everything it returns has been
scrubbed of the scenario's secrets (DSNs, URLs with passwords, webhook URLs), and it reads only
closed seconds, ``lag_s`` behind, like the plugin's live verdict.

Example::

    live = LiveState(plugin, lag_s=1)
    state = live.state()              # computed at most once a second, then cached
    state["sla"]["criteria"][0]       # {"name": "uptime", "actual": 1.0, "passed": True, "outcome": "pass", ...}
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NotRequired, Protocol, TypedDict, cast, runtime_checkable

from pydantic import BaseModel, SecretStr

from reliability.alerts import CountSeries, budget_ratio_for, budget_remaining, burn_rate, uptime_budget_ratio_for
from reliability.alerts.seconds import read_seconds
from reliability.evidence import FAIL, INCONCLUSIVE, PASS
from reliability.extension import complete_until
from reliability.jsontypes import JsonData, JsonObject
from reliability.masking import mask_data, passwords_in
from reliability.metrics.windows import WindowStore
from reliability.units import percentile_label

if TYPE_CHECKING:  # types only: the state imports neither the alerts feature (gevent) nor the health monitor
    from reliability.alerts import BurnRateAlerts, BurnRule
    from reliability.config import ScenarioSpec, SlaSpec
    from reliability.health.timeline import HealthTimeline
    from reliability.schema.sections import AlertEvent
    from reliability.shapes.sections import FaultRun
    from reliability.sla import Criterion, Verdict

STATE_VERSION = 1
CHART_S = 900  # seconds of per-second rows kept for the charts (the page shows the last 600)
MAX_ENDPOINTS = 200
MAX_EVENTS = 20
SUMMARY_QUANTILES = (0.5, 0.9, 0.99)  # with the SLA percentile: the /metrics latency summary


# -- what the state reads ----------------------------------------------------------------------------


class Named(Protocol):
    @property
    def name(self) -> str: ...


class LiveSource(Protocol):
    """What the state reads of the plugin (:class:`~reliability.plugin.ReliabilityPlugin`)."""

    @property
    def store(self) -> WindowStore: ...

    @property
    def sla(self) -> SlaSpec: ...

    @property
    def scenario(self) -> ScenarioSpec: ...

    @property
    def live(self) -> Verdict | None: ...

    @property
    def started_at(self) -> float | None: ...

    @property
    def ended_at(self) -> float | None: ...

    @property
    def role(self) -> str: ...

    @property
    def extensions(self) -> Sequence[Named]: ...


@runtime_checkable
class AlertsView(Protocol):
    """What the state reads of the ``alerts`` extension (:class:`~reliability.web.alerting.AlertingExtension`)."""

    @property
    def alerts(self) -> BurnRateAlerts | None: ...

    @property
    def rules(self) -> Sequence[BurnRule]: ...

    @property
    def budget_ratio(self) -> float | None: ...

    @property
    def uptime_budget_ratio(self) -> float | None: ...

    @property
    def run_length_s(self) -> float: ...

    @property
    def webhooks(self) -> Sequence[object]: ...

    @property
    def entries(self) -> Sequence[AlertEvent]: ...


@runtime_checkable
class ScheduleView(Protocol):
    """What the state reads of the ``schedule`` extension (:class:`~reliability.shapes.runtime.ScheduleExtension`)."""

    @property
    def runs(self) -> Sequence[FaultRun]: ...

    @property
    def started_at(self) -> float: ...


@runtime_checkable
class HealthView(Protocol):
    """What the state reads of the ``health`` extension (:class:`~reliability.health.monitor.HealthMonitor`)."""

    @property
    def timeline(self) -> HealthTimeline: ...


# -- what it returns ---------------------------------------------------------------------------------


class RunInfo(TypedDict):
    started_at: float | None
    ended_at: float | None
    elapsed_s: float | None
    scenario: str
    data_until: int


class CriterionRow(TypedDict):
    name: str
    scope: str
    comparator: str
    threshold: float | None
    actual: float | None
    passed: bool
    outcome: str
    unit: str  # ms | ratio


class TierRow(TypedDict):
    tier: str
    passed: bool


class SlaState(TypedDict):
    tier: str
    percentile: str
    window_s: int
    tiers_defined: list[str]
    evaluated: bool
    passed: bool | None
    outcome: str | None
    criteria: list[CriterionRow]
    tiers: list[TierRow]
    requests: int
    failures: int
    highest_tier_met: str | None
    next_tier: str | None
    blocked_by: list[str]
    inconclusive: list[str]
    uptime: float | None


class EndpointRow(TypedDict):
    type: str
    name: str
    component: str
    requests: int
    failures: int
    error_ratio: float | None
    latency_ms: float | None
    quantiles_ms: dict[str, float | None]
    run_count: int
    run_sum_ms: float | None
    rps: float
    burn_rate: float | None


class BudgetState(TypedDict):
    budget_ratio: float | None
    slo: float | None
    window_s: int
    remaining: float | None
    burn_rate: float | None
    run_requests: int
    run_failures: int
    # the budget of down seconds (stalled or slow; failed requests burn the one above), from the
    # same windows as uptime and the alerts
    uptime_budget_ratio: float | None
    uptime_slo: float | None
    uptime_remaining: float | None
    uptime_burn_rate: float | None
    run_seconds: int  # seconds uptime counts
    run_down_seconds: int  # of them stalled or slow


class AlertsState(TypedDict):
    configured: bool
    severity: str | None
    level: str | None
    rules: list[JsonObject]  # BurnRule.to_dict()
    burn_rates: list[JsonObject]  # RuleBurn.to_dict(): the record's RuleBurn
    events: list[JsonObject]  # the record's AlertEvent, without its burn rates
    webhooks: int
    run_length_s: NotRequired[float]


class FaultItem(TypedDict):
    name: str
    type: str
    kind: str | None
    state: str
    active: bool
    at_s: float
    hold_s: float
    starts_in_s: float | None
    time_left_s: float | None
    injected_at_s: float | None
    reverted_at_s: float | None
    error: str | None


class FaultsState(TypedDict):
    configured: bool
    can_inject: bool
    can_revert: bool
    active: int
    items: list[FaultItem]


class ComponentRow(TypedDict):
    name: str
    status: str | None
    latency_ms: float | None
    detail: str
    critical: bool
    role: str | None


class HealthState(TypedDict):
    configured: bool
    status: str | None
    score: float | None
    at: float | None
    rounds: int
    components: list[ComponentRow]
    root_causes: list[str]


ChartRow = list[int | float | None]  # [t, requests, failures, users, latency_ms]


class SeriesState(TypedDict):
    columns: list[str]
    latency_threshold_ms: float | None
    error_threshold: float | None
    rows: list[ChartRow]


class State(TypedDict):
    """The whole state, as ``state.json`` serves it."""

    version: int
    now: float
    runner_state: str | None
    role: str
    run: RunInfo
    links: dict[str, str]
    sla: SlaState
    endpoints: list[EndpointRow]
    budget: BudgetState
    alerts: AlertsState
    faults: FaultsState
    health: HealthState
    series: SeriesState


def rewritten(state: State, rewrite: Callable[[Mapping[str, JsonData]], JsonObject]) -> State:
    """``state`` through a rewrite of its text that keeps the shape of JSON data (:func:`mask_data`,
    :func:`~reliability.textsafe.display_data`: the same keys, objects and arrays; strings stay
    strings). The state holds only dicts, lists, strings, numbers, booleans and None (no tuple
    the rewrite would turn into a list), so the result is still a :class:`State`: the one place
    the state is read back as its type."""
    return cast(State, rewrite(cast(Mapping[str, JsonData], state)))


def _r(value: float | None, digits: int = 4) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


def _secrets_in(value: object, out: list[str]) -> None:
    if isinstance(value, SecretStr):
        out.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _secrets_in(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _secrets_in(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            _secrets_in(item, out)


def scenario_secrets(scenario: ScenarioSpec) -> tuple[str, ...]:
    """Secret values of a scenario: every ``SecretStr``, the target's DSN and Redis URL, what it
    took from secret ``${ENV}`` references, and the passwords inside URLs."""
    found: list[str] = list(scenario.secrets)
    _secrets_in(scenario, found)
    for value in (scenario.target.dsn, scenario.target.redis_url):
        if value:
            found.append(str(value))
    for value in list(found):
        found += passwords_in(value)
    return tuple(s for s in dict.fromkeys(found) if len(s) >= 3)


class ChartSeries:
    """Per-second rows for the charts (``[t, requests, failures, users, latency_ms]``), the last
    :data:`CHART_S` seconds; plus whole-run request and failure counts."""

    def __init__(self, start_t: int, quantile: float) -> None:
        self.start_t = start_t
        self.quantile = quantile
        self.rows: deque[ChartRow] = deque(maxlen=CHART_S)
        self.counts = CountSeries(start_t)

    def sync(self, store: WindowStore, end_t: int, sla: SlaSpec) -> None:
        """Read the seconds up to ``end_t`` from the store: the new ones, and the last rolling
        window again with each second's uptime state (:func:`~reliability.alerts.seconds.read_seconds`,
        as the alerts read them). A request counts in the second it was sent, so one that
        completes late (a freeze) changes seconds already read; the chart rows are read once."""
        begin = self.counts.end_t
        if end_t <= begin:
            return
        read_seconds(self.counts, store, sla, end_t, int(sla.rolling_window_s))
        # per-second latency exists only in the store's fine windows: older seconds are not charted
        fine_from = end_t - max(10, store.fine_horizon_s - 60)
        for t in range(max(begin, end_t - CHART_S, fine_from), end_t):
            snap = store.snapshot(t, t + 1)
            users = snap.seconds[0].users if snap.seconds else None
            if not snap.total.requests and users is None:
                continue
            self.rows.append([t, snap.total.requests, snap.total.failures, users,
                              _r(snap.total.latency_ms(self.quantile), 3)])


def budget_state(series: ChartSeries | None, started: float | None, end: int, window_s: int,
                 budget: float | None, uptime_budget: float | None) -> BudgetState:
    """The budget panel: the error budget from the requests, the down-seconds budget from the
    seconds uptime counts, each over the whole run and burning over the last ``window_s``."""
    out: BudgetState = {"budget_ratio": budget, "slo": None if budget is None else _r(1 - budget, 6),
                        "window_s": window_s, "remaining": None, "burn_rate": None,
                        "run_requests": 0, "run_failures": 0, "uptime_budget_ratio": uptime_budget,
                        "uptime_slo": None if uptime_budget is None else _r(1 - uptime_budget, 6),
                        "uptime_remaining": None, "uptime_burn_rate": None, "run_seconds": 0,
                        "run_down_seconds": 0}
    if series is None or started is None:
        return out
    counts = series.counts
    requests, failures = counts.counts(int(started), end)
    w_requests, w_failures = counts.counts(max(int(started), end - window_s), end)
    seconds, down, _ = counts.seconds(int(started), end)
    w_seconds, w_down, _ = counts.seconds(max(int(started), end - window_s), end)
    out.update({"remaining": _r(budget_remaining(requests, failures, budget), 6),
                "burn_rate": _r(burn_rate(w_requests, w_failures, budget)),
                "run_requests": requests, "run_failures": failures,
                "uptime_remaining": _r(budget_remaining(seconds, down, uptime_budget), 6),
                "uptime_burn_rate": _r(burn_rate(w_seconds, w_down, uptime_budget)),
                "run_seconds": seconds, "run_down_seconds": down})
    return out


def find_extension(source: LiveSource, name: str) -> Named | None:
    for ext in source.extensions:
        if ext.name == name:
            return ext
    return None


def _criterion(c: Criterion) -> CriterionRow:
    return {"name": c.name, "scope": c.scope, "comparator": c.comparator, "threshold": _r(c.threshold, 6),
            "actual": _r(c.actual, 6), "passed": bool(c.passed), "outcome": c.state,
            "unit": "ms" if c.name.endswith("_ms") else "ratio"}


def verdict_outcome(live: Verdict) -> str | None:
    """pass / fail / inconclusive of the rolling verdict (None without requests): it fails only on
    evidence (:meth:`~reliability.sla.Verdict.firm_failures`) and passes only when every criterion
    passes on evidence and nothing casts doubt; anything else is inconclusive."""
    if not live.requests:
        return None
    if live.firm_failures():
        return FAIL
    return PASS if live.passed and not live.inconclusive else INCONCLUSIVE


class LiveState:
    """Computes the live state of ``source`` (the plugin); see the module docstring.

    ``runner_state`` returns Locust's runner state (ready, spawning, running, stopped ...).
    """

    def __init__(self, source: LiveSource, *, lag_s: int = 1, clock: Callable[[], float] = time.time,
                 runner_state: Callable[[], str | None] = lambda: None, links: Mapping[str, str] | None = None,
                 min_interval_s: float = 1.0) -> None:
        self.source = source
        self.lag_s = lag_s
        self.clock = clock
        self.runner_state = runner_state
        self.links = dict(links or {})
        self.min_interval_s = min_interval_s
        self._series: ChartSeries | None = None
        self._series_key: tuple[int, int] | None = None
        self._cached: State | None = None
        self._cached_at = -math.inf

    # -- public --------------------------------------------------------------------------------------

    def state(self, now: float | None = None) -> State:
        """The state (scrubbed); recomputed when older than ``min_interval_s``."""
        now = self.clock() if now is None else now
        if self._cached is None or now - self._cached_at >= self.min_interval_s or now < self._cached_at:
            raw = self._compute(now)
            secrets = scenario_secrets(self.source.scenario)
            self._cached = rewritten(raw, lambda data: mask_data(data, secrets))
            self._cached_at = now
        return self._cached

    def invalidate(self) -> None:
        """Forget the cached state (after a fault control changed something)."""
        self._cached = None

    def json(self, since: int | None = None, now: float | None = None) -> str:
        """The state as JSON; ``since`` keeps only chart rows from that second on."""
        state = self.state(now)
        if since is not None:
            series = state["series"]
            rows = [r for r in series["rows"] if (t := r[0]) is not None and t >= since]
            state = {**state, "series": {**series, "rows": rows}}
        return json.dumps(state, allow_nan=False)

    # -- the parts -----------------------------------------------------------------------------------

    def _compute(self, now: float) -> State:
        source = self.source
        started = source.started_at
        sla = source.sla
        tier = sla.all_tiers()[sla.tier]
        alerts_ext = find_extension(source, "alerts")
        alerts_view = alerts_ext if isinstance(alerts_ext, AlertsView) else None
        budget = alerts_view.budget_ratio if alerts_view is not None else None
        if budget is None:
            budget = budget_ratio_for(None, tier.error_ratio, tier.uptime_ratio)
        uptime_budget = alerts_view.uptime_budget_ratio if alerts_view is not None else None
        if uptime_budget is None:
            uptime_budget = uptime_budget_ratio_for(None, tier.uptime_ratio, budget)
        end = complete_until(now, self.lag_s)
        window_s = int(sla.rolling_window_s)
        series = self._sync(source, started, end, sla)
        schedule = find_extension(source, "schedule")
        health = find_extension(source, "health")
        latency = tier.latency_thresholds(sla.percentile).get(sla.percentile)
        return {
            "version": STATE_VERSION,
            "now": round(now, 3),
            "runner_state": self.runner_state(),
            "role": source.role,
            "run": {
                "started_at": started,
                "ended_at": source.ended_at,
                "elapsed_s": None if started is None else round(now - started, 1),
                "scenario": source.scenario.name,
                "data_until": end,
            },
            "links": self.links,
            "sla": self._sla(source, window_s),
            "endpoints": self._endpoints(source, started, end, window_s, sla.percentile / 100.0, budget),
            "budget": budget_state(series, started, end, window_s, budget, uptime_budget),
            "alerts": self._alerts(alerts_ext is not None, alerts_view),
            "faults": self._faults(schedule, now),
            "health": self._health(health is not None, health if isinstance(health, HealthView) else None),
            "series": {
                "columns": ["t", "requests", "failures", "users", f"{percentile_label(sla.percentile)}_ms"],
                "latency_threshold_ms": latency,
                "error_threshold": tier.error_ratio,
                "rows": list(series.rows) if series is not None else [],
            },
        }

    def _sync(self, source: LiveSource, started: float | None, end: int, sla: SlaSpec) -> ChartSeries | None:
        if started is None:
            return None
        quantile = sla.percentile / 100.0
        key = (id(source.store), int(started))
        if self._series is None or self._series_key != key or self._series.quantile != quantile:
            self._series = ChartSeries(int(started), quantile)
            self._series_key = key
        self._series.sync(source.store, end, sla)
        return self._series

    def _sla(self, source: LiveSource, window_s: int) -> SlaState:
        sla = source.sla
        live = source.live
        tier, percentile, tiers_defined = sla.tier, percentile_label(sla.percentile), list(sla.all_tiers())
        if live is None:
            return {"tier": tier, "percentile": percentile, "window_s": window_s, "tiers_defined": tiers_defined,
                    "evaluated": False, "passed": None, "outcome": None, "criteria": [], "tiers": [],
                    "requests": 0, "failures": 0, "highest_tier_met": None, "next_tier": None, "blocked_by": [],
                    "inconclusive": [], "uptime": None}
        return {
            "tier": tier, "percentile": percentile, "window_s": window_s, "tiers_defined": tiers_defined,
            "evaluated": True,
            "passed": bool(live.passed) if live.requests else None,
            "outcome": verdict_outcome(live),
            "criteria": [_criterion(c) for c in live.criteria],
            "tiers": [{"tier": t.tier, "passed": bool(t.passed)} for t in live.tiers],
            "highest_tier_met": live.highest_tier_met,
            "next_tier": live.next_tier,
            "blocked_by": [c.describe() for c in live.blocked_by],
            "requests": live.requests,
            "failures": live.failures,
            "inconclusive": list(live.inconclusive),
            "uptime": _r(live.uptime.ratio, 6),
        }

    def _endpoints(self, source: LiveSource, started: float | None, end: int, window_s: int, quantile: float,
                   budget: float | None) -> list[EndpointRow]:
        if started is None:
            return []
        start = max(end - window_s, int(started))
        if end <= start:
            return []
        snap = source.store.snapshot(start, end)
        run = source.store.snapshot(int(started), end)  # whole run: the summary's count and sum
        run_by_key = {(ep.request_type, ep.name): ep for ep in [*run.endpoints, run.total]}
        quantiles = sorted({*SUMMARY_QUANTILES, quantile})
        rows: list[EndpointRow] = []
        for ep in [*snap.endpoints[:MAX_ENDPOINTS], snap.total]:
            whole = run_by_key.get((ep.request_type, ep.name))
            rows.append({"type": ep.request_type, "name": ep.name, "component": ep.component,
                         "requests": ep.requests, "failures": ep.failures,
                         "error_ratio": _r(ep.error_ratio, 6) if ep.requests else None,
                         "latency_ms": _r(ep.latency_ms(quantile), 3) if ep.requests else None,
                         "quantiles_ms": {f"{q:g}": _r(ep.latency_ms(q), 3) for q in quantiles} if ep.requests else {},
                         "run_count": whole.hist.count if whole is not None else 0,
                         "run_sum_ms": _r(whole.hist.sum_ms, 3) if whole is not None else 0.0,
                         "rps": round(ep.requests / (end - start), 3),
                         "burn_rate": _r(burn_rate(ep.requests, ep.failures, budget))})
        return rows

    def _alerts(self, configured: bool, ext: AlertsView | None) -> AlertsState:
        alerts = ext.alerts if ext is not None else None
        if ext is None or alerts is None:
            return {"configured": configured, "severity": None, "level": None, "rules": [], "burn_rates": [],
                    "events": [], "webhooks": 0}
        return {
            "configured": True,
            "severity": alerts.severity,
            "level": alerts.level,
            "rules": [r.to_dict() for r in ext.rules],
            "burn_rates": [b.to_dict() for b in alerts.last_burns],
            "events": [e.model_dump(mode="json", exclude={"burn_rates"}) for e in ext.entries[-MAX_EVENTS:]],
            "webhooks": len(ext.webhooks),
            "run_length_s": ext.run_length_s,
        }

    def _faults(self, ext: Named | None, now: float) -> FaultsState:
        runs: Sequence[FaultRun] = ext.runs if isinstance(ext, ScheduleView) else ()
        started = (ext.started_at if isinstance(ext, ScheduleView) else None) or 0.0
        items: list[FaultItem] = []
        for run in runs:
            spec = run.spec
            planned_start = started + spec.at_s
            injected = run.injected_at if run.injected_at is not None else run.inject_started_at
            due = run.revert_due_at  # injected on demand: held hold_s from then
            if due is None:
                due = started + spec.end_s
            active = run.state in ("injecting", "active", "reverting")
            items.append({
                "name": run.name,
                "type": spec.type,
                "kind": run.fault.kind if run.fault is not None else None,
                "state": run.state,
                "active": active,
                "at_s": spec.at_s,
                "hold_s": spec.hold_s,
                "starts_in_s": _r(planned_start - now, 1) if run.state == "pending" else None,
                "time_left_s": _r(max(0.0, due - now), 1) if active else None,
                "injected_at_s": _r(injected - started, 1) if injected is not None else None,
                "reverted_at_s": _r(run.reverted_at - started, 1) if run.reverted_at is not None else None,
                "error": run.inject_error or run.revert_error or run.build_error,
            })
        return {"configured": ext is not None, "can_inject": ext is not None and hasattr(ext, "inject_now"),
                "can_revert": ext is not None and hasattr(ext, "revert_all"),
                "active": sum(i["active"] for i in items), "items": items}

    def _health(self, configured: bool, ext: HealthView | None) -> HealthState:
        timeline = ext.timeline if ext is not None else None
        rounds = timeline.rounds if timeline is not None else []
        infos = timeline.components if timeline is not None else {}
        out: HealthState = {"configured": configured, "status": None, "score": None, "at": None,
                            "rounds": len(rounds), "components": [], "root_causes": []}
        if not rounds:
            out["components"] = [{"name": n, "status": None, "latency_ms": None, "detail": "not probed yet",
                                  "critical": i.critical, "role": None} for n, i in infos.items()]
            return out
        report = rounds[-1].report
        diagnosis = report.diagnosis
        components: list[ComponentRow] = []
        for name, result in report.results.items():
            role = ("root cause" if name in diagnosis.root_causes else "affected" if name in diagnosis.affected
                    else "held" if name in diagnosis.held else None)
            info = infos.get(name)
            components.append({"name": name, "status": result.status.value, "latency_ms": _r(result.latency_ms, 1),
                               "detail": result.detail, "critical": info.critical if info is not None else True,
                               "role": role})
        out.update({"status": report.status.value, "score": _r(report.score, 2), "at": round(report.at, 3),
                    "components": components, "root_causes": list(diagnosis.root_causes)})
        return out

