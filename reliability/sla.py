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

Evidence (:mod:`reliability.evidence`): every criterion carries a confidence interval
(``sla.confidence``, 95 % by default) and an outcome. It *passes* only when the whole interval is
on the passing side of the threshold, *fails* when the whole interval is on the failing side, and
is *inconclusive* when the interval straddles it. Precedence (the README's table):

1. no requests -> inconclusive (4);
2. a criterion failing on evidence -> NOT MET (3), whatever else went wrong (a lost worker, user
   code raising, a broken extension), except that latency failures are not trusted when a load
   generator was saturated (its own queueing is in the numbers): those are inconclusive;
3. otherwise any straddling criterion, any reason for doubt, or fewer than ``sla.min_requests``
   requests -> inconclusive (4);
4. otherwise MET (0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from reliability.config import EndpointSlaSpec, SlaSpec
from reliability.evidence import FAIL, INCONCLUSIVE, PASS, Interval, order_statistic_ranks, wilson
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
    edge_windows: int = 0  # seconds with traffic the run covered less than half of: not graded


@dataclass(frozen=True)
class Criterion:
    """One check: ``actual <comparator> threshold``. ``margin`` > 0 means headroom.

    ``ci_low``/``ci_high`` bound ``actual`` at ``confidence`` (None: unbounded on that side, or
    no interval); ``outcome`` is pass / fail / inconclusive on that evidence (None for a
    criterion without an interval: then ``passed`` alone decides). ``samples`` is what the
    interval rests on (requests, latency samples or windows)."""

    name: str  # e.g. "p95_ms", "error_ratio", "uptime", "GET /api/items p95_ms"
    comparator: str  # "<=" or ">="
    threshold: float
    actual: float | None
    passed: bool
    margin: float | None
    scope: str = "total"
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    outcome: str | None = None
    samples: int | None = None

    @property
    def state(self) -> str:
        """pass / fail / inconclusive."""
        if self.outcome is not None:
            return self.outcome
        return PASS if self.passed else FAIL

    @property
    def is_latency(self) -> bool:
        return self.name.endswith("_ms")

    def interval_text(self) -> str | None:
        """``95 % CI 180.0-215.0 ms`` (``>`` / ``<`` for an unbounded side), or None."""
        if self.confidence is None or (self.ci_low is None and self.ci_high is None):
            return None
        low = "-inf" if self.ci_low is None else _fmt(self.name, self.ci_low)
        high = "+inf" if self.ci_high is None else _fmt(self.name, self.ci_high)
        return f"{self.confidence * 100:g} % CI {low} .. {high}"

    def describe(self) -> str:
        actual = "no data" if self.actual is None else _fmt(self.name, self.actual)
        ci = self.interval_text()
        ci_part = f", {ci}" if ci else ""
        n_part = f", n={self.samples}" if self.samples is not None and self.actual is not None else ""
        return f"{self.name} {actual}{ci_part}{n_part} (needs {self.comparator} {_fmt(self.name, self.threshold)})"

    def evidence_note(self) -> str:
        """Why an inconclusive criterion decides nothing, e.g. ``not enough evidence: p95_ms
        95 % CI 180.0 ms .. 215.0 ms against 200.0 ms``."""
        ci = self.interval_text() or "no interval"
        return f"not enough evidence: {self.name} {ci} against {_fmt(self.name, self.threshold)}"


@dataclass(frozen=True)
class TierResult:
    tier: str
    passed: bool
    criteria: tuple[Criterion, ...]

    @property
    def breached(self) -> bool:
        """A criterion of this tier fails on evidence (not merely unproven)."""
        return any(c.state == FAIL for c in self.criteria)


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
    latency_untrusted: bool = False  # a load generator was saturated: its queueing is in the latencies

    def firm_failures(self) -> tuple[Criterion, ...]:
        """Criteria failing on evidence that nothing untrusted can explain."""
        return tuple(c for c in self.criteria
                     if c.state == FAIL and not (c.is_latency and self.latency_untrusted))

    @property
    def exit_code(self) -> int:
        """0 met, 3 not met, 4 inconclusive; see the module docstring for the precedence."""
        if not self.requests:
            return EXIT_INCONCLUSIVE
        if self.firm_failures():
            return EXIT_FAILED
        if self.inconclusive or not self.passed:
            return EXIT_INCONCLUSIVE
        return EXIT_PASSED

    def with_inconclusive(self, reasons: Iterable[str], latency_untrusted: bool = False) -> Verdict:
        extra = tuple(r for r in reasons if r not in self.inconclusive)
        if not extra and latency_untrusted <= self.latency_untrusted:
            return self
        return Verdict(**{**self.__dict__, "inconclusive": self.inconclusive + extra,
                          "latency_untrusted": self.latency_untrusted or latency_untrusted})

    def with_criteria(self, added: Iterable[Criterion]) -> Verdict:
        """The selected tier's verdict with more criteria (health uptime from an extension)."""
        extra = tuple(added)
        if not extra:
            return self
        notes = tuple(c.evidence_note() for c in extra if c.state == INCONCLUSIVE)
        return Verdict(**{**self.__dict__, "criteria": self.criteria + extra,
                          "passed": self.passed and all(c.state == PASS for c in extra),
                          "inconclusive": self.inconclusive + tuple(n for n in notes if n not in self.inconclusive)})


UP, ERRORS, STALLED, SLOW, EDGE = "up", "errors", "stalled", "slow", "edge"
# a window the run covered for less than this share of its second (the second it started or stopped
# in) is an edge: its requests count everywhere, but too little of the second was seen to grade it
EDGE_COVERAGE = 0.5


def second_state(second: SecondCounts, down_error_ratio: float, down_latency_ms: float | None = None,
                 basis: str = "measured") -> str | None:
    """What one 1 s window says about the service: None (idle: not counted), ``edge`` (the run
    covered less than half of it: not counted either), ``up``, or why it was down (``errors``,
    ``stalled``, ``slow``). Uptime, the live status, time-to-detect, recovery, alerts and the
    capacity search all read windows through this one rule."""
    corrected = basis == "corrected"
    if second.requests <= 0 and second.held <= 0 and not (corrected and second.backfilled > 0):
        return None  # nothing sent, nothing stuck: idle (completions of earlier requests alone do not count)
    if second.covered < EDGE_COVERAGE:
        return EDGE
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
    windows = up = good = total = partial = stalled = slow = edge = 0
    for s in seconds:
        state = second_state(s, down_error_ratio, down_latency_ms, basis)
        total += s.requests  # request availability: every request, edges included
        good += s.requests - s.failures
        if state == EDGE:
            edge += 1
            continue
        if state is None:
            continue
        windows += 1
        partial += s.partial
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
        edge_windows=edge,
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


def _judge(name: str, comparator: str, threshold: float, actual: float | None, scope: str,
           interval: Interval | None, samples: int | None) -> Criterion:
    if actual is None or math.isnan(actual):
        return Criterion(name, comparator, threshold, None, False, None, scope,
                         confidence=interval.confidence if interval else None, outcome=INCONCLUSIVE
                         if interval else None, samples=samples)
    margin = threshold - actual if comparator == "<=" else actual - threshold
    if interval is None:  # no sampling uncertainty: the observed value decides
        passed = actual <= threshold if comparator == "<=" else actual >= threshold
        return Criterion(name, comparator, threshold, actual, passed, margin, scope, samples=samples)
    outcome = interval.outcome(comparator, threshold)
    return Criterion(name, comparator, threshold, actual, outcome == PASS, margin, scope,
                     interval.low, interval.high, interval.confidence, outcome, samples)


def _check(name: str, comparator: str, threshold: float, actual: float | None, scope: str) -> Criterion:
    """A criterion judged on its observed value alone (no interval)."""
    return _judge(name, comparator, threshold, actual, scope, None, None)


def percentile_interval(hist: LatencyHistogram, q: float, confidence: float) -> Interval:
    """Distribution-free interval of the ``q`` quantile from the histogram's order statistics."""
    low_rank, high_rank = order_statistic_ranks(hist.count, q, confidence)
    low = hist.at_rank(low_rank - 1) if low_rank is not None else None
    high = hist.at_rank(high_rank - 1) if high_rank is not None else None
    return Interval(low, high, confidence)


def ratio_interval(hits: int, n: int, confidence: float) -> Interval:
    """Wilson interval of ``hits / n`` (unbounded both sides without data)."""
    bounds = wilson(hits, n, confidence)
    return Interval(None, None, confidence) if bounds is None else Interval(bounds[0], bounds[1], confidence)


def uptime_interval(uptime: UptimeResult, confidence: float) -> Interval:
    """What the run could not see: windows with partial data (a lost worker's last seconds) may
    have been up or down, so they count as down for the low bound and up for the high bound."""
    if not uptime.windows:
        return Interval(None, None, confidence)
    partial = min(uptime.partial_windows, uptime.windows)
    low = max(0, uptime.up_windows - partial) / uptime.windows
    high = min(uptime.windows, uptime.up_windows + partial) / uptime.windows
    return Interval(low, high, confidence)


def _latency_criteria(stats: EndpointStats, spec: EndpointSlaSpec, default_pct: float, prefix: str,
                      scope: str, confidence: float) -> list[Criterion]:
    out = []
    for pct, limit_ms in sorted(spec.latency_thresholds(default_pct).items()):
        q = pct / 100.0
        actual = stats.latency_ms(q) if stats.requests else None
        interval = percentile_interval(stats.hist, q, confidence)
        out.append(_judge(f"{prefix}{percentile_label(pct)}_ms", "<=", limit_ms, actual, scope, interval,
                          stats.hist.count))
    if spec.error_ratio is not None:
        actual = stats.error_ratio if stats.requests else None
        interval = ratio_interval(stats.failures, stats.requests, confidence)
        out.append(_judge(f"{prefix}error_ratio", "<=", spec.error_ratio, actual, scope, interval,
                          stats.requests))
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
            out.extend(_check(c.name, c.comparator, c.threshold, None, pattern)
                       for c in _latency_criteria(empty, ep_spec, spec.percentile, f"{pattern} ", pattern,
                                                  spec.confidence))
            continue
        for stats in matches:
            label = f"{stats.request_type} {stats.name}"
            out.extend(_latency_criteria(stats, ep_spec, spec.percentile, f"{label} ", label, spec.confidence))
    return out


def evaluate(snapshot: Snapshot, spec: SlaSpec) -> Verdict:
    """Grade ``snapshot`` against every tier of ``spec``; the verdict is for ``spec.tier``."""
    basis = latency_basis(snapshot, spec)
    snapshot = on_basis(snapshot, basis)
    uptime = compute_uptime(snapshot.seconds, spec.down_error_ratio, spec.down_latency_threshold_ms, basis)
    endpoint_checks = _endpoint_criteria(snapshot, spec)
    enough = snapshot.total.requests > 0 and snapshot.total.requests >= spec.min_requests
    up_interval = uptime_interval(uptime, spec.confidence)
    results: list[TierResult] = []
    for name, tier in spec.all_tiers().items():
        checks: list[Criterion] = []
        if tier.uptime_ratio is not None:
            checks.append(_judge("uptime", ">=", tier.uptime_ratio, uptime.ratio, "total", up_interval,
                                 uptime.windows))
        checks.extend(_latency_criteria(snapshot.total, tier, spec.percentile, "", "total", spec.confidence))
        checks.extend(endpoint_checks)
        passed = enough and all(c.state == PASS for c in checks)
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
    return Verdict(
        tier=spec.tier,
        percentile=spec.percentile,
        passed=selected.passed,
        criteria=selected.criteria,
        highest_tier_met=highest,
        next_tier=next_result.tier if next_result else None,
        blocked_by=tuple(c for c in next_result.criteria if not c.passed) if next_result else (),
        tiers=tuple(results),
        uptime=uptime,
        requests=snapshot.total.requests,
        failures=snapshot.total.failures,
        inconclusive=_doubts(snapshot.total.requests, spec, selected.criteria),
        latency_basis=basis,
    )


def _doubts(requests: int, spec: SlaSpec, criteria: Iterable[Criterion]) -> tuple[str, ...]:
    if not requests:
        return ("no requests were made",)
    out = [c.evidence_note() for c in criteria if c.state == INCONCLUSIVE and c.actual is not None]
    if requests < spec.min_requests:
        out.append(f"only {requests} requests, fewer than sla.min_requests ({spec.min_requests})")
    return tuple(out)


def _fmt(name: str, value: float) -> str:
    if name.endswith("_ms"):
        return f"{value:.1f} ms"
    return f"{value * 100:.3g} %"


def status_line(verdict: Verdict, label: str = "SLA") -> str:
    """One line for the console: tier, latency vs threshold, error ratio, uptime."""
    by_name = {c.name: c for c in verdict.criteria}
    lat = by_name.get(f"{percentile_label(verdict.percentile)}_ms")
    err = by_name.get("error_ratio")
    word = {EXIT_PASSED: "PASS", EXIT_FAILED: "FAIL"}.get(verdict.exit_code, "INCONCLUSIVE")
    parts = [f"{label} {verdict.tier}: {word}"]
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
