"""The self-contained HTML report: one file, inline CSS and SVG, no script, works offline.

Everything shown is turned into plain strings and numbers here, then rendered by
``templates/report.html.j2`` with jinja2 autoescaping on: endpoint names and error messages from
the target are text in the page, never markup. The page also carries a Content-Security-Policy
that allows no script at all, so even a missed escape could not run code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from reliability.report.charts import build_charts, health_rows, time_span_s, time_ticks
from reliability.report.data import (
    NA,
    Record,
    dicts,
    fmt_money,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
    mapping,
    num,
    text,
    verdict,
)
from reliability.report.facts import faults
from reliability.report.impact import BusinessImpact
from reliability.report.rules import recommend
from reliability.report.views import (
    STAT_COLUMNS,
    capacity_view,
    criterion_row,
    fault_row,
    generator_row,
    stat_cells,
)


def default_environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    """The templates' environment: autoescape on for every template, undefined names are errors."""
    return jinja2.Environment(
        loader=loader or jinja2.PackageLoader("reliability.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def impact_view(impact: BusinessImpact | None) -> dict[str, Any] | None:
    if impact is None:
        return None

    def cells(label: str, window: str, c: Any) -> dict[str, str]:
        money = impact.currency
        return {"label": label, "window": window, "down": f"{c.down_s} s ({fmt_money(c.downtime_cost, money)})",
                "failed": f"{c.failed_requests:,} ({fmt_money(c.failure_cost, money)})",
                "slow": f"{c.slow_s} s ({fmt_money(c.slow_cost, money)})", "total": fmt_money(c.total, money)}

    rows = [cells("whole run", "", impact.run)]
    rows += [cells(f"fault: {f.name}", f"+{f.start_s:.0f}s .. +{f.end_s:.0f}s", f.cost) for f in impact.faults]
    return {"rows": rows, "total": fmt_money(impact.run.total, impact.currency),
            "threshold": fmt_ms(impact.latency_threshold_ms)}


def _started(value: object) -> str:
    """"2026-11-27 11:46:40 UTC" from the record's ISO time: readable and short enough for a card."""
    if not isinstance(value, str):
        return NA
    return value.replace("T", " ").split(".")[0].removesuffix("Z") + " UTC" if "T" in value else value


def build_context(record: Record, impact: BusinessImpact | None = None) -> dict[str, Any]:
    run = mapping(record.get("run"))
    sla = mapping(record.get("sla"))
    totals = mapping(record.get("totals"))
    uptime = mapping(record.get("uptime"))
    workers = mapping(record.get("workers"))
    health = mapping(record.get("health"))
    label, css = verdict(record)
    x_max = time_span_s(record)
    inconclusive = sla.get("inconclusive")
    causes = health.get("root_causes")
    return {
        "title": text(run.get("scenario")) or "load test",
        "verdict": label,
        "verdict_css": css,
        "tier": text(sla.get("tier"), NA),
        "percentile": text(sla.get("percentile"), NA),
        "highest_tier": text(sla.get("highest_tier_met"), "none"),
        "next_tier": text(sla.get("next_tier"), ""),
        "blocked_by": [criterion_row(c) for c in dicts(sla.get("blocked_by"))],
        "inconclusive": [text(r) for r in inconclusive] if isinstance(inconclusive, list) else [],
        "resilience_score": fmt_num(record.get("resilience_score")) if num(record.get("resilience_score"))
        is not None else None,
        "run": [("started", _started(run.get("started_at"))), ("duration", fmt_s(run.get("duration_s"))),
                ("mode", text(run.get("mode"), NA)), ("workers", fmt_num(run.get("workers"))),
                ("locust", text(run.get("locust_version"), NA)),
                ("locust-reliability", text(run.get("reliability_version"), NA))]
        + ([("aborted", text(run.get("aborted")))] if run.get("aborted") else []),
        "summary": [("requests", fmt_num(totals.get("requests"))),
                    ("error ratio", fmt_pct(totals.get("error_ratio"), 3)),
                    ("p95", fmt_ms(totals.get("p95_ms"))), ("p99", fmt_ms(totals.get("p99_ms"))),
                    ("req/s", fmt_num(totals.get("rps"))), ("uptime", fmt_pct(uptime.get("ratio"), 3)),
                    ("request availability", fmt_pct(uptime.get("request_availability"), 3))],
        "criteria": [criterion_row(c) for c in dicts(sla.get("criteria"))],
        "tiers": [{"tier": text(t.get("tier")), "status": "met" if t.get("passed") is True else "not met",
                   "css": "ok" if t.get("passed") is True else "bad"} for t in dicts(sla.get("tiers"))],
        "charts": build_charts(record),
        "stat_columns": STAT_COLUMNS,
        "endpoints": [{"type": text(e.get("type")), "name": text(e.get("name")), "component": text(e.get("component")),
                       "cells": stat_cells(e)} for e in dicts(record.get("endpoints"))],
        "components": [{"name": text(c.get("component")), "cells": stat_cells(c)}
                       for c in dicts(record.get("components"))],
        "errors": sorted(({"type": text(e.get("type")), "name": text(e.get("name")), "message": text(e.get("message")),
                           "count": int(num(e.get("count")) or 0)} for e in dicts(record.get("errors"))),
                         key=lambda e: -e["count"]),
        "health_rows": health_rows(record),
        "health_ticks": time_ticks(x_max),
        "root_causes": [", ".join(f"{k}: {v}" for k, v in c.items()) if isinstance(c, Mapping) else text(c)
                        for c in causes] if isinstance(causes, list) else [],
        "faults": [fault_row(f) for f in faults(record)],
        "capacity": capacity_view(record),
        "generators": [generator_row(g) for g in dicts(record.get("generators"))],
        "workers_lost": [{"id": text(w.get("id")), "detected_at": text(w.get("detected_at"), NA)}
                         for w in dicts(workers.get("lost"))],
        "workers_seen": [text(w) for w in workers.get("seen") or []] if isinstance(workers.get("seen"), list) else [],
        "partial_windows": fmt_num(uptime.get("partial_windows")),
        "impact": impact_view(impact),
        "recommendations": recommend(record),
    }


def render_html(record: Record, impact: BusinessImpact | None = None,
                environment: jinja2.Environment | None = None) -> str:
    env = environment or default_environment()
    return env.get_template("report.html.j2").render(**build_context(record, impact))
