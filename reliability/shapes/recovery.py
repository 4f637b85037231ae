"""Window labels and recovery metrics as pure functions over the per-second timeline.

Input: one :class:`SecondRow` per 1 s window (``WindowStore.timeline()`` at the SLA percentile),
what happened to each fault (:class:`FaultTimes`, epoch seconds), the SLA thresholds a window must
meet and a quantile function over the merged histograms of a time range. Output: a phase per
second (``baseline`` | ``fault`` | ``recovery``) and a :class:`FaultAnalysis` per fault. The
definitions (also in the README):

* **baseline**: the last ``baseline_window_s`` baseline-labelled seconds with traffic before the
  fault's injection, ignoring the first ``warmup_s`` of the run. Its latency is the median of the
  per-second latencies (at the SLA percentile), its throughput the median requests per second.
* **band**: latency <= baseline latency x (1 + band_tolerance) + band_slack_ms and throughput >=
  baseline throughput x (1 - band_tolerance).
* a window is **healthy** when it had requests, is inside the band, and meets the SLA tier's
  error-ratio threshold and its latency threshold at the SLA percentile; it is **degraded** when it
  is not healthy, including a second in which users ran but no request completed.
* **fault** windows: the seconds overlapping [inject started, revert completed);
  **recovery** windows: from the end of the fault windows until the first of ``windows`` (N)
  consecutive healthy windows; everything else is **baseline**.
* **time_to_detect_s**: end of the first degraded fault window - injection completed (>= 0).
* **time_to_recover_s**: start of the first of N consecutive healthy windows after the revert
  (searched from the second the revert completed in, before the next fault) - revert completed
  (>= 0); None if the run ends or the next fault starts first.
* **graceful**: the error ratio over the fault windows is within the fault's budget.
* **fail_fast**: failing requests returned within ``fail_fast_ms``. From the fault windows' merged
  histogram of all requests with error ratio e, the failures' median lies between the quantiles
  q(e/2) and q(1 - e/2): True when q(1 - e/2) <= fail_fast_ms, False when q(e/2) > fail_fast_ms,
  otherwise None (the mixed histogram cannot tell); None as well when nothing failed.
* **burn_rate** = incident error ratio / (1 - SLO), the SLO error target being the tier's error
  threshold; **error_budget_consumed** = incident failures / (SLO error target x all requests of
  the run). The incident is the fault and recovery windows.
* **score** (0-100) = 100 x (0.30 graceful + 0.15 latency + 0.15 throughput + 0.30 recovery +
  0.10 fail-fast), each part in [0, 1] (see :func:`resilience_score`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

BASELINE = "baseline"
FAULT = "fault"
RECOVERY = "recovery"

# (start_t, end_t, quantile) -> latency in ms of all requests completed in [start_t, end_t)
QuantileFn = Callable[[int, int, float], float | None]


@dataclass(frozen=True)
class SecondRow:
    """One 1 s window: ``t`` is the epoch second it starts at."""

    t: int
    users: int | None
    requests: int
    failures: int
    latency_ms: float | None

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class FaultTimes:
    """What happened to one scheduled fault (epoch seconds; None when that step never completed)."""

    name: str
    inject_started_at: float
    injected_at: float | None
    reverted_at: float | None
    budget_error_ratio: float
    fail_fast_ms: float


@dataclass(frozen=True)
class WindowSla:
    """The thresholds one window must meet: the tier's error ratio and latency at the percentile."""

    tier: str
    percentile: float
    latency_ms: float | None
    error_ratio: float | None


@dataclass(frozen=True)
class RecoveryParams:
    windows: int = 3
    band_tolerance: float = 0.5
    band_slack_ms: float = 5.0
    warmup_s: float = 5.0
    baseline_window_s: float = 60.0
    target_s: float = 30.0


@dataclass(frozen=True)
class Baseline:
    windows: int
    latency_ms: float | None
    rps: float
    error_ratio: float


@dataclass(frozen=True)
class Band:
    latency_hi_ms: float | None
    rps_lo: float


