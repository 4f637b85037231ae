"""Run-record sections of the fault schedule and the reliability shapes, as pure functions.

``faults_section`` analyses the per-second timeline (:mod:`reliability.shapes.recovery`) and returns
the ``faults``, ``resilience_score`` and ``recovery`` sections, each second's ``phase`` and the
inconclusive reasons (:class:`FaultSections`). ``stages_section`` grades each stage a shape
entered; ``capacity_section`` closes a capacity search. :class:`FaultRun` is what the runtime
driver records about each fault.
Nothing here imports locust or gevent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reliability.config import SlaSpec
from reliability.faults.schedule import ScheduledFaultSpec
from reliability.metrics.windows import Snapshot, WindowStore
from reliability.schema import sections as s
from reliability.shapes.capacity import CapacitySearch, WindowGrade
from reliability.shapes.recovery import (
    BASELINE,
    FaultAnalysis,
    FaultTimes,
    RecoveryParams,
    SecondRow,
    WindowSla,
    analyze,
    overall_score,
)
from reliability.shapes.spec import RecoverySpec
from reliability.sla import evaluate, latency_basis, on_basis
from reliability.units import iso, percentile_label
from reliability.units import round_finite as _round

IN_EFFECT = ("injecting", "active", "reverting")


class FaultCheckLike(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def detail(self) -> str: ...

    @property
    def latency_ms(self) -> float | None: ...


class FaultLike(Protocol):
    """The Fault protocol of ``reliability.faults`` (structural, so custom faults fit too)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def dead_man_s(self) -> float | None: ...

    def inject(self) -> None: ...

    def revert(self) -> None: ...

    def verify(self) -> FaultCheckLike: ...


@dataclass
class FaultRun:
    """Runtime state of one scheduled fault. ``state``: pending -> injecting -> active ->
    reverting -> reverted; ``skipped`` when it could not be built or never ran."""

    spec: ScheduledFaultSpec
    name: str
    fault: FaultLike | None = None
    state: str = "pending"
    build_error: str | None = None
    inject_started_at: float | None = None
    injected_at: float | None = None
    revert_started_at: float | None = None
    reverted_at: float | None = None
    inject_error: str | None = None
    revert_error: str | None = None
    revert_attempts: int = 0
    reverted_because: str | None = None
    check: FaultCheckLike | None = None
    check_error: str | None = None
    checked_at: float | None = None
    check_attempts: int = 0
    revert_due_at: float | None = None  # set when injected on demand (inject_now): held hold_s from then
    revert_log: list[dict[str, Any]] = field(default_factory=list)  # every attempt: at (epoch), by, ok, error
    reverted_by: str | None = None  # master, or guard / cli when they undid it meanwhile
    skipped_because: str | None = None
    hold_checks: int = 0  # re-verifications on the data path while held
    not_rechecked_because: str | None = None  # why the fault has no re-verification while held
    lost_at: float | None = None  # when a re-verification found the fault gone
    lost_detail: str | None = None


def window_sla(sla: SlaSpec, recovery: RecoverySpec) -> WindowSla:
    """The thresholds a window must meet: the recovery tier's error ratio and latency at the percentile."""
    tier_name = recovery.tier or sla.tier
    tier = sla.all_tiers()[tier_name]
    return WindowSla(tier=tier_name, percentile=sla.percentile,
                     latency_ms=tier.latency_thresholds(sla.percentile).get(sla.percentile),
                     error_ratio=tier.error_ratio)


@dataclass(frozen=True)
class FaultSections:
    """What the fault schedule adds to the record: ``faults``, ``resilience_score``, ``recovery``,
    each timeline second's phase (:meth:`phase_of`) and the inconclusive reasons."""

    faults: list[s.Fault]
    resilience_score: float | None
    recovery: s.Recovery
    phases: dict[int, str]  # epoch second -> fault | recovery (baseline when absent)
    reasons: list[str]

    def phase_of(self, epoch_s: float) -> str:
        return self.phases.get(int(epoch_s), BASELINE)


