"""The self-contained HTML report: one file, inline CSS and SVG, no script, works offline.

Everything shown is turned into plain strings and numbers here, then rendered by
``templates/report.html.j2`` with jinja2 autoescaping on: endpoint names and error messages from
the target are text in the page, never markup. The page also carries a Content-Security-Policy
that allows no script at all, so even a missed escape could not run code.
"""

from __future__ import annotations

from typing import TypedDict

import jinja2

from reliability.report.charts import Chart, HealthRow, Tick, build_charts, health_rows, time_span_s, time_ticks
from reliability.report.data import (
    NA,
    Record,
    fmt_money,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
    verdict,
)
from reliability.report.facts import faults
from reliability.report.impact import BusinessImpact, CostBreakdown
from reliability.report.rules import Recommendation, recommend
from reliability.report.views import (
    STAT_COLUMNS,
    CapacityView,
    LoadView,
    capacity_view,
    criterion_row,
    fault_row,
    generator_row,
    load_view,
    peak_label,
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


class ImpactView(TypedDict):
    """Business impact as the report shows it: the whole run, then each fault's window."""

    rows: list[dict[str, str]]
    total: str
    threshold: str


class EndpointView(TypedDict):
    type: str
    name: str
    component: str
    cells: list[str]


class ComponentView(TypedDict):
    name: str
    cells: list[str]


class ErrorView(TypedDict):
    type: str
    name: str
    message: str
    count: int


class ReportContext(TypedDict):
    """Everything ``report.html.j2`` reads (formatted, not escaped: the template escapes)."""

    title: str
    verdict: str
    verdict_css: str
    tier: str
    percentile: str
    highest_tier: str
    next_tier: str
    blocked_by: list[dict[str, str]]
    inconclusive: list[str]
    resilience_score: str | None
    run: list[tuple[str, str]]
    summary: list[tuple[str, str]]
    criteria: list[dict[str, str]]
    tiers: list[dict[str, str]]
    charts: list[Chart]
    stat_columns: tuple[str, ...]
    endpoints: list[EndpointView]
    components: list[ComponentView]
    errors: list[ErrorView]
    health_rows: list[HealthRow]
    health_ticks: tuple[Tick, ...]
    root_causes: list[str]
    faults: list[dict[str, str]]
    peak_label: str
    capacity: CapacityView | None
    load: LoadView | None
    generators: list[dict[str, str]]
    workers_lost: list[dict[str, str]]
    workers_seen: list[str]
    partial_windows: str
    impact: ImpactView | None
    recommendations: list[Recommendation]


def impact_view(impact: BusinessImpact | None) -> ImpactView | None:
    if impact is None:
        return None

    def cells(label: str, window: str, c: CostBreakdown) -> dict[str, str]:
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


def build_context(record: Record, impact: BusinessImpact | None = None) -> ReportContext:
    run, sla, totals, uptime, workers = record.run, record.sla, record.totals, record.uptime, record.workers
    label, css = verdict(record)
    x_max = time_span_s(record)
    causes = record.health.root_causes if record.health is not None else []
    fault_list = faults(record)
    load = load_view(record)
    return {
        "title": run.scenario or "load test",
        "verdict": label,
        "verdict_css": css,
        "tier": sla.tier or NA,
        "percentile": sla.percentile or NA,
        "highest_tier": sla.highest_tier_met or "none",
        "next_tier": sla.next_tier or "",
        "blocked_by": [criterion_row(c) for c in sla.blocked_by],
        "inconclusive": list(sla.inconclusive),
        "resilience_score": fmt_num(record.resilience_score) if record.resilience_score is not None else None,
        "run": [("started", _started(run.started_at)), ("duration", fmt_s(run.duration_s)),
                ("mode", run.mode or NA), ("workers", fmt_num(run.workers)),
                ("locust", run.locust_version or NA),
                ("locust-reliability", run.reliability_version or NA)]
        + ([("aborted", run.aborted)] if run.aborted else []),
        "summary": [("requests", fmt_num(totals.requests)),
                    ("error ratio", fmt_pct(totals.error_ratio, 3)),
                    ("p95", fmt_ms(totals.p95_ms)), ("p99", fmt_ms(totals.p99_ms)),
                    ("req/s", fmt_num(totals.rps)), ("uptime", fmt_pct(uptime.ratio, 3)),
                    ("request availability", fmt_pct(uptime.request_availability, 3))]
        + ([("arrivals/s achieved", load["card"])] if load is not None else []),
        "criteria": [criterion_row(c) for c in sla.criteria],
        "tiers": [{"tier": t.tier, "status": "met" if t.passed is True else "not met",
                   "css": "ok" if t.passed is True else "bad"} for t in sla.tiers],
        "charts": build_charts(record),
        "stat_columns": STAT_COLUMNS,
        "endpoints": [{"type": e.type, "name": e.name, "component": e.component or "", "cells": stat_cells(e)}
                      for e in record.endpoints],
        "components": [{"name": c.component, "cells": stat_cells(c)} for c in record.components],
        "errors": sorted(({"type": e.type, "name": e.name, "message": e.message, "count": e.count}
                          for e in record.errors), key=lambda e: -e["count"]),
        "health_rows": health_rows(record),
        "health_ticks": time_ticks(x_max),
        "root_causes": [f"component: {c.component}, rounds: {c.rounds}, first_t: {c.first_t}" for c in causes],
        "faults": [fault_row(f) for f in fault_list],
        "peak_label": peak_label(fault_list, record),
        "capacity": capacity_view(record),
        "load": load,
        "generators": [generator_row(g) for g in record.generators],
        "workers_lost": [{"id": w.id, "detected_at": w.detected_at or NA} for w in workers.lost],
        "workers_seen": list(workers.seen),
        "partial_windows": fmt_num(uptime.partial_windows),
        "impact": impact_view(impact),
        "recommendations": recommend(record),
    }


def render_html(record: Record, impact: BusinessImpact | None = None,
                environment: jinja2.Environment | None = None) -> str:
    env = environment or default_environment()
    return env.get_template("report.html.j2").render(**build_context(record, impact))