@dataclass(frozen=True)
class FaultAnalysis:
    """Recovery metrics of one fault; None where the data cannot answer (see ``note``)."""

    name: str
    baseline: Baseline | None
    band: Band | None
    fault_windows: int
    recovery_windows: int
    detected_at: float | None
    time_to_detect_s: float | None
    recovered_at: float | None
    time_to_recover_s: float | None
    peak_latency_ms: float | None
    peak_error_ratio: float | None
    lowest_rps: float | None
    lowest_throughput_ratio: float | None
    latency_ms: float | None
    mean_rps: float | None
    requests: int
    failures: int
    error_ratio: float | None
    graceful: bool | None
    fail_fast: bool | None
    failure_latency_ms: tuple[float | None, float | None] | None
    incident_requests: int
    incident_failures: int
    burn_rate: float | None
    error_budget_consumed: float | None
    score: float | None
    note: str | None = None


def _healthy(row: SecondRow, band: Band, sla: WindowSla) -> bool:
    if row.requests <= 0:
        return False
    if sla.error_ratio is not None and row.error_ratio > sla.error_ratio:
        return False
    if row.requests < band.rps_lo:
        return False
    if row.latency_ms is None:  # requests without a latency (custom users): nothing to hold against them
        return True
    if sla.latency_ms is not None and row.latency_ms > sla.latency_ms:
        return False
    return band.latency_hi_ms is None or row.latency_ms <= band.latency_hi_ms


def _degraded(row: SecondRow | None, band: Band, sla: WindowSla) -> bool:
    if row is None:
        return False
    if row.requests <= 0:
        return (row.users or 0) > 0  # users ran and nothing completed: a stall
    return not _healthy(row, band, sla)


def baseline_of(rows: Sequence[SecondRow], labels: Mapping[int, str], before: float, run_start: float,
                params: RecoveryParams) -> Baseline | None:
    """The baseline before an injection at ``before`` (see the module docstring)."""
    picked = [r for r in rows if r.requests > 0 and r.t >= run_start + params.warmup_s and r.t + 1 <= before
              and labels.get(r.t, BASELINE) == BASELINE]
    picked = picked[-max(1, int(params.baseline_window_s)):]
    if not picked:
        return None
    latencies = [r.latency_ms for r in picked if r.latency_ms is not None]
    requests = sum(r.requests for r in picked)
    return Baseline(
        windows=len(picked),
        latency_ms=statistics.median(latencies) if latencies else None,
        rps=float(statistics.median(r.requests for r in picked)),
        error_ratio=sum(r.failures for r in picked) / requests,
    )


def band_of(baseline: Baseline, params: RecoveryParams) -> Band:
    hi = None if baseline.latency_ms is None else (
        baseline.latency_ms * (1 + params.band_tolerance) + params.band_slack_ms)
    return Band(latency_hi_ms=hi, rps_lo=baseline.rps * max(0.0, 1 - params.band_tolerance))


def resilience_score(*, requests: int, error_ratio: float | None, budget_error_ratio: float,
                     latency_ms: float | None, band: Band, mean_rps: float | None, baseline_rps: float,
                     time_to_recover_s: float | None, target_s: float, failures: int,
                     fail_fast: bool | None) -> float:
    """0-100 = 100 x (0.30 g + 0.15 l + 0.15 t + 0.30 r + 0.10 f), each part in [0, 1]:

    * g (graceful): 1 when the fault's error ratio is within budget, else budget / error ratio
      (0 when nothing was served);
    * l (latency): band upper latency / the fault windows' latency at the SLA percentile, capped at 1;
    * t (throughput): mean requests/s during the fault / baseline requests/s, capped at 1;
    * r (recovery): 1 - time_to_recover_s / target_s, floored at 0; 0 when it never recovered;
    * f (fail-fast): 1 when failures returned fast or nothing failed, 0.5 when undetermined, 0 when
      failures hung.
    """
    if requests <= 0 or error_ratio is None:
        g = 0.0
    elif error_ratio <= budget_error_ratio:
        g = 1.0
    else:
        g = budget_error_ratio / error_ratio
    if requests <= 0:
        lat = 0.0
    elif latency_ms is None or band.latency_hi_ms is None or latency_ms <= 0:
        lat = 1.0
    else:
        lat = min(1.0, band.latency_hi_ms / latency_ms)
    thr = 1.0 if baseline_rps <= 0 else min(1.0, (mean_rps or 0.0) / baseline_rps)
    rec = 0.0 if time_to_recover_s is None else max(0.0, 1.0 - time_to_recover_s / target_s)
    if fail_fast is True or failures == 0:
        ff = 1.0
    elif fail_fast is None:
        ff = 0.5
    else:
        ff = 0.0
    return round(100.0 * (0.30 * g + 0.15 * lat + 0.15 * thr + 0.30 * rec + 0.10 * ff), 1)


