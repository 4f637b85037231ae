"""The run record's sections as pydantic models: the one definition of what a record holds.

Writers build these models (``reliability.record``, ``reliability.shapes.sections``,
``reliability.health.timeline``, ``reliability.web.alerting``); readers (``reliability.report``,
``reliability compare``, suites) read their attributes. The shipped JSON Schema
(``record.schema.json``) is generated from them.

Conventions:

* ``None`` is "not measured"; every field but a row's time ``t`` has a default, so a partial or
  older record can still be read (the lenient reader in :mod:`reliability.schema.read` drops what
  does not fit, and a row without its time). A writer always writes every field: in the JSON
  Schema every field of a section is required.
* Latencies at the SLA percentile have fixed names (``latency_ms``, ``peak_latency_ms``) next to
  the ``percentile`` they were measured at ("p99"); version 1 records used ``p99_ms``-style keys.
* Adding a field: give it a default (``None``, an empty list) so older records still validate,
  then regenerate the schema (``python -m reliability.schema``). Renaming, removing or retyping a
  field bumps :data:`SCHEMA_VERSION` and adds an upgrade step in :mod:`reliability.schema.read`.

Nothing here imports anything of this package but :mod:`reliability.jsontypes` (which imports
nothing): every module may depend on it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reliability.jsontypes import JsonObject

SCHEMA_VERSION = 2


class Section(BaseModel):
    """Base of every record section: undeclared keys are an error, defaults are written out."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True,
                              validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


# -- run, sla, totals, uptime ------------------------------------------------------------------------


class Run(Section):
    """When and how the run happened."""

    started_at: str | None = None  # ISO 8601 UTC, e.g. 2026-12-01T21:00:00.000Z
    ended_at: str | None = None
    duration_s: float | None = None
    mode: str | None = None  # local | master
    workers: int = 0
    locust_version: str | None = None
    reliability_version: str | None = None
    scenario: str | None = None
    aborted: str | None = None  # why the run was stopped early (SLA abort, capacity search ...)


class Criterion(Section):
    """One graded criterion: ``actual comparator threshold``; ``margin`` > 0 is headroom."""

    name: str = ""
    scope: str = "total"  # total | an endpoint "GET /x" | a component | health
    comparator: str = "<="
    threshold: float | None = None
    actual: float | None = None
    margin: float | None = None
    passed: bool | None = None
    # the evidence (reliability.evidence): pass | fail | inconclusive, the interval bounds (None:
    # unbounded on that side), its confidence and the samples it rests on; absent in records
    # written before intervals existed
    outcome: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    samples: int | None = None


class TierResult(Section):
    tier: str = ""
    passed: bool | None = None


class Sla(Section):
    """The verdict of the selected tier and where the run stands among all tiers."""

    tier: str | None = None
    percentile: str | None = None  # "p95"
    passed: bool | None = None
    exit_code: int | None = None  # 0 met, 3 not met, 4 inconclusive
    inconclusive: list[str] = Field(default_factory=list)
    highest_tier_met: str | None = None
    next_tier: str | None = None
    blocked_by: list[Criterion] = Field(default_factory=list)
    criteria: list[Criterion] = Field(default_factory=list)
    tiers: list[TierResult] = Field(default_factory=list)
    down_error_ratio: float | None = None
    latency_basis: str | None = None  # the latency graded: corrected | measured


class Stats(Section):
    """Request counts and latency of a set of requests over the whole run."""

    requests: int = 0
    failures: int = 0
    error_ratio: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    rps: float | None = None


