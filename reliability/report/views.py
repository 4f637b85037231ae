"""Rows of the report's tables as display strings, shared by the HTML and Markdown renderers.

Values are formatted, not escaped: each renderer escapes for its own format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reliability.report.data import (
    NA,
    Record,
    fmt_bool,
    fmt_criterion,
    fmt_margin,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
    mapping,
    num,
    text,
)
from reliability.report.facts import FaultFacts

STAT_COLUMNS = ("requests", "failures", "error ratio", "p50", "p95", "p99", "max", "mean", "req/s")


def stat_cells(row: Mapping[str, Any]) -> list[str]:
    return [fmt_num(row.get("requests")), fmt_num(row.get("failures")), fmt_pct(row.get("error_ratio"), 3),
            fmt_ms(row.get("p50_ms")), fmt_ms(row.get("p95_ms")), fmt_ms(row.get("p99_ms")),
            fmt_ms(row.get("max_ms")), fmt_ms(row.get("mean_ms")), fmt_num(row.get("rps"))]


def criterion_interval(c: Mapping[str, Any]) -> str:
    """``95 % CI 180 ms .. 215 ms`` (``-inf``/``+inf`` for an unbounded side), or n/a."""
    confidence = num(c.get("confidence"))
    if confidence is None:
        return NA
    name = text(c.get("name"))
    low, high = num(c.get("ci_low")), num(c.get("ci_high"))
    low_s = "-inf" if low is None else fmt_criterion(name, low)
    high_s = "+inf" if high is None else fmt_criterion(name, high)
    return f"{confidence * 100:g} % CI {low_s} .. {high_s}"


def criterion_status(c: Mapping[str, Any]) -> str:
    """pass / fail / inconclusive (records without an outcome: from ``passed``)."""
    outcome = c.get("outcome")
    if outcome in ("pass", "fail", "inconclusive"):
        return str(outcome)
    return "pass" if c.get("passed") is True else "fail"


def criterion_row(c: Mapping[str, Any]) -> dict[str, str]:
    name = text(c.get("name"))
    status = criterion_status(c)
    return {
        "name": name,
        "scope": text(c.get("scope"), "total"),
        "needs": f"{text(c.get('comparator'))} {fmt_criterion(name, c.get('threshold'))}",
        "actual": "no data" if num(c.get("actual")) is None else fmt_criterion(name, c.get("actual")),
        "margin": fmt_margin(name, c.get("margin")),
        "interval": criterion_interval(c),
        "samples": fmt_num(c.get("samples")),
        "status": status,
        "css": {"pass": "ok", "fail": "bad"}.get(status, "warn"),
    }


def fault_row(f: FaultFacts) -> dict[str, str]:
    recover = fmt_s(f.time_to_recover_s) if f.time_to_recover_s is not None else (
        "never" if f.recovered is False else NA)
    return {
        "name": f.name,
        "kind": f.kind or NA,
        "window": NA if f.injected_s is None
        else f"+{f.injected_s:.0f}s .. " + (f"+{f.reverted_s:.0f}s" if f.reverted_s is not None else "not reverted"),
        "detect": fmt_s(f.time_to_detect_s),
        "peak_p95": fmt_ms(f.peak_latency_ms),
        "peak_errors": fmt_pct(f.peak_error_ratio),
        "min_throughput": fmt_pct(f.min_throughput_ratio, 0),
        "recover": recover,
        "graceful": fmt_bool(f.graceful),
        "fail_fast": fmt_bool(f.fail_fast),
        "budget": fmt_pct(f.budget_consumed, 1),
        "burn_rate": NA if f.burn_rate is None else f"{f.burn_rate:.1f}x",
        "verified": fmt_bool(f.verified_healthy),
        "problems": "; ".join(f.problems),
    }


def capacity_view(record: Record) -> dict[str, Any] | None:
    """Rows per tier, the knee and why the search stopped, from ``{tiers: {...}, knee, ...}`` or
    ``{gold: {...}, ..., knee}``; a tier whose value is null was never held."""
    capacity = record.get("capacity")
    if not isinstance(capacity, Mapping) or not capacity:
        return None
    tiers = capacity.get("tiers") if isinstance(capacity.get("tiers"), Mapping) else {
        k: v for k, v in capacity.items() if isinstance(v, Mapping) and k != "knee"}
    rows = [{"tier": str(tier), "users": fmt_num(mapping(v).get("users")) if v else "not held",
             "rps": fmt_num(mapping(v).get("rps")) if v else NA}
            for tier, v in mapping(tiers).items() if v is None or isinstance(v, Mapping)]
    knee = capacity.get("knee")
    if isinstance(knee, Mapping):
        knee_text = ", ".join(f"{k} {fmt_num(v) if num(v) is not None else text(v)}" for k, v in knee.items())
    else:
        knee_text = fmt_num(knee) + " users" if num(knee) is not None else ""
    notes = []
    if capacity.get("tier"):
        notes.append(f"searched for tier {text(capacity.get('tier'))}")
    if num(capacity.get("broke_at_users")) is not None:
        notes.append(f"broke at {fmt_num(capacity.get('broke_at_users'))} users")
    if capacity.get("stopped_because"):
        notes.append(f"stopped: {text(capacity.get('stopped_because'))}")
    return {"rows": rows, "knee": knee_text, "notes": "; ".join(notes)}


def generator_row(g: Mapping[str, Any]) -> dict[str, str]:
    return {"id": text(g.get("id"), NA), "role": text(g.get("role"), NA),
            "cpu_max": NA if num(g.get("cpu_max_pct")) is None else f"{num(g.get('cpu_max_pct')):.1f} %",
            "cpu_mean": NA if num(g.get("cpu_mean_pct")) is None else f"{num(g.get('cpu_mean_pct')):.1f} %",
            "rss_max": NA if num(g.get("rss_max_mb")) is None else f"{num(g.get('rss_max_mb')):.1f} MB",
            "saturated": fmt_bool(g.get("saturated")), "css": "bad" if g.get("saturated") is True else ""}
