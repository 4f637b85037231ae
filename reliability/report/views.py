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
    rel_s,
    text,
)

STAT_COLUMNS = ("requests", "failures", "error ratio", "p50", "p95", "p99", "max", "mean", "req/s")


def stat_cells(row: Mapping[str, Any]) -> list[str]:
    return [fmt_num(row.get("requests")), fmt_num(row.get("failures")), fmt_pct(row.get("error_ratio"), 3),
            fmt_ms(row.get("p50_ms")), fmt_ms(row.get("p95_ms")), fmt_ms(row.get("p99_ms")),
            fmt_ms(row.get("max_ms")), fmt_ms(row.get("mean_ms")), fmt_num(row.get("rps"))]


def criterion_row(c: Mapping[str, Any]) -> dict[str, str]:
    name = text(c.get("name"))
    passed = c.get("passed")
    return {
        "name": name,
        "scope": text(c.get("scope"), "total"),
        "needs": f"{text(c.get('comparator'))} {fmt_criterion(name, c.get('threshold'))}",
        "actual": "no data" if num(c.get("actual")) is None else fmt_criterion(name, c.get("actual")),
        "margin": fmt_margin(name, c.get("margin")),
        "status": "pass" if passed is True else "fail",
        "css": "ok" if passed is True else "bad",
    }


def fault_row(fault: Mapping[str, Any], started: float | None) -> dict[str, str]:
    degradation = mapping(fault.get("degradation"))
    injected = rel_s(fault.get("injected_at"), started)
    reverted = rel_s(fault.get("reverted_at"), started)
    return {
        "name": text(fault.get("name"), "fault"),
        "kind": text(fault.get("kind"), NA),
        "window": NA if injected is None
        else f"+{injected:.0f}s .. " + (f"+{reverted:.0f}s" if reverted is not None else "not reverted"),
        "detect": fmt_s(fault.get("time_to_detect_s")),
        "peak_p95": fmt_ms(degradation.get("peak_p95_ms")),
        "peak_errors": fmt_pct(degradation.get("peak_error_ratio")),
        "min_throughput": fmt_pct(degradation.get("min_throughput_ratio"), 0),
        "recover": fmt_s(fault.get("time_to_recover_s")) if fault.get("time_to_recover_s") is not None
        else ("never" if reverted is not None else NA),
        "graceful": fmt_bool(fault.get("graceful")),
        "fail_fast": fmt_bool(fault.get("fail_fast")),
        "budget": fmt_pct(fault.get("budget_consumed"), 1),
        "burn_rate": NA if num(fault.get("burn_rate")) is None else f"{num(fault.get('burn_rate')):.1f}x",
        "verified": fmt_bool(fault.get("verified_healthy")),
    }


def capacity_view(record: Record) -> dict[str, Any] | None:
    """Rows per tier and the knee, from ``{tiers: {...}, knee}`` or ``{gold: {...}, ..., knee}``."""
    capacity = record.get("capacity")
    if not isinstance(capacity, Mapping) or not capacity:
        return None
    tiers = mapping(capacity.get("tiers")) or {k: v for k, v in capacity.items() if k != "knee"}
    rows = [{"tier": str(tier), "users": fmt_num(mapping(v).get("users")), "rps": fmt_num(mapping(v).get("rps"))}
            for tier, v in tiers.items() if isinstance(v, Mapping)]
    knee = capacity.get("knee")
    if isinstance(knee, Mapping):
        knee_text = ", ".join(f"{k} {fmt_num(v) if num(v) is not None else text(v)}" for k, v in knee.items())
    else:
        knee_text = fmt_num(knee) + " users" if num(knee) is not None else ""
    return {"rows": rows, "knee": knee_text}


def generator_row(g: Mapping[str, Any]) -> dict[str, str]:
    return {"id": text(g.get("id"), NA), "role": text(g.get("role"), NA),
            "cpu_max": NA if num(g.get("cpu_max_pct")) is None else f"{num(g.get('cpu_max_pct')):.1f} %",
            "cpu_mean": NA if num(g.get("cpu_mean_pct")) is None else f"{num(g.get('cpu_mean_pct')):.1f} %",
            "rss_max": NA if num(g.get("rss_max_mb")) is None else f"{num(g.get('rss_max_mb')):.1f} MB",
            "saturated": fmt_bool(g.get("saturated")), "css": "bad" if g.get("saturated") is True else ""}
