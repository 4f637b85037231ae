"""SLA grading: tiers, criteria and ``evaluate(snapshot, spec) -> Verdict``.

Service level indicators (defined the same way in the README):

* **latency**: the configured percentile (p95 by default) of every completed request's response
  time, failures included, from histograms with a bounded relative error. Graded on the
  *corrected* basis (from the intended start, stalled requests back-filled) whenever the run has
  one (paced users, arrival-rate load), else on the measured one; ``latency_basis: measured``
  opts out;
* **error ratio**: failed requests / all requests;
* **uptime** (window-based): of the 1 s windows that had traffic, the share in which the service
  was up. A request belongs to the window of the second it was sent in (or scheduled to be sent
  in). A window is *down* when its error ratio is at or above ``down_error_pct`` (default 5 %),
  nothing in it succeeded, its latency at the SLA percentile (graded basis) is above
  ``down_latency_ms``, or requests were in flight for the whole second and none completed in it
  (a stall: counted, never skipped);
* **request availability** (request-based): successful requests / all requests.

A run (or rolling window) with no requests never passes: every criterion reports "no data".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from reliability.config import EndpointSlaSpec, SlaSpec
from reliability.metrics.histogram import LatencyHistogram
from reliability.metrics.windows import EndpointStats, SecondCounts, Snapshot
from reliability.units import percentile_label

EXIT_PASSED = 0
EXIT_FAILED = 3
EXIT_INCONCLUSIVE = 4
# What each exit code says about the SLA, in every place that prints a verdict.
OUTCOMES = {EXIT_PASSED: "MET", EXIT_FAILED: "NOT MET", EXIT_INCONCLUSIVE: "INCONCLUSIVE"}


@dataclass(frozen=True)
class UptimeResult:
    """Window-based uptime and request-based availability over a snapshot."""

    window_s: int
    windows: int  # 1 s windows with traffic
    up_windows: int
    ratio: float | None  # None when there was no traffic
    request_availability: float | None
    partial_windows: int = 0
    stalled_windows: int = 0  # down because requests were outstanding and none completed
    slow_windows: int = 0  # down because of latency above down_latency_ms
    down_latency_ms: float | None = None


@dataclass(frozen=True)
class Criterion:
    """One check: ``actual <comparator> threshold``. ``margin`` > 0 means headroom."""

    name: str  # e.g. "p95_ms", "error_ratio", "uptime", "GET /api/items p95_ms"
    comparator: str  # "<=" or ">="
    threshold: float
    actual: float | None
    passed: bool
    margin: float | None
    scope: str = "total"

    def describe(self) -> str:
        actual = "no data" if self.actual is None else _fmt(self.name, self.actual)
        return f"{self.name} {actual} (needs {self.comparator} {_fmt(self.name, self.threshold)})"


@dataclass(frozen=True)
class TierResult:
    tier: str
    passed: bool
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class Verdict:
    """The grade of a snapshot against the selected tier, plus every tier's result."""

    tier: str
    percentile: float
    passed: bool
    criteria: tuple[Criterion, ...]
    highest_tier_met: str | None
    next_tier: str | None
    blocked_by: tuple[Criterion, ...]
    tiers: tuple[TierResult, ...]
    uptime: UptimeResult
    requests: int
    failures: int
    inconclusive: tuple[str, ...] = field(default=())
    latency_basis: str = "measured"  # which latency was graded: measured | corrected

    @property
    def exit_code(self) -> int:
        """0 met, 3 not met, 4 inconclusive (takes precedence: the numbers cannot be trusted)."""
        if self.inconclusive:
            return EXIT_INCONCLUSIVE
        return EXIT_PASSED if self.passed else EXIT_FAILED

    def with_inconclusive(self, reasons: Iterable[str]) -> Verdict:
        extra = tuple(r for r in reasons if r not in self.inconclusive)
        if not extra:
            return self
        return Verdict(**{**self.__dict__, "inconclusive": self.inconclusive + extra})


UP, ERRORS, STALLED, SLOW = "up", "errors", "stalled", "slow"


