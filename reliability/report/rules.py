"""Recommendations from explicit rules: each names the rule that fired and the evidence it saw.

Every rule is a function ``(record) -> list[Recommendation]`` in ``RULES``; a rule whose inputs are
absent from the record does not fire. Thresholds are module constants so the README can quote them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reliability.report.data import (
    Record,
    RecordLike,
    as_record,
    down_error_ratio,
    fmt_criterion,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
    is_down,
    latency_threshold_ms,
    timeline,
)
from reliability.report.facts import FaultFacts, faults, health_components

SLOW_DETECTION_S = 10.0
SLOW_RECOVERY_S = 30.0  # unless the record's recovery section has its own target_s
PAGE_BURN_RATE = 14.4  # SRE Workbook: 2 % of a 30-day budget in 1 h pages someone
GENERATOR_CPU_PCT = 90.0
KNEE_HEADROOM = 0.8  # peak users at or above 80 % of the knee leave too little headroom
HEALTH_UPTIME = 0.999


@dataclass(frozen=True)
class Recommendation:
    """One finding and what to do about it, with the rule that produced it.

    Example::

        Recommendation(rule="fault-not-graceful", severity="high",
                       finding="fault 'db down' was not handled gracefully",
                       evidence="peak error ratio 42.00 %", action="add a fallback ...")
    """

    rule: str
    severity: str  # high | medium | info
    finding: str
    evidence: str
    action: str


def _sla_failures(record: Record) -> list[Recommendation]:
    out = []
    for c in record.sla.criteria:
        if c.passed is not False or c.actual is None:
            continue
        name = c.name
        evidence = (f"{name} = {fmt_criterion(name, c.actual)}, needs {c.comparator} "
                    f"{fmt_criterion(name, c.threshold)}")
        if name.endswith("_ms"):
            action = "profile the slowest endpoints below; check the database and cache latency during the run"
        elif name.endswith("error_ratio"):
            action = "fix the most frequent error messages in the error table first"
        else:
            action = "find the down seconds in the error-ratio chart and the health timeline; fix their cause"
        out.append(Recommendation("sla-criterion-failed", "high", f"SLA criterion {name} failed", evidence, action))
    return out


def _no_data(record: Record) -> list[Recommendation]:
    reasons = record.sla.inconclusive
    if not reasons:
        return []
    return [Recommendation("verdict-inconclusive", "high", "the verdict is inconclusive", "; ".join(reasons),
                           "resolve these before trusting any number in this report, then run again")]


def _slow_endpoints(record: Record) -> list[Recommendation]:
    threshold = latency_threshold_ms(record)
    if threshold is None:
        return []
    slow = sorted((e for e in record.endpoints if (e.p95_ms or 0.0) > threshold), key=lambda e: -(e.p95_ms or 0.0))
    if not slow:
        return []
    names = ", ".join(f"{e.type} {e.name} ({fmt_ms(e.p95_ms)})" for e in slow[:3])
    return [Recommendation("endpoint-over-threshold", "medium",
                           f"{len(slow)} endpoint(s) have p95 above the {fmt_ms(threshold)} threshold",
                           names, "start with the first one: it pulls the total percentile up the most")]


def _generators(record: Record) -> list[Recommendation]:
    out = []
    for g in record.generators:
        cpu = g.cpu_max_pct
        name = g.id or "generator"
        if g.saturated:
            out.append(Recommendation(
                "generator-saturated", "high", f"load generator {name} ran out of CPU",
                f"CPU above {GENERATOR_CPU_PCT:g} % in consecutive samples (max {fmt_num(cpu)} %)",
                "add workers (--processes or more machines): its latencies include its own queueing"))
        elif cpu is not None and cpu >= GENERATOR_CPU_PCT:
            out.append(Recommendation(
                "generator-cpu-peak", "medium", f"load generator {name} touched its CPU limit",
                f"CPU max {fmt_num(cpu)} % in one sample (not sustained)",
                "watch it on a longer run; add workers before it saturates"))
    return out


def _workers(record: Record) -> list[Recommendation]:
    lost = record.workers.lost
    if not lost:
        return []
    ids = ", ".join(w.id for w in lost)
    return [Recommendation("worker-lost", "high", f"{len(lost)} worker(s) went missing", ids,
                           "check the worker hosts (memory, network); the seconds they took are flagged partial")]


def _fault(f: FaultFacts, recovery_target_s: float) -> list[Recommendation]:
    name = f.name
    out = []
    if f.graceful is False:
        out.append(Recommendation(
            "fault-not-graceful", "high", f"fault '{name}' was not handled gracefully",
            f"peak error ratio {fmt_pct(f.peak_error_ratio)}, "
            f"min throughput {fmt_pct(f.min_throughput_ratio, 0)} of baseline",
            "add a fallback (cached or degraded answer) or a circuit breaker around this dependency"))
    if f.fail_fast is False:
        out.append(Recommendation(
            "fault-not-fail-fast", "medium", f"requests hung instead of failing fast during '{name}'",
            f"peak latency {fmt_ms(f.peak_latency_ms)}",
            "set client and pool timeouts below the latency threshold so callers get a quick answer"))
    if f.recovered is False:
        out.append(Recommendation("fault-no-recovery", "high", f"the system did not recover after '{name}'",
                                  "no time to recover was measured before the run ended",
                                  "check reconnect logic, connection pools and caches that keep bad state"))
    elif f.time_to_recover_s is not None and f.time_to_recover_s > recovery_target_s:
        out.append(Recommendation("fault-slow-recovery", "medium", f"slow recovery after '{name}'",
                                  f"time to recover {fmt_s(f.time_to_recover_s)} > {fmt_s(recovery_target_s)}",
                                  "shorten retry back-off and health-check intervals; pre-warm caches"))
    ttd = f.time_to_detect_s
    if f.injected_s is not None and f.detection_measured and (ttd is None or ttd > SLOW_DETECTION_S):
        out.append(Recommendation("fault-slow-detection", "medium", f"'{name}' was detected late or never",
                                  f"time to detect {fmt_s(ttd)} (limit {fmt_s(SLOW_DETECTION_S)})",
                                  "tighten health probes and alert windows so this fault is seen sooner"))
    if f.burn_rate is not None and f.burn_rate >= PAGE_BURN_RATE:
        out.append(Recommendation("fault-budget-burn", "high", f"'{name}' burns the error budget at a paging rate",
                                  f"burn rate {f.burn_rate:.1f}x >= {PAGE_BURN_RATE}x",
                                  "a real incident like this would page; make the dependency optional or redundant"))
    if f.verified_healthy is False:
        out.append(Recommendation("fault-not-verified", "medium", f"health was not verified after '{name}'",
                                  "the post-revert health check failed",
                                  "check the fault's revert and the probe for its component"))
    if f.problems:
        out.append(Recommendation("fault-problem", "high", f"fault '{name}' did not run cleanly",
                                  "; ".join(f.problems), "fix the fault setup; its measurements may be incomplete"))
    return out


def _faults(record: Record) -> list[Recommendation]:
    target = (record.recovery.target_s if record.recovery is not None else None) or SLOW_RECOVERY_S
    return [r for f in faults(record) for r in _fault(f, target)]


def _downtime(record: Record) -> list[Recommendation]:
    ratio = down_error_ratio(record)
    down = [s.t_s for s in timeline(record) if is_down(s, ratio)]
    if not down or record.faults:
        return []  # with faults the per-fault rules explain the down seconds
    return [Recommendation("down-seconds", "medium", f"{len(down)} second(s) down without an injected fault",
                           f"first at +{down[0]:.0f} s, error ratio >= {fmt_pct(ratio, 1)}",
                           "look up the errors of those seconds: something failed on its own")]


def _capacity(record: Record) -> list[Recommendation]:
    knee = record.capacity.knee if record.capacity is not None else None
    knee_users = knee.users if knee is not None else None
    peak_users = max((row.users or 0 for row in record.timeline), default=0)
    if not knee_users or not peak_users or peak_users < KNEE_HEADROOM * knee_users:
        return []
    return [Recommendation("capacity-headroom", "medium", "the run's load is close to the capacity knee",
                           f"peak {peak_users:.0f} users vs knee at {knee_users:.0f} users",
                           "scale out or optimise before traffic grows: latency rises steeply past the knee")]


def _health(record: Record) -> list[Recommendation]:
    out = []
    causes = record.health.root_causes if record.health is not None else []
    if causes:
        first = causes[0]
        evidence = f"component={first.component}, rounds={first.rounds}, first_t={first.first_t}"
        out.append(Recommendation("health-root-cause", "high", "the health graph names a root cause", evidence,
                                  "start the investigation at this component: the others depend on it"))
    for comp in health_components(record):
        if comp.uptime_ratio is not None and comp.uptime_ratio < HEALTH_UPTIME:
            out.append(Recommendation("component-unhealthy", "medium", f"component {comp.name} was unhealthy",
                                      f"health uptime {fmt_pct(comp.uptime_ratio)} < {fmt_pct(HEALTH_UPTIME, 1)}",
                                      "check its probe history in the health timeline"))
    return out


def _next_tier(record: Record) -> list[Recommendation]:
    sla = record.sla
    blocked = sla.blocked_by
    if sla.passed is not True or not blocked or not sla.next_tier:
        return []
    evidence = "; ".join(f"{c.name} {fmt_criterion(c.name, c.actual)} needs {c.comparator} "
                         f"{fmt_criterion(c.name, c.threshold)}" for c in blocked)
    return [Recommendation("next-tier", "info", f"what stands between this run and {sla.next_tier}",
                           evidence, "improve these criteria to grade one tier higher")]


RULES: tuple[Callable[[Record], list[Recommendation]], ...] = (
    _no_data, _sla_failures, _workers, _generators, _faults, _downtime, _health, _slow_endpoints,
    _capacity, _next_tier,
)


def recommend(record: RecordLike, rules: tuple[Callable[[Record], list[Recommendation]], ...] = RULES,
              ) -> list[Recommendation]:
    """Every recommendation the rules produce, most severe first (stable within a severity)."""
    order = {"high": 0, "medium": 1, "info": 2}
    typed = as_record(record)
    found = [r for rule in rules for r in rule(typed)]
    return sorted(found, key=lambda r: order.get(r.severity, 3))