class Corrected(Section):
    """Latency from the intended start, with the requests a stall prevented back-filled."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    requests: int = 0  # measured requests + back-filled samples
    backfilled: int = 0
    method: str | None = None  # intended-start+expected-interval


class Totals(Stats):
    """All requests; ``latency_ms`` is the latency at the SLA ``percentile`` (any percentile)."""

    percentile: str | None = None
    latency_ms: float | None = None
    corrected: Corrected | None = None  # runs with a schedule (paced users, arrival rate)


class Uptime(Section):
    """Request-based uptime: 1 s windows with traffic that were up (README, "SLIs")."""

    window_s: float | None = None
    windows: int = 0
    up_windows: int = 0
    ratio: float | None = None
    request_availability: float | None = None
    partial_windows: int = 0
    stalled_windows: int = 0  # down: requests in flight all second, none completed
    slow_windows: int = 0  # down: latency at the SLA percentile above down_latency_ms
    down_latency_ms: float | None = None
    edge_windows: int = 0  # seconds with traffic the run covered less than half of: not graded


class EndpointStats(Stats):
    type: str = ""
    name: str = ""
    component: str | None = None
    corrected: Corrected | None = None


class ComponentStats(Stats):
    component: str = ""


class Second(Section):
    """One second of the run; ``t`` is seconds since the start, ``phase`` is set by a fault schedule."""

    t: float
    epoch_s: float | None = None
    users: int | None = None
    requests: int = 0
    failures: int = 0
    p95_ms: float | None = None
    partial: bool = False
    phase: str | None = None  # baseline | fault | recovery (runs with a fault schedule)
    state: str | None = None  # up | errors | stalled | slow | edge; None: idle (README, "SLIs")
    corrected_latency_ms: float | None = None  # at the SLA percentile, from the intended start


class Schedule(Section):
    """How late scheduled tasks started against their intended start (the generator's own lag)."""

    scheduled_starts: int = 0
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None
    lag_bound_ms: float | None = None
    kept: bool | None = None  # None: too few starts to tell
    paced_users: dict[str, dict[str, float]] = Field(default_factory=dict)  # class -> {"interval_s": s}
    held_at_stop: int = 0  # scheduled tasks whose first request was still in flight when the users stopped


class ErrorCount(Section):
    type: str = ""
    name: str = ""
    message: str = ""
    count: int = 0


class Generator(Section):
    """CPU and memory of one load-generating process; ``samples`` are ``[epoch s, cpu %, rss MB]``."""

    id: str = ""
    role: str = ""  # local | worker | master
    cpu_max_pct: float | None = None
    cpu_mean_pct: float | None = None
    rss_max_mb: float | None = None
    saturated: bool = False
    samples: list[tuple[float, float, float]] = Field(default_factory=list)


class LostWorker(Section):
    id: str = ""
    detected_at: str | None = None
    last_report_at: str | None = None
    partial_s: tuple[int, int] | None = None  # seconds since start whose data is partial


class JoinedWorker(Section):
    id: str = ""
    at: str | None = None


class Workers(Section):
    seen: list[str] = Field(default_factory=list)
    lost: list[LostWorker] = Field(default_factory=list)
    joined: list[JoinedWorker] = Field(default_factory=list)


class CacheCount(Section):
    type: str = ""
    name: str = ""
    hits: int = 0
    misses: int = 0
    hit_ratio: float | None = None


class CostModel(Section):
    """The scenario's ``cost`` section, so a report can price the run later."""

    currency: str = "USD"
    per_downtime_minute: float = 0.0
    per_failed_request: float = 0.0
    per_slow_minute: float = 0.0
    latency_threshold_ms: float | None = None


# -- faults and recovery -------------------------------------------------------------------------------


class PlannedFault(Section):
    at_s: float | None = None
    hold_s: float | None = None


class PostRevertCheck(Section):
    healthy: bool | None = None
    detail: str | None = None
    latency_ms: float | None = None
    checked_at: str | None = None
    attempts: int = 0


class Baseline(Section):
    windows: int = 0
    latency_ms: float | None = None
    rps: float | None = None
    error_ratio: float | None = None


class Band(Section):
    latency_hi_ms: float | None = None
    rps_lo: float | None = None


class FaultWindows(Section):
    fault: int = 0
    recovery: int = 0


class Degradation(Section):
    """What the fault did, latencies at ``percentile`` (the SLA's)."""

    percentile: str | None = None
    peak_latency_ms: float | None = None
    latency_ms: float | None = None
    baseline_latency_ms: float | None = None
    peak_error_ratio: float | None = None
    min_rps: float | None = None
    mean_rps: float | None = None
    baseline_rps: float | None = None
    min_throughput_ratio: float | None = None


class LatencyRange(Section):
    lower: float | None = None
    upper: float | None = None


class ErrorBudget(Section):
    slo_error_ratio: float | None = None
    incident_requests: int = 0
    incident_failures: int = 0


class RevertAttempt(Section):
    """One attempt to revert a fault: when (seconds since the start), by whom, and how it went."""

    at_s: float | None = None
    by: str = "master"  # master | guard | cli
    ok: bool = False
    error: str | None = None


class Fault(Section):
    """One scheduled fault: what happened to it, and (``windows`` set) the recovery analysis."""

    name: str = ""
    type: str | None = None
    kind: str | None = None
    dead_man_s: float | None = None
    planned: PlannedFault | None = None
    on_demand: bool = False
    state: str | None = None  # pending | injecting | active | reverting | reverted | skipped
    inject_started_at: str | None = None
    injected_at: str | None = None
    reverted_at: str | None = None
    inject_started_at_s: float | None = None
    injected_at_s: float | None = None
    reverted_at_s: float | None = None
    build_error: str | None = None
    inject_error: str | None = None
    revert_error: str | None = None
    revert_attempts: int = 0
    revert_log: list[RevertAttempt] = Field(default_factory=list)
    reverted_by: str | None = None  # master | guard | cli (the last two: undone while the master could not)
    reverted_because: str | None = None
    skipped_because: str | None = None
    hold_checks: int = 0  # re-verifications on the data path while held
    not_rechecked_because: str | None = None  # set when nothing re-verifies the fault while held (webhook, shell)
    lost_at_s: float | None = None  # a re-verification found the fault gone before its hold ended
    lost_detail: str | None = None
    verified_healthy: bool | None = None
    post_revert_check: PostRevertCheck | None = None
    # the recovery analysis; all None (``windows``, ``degradation`` too) when the fault never ran
    baseline: Baseline | None = None
    band: Band | None = None
    windows: FaultWindows | None = None
    time_to_detect_s: float | None = None
    detected_at_s: float | None = None
    degradation: Degradation | None = None
    time_to_recover_s: float | None = None
    recovered_at_s: float | None = None
    recovered: bool | None = None
    requests: int | None = None
    failures: int | None = None
    error_ratio: float | None = None
    graceful: bool | None = None
    graceful_budget_ratio: float | None = None
    fail_fast: bool | None = None
    fail_fast_ms: float | None = None
    failure_latency_ms: LatencyRange | None = None
    burn_rate: float | None = None
    budget_consumed: float | None = None
    error_budget: ErrorBudget | None = None
    score: float | None = None
    note: str | None = None  # why the recovery metrics are unavailable

    @property
    def analysed(self) -> bool:
        """The recovery analysis ran (its fields are measurements, None meaning "not found")."""
        return self.windows is not None or self.degradation is not None


class Recovery(Section):
    """The thresholds the recovery analysis graded each 1 s window against."""

    tier: str | None = None
    percentile: str | None = None
    sla_latency_ms: float | None = None
    sla_error_ratio: float | None = None
    windows: int | None = None
    window_s: float = 1
    band_tolerance: float | None = None
    band_slack_ms: float | None = None
    warmup_s: float | None = None
    baseline_window_s: float | None = None
    target_s: float | None = None


# -- stages and capacity ---------------------------------------------------------------------------------


class Stage(Section):
    """A stage a shape entered, graded over the whole seconds it ran (the grade is None when it ran
    less than a second)."""

    name: str = ""
    users: int = 0
    started_at_s: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    rps: float | None = None
    error_ratio: float | None = None
    percentile: str | None = None
    latency_ms: float | None = None
    passed: bool | None = None
    highest_tier_met: str | None = None


class CapacityPoint(Section):
    users: int = 0
    rate_per_s: float | None = None  # rate mode: the arrival rate asked (users is then the pool)
    rps: float | None = None
    latency_ms: float | None = None  # the worst graded window's, at the capacity section's percentile


class CapacityStep(Section):
    users: int = 0
    rate_per_s: float | None = None
    started_at_epoch_s: float | None = None
    windows: int = 0
    rps: float | None = None
    latency_ms: float | None = None
    error_ratio: float | None = None
    passed: dict[str, bool] | None = None  # tier -> held for the whole step


class Capacity(Section):
    """A capacity search: the knee (highest users at which ``tier`` held) and every step."""

    tier: str | None = None
    percentile: str | None = None
    mode: str = "users"  # users | rate (open-model steps of arrivals/s; the knee's rate_per_s)
    complete: bool = False
    stopped_because: str | None = None
    knee: CapacityPoint | None = None
    broke_at_users: int | None = None
    broke_at_rate_per_s: float | None = None
    tiers: dict[str, CapacityPoint | None] = Field(default_factory=dict)
    steps: list[CapacityStep] = Field(default_factory=list)


# -- open-model load --------------------------------------------------------------------------------------


class LoadDelay(Section):
    """A distribution of delays in ms (schedule lag, start delay)."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None


class LoadStage(Section):
    """One rate segment of an open-model run: asked vs what ran."""

    name: str = ""
    start_s: float = 0.0  # seconds after the schedule's start
    duration_s: float = 0.0
    from_rate_per_s: float = 0.0
    to_rate_per_s: float = 0.0
    asked: float = 0.0
    scheduled: int = 0
    started: int = 0
    dropped: int = 0
    asked_rate_per_s: float | None = None
    achieved_rate_per_s: float | None = None


class LoadGenerator(Section):
    """One load generator's share of an open-model run (its last report)."""

    id: str = ""
    scheduled: int = 0
    started: int = 0
    dropped: int = 0
    max_in_flight: int = 0


class LoadResplit(Section):
    """The rate re-split across generators (a worker lost, or joined with users)."""

    at_s: float = 0.0  # seconds after the schedule's start, when the new split took effect
    generators: list[str] = Field(default_factory=list)


class Load(Section):
    """Open-model (arrival-rate) load: what the schedule asked, what the generators started, what
    was dropped (each also a failed request ``ARRIVAL dropped``) and how punctual they were."""

    model: str = "open"
    arrivals: str | None = None  # uniform | poisson
    seed: int | None = None
    generators: int = 0
    max_users: int | None = None
    max_delay_s: float | None = None
    late_after_ms: float | None = None
    active_s: float | None = None
    asked: float | None = None
    scheduled: int = 0
    started: int = 0
    late: int = 0
    dropped: int = 0
    finished: int = 0
    pending_at_stop: int = 0
    in_flight_at_stop: int = 0
    max_in_flight: int = 0
    asked_rate_per_s: float | None = None
    achieved_rate_per_s: float | None = None
    achieved_ratio: float | None = None
    schedule_lag_ms: LoadDelay = Field(default_factory=LoadDelay)
    start_delay_ms: LoadDelay = Field(default_factory=LoadDelay)
    stages: list[LoadStage] = Field(default_factory=list)
    per_generator: list[LoadGenerator] = Field(default_factory=list)
    resplits: list[LoadResplit] = Field(default_factory=list)


# -- health ------------------------------------------------------------------------------------------------


class HealthComponent(Section):
    probe: str | None = None
    target: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    critical: bool = True
    weight: float = 1.0
    rounds: int = 0
    healthy: int = 0
    degraded: int = 0
    down: int = 0
    uptime_ratio: float | None = None
    healthy_ratio: float | None = None
    latency_p50_ms: float | None = None
    latency_max_ms: float | None = None
    root_cause_rounds: int = 0
    last_status: str | None = None
    last_detail: str | None = None


class HealthTransition(Section):
    t: float
    epoch_s: float | None = None
    component: str = ""
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    detail: str | None = None


class HealthIncident(Section):
    start_t: float = 0
    start_epoch_s: float | None = None
    end_t: float | None = None
    end_epoch_s: float | None = None
    duration_s: float | None = None
    ongoing: bool = False
    worst_status: str | None = None
    root_causes: list[str] = Field(default_factory=list)
    affected: list[str] = Field(default_factory=list)
    held: list[str] = Field(default_factory=list)


class HealthRootCause(Section):
    component: str = ""
    rounds: int = 0
    first_t: float | None = None


class ProbeResult(Section):
    status: str | None = None
    latency_ms: float | None = None


class Resources(Section):
    """The target process's resources in one round (``db_connections`` from a PostgreSQL probe)."""

    pid: int | None = None
    cpu_pct: float | None = None
    rss_mb: float | None = None
    db_connections: int | None = None


class HealthRound(Section):
    t: float
    epoch_s: float | None = None
    status: str | None = None
    score: float | None = None
    components: dict[str, ProbeResult] = Field(default_factory=dict)
    root_causes: list[str] = Field(default_factory=list)
    resources: Resources | None = None


class UptimeCriterion(Section):
    name: str = ""
    threshold: float | None = None
    actual: float | None = None
    passed: bool | None = None


class ResourcesOf(Section):
    pid: int | None = None
    port: int | None = None
    problem: str | None = None


class Health(Section):
    """Health probing during the run: per component, every round, status changes and incidents."""

    interval_s: float | None = None
    rounds: int = 0
    status: str | None = None
    uptime_ratio: float | None = None
    score_mean: float | None = None
    score_min: float | None = None
    components: dict[str, HealthComponent] = Field(default_factory=dict)
    transitions: list[HealthTransition] = Field(default_factory=list)
    incidents: list[HealthIncident] = Field(default_factory=list)
    root_causes: list[HealthRootCause] = Field(default_factory=list)
    timeline: list[HealthRound] = Field(default_factory=list)
    uptime_criterion: UptimeCriterion | None = None
    resources_of: ResourcesOf | None = None


# -- alerts --------------------------------------------------------------------------------------------------


class BurnRule(Section):
    name: str = ""
    severity: str | None = None
    burn_rate: float | None = None
    long_s: int = 0
    short_s: int = 0
    sre_long_h: float | None = None
    sre_short_h: float | None = None


class RuleBurn(Section):
    rule: str = ""
    severity: str | None = None
    threshold: float | None = None
    long_s: int = 0
    long: float | None = None
    long_by: str | None = None  # requests | seconds: the SLI that burned faster over the long window
    short_s: int = 0
    short: float | None = None
    short_by: str | None = None
    firing: bool = False


class AlertDelivery(Section):
    webhook: str = ""
    format: str | None = None
    status: int | None = None
    error: str | None = None
    elapsed_ms: float | None = None
    attempts: int | None = None


class AlertEvent(Section):
    kind: str = ""  # breach | escalation | recovery | run_end
    severity: str | None = None
    status: str | None = None  # firing | resolved
    incident: int = 0
    at: str | None = None
    t_s: float | None = None
    reasons: list[str] = Field(default_factory=list)
    burn_rates: list[RuleBurn] = Field(default_factory=list)
    down_since_s: float | None = None  # since the run started: the first down second behind the alert
    time_to_detect_s: float | None = None  # from that second's start to this event
    deliveries: list[AlertDelivery] = Field(default_factory=list)


class AlertWebhook(Section):
    target: str = ""  # a label, never the URL (it may hold a secret)
    format: str | None = None
    min_severity: str | None = None


class Alerts(Section):
    """Burn-rate alerting during the run: its settings, every event and delivery."""

    slo: float | None = None
    budget_ratio: float | None = None
    uptime_slo: float | None = None  # the down seconds' SLO (stalled or slow seconds burn its budget)
    uptime_budget_ratio: float | None = None
    run_length_s: float | None = None
    run_length_from: str | None = None
    min_window_s: float | None = None
    min_requests: int | None = None
    clear_s: float | None = None
    sla_breach: bool | None = None
    rules: list[BurnRule] = Field(default_factory=list)
    webhooks: list[AlertWebhook] = Field(default_factory=list)
    incidents: int = 0
    peak_severity: str | None = None
    open_at_end: bool = False
    events: list[AlertEvent] = Field(default_factory=list)
    last_burn_rates: list[RuleBurn] = Field(default_factory=list)


# -- the record ------------------------------------------------------------------------------------------------

#: sections only some runs have: absent from the JSON (not null) when the run has none
class ExitOther(Section):
    by: str = ""  # module.function that set environment.process_exit_code, e.g. locust_plugins.do_checks
    code: int = 0


class Exit(Section):
    """The process exit code: the verdict's combined with what other listeners set
    (reliability.exitcode; README "Other listeners that set the exit code")."""

    code: int | None = None
    verdict: int | None = None
    others: list[ExitOther] = Field(default_factory=list)


FEATURE_SECTIONS = ("cost_model", "faults", "resilience_score", "recovery", "stages", "capacity", "load", "health",
                    "alerts", "schedule", "exit")


class RunRecord(Section):
    """A whole run record (``schema_version`` 2). See README, "The run record".

    Example::

        record = RunRecord.model_validate_json(Path("reports/run-1.json").read_text())
        record.sla.passed, record.totals.latency_ms, [f.degradation for f in record.faults or []]
    """

    schema_version: int = SCHEMA_VERSION
    run: Run = Field(default_factory=Run)
    sla: Sla = Field(default_factory=Sla)
    totals: Totals = Field(default_factory=Totals)
    uptime: Uptime = Field(default_factory=Uptime)
    endpoints: list[EndpointStats] = Field(default_factory=list)
    components: list[ComponentStats] = Field(default_factory=list)
    timeline: list[Second] = Field(default_factory=list)
    errors: list[ErrorCount] = Field(default_factory=list)
    generators: list[Generator] = Field(default_factory=list)
    workers: Workers = Field(default_factory=Workers)
    cache: list[CacheCount] = Field(default_factory=list)
    cost_model: CostModel | None = None
    faults: list[Fault] | None = None
    resilience_score: float | None = None
    recovery: Recovery | None = None
    stages: list[Stage] | None = None
    capacity: Capacity | None = None
    load: Load | None = None
    health: Health | None = None
    alerts: Alerts | None = None
    schedule: Schedule | None = None
    exit: Exit | None = None

    def to_json_dict(self) -> JsonObject:
        """The JSON form: every field of every section, feature sections only when present."""
        absent = {name for name in FEATURE_SECTIONS if getattr(self, name) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=absent)