def second_state(second: SecondCounts, down_error_ratio: float, down_latency_ms: float | None = None,
                 basis: str = "measured") -> str | None:
    """What one 1 s window says about the service: None (idle: not counted), ``up``, or why it was
    down (``errors``, ``stalled``, ``slow``). Uptime, the live status, time-to-detect, recovery,
    alerts and the capacity search all read windows through this one rule."""
    corrected = basis == "corrected"
    if second.requests <= 0 and second.held <= 0 and not (corrected and second.backfilled > 0):
        return None  # nothing sent, nothing stuck: idle (completions of earlier requests alone do not count)
    done = second.requests if second.done is None else second.done
    if second.held > 0 and done <= 0:
        return STALLED
    if second.requests > 0:
        ok = second.requests - second.failures
        if ok <= 0 or second.failures / second.requests >= down_error_ratio:
            return ERRORS
    latency = second.corrected_ms if corrected and second.corrected_ms is not None else second.latency_ms
    if down_latency_ms is not None and latency is not None and latency > down_latency_ms:
        return SLOW
    return UP


def compute_uptime(seconds: Iterable[SecondCounts], down_error_ratio: float, down_latency_ms: float | None = None,
                   basis: str = "measured") -> UptimeResult:
    windows = up = good = total = partial = stalled = slow = 0
    for s in seconds:
        state = second_state(s, down_error_ratio, down_latency_ms, basis)
        if state is None:
            continue
        windows += 1
        partial += s.partial
        total += s.requests
        good += s.requests - s.failures
        up += state == UP
        stalled += state == STALLED
        slow += state == SLOW
    return UptimeResult(
        window_s=1,
        windows=windows,
        up_windows=up,
        ratio=up / windows if windows else None,
        request_availability=good / total if total else None,
        partial_windows=partial,
        stalled_windows=stalled,
        slow_windows=slow,
        down_latency_ms=down_latency_ms,
    )


def latency_basis(snapshot: Snapshot, spec: SlaSpec) -> str:
    """The basis graded: ``corrected`` when asked for (the default) and the snapshot has it."""
    return "corrected" if spec.latency_basis == "corrected" and snapshot.total.corrected is not None else "measured"


def on_basis(snapshot: Snapshot, basis: str) -> Snapshot:
    """``snapshot`` with every ``hist`` replaced by the ``basis`` latency (a cheap view)."""
    if basis != "corrected" or snapshot.total.corrected is None:
        return snapshot
    return replace(snapshot, total=snapshot.total.with_basis(basis),
                   endpoints=tuple(e.with_basis(basis) for e in snapshot.endpoints),
                   components=tuple(c.with_basis(basis) for c in snapshot.components))


def _check(name: str, comparator: str, threshold: float, actual: float | None, scope: str) -> Criterion:
    if actual is None or math.isnan(actual):
        return Criterion(name, comparator, threshold, None, False, None, scope)
    if comparator == "<=":
        return Criterion(name, comparator, threshold, actual, actual <= threshold, threshold - actual, scope)
    return Criterion(name, comparator, threshold, actual, actual >= threshold, actual - threshold, scope)


def _latency_criteria(stats: EndpointStats, spec: EndpointSlaSpec, default_pct: float, prefix: str,
                      scope: str) -> list[Criterion]:
    out = []
    for pct, limit_ms in sorted(spec.latency_thresholds(default_pct).items()):
        actual = stats.latency_ms(pct / 100.0) if stats.requests else None
        out.append(_check(f"{prefix}{percentile_label(pct)}_ms", "<=", limit_ms, actual, scope))
    if spec.error_ratio is not None:
        actual = stats.error_ratio if stats.requests else None
        out.append(_check(f"{prefix}error_ratio", "<=", spec.error_ratio, actual, scope))
    return out


def _endpoint_matches(pattern: str, stats: EndpointStats) -> bool:
    return pattern == f"{stats.request_type} {stats.name}" or pattern == stats.name