def faults_section(runs: Sequence[FaultRun], store: WindowStore, sla: SlaSpec, recovery: RecoverySpec,
                   started_at: float, run_end: float, total_requests: int) -> FaultSections:
    """Analyse the per-second timeline around each fault (``total_requests``: the whole run's)."""
    wsla = window_sla(sla, recovery)
    params = RecoveryParams(windows=recovery.windows, band_tolerance=recovery.band_tolerance,
                            band_slack_ms=recovery.band_slack_ms, warmup_s=recovery.warmup_s,
                            baseline_window_s=recovery.baseline_window_s, target_s=recovery.target_s)
    basis = latency_basis(store.snapshot(), sla)  # the latency graded: the windows read the same
    rows = [SecondRow(t, users, reqs, fails, latency)
            for t, users, reqs, fails, latency, _partial in store.timeline(sla.percentile / 100.0, basis)]
    times = []
    for run in runs:
        if run.inject_started_at is None:
            continue
        times.append(FaultTimes(
            name=run.name, inject_started_at=run.inject_started_at, injected_at=run.injected_at,
            reverted_at=run.reverted_at,
            budget_error_ratio=(run.spec.graceful_error_pct / 100.0 if run.spec.graceful_error_pct is not None
                                else wsla.error_ratio or 0.0),
            fail_fast_ms=run.spec.fail_fast_ms or recovery.fail_fast_ms))
    snapshots: dict[tuple[int, int], Snapshot] = {}

    def quantile(start_t: int, end_t: int, q: float) -> float | None:
        if (start_t, end_t) not in snapshots:
            snapshots[(start_t, end_t)] = on_basis(store.snapshot(start_t, end_t), basis)
        return snapshots[(start_t, end_t)].total.latency_ms(min(max(q, 0.0), 1.0))

    labels, analyses = analyze(rows, times, sla=wsla, params=params, run_start=started_at,
                               run_end=run_end, total_requests=total_requests, quantile=quantile)
    by_name = {a.name: a for a in analyses}
    return FaultSections(
        faults=[_fault_record(run, by_name.get(run.name), wsla, recovery, started_at) for run in runs],
        resilience_score=overall_score(analyses),
        recovery=s.Recovery(
            tier=wsla.tier,
            percentile=percentile_label(wsla.percentile),
            sla_latency_ms=wsla.latency_ms,
            sla_error_ratio=wsla.error_ratio,
            windows=params.windows,
            window_s=1,
            band_tolerance=params.band_tolerance,
            band_slack_ms=params.band_slack_ms,
            warmup_s=params.warmup_s,
            baseline_window_s=params.baseline_window_s,
            target_s=params.target_s,
        ),
        phases=dict(labels),
        reasons=_fault_problems(runs, by_name, started_at, run_end, recovery.windows),
    )


def _fault_problems(runs: Sequence[FaultRun], analyses: dict[str, FaultAnalysis], started_at: float,
                    run_end: float, windows: int) -> list[str]:
    reasons = []
    starts = sorted(r.inject_started_at for r in runs if r.inject_started_at is not None)
    for run in runs:
        if run.build_error is not None:
            reasons.append(f"fault {run.name} could not be built: {run.build_error}")
        elif run.skipped_because is not None:
            reasons.append(f"fault {run.name} was skipped: {run.skipped_because}")
            continue
        elif run.inject_started_at is None:
            reasons.append(f"fault {run.name} never ran: the run ended at +{_secs(run_end - started_at, 0)} s, "
                           f"before its at_s {run.spec.at_s:g} s")
            continue
        if run.inject_error is not None:
            reasons.append(f"fault {run.name} could not be injected: {run.inject_error}")
        elif (run.reverted_at is not None and run.injected_at is not None
              and run.reverted_at < (run.revert_due_at or started_at + run.spec.end_s) - 1.0):
            reasons.append(f"fault {run.name} was reverted early ({run.reverted_because}) after "
                           f"{_secs(run.reverted_at - run.injected_at)} s of its {run.spec.hold_s:g} s hold")
        if run.lost_at is not None:
            reasons.append(f"fault {run.name} was found gone at +{_secs(run.lost_at - started_at)} s, before its "
                           f"hold ended ({run.lost_detail}): the fault period is not what was planned")
        if run.state in IN_EFFECT:
            reasons.append(f"fault {run.name}: revert failed after {run.revert_attempts} attempt(s) "
                           f"({run.revert_error}); the backend may still be degraded (the revert guard keeps "
                           "trying; `reliability revert` lists what is left)")
        elif run.state == "reverted" and not (run.check is not None and run.check.healthy):
            detail = run.check.detail if run.check is not None else run.check_error
            reasons.append(f"fault {run.name}: backend still unhealthy after the revert: {detail}")
        analysis = analyses.get(run.name)
        if analysis is not None and analysis.note and run.inject_error is None:
            reasons.append(f"fault {run.name}: {analysis.note}; recovery metrics unavailable")
        elif analysis is not None and analysis.band is not None and analysis.time_to_recover_s is None \
                and run.reverted_at is not None:
            # not recovered: a finding when there was time to see it, inconclusive when there was not
            limit = next((t for t in starts if t > run.reverted_at), None)
            room = (limit if limit is not None else run_end) - run.reverted_at
            if room < windows + 1:
                until = "the next fault" if limit is not None else "the end of the run"
                reasons.append(f"fault {run.name}: only {_secs(room)} s between its revert and {until}, too short "
                               f"to confirm recovery ({windows} healthy 1 s windows)")
    return reasons


