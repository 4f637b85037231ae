"""Run-to-run comparison: per-criterion, total, per-endpoint and per-fault deltas with thresholds.

A change is a regression when it is worse than its threshold: latencies by more than
``latency_increase_pct`` percent *and* ``latency_increase_ms`` (both, so 1.0 -> 1.3 ms noise does
not fail a build), error ratio and uptime by an absolute amount, throughput by a percentage,
recovery and detection times by a percentage and seconds. A criterion that passed and now fails is always a
regression, as is a verdict that was met and is not any more. Endpoints with fewer than
``min_endpoint_requests`` requests in either run are shown but never flagged: their percentiles
are too noisy to gate on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from reliability.report.data import Record, RecordLike, as_record, fmt_criterion, is_ratio_name, num, verdict

EXIT_NO_REGRESSION = 0
EXIT_REGRESSION = 1


@dataclass(frozen=True)
class RegressionThresholds:
    """How much worse a metric may get before ``compare`` calls it a regression.

    Example::

        RegressionThresholds(latency_increase_pct=5, error_ratio_increase=0.001)
    """

    latency_increase_pct: float = 10.0
    latency_increase_ms: float = 5.0
    error_ratio_increase: float = 0.005  # absolute, 0-1: half a percentage point
    uptime_decrease: float = 0.001  # absolute, 0-1
    throughput_decrease_pct: float = 10.0
    recovery_increase_pct: float = 25.0
    recovery_increase_s: float = 2.0
    resilience_score_decrease: float = 5.0
    min_endpoint_requests: int = 50


@dataclass(frozen=True)
class Delta:
    """One metric in both runs. ``reason`` says why it is a regression ("" when it is not).

    Example::

        Delta("endpoint", "GET /api/items", "p95_ms", 120.0, 190.0, "+70.0 ms (> 10 % and > 5 ms)")
        # .regression is True, .change == 70.0, .change_pct == 58.3...
    """

    section: str  # verdict | criterion | total | endpoint | fault | resilience
    subject: str
    metric: str
    base: float | None
    new: float | None
    reason: str = ""

    @property
    def regression(self) -> bool:
        return bool(self.reason)

    @property
    def change(self) -> float | None:
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def change_pct(self) -> float | None:
        if self.base is None or self.new is None or self.base == 0:
            return None
        return (self.new - self.base) / abs(self.base) * 100.0


@dataclass(frozen=True)
class ComparisonResult:
    """Every delta between two records, the regressions among them, and notes on unmatched items.

    Example::

        result = compare(read_record("base.json"), read_record("new.json"), RegressionThresholds())
        result.exit_code, [d.reason for d in result.regressions]
    """

    deltas: tuple[Delta, ...]
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[Delta, ...]:
        return tuple(d for d in self.deltas if d.regression)

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.regressions else EXIT_NO_REGRESSION


def _worse(metric: str, base: float | None, new: float | None, t: RegressionThresholds) -> str:
    """Why ``new`` is a regression against ``base`` for this metric, or ""."""
    if base is None:
        return ""
    if new is None:
        return "measured before, no data now"
    if metric.endswith("_ms"):
        grew = new - base
        if grew > t.latency_increase_ms and grew > base * t.latency_increase_pct / 100.0:
            return f"+{grew:.1f} ms (> {t.latency_increase_pct:g} % and > {t.latency_increase_ms:g} ms)"
    elif metric.endswith("error_ratio"):
        if new - base > t.error_ratio_increase:
            return f"+{(new - base) * 100:.3f} points (> {t.error_ratio_increase * 100:g})"
    elif metric in ("uptime", "uptime_ratio", "request_availability"):
        if base - new > t.uptime_decrease:
            return f"-{(base - new) * 100:.3f} points (> {t.uptime_decrease * 100:g})"
    elif metric == "rps":
        if base > 0 and (base - new) / base * 100.0 > t.throughput_decrease_pct:
            return f"-{(base - new) / base * 100:.1f} % (> {t.throughput_decrease_pct:g} %)"
    elif metric in ("time_to_recover_s", "time_to_detect_s"):
        grew = new - base
        if grew > t.recovery_increase_s and grew > base * t.recovery_increase_pct / 100.0:
            return f"+{grew:.1f} s (> {t.recovery_increase_pct:g} % and > {t.recovery_increase_s:g} s)"
    elif metric == "resilience_score" and base - new > t.resilience_score_decrease:
        return f"-{base - new:.1f} (> {t.resilience_score_decrease:g})"
    return ""


def _metric(section: BaseModel, name: str) -> float | None:
    """A declared numeric field of a record section (``p95_ms`` of an endpoint, ...)."""
    assert name in type(section).model_fields, name
    return num(getattr(section, name))


def _criteria(base: Record, new: Record, t: RegressionThresholds, notes: list[str]) -> list[Delta]:
    old = {(c.name, c.scope): c for c in base.sla.criteria}
    now = {(c.name, c.scope): c for c in new.sla.criteria}
    out = []
    for key, c in now.items():
        name, scope = key
        subject = name if scope in ("total", "") else f"{name} [{scope}]"
        b = old.get(key)
        if b is None:
            notes.append(f"criterion {subject} is new")
            continue
        reason = _worse(name, b.actual, c.actual, t)
        if b.passed is True and c.passed is not True:
            reason = "passed before, fails now" + (f"; {reason}" if reason else "")
        out.append(Delta("criterion", subject, name, b.actual, c.actual, reason))
    notes.extend(f"criterion {k[0]} is no longer graded" for k in old if k not in now)
    return out


def _stats(section: str, subject: str, b: BaseModel, n: BaseModel, t: RegressionThresholds,
           metrics: Iterable[str], gate: bool = True) -> list[Delta]:
    return [Delta(section, subject, m, _metric(b, m), _metric(n, m),
                  _worse(m, _metric(b, m), _metric(n, m), t) if gate else "") for m in metrics]


def _endpoints(base: Record, new: Record, t: RegressionThresholds, notes: list[str]) -> list[Delta]:
    old = {(e.type, e.name): e for e in base.endpoints}
    now = {(e.type, e.name): e for e in new.endpoints}
    out = []
    for key, n in now.items():
        subject = " ".join(key).strip()
        b = old.get(key)
        if b is None:
            notes.append(f"endpoint {subject} is new")
            continue
        enough = min(b.requests, n.requests) >= t.min_endpoint_requests
        out += _stats("endpoint", subject, b, n, t, ("p95_ms", "p99_ms", "error_ratio", "rps"), gate=enough)
    notes.extend(f"endpoint {' '.join(k).strip()} is missing from the new run" for k in old if k not in now)
    return out


def _faults(base: Record, new: Record, t: RegressionThresholds, notes: list[str]) -> list[Delta]:
    old = {f.name: f for f in base.faults or []}
    out = []
    for name, n in {f.name: f for f in new.faults or []}.items():
        b = old.get(name)
        if b is None:
            notes.append(f"fault {name} is new")
            continue
        out += _stats("fault", name, b, n, t, ("time_to_recover_s", "time_to_detect_s"))
        for flag, before, now in (("graceful", b.graceful, n.graceful), ("fail_fast", b.fail_fast, n.fail_fast)):
            if before is True and now is False:
                out.append(Delta("fault", name, flag, 1.0, 0.0, f"{flag} before, not now"))
    return out


def compare(base_record: RecordLike, new_record: RecordLike,
            thresholds: RegressionThresholds | None = None) -> ComparisonResult:
    """Deltas from ``base`` to ``new``; regressions are the deltas worse than ``thresholds``."""
    base, new = as_record(base_record), as_record(new_record)
    t = thresholds or RegressionThresholds()
    notes: list[str] = []
    base_label, _ = verdict(base)
    new_label, _ = verdict(new)
    deltas = [Delta("verdict", f"SLA {new.sla.tier or 'n/a'}", "met",
                    1.0 if base_label == "MET" else 0.0, 1.0 if new_label == "MET" else 0.0,
                    f"{base_label} before, {new_label} now" if base_label == "MET" and new_label != "MET" else "")]
    deltas += _criteria(base, new, t, notes)
    totals = _stats("total", "all requests", base.totals, new.totals, t, ("p95_ms", "p99_ms", "error_ratio", "rps"))
    uptime = _stats("total", "all requests", base.uptime, new.uptime, t, ("request_availability",))
    deltas += totals + uptime + _endpoints(base, new, t, notes) + _faults(base, new, t, notes)
    if base.resilience_score is not None:
        score = "resilience_score"
        deltas.append(Delta("resilience", "run", score, base.resilience_score, new.resilience_score,
                            _worse(score, base.resilience_score, new.resilience_score, t)))
    return ComparisonResult(tuple(deltas), tuple(notes))


def _value(metric: str, value: float | None) -> str:
    if metric in ("met", "graceful", "fail_fast"):
        return "n/a" if value is None else ("yes" if value else "no")
    if metric.endswith("_s") or metric == "rps" or metric == "resilience_score":
        return "n/a" if value is None else f"{value:,.1f}"
    return fmt_criterion(metric, value)


def _change(d: Delta) -> str:
    if d.change is None or d.metric in ("met", "graceful", "fail_fast"):
        return ""
    if is_ratio_name(d.metric):
        return f"{d.change * 100:+.3f} points"
    unit = " ms" if d.metric.endswith("_ms") else (" s" if d.metric.endswith("_s") else "")
    pct = d.change_pct
    return f"{d.change:+,.1f}{unit}" + ("" if pct is None else f" ({pct:+.1f} %)")


def comparison_rows(result: ComparisonResult, only_changes: bool = False) -> list[list[str]]:
    """Display rows: section, subject, metric, base, new, change, status."""
    rows = []
    for d in result.deltas:
        if only_changes and not d.regression and not d.change:
            continue
        change = _change(d)
        rows.append([d.section, d.subject, d.metric, _value(d.metric, d.base), _value(d.metric, d.new), change,
                     f"REGRESSION: {d.reason}" if d.regression else "ok"])
    return rows