def _endpoint_criteria(snapshot: Snapshot, spec: SlaSpec) -> list[Criterion]:
    out: list[Criterion] = []
    for pattern, ep_spec in spec.endpoints.items():
        matches = [e for e in snapshot.endpoints if _endpoint_matches(pattern, e)]
        if not matches:
            # an endpoint the scenario grades but the run never hit is a failed check, not a skip
            empty = EndpointStats("", pattern, "", 0, 0, LatencyHistogram(snapshot.total.hist.relative_accuracy))
            out.extend(_latency_criteria(empty, ep_spec, spec.percentile, f"{pattern} ", pattern))
            continue
        for stats in matches:
            label = f"{stats.request_type} {stats.name}"
            out.extend(_latency_criteria(stats, ep_spec, spec.percentile, f"{label} ", label))
    return out


def evaluate(snapshot: Snapshot, spec: SlaSpec, extra_criteria: Sequence[Criterion] = ()) -> Verdict:
    """Grade ``snapshot`` against every tier of ``spec``; the verdict is for ``spec.tier``.
    ``extra_criteria`` (a feature's, e.g. ``health_uptime``) join the selected tier's verdict."""
    basis = latency_basis(snapshot, spec)
    snapshot = on_basis(snapshot, basis)
    uptime = compute_uptime(snapshot.seconds, spec.down_error_ratio, spec.down_latency_threshold_ms, basis)
    endpoint_checks = _endpoint_criteria(snapshot, spec)
    results: list[TierResult] = []
    for name, tier in spec.all_tiers().items():
        checks: list[Criterion] = []
        if tier.uptime_ratio is not None:
            checks.append(_check("uptime", ">=", tier.uptime_ratio, uptime.ratio, "total"))
        checks.extend(_latency_criteria(snapshot.total, tier, spec.percentile, "", "total"))
        checks.extend(endpoint_checks)
        passed = snapshot.total.requests > 0 and all(c.passed for c in checks)
        results.append(TierResult(name, passed, tuple(checks)))

    highest: str | None = None
    for result in results:  # ordered least to most demanding; a tier counts only if all below it pass
        if not result.passed:
            break
        highest = result.tier
    names = [r.tier for r in results]
    next_index = 0 if highest is None else names.index(highest) + 1
    next_result = results[next_index] if next_index < len(results) else None
    selected = results[names.index(spec.tier)]
    extra = tuple(extra_criteria)
    return Verdict(
        tier=spec.tier,
        percentile=spec.percentile,
        passed=selected.passed and all(c.passed for c in extra),
        criteria=selected.criteria + extra,
        highest_tier_met=highest,
        next_tier=next_result.tier if next_result else None,
        blocked_by=tuple(c for c in next_result.criteria if not c.passed) if next_result else (),
        tiers=tuple(results),
        uptime=uptime,
        requests=snapshot.total.requests,
        failures=snapshot.total.failures,
        inconclusive=() if snapshot.total.requests else ("no requests were made",),
        latency_basis=basis,
    )


def _fmt(name: str, value: float) -> str:
    if name.endswith("_ms"):
        return f"{value:.1f} ms"
    return f"{value * 100:.3g} %"


def status_line(verdict: Verdict, label: str = "SLA") -> str:
    """One line for the console: tier, latency vs threshold, error ratio, uptime."""
    by_name = {c.name: c for c in verdict.criteria}
    lat = by_name.get(f"{percentile_label(verdict.percentile)}_ms")
    err = by_name.get("error_ratio")
    parts = [f"{label} {verdict.tier}: {'PASS' if verdict.passed else 'FAIL'}"]
    if lat is not None:
        basis = " corrected" if verdict.latency_basis == "corrected" else ""
        parts.append(f"{percentile_label(verdict.percentile)}{basis} "
                     + ("n/a" if lat.actual is None else f"{lat.actual:.1f}") + f"/{lat.threshold:g} ms")
    if err is not None:
        parts.append("errors " + ("n/a" if err.actual is None else f"{err.actual * 100:.2f}")
                     + f"/{err.threshold * 100:g} %")
    if verdict.uptime.ratio is not None:
        parts.append(f"uptime {verdict.uptime.ratio * 100:.2f} %")
    parts.append(f"best tier {verdict.highest_tier_met or 'none'}")
    parts.append(f"{verdict.requests} req")
    return " | ".join(parts)