def _first_recovered(by_t: Mapping[int, SecondRow], start_t: int, limit_t: int, n: int, band: Band,
                     sla: WindowSla) -> int | None:
    t = start_t
    while t + n <= limit_t:
        bad = next((k for k in range(t, t + n) if by_t.get(k) is None or not _healthy(by_t[k], band, sla)), None)
        if bad is None:
            return t
        t = bad + 1
    return None


def analyze(
    rows: Sequence[SecondRow],
    faults: Sequence[FaultTimes],
    *,
    sla: WindowSla,
    params: RecoveryParams,
    run_start: float,
    run_end: float,
    total_requests: int,
    quantile: QuantileFn,
) -> tuple[dict[int, str], list[FaultAnalysis]]:
    """Label every second (every row, and any fault second without one) and analyse every fault,
    in injection order. See the module docstring."""
    rows = sorted(rows, key=lambda r: r.t)
    by_t = {r.t: r for r in rows}
    labels: dict[int, str] = {}
    out: list[FaultAnalysis] = []
    ordered = sorted(faults, key=lambda f: f.inject_started_at)
    end_t = math.ceil(run_end)
    for i, fault in enumerate(ordered):
        next_start_t = math.floor(ordered[i + 1].inject_started_at) if i + 1 < len(ordered) else end_t
        baseline = baseline_of(rows, labels, fault.inject_started_at, run_start, params)
        start_t = math.floor(fault.inject_started_at)
        stop = fault.reverted_at if fault.reverted_at is not None else run_end
        stop_t = min(max(math.ceil(stop), start_t + 1), next_start_t if fault.reverted_at is not None else end_t)
        for t in range(start_t, stop_t):
            labels[t] = FAULT
        out.append(_analyse_one(fault, by_t, labels, baseline, start_t, stop_t, next_start_t, sla=sla,
                                params=params, total_requests=total_requests, quantile=quantile))
    for row in rows:
        labels.setdefault(row.t, BASELINE)
    return labels, out


