"""Window labels and recovery metrics over synthetic per-second timelines (pure, fake times)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from reliability.config import SlaSpec
from reliability.metrics.windows import WindowStore
from reliability.schema import RunRecord
from reliability.schema.sections import Second
from reliability.shapes.recovery import (
    Band,
    FaultTimes,
    RecoveryParams,
    SecondRow,
    WindowSla,
    analyze,
    overall_score,
    resilience_score,
)
from reliability.shapes.sections import FaultRun, faults_section
from reliability.shapes.spec import RecoverySpec, ScheduledFaultSpec
from tests.support.fakes import FakeClock
from tests.support.schemas import assert_valid_record

T0 = 1000.0
SLA = WindowSla(tier="gold", percentile=95.0, latency_ms=200.0, error_ratio=0.005)
PARAMS = RecoveryParams(windows=3, band_tolerance=0.5, band_slack_ms=5.0, warmup_s=5.0, baseline_window_s=60.0,
                        target_s=30.0)


def rows(spec: Iterable[tuple[int, int, int, int, float | None]]) -> list[SecondRow]:
    """(first second, last second inclusive, requests, failures, latency) ranges -> rows with 10 users."""
    out: list[SecondRow] = []
    for first, last, requests, failures, latency in spec:
        out += [SecondRow(t, 10, requests, failures, latency) for t in range(first, last + 1)]
    return out


def quantiles(fast_below: float, fast_ms: float = 2.0, slow_ms: float = 800.0) -> Callable[[int, int, float], float]:
    """A fault period whose requests take ``fast_ms`` up to quantile ``fast_below``, ``slow_ms`` above."""
    return lambda _start, _end, q: fast_ms if q < fast_below else slow_ms


def fault(start: float, injected: float | None, reverted: float | None, name: str = "f",
          budget: float = 0.005) -> FaultTimes:
    return FaultTimes(name, start, injected, reverted, budget, 100.0)


def run(timeline: list[SecondRow], faults: list[FaultTimes], end: float = 1060.0,
        quantile: Callable[[int, int, float], float | None] | None = None, total: int | None = None,
        ) -> tuple[dict[int, str], list]:  # type: ignore[type-arg]
    return analyze(timeline, faults, sla=SLA, params=PARAMS, run_start=T0, run_end=end,
                   total_requests=total if total is not None else sum(r.requests for r in timeline),
                   quantile=quantile or quantiles(1.1, 300.0))


def test_latency_fault_detect_recover_and_labels() -> None:
    timeline = rows([(1000, 1019, 100, 0, 20.0), (1020, 1020, 100, 0, 25.0), (1021, 1029, 60, 0, 300.0),
                     (1030, 1030, 80, 0, 200.0), (1031, 1031, 100, 0, 100.0), (1032, 1059, 100, 0, 21.0)])
    labels, [a] = run(timeline, [fault(1020.2, 1020.3, 1030.4)])
    assert [labels.get(t, "baseline") for t in (1019, 1020, 1030, 1031, 1032)] == [
        "baseline", "fault", "fault", "recovery", "baseline"]
    assert a.baseline.windows == 15 and a.baseline.latency_ms == 20.0 and a.baseline.rps == 100.0
    assert a.band == Band(latency_hi_ms=35.0, rps_lo=50.0)
    # 1020 is still in the band; 1021 is the first degraded window, known when it ends at 1022
    assert a.detected_at == 1022.0 and a.time_to_detect_s == pytest.approx(1.7)
    # 1030 (200 ms) and 1031 (100 ms > 35) are out of the band; 1032-1034 are the 3 healthy windows
    assert a.recovered_at == 1032.0 and a.time_to_recover_s == pytest.approx(1.6)
    assert (a.fault_windows, a.recovery_windows) == (11, 1)
    assert a.peak_latency_ms == 300.0 and a.peak_error_ratio == 0.0
    assert a.lowest_rps == 60.0 and a.lowest_throughput_ratio == pytest.approx(0.6)  # whole seconds 1021-1029
    assert a.graceful is True and a.fail_fast is None and a.failure_latency_ms is None
    assert a.burn_rate == 0.0 and a.error_budget_consumed == 0.0
    mean_rps = (100 + 9 * 60 + 80) / 11
    expected = 100 * (0.30 + 0.15 * 35.0 / 300.0 + 0.15 * mean_rps / 100 + 0.30 * (1 - 1.6 / 30) + 0.10)
    assert a.score == pytest.approx(round(expected, 1))


def test_errors_that_fail_fast_burn_the_budget() -> None:
    timeline = rows([(1000, 1019, 100, 0, 5.0), (1020, 1029, 200, 200, 2.0), (1030, 1031, 100, 30, 4.0),
                     (1032, 1059, 100, 0, 5.0)])
    labels, [a] = run(timeline, [fault(1020.0, 1020.1, 1030.0)], quantile=quantiles(1.1, fast_ms=2.0))
    assert a.error_ratio == 1.0 and a.graceful is False
    assert a.fail_fast is True and a.failure_latency_ms == (2.0, 2.0)
    assert a.time_to_detect_s == pytest.approx(0.9)  # the first fault window, [1020, 1021), is all errors
    assert a.time_to_recover_s == pytest.approx(2.0)  # 1030 and 1031 still fail 30 %
    assert labels[1030] == labels[1031] == "recovery"
    incident_failures = 2000 + 60
    assert (a.incident_requests, a.incident_failures) == (2200, incident_failures)
    assert a.burn_rate == pytest.approx((incident_failures / 2200) / 0.005)
    total = sum(r.requests for r in timeline)
    assert a.error_budget_consumed == pytest.approx(incident_failures / (0.005 * total))


def test_failures_that_hang_are_not_fail_fast_and_mixed_cannot_tell() -> None:
    timeline = rows([(1000, 1019, 100, 0, 5.0), (1020, 1029, 10, 10, 3000.0), (1030, 1059, 100, 0, 5.0)])
    _, [hang] = run(timeline, [fault(1020.0, 1020.0, 1030.0)], quantile=quantiles(0.0, slow_ms=3000.0))
    assert hang.fail_fast is False and hang.failure_latency_ms == (3000.0, 3000.0)
    # 10 % failures in a histogram that is fast below q=0.9 and slow above: the failures could be either
    mixed = rows([(1000, 1019, 100, 0, 5.0), (1020, 1029, 100, 10, 800.0), (1030, 1059, 100, 0, 5.0)])
    _, [unsure] = run(mixed, [fault(1020.0, 1020.0, 1030.0)], quantile=quantiles(0.9))
    assert unsure.fail_fast is None and unsure.failure_latency_ms == (2.0, 800.0)
    assert unsure.graceful is False  # 10 % > the 0.5 % budget


def test_a_stall_is_degraded_and_no_recovery_before_the_end() -> None:
    timeline = rows([(1000, 1019, 100, 0, 5.0), (1020, 1029, 0, 0, None), (1030, 1039, 100, 50, 5.0)])
    labels, [a] = run(timeline, [fault(1020.0, 1020.0, 1030.0)], end=1040.0)
    assert a.time_to_detect_s == 1.0  # users ran, nothing completed
    assert a.time_to_recover_s is None and a.recovered_at is None
    assert all(labels[t] == "recovery" for t in range(1030, 1040))
    assert a.graceful is False  # nothing was served during the fault
    assert a.lowest_rps == 0.0
    assert a.score is not None and a.score < 20


def test_second_fault_uses_the_baseline_before_the_first_and_recovery_stops_at_it() -> None:
    timeline = rows([(1000, 1019, 100, 0, 10.0), (1020, 1024, 100, 0, 500.0), (1025, 1029, 100, 0, 500.0),
                     (1030, 1034, 100, 0, 500.0), (1035, 1059, 100, 0, 10.0)])
    labels, (first, second) = run(timeline, [fault(1020.0, 1020.0, 1025.0, "a"),
                                             fault(1030.0, 1030.0, 1035.0, "b")])
    assert first.time_to_recover_s is None  # still degraded when the second fault began
    assert first.recovery_windows == 5 and labels[1029] == "recovery" and labels[1030] == "fault"
    assert second.baseline is not None and second.baseline.latency_ms == 10.0  # from before the first fault
    assert second.time_to_recover_s == 0.0 and labels[1035] == "baseline"
    assert overall_score([first, second]) == pytest.approx(round(((first.score or 0) + (second.score or 0)) / 2, 1))


def test_failed_injection_and_missing_baseline_have_no_metrics() -> None:
    timeline = rows([(1000, 1059, 100, 0, 10.0)])
    labels, [failed] = run(timeline, [fault(1020.0, None, 1020.5)])
    assert failed.note == "the injection failed" and failed.score is None and failed.graceful is None
    assert labels[1020] == "fault"
    _, [early] = run(timeline, [fault(1003.0, 1003.0, 1010.0)])
    assert early.baseline is None and early.score is None and "no baseline" in (early.note or "")
    assert overall_score([failed, early]) is None


def test_revert_that_never_completed_keeps_the_fault_to_the_end() -> None:
    timeline = rows([(1000, 1019, 100, 0, 10.0), (1020, 1039, 100, 0, 900.0)])
    labels, [a] = run(timeline, [fault(1020.0, 1020.0, None)], end=1040.0)
    assert all(labels[t] == "fault" for t in range(1020, 1040))
    assert a.time_to_recover_s is None and a.recovery_windows == 0


def test_resilience_score_parts() -> None:
    band = Band(latency_hi_ms=30.0, rps_lo=50.0)
    common = {"budget_error_ratio": 0.01, "band": band, "baseline_rps": 100.0, "target_s": 30.0}
    perfect = resilience_score(requests=100, error_ratio=0.0, latency_ms=20.0, mean_rps=100.0,
                               time_to_recover_s=0.0, failures=0, fail_fast=None, **common)  # type: ignore[arg-type]
    assert perfect == 100.0
    worst = resilience_score(requests=0, error_ratio=None, latency_ms=None, mean_rps=0.0, time_to_recover_s=None,
                             failures=5, fail_fast=False, **common)  # type: ignore[arg-type]
    assert worst == 0.0
    half = resilience_score(requests=100, error_ratio=0.02, latency_ms=60.0, mean_rps=50.0, time_to_recover_s=15.0,
                            failures=2, fail_fast=None, **common)  # type: ignore[arg-type]
    assert half == pytest.approx(100 * (0.30 * 0.5 + 0.15 * 0.5 + 0.15 * 0.5 + 0.30 * 0.5 + 0.10 * 0.5))


# -- the record section, from a real window store on a fake clock --------------------------------------


@dataclass(frozen=True)
class Check:
    healthy: bool
    detail: str
    latency_ms: float | None = 1.0


def _store(latency_of: Callable[[int], float]) -> WindowStore:
    clock = FakeClock()
    store = WindowStore(clock=clock)
    for t in range(1000, 1040):
        store.note_users(t, 10)
        for k in range(50):
            clock.now = t + k / 50
            store.record("GET", "/x", latency_of(t), failed=False)
    return store


def _run(name: str, at_s: float, **state: Any) -> FaultRun:
    spec = ScheduledFaultSpec(name=name, at_s=at_s, hold_s=5, factory="mod:Fault")
    return FaultRun(spec, name, **state)


def test_faults_section_writes_metrics_phases_and_reasons() -> None:
    store = _store(lambda t: 300.0 if 1010 <= t < 1015 else 10.0)
    healthy = _run("slow", 10, state="reverted", inject_started_at=1010.0, injected_at=1010.0, reverted_at=1015.0,
                   reverted_because="its hold time is over", check=Check(True, "ok"), checked_at=1015.1)
    sick = _run("sick", 20, state="reverted", inject_started_at=1020.0, injected_at=1020.0, reverted_at=1025.0,
                check=Check(False, "PING timed out"), checked_at=1035.0)
    never = _run("late", 50)
    result = faults_section([healthy, sick, never], store, SlaSpec(tier="silver"), RecoverySpec(),
                            started_at=T0, run_end=1040.0, total_requests=2000)
    timeline = [Second(t=t - 1000, epoch_s=t, phase=result.phase_of(t)) for t in range(1000, 1040)]
    record = RunRecord(timeline=timeline, faults=result.faults, resilience_score=result.resilience_score,
                       recovery=result.recovery)
    assert record.faults is not None and record.recovery is not None
    slow = record.faults[0]
    assert slow.time_to_detect_s == 1.0 and slow.time_to_recover_s == 0.0
    assert slow.degradation is not None and slow.degradation.percentile == "p95"
    assert slow.degradation.peak_latency_ms == pytest.approx(300.0, rel=0.01)
    assert slow.degradation.baseline_latency_ms == pytest.approx(10.0, rel=0.01)
    assert slow.graceful is True and slow.verified_healthy is True and slow.injected_at_s == 10.0
    assert record.faults[1].verified_healthy is False
    assert record.faults[2].state == "pending" and not record.faults[2].analysed
    assert record.faults[2].time_to_recover_s is None
    assert [row.phase for row in record.timeline][9:16] == ["baseline"] + ["fault"] * 5 + ["baseline"]
    assert record.recovery.tier == "silver" and record.recovery.sla_latency_ms == 500.0
    assert result.reasons == ["fault sick: backend still unhealthy after the revert: PING timed out",
                              "fault late never ran: the run ended at +40 s, before its at_s 50 s"]
    assert record.resilience_score is not None and record.resilience_score == result.resilience_score
    assert_valid_record(record.to_json_dict())


def test_a_revert_too_close_to_the_end_cannot_confirm_recovery() -> None:
    store = _store(lambda t: 300.0 if t >= 1030 else 10.0)  # degraded from the fault to the end
    late = _run("late", 30, state="reverted", inject_started_at=1030.0, injected_at=1030.0, reverted_at=1038.0,
                check=Check(True, "ok"), checked_at=1038.1)
    result = faults_section([late], store, SlaSpec(), RecoverySpec(), started_at=T0, run_end=1040.0,
                            total_requests=2000)
    assert result.faults[0].recovered is False
    assert result.reasons == ["fault late: only 2.0 s between its revert and the end of the run, too short to "
                              "confirm recovery (3 healthy 1 s windows)"]
    # with room to recover, not recovering is a finding, not an inconclusive run
    assert faults_section([late], store, SlaSpec(), RecoverySpec(), started_at=T0, run_end=1050.0,
                          total_requests=2000).reasons == []