def _secs(value: float, digits: int = 1) -> str:
    """A duration for a reason line: never negative, never "-0.0" (clocks read a hair apart)."""
    return f"{max(0.0, value):.{digits}f}"


def _fault_record(run: FaultRun, analysis: FaultAnalysis | None, sla: WindowSla, recovery: RecoverySpec,
                  started_at: float) -> s.Fault:
    def rel(epoch: float | None) -> float | None:
        return None if epoch is None else round(epoch - started_at, 3)

    def at(epoch: float | None) -> str | None:
        return None if epoch is None else iso(epoch)

    out = s.Fault(
        name=run.name,
        type=run.spec.type,
        kind=run.fault.kind if run.fault is not None else None,
        dead_man_s=run.fault.dead_man_s if run.fault is not None else None,
        planned=s.PlannedFault(at_s=run.spec.at_s, hold_s=run.spec.hold_s),
        on_demand=run.revert_due_at is not None,
        state=run.state,
        inject_started_at=at(run.inject_started_at),
        injected_at=at(run.injected_at),
        reverted_at=at(run.reverted_at),
        inject_started_at_s=rel(run.inject_started_at),
        injected_at_s=rel(run.injected_at),
        reverted_at_s=rel(run.reverted_at),
        build_error=run.build_error,
        inject_error=run.inject_error,
        revert_error=run.revert_error,
        revert_attempts=run.revert_attempts,
        revert_log=[s.RevertAttempt(at_s=rel(a["at"]), by=a["by"], ok=a["ok"], error=a["error"])
                    for a in run.revert_log],
        reverted_by=run.reverted_by,
        reverted_because=run.reverted_because,
        skipped_because=run.skipped_because,
        hold_checks=run.hold_checks,
        not_rechecked_because=run.not_rechecked_because,
        lost_at_s=rel(run.lost_at),
        lost_detail=run.lost_detail,
        verified_healthy=None if run.checked_at is None else bool(run.check is not None and run.check.healthy),
        post_revert_check=None if run.checked_at is None else s.PostRevertCheck(
            healthy=bool(run.check is not None and run.check.healthy),
            detail=run.check.detail if run.check is not None else run.check_error,
            latency_ms=_round(run.check.latency_ms if run.check is not None else None),
            checked_at=iso(run.checked_at),
            attempts=run.check_attempts,
        ),
    )
    if analysis is None:
        return out
    a = analysis
    return out.model_copy(update={
        "baseline": None if a.baseline is None else s.Baseline(
            windows=a.baseline.windows, latency_ms=_round(a.baseline.latency_ms),
            rps=_round(a.baseline.rps), error_ratio=_round(a.baseline.error_ratio, 6)),
        "band": None if a.band is None else s.Band(
            latency_hi_ms=_round(a.band.latency_hi_ms), rps_lo=_round(a.band.rps_lo)),
        "windows": s.FaultWindows(fault=a.fault_windows, recovery=a.recovery_windows),
        "time_to_detect_s": _round(a.time_to_detect_s),
        "detected_at_s": rel(a.detected_at),
        "degradation": s.Degradation(
            percentile=percentile_label(sla.percentile),
            peak_latency_ms=_round(a.peak_latency_ms),
            latency_ms=_round(a.latency_ms),
            baseline_latency_ms=_round(a.baseline.latency_ms if a.baseline else None),
            peak_error_ratio=_round(a.peak_error_ratio, 6),
            min_rps=_round(a.lowest_rps),
            mean_rps=_round(a.mean_rps),
            baseline_rps=_round(a.baseline.rps if a.baseline else None),
            min_throughput_ratio=_round(a.lowest_throughput_ratio, 4),
        ),
        "time_to_recover_s": _round(a.time_to_recover_s),
        "recovered_at_s": rel(a.recovered_at),
        "recovered": a.time_to_recover_s is not None,
        "requests": a.requests,
        "failures": a.failures,
        "error_ratio": _round(a.error_ratio, 6),
        "graceful": a.graceful,
        "graceful_budget_ratio": _round(run.spec.graceful_error_pct / 100.0
                                        if run.spec.graceful_error_pct is not None else sla.error_ratio, 6),
        "fail_fast": a.fail_fast,
        "fail_fast_ms": run.spec.fail_fast_ms or recovery.fail_fast_ms,
        "failure_latency_ms": None if a.failure_latency_ms is None else s.LatencyRange(
            lower=_round(a.failure_latency_ms[0]), upper=_round(a.failure_latency_ms[1])),
        "burn_rate": _round(a.burn_rate, 4),
        "budget_consumed": _round(a.error_budget_consumed, 6),
        "error_budget": s.ErrorBudget(
            slo_error_ratio=sla.error_ratio,
            incident_requests=a.incident_requests,
            incident_failures=a.incident_failures,
        ),
        "score": a.score,
        "note": a.note,
    })