def _analyse_one(fault: FaultTimes, by_t: Mapping[int, SecondRow], labels: dict[int, str],
                 baseline: Baseline | None, start_t: int, stop_t: int, next_start_t: int, *, sla: WindowSla,
                 params: RecoveryParams, total_requests: int, quantile: QuantileFn) -> FaultAnalysis:
    fault_rows = [by_t[t] for t in range(start_t, stop_t) if t in by_t]
    requests = sum(r.requests for r in fault_rows)
    failures = sum(r.failures for r in fault_rows)
    error_ratio = failures / requests if requests else None
    band = band_of(baseline, params) if baseline is not None else None
    note = None
    if fault.injected_at is None:
        note = "the injection failed"
    elif baseline is None:
        note = "no baseline windows before the fault (inject later, or lower recovery.warmup_s)"

    detected_at = ttd = None
    recovered_at = ttr = None
    recovered_t: int | None = None
    if band is not None and fault.injected_at is not None:
        for row in fault_rows:
            if _degraded(row, band, sla):
                detected_at = float(row.t + 1)
                ttd = max(0.0, detected_at - fault.injected_at)
                break
        if fault.reverted_at is not None:
            recovered_t = _first_recovered(by_t, math.floor(fault.reverted_at), next_start_t, params.windows,
                                           band, sla)
            if recovered_t is not None:
                recovered_at = max(float(recovered_t), fault.reverted_at)
                ttr = recovered_at - fault.reverted_at
    recovery_end = recovered_t if recovered_t is not None else next_start_t
    recovery_windows = 0
    if fault.reverted_at is not None:
        for t in range(stop_t, recovery_end):
            if t not in labels:
                labels[t] = RECOVERY
                recovery_windows += 1

    inside = [r for r in fault_rows if fault.injected_at is not None and r.t >= fault.injected_at
              and (fault.reverted_at is None or r.t + 1 <= fault.reverted_at)] or fault_rows
    lowest = min((r.requests for r in inside), default=None)
    latency = quantile(start_t, stop_t, sla.percentile / 100.0) if requests else None
    mean_rps = requests / len(fault_rows) if fault_rows else None

    fail_fast: bool | None = None
    bounds: tuple[float | None, float | None] | None = None
    if failures and error_ratio is not None:
        lo = quantile(start_t, stop_t, error_ratio / 2)
        hi = quantile(start_t, stop_t, 1 - error_ratio / 2)
        bounds = (lo, hi)
        if hi is not None and hi <= fault.fail_fast_ms:
            fail_fast = True
        elif lo is not None and lo > fault.fail_fast_ms:
            fail_fast = False

    incident_end = recovery_end if fault.reverted_at is not None else stop_t
    incident = [by_t[t] for t in range(start_t, max(stop_t, incident_end)) if t in by_t]
    inc_requests = sum(r.requests for r in incident)
    inc_failures = sum(r.failures for r in incident)
    burn = consumed = None
    if sla.error_ratio:
        if inc_requests:
            burn = (inc_failures / inc_requests) / sla.error_ratio
        if total_requests:
            consumed = inc_failures / (sla.error_ratio * total_requests)

    score = None
    if band is not None and baseline is not None and fault.injected_at is not None:
        score = resilience_score(requests=requests, error_ratio=error_ratio,
                                 budget_error_ratio=fault.budget_error_ratio, latency_ms=latency, band=band,
                                 mean_rps=mean_rps, baseline_rps=baseline.rps, time_to_recover_s=ttr,
                                 target_s=params.target_s, failures=failures, fail_fast=fail_fast)
    return FaultAnalysis(
        name=fault.name,
        baseline=baseline,
        band=band,
        fault_windows=len(fault_rows),
        recovery_windows=recovery_windows,
        detected_at=detected_at,
        time_to_detect_s=ttd,
        recovered_at=recovered_at,
        time_to_recover_s=ttr,
        peak_latency_ms=max((r.latency_ms for r in fault_rows if r.latency_ms is not None), default=None),
        peak_error_ratio=max((r.error_ratio for r in fault_rows if r.requests), default=None),
        lowest_rps=None if lowest is None else float(lowest),
        lowest_throughput_ratio=(lowest / baseline.rps if lowest is not None and baseline and baseline.rps
                                 else None),
        latency_ms=latency,
        mean_rps=mean_rps,
        requests=requests,
        failures=failures,
        error_ratio=error_ratio,
        graceful=None if fault.injected_at is None else (requests > 0 and (error_ratio or 0.0)
                                                          <= fault.budget_error_ratio),
        fail_fast=fail_fast,
        failure_latency_ms=bounds,
        incident_requests=inc_requests,
        incident_failures=inc_failures,
        burn_rate=burn,
        error_budget_consumed=consumed,
        score=score,
        note=note,
    )


def overall_score(analyses: Sequence[FaultAnalysis]) -> float | None:
    """The run's resilience score: the mean of the faults' scores (None when no fault has one)."""
    scores = [a.score for a in analyses if a.score is not None]
    return round(sum(scores) / len(scores), 1) if scores else None