def capacity_section(search: CapacitySearch, store: WindowStore, sla: SlaSpec, end: float) -> s.Capacity:
    """The record's ``capacity``; first grades whatever closed after the last tick."""
    for start_t, end_t in search.windows_due(int(math.floor(end))):
        search.observe(grade_window(store, sla, start_t, end_t))
    return search.result(list(sla.all_tiers()), percentile_label(sla.percentile))


class StageEntryLike(Protocol):
    """A stage a shape entered (``reliability.shapes.locust_shapes.StageEntry``)."""

    @property
    def name(self) -> str: ...

    @property
    def users(self) -> int: ...

    @property
    def started_at(self) -> float: ...


def stages_section(entries: Sequence[StageEntryLike], store: WindowStore, sla: SlaSpec, started_at: float,
                   end: float) -> list[s.Stage]:
    """The record's ``stages``: each stage a shape entered (``name``, ``users``, ``started_at``
    epoch), graded over the whole seconds it ran."""
    stages = []
    for i, entry in enumerate(entries):
        stop = entries[i + 1].started_at if i + 1 < len(entries) else end
        start_t, end_t = math.ceil(entry.started_at), math.floor(stop)
        stage = s.Stage(name=entry.name, users=entry.users,
                        # the shape's first tick comes just before test_start
                        started_at_s=round(max(0.0, entry.started_at - started_at), 3),
                        duration_s=round(stop - entry.started_at, 3))
        if end_t > start_t:
            snap = store.snapshot(start_t, end_t)
            verdict = evaluate(snap, sla)
            snap = on_basis(snap, verdict.latency_basis)
            stage = stage.model_copy(update={
                "requests": snap.total.requests,
                "rps": round(snap.total.requests / (end_t - start_t), 3),
                "error_ratio": _round(snap.total.error_ratio, 6),
                "percentile": percentile_label(sla.percentile),
                "latency_ms": _round(snap.total.latency_ms(sla.percentile / 100.0)),
                "passed": verdict.passed if snap.total.requests else None,
                "highest_tier_met": verdict.highest_tier_met,
            })
        stages.append(stage)
    return stages


def grade_window(store: WindowStore, sla: SlaSpec, start_t: int, end_t: int) -> WindowGrade:
    """Grade ``[start_t, end_t)`` against every tier of ``sla``. A short window cannot prove a tier
    (a second of traffic cannot show 0.5 % errors), so a tier holds in a window unless it fails
    there on evidence; a window without requests holds nothing."""
    snap = store.snapshot(start_t, end_t)
    verdict = evaluate(snap, sla)
    snap = on_basis(snap, verdict.latency_basis)
    return WindowGrade(start_t, end_t, snap.total.requests, snap.total.failures,
                       snap.total.latency_ms(sla.percentile / 100.0),
                       {t.tier: bool(snap.total.requests) and not t.breached for t in verdict.tiers})


