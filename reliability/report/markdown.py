"""A Markdown summary sized for a CI job summary (GitHub ``$GITHUB_STEP_SUMMARY``, GitLab notes).

Every value that came from the record goes through :func:`md_escape`: a pipe would split a table
cell, a backtick or bracket would open code or a link, ``<`` would start raw HTML (which job
summaries render), and a newline would end the table row.
"""

from __future__ import annotations

import re

from reliability.report.data import (
    Record,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
    verdict,
)
from reliability.report.facts import faults
from reliability.report.impact import BusinessImpact
from reliability.report.rules import recommend
from reliability.report.views import capacity_view, criterion_row, fault_row, load_view, peak_label

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
_ICONS = {"MET": "✅", "NOT MET": "❌", "INCONCLUSIVE": "⚠️", "UNKNOWN": "⚠️"}
TOP_ENDPOINTS = 10
TOP_ERRORS = 5


def md_escape(value: object) -> str:
    """Text safe inside a Markdown paragraph or table cell: one line, no markup, no raw HTML."""
    out = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _MD_SPECIAL.sub(r"\\\1", out)
    return re.sub(r"[\r\n\t\v\f\u2028\u2029]+", " ", out)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def render_markdown(record: Record, impact: BusinessImpact | None = None) -> str:
    sla, run, totals = record.sla, record.run, record.totals
    label, _ = verdict(record)
    e = md_escape
    out = [f"## {_ICONS[label]} SLA {e(sla.tier or 'n/a')} ({e(sla.percentile or 'p95')}): {label}", ""]
    facts = [f"highest tier met: **{e(sla.highest_tier_met or 'none')}**",
             f"{fmt_num(totals.requests)} requests", f"p95 {fmt_ms(totals.p95_ms)}",
             f"errors {fmt_pct(totals.error_ratio, 3)}",
             f"uptime {fmt_pct(record.uptime.ratio, 3)}",
             f"{fmt_s(run.duration_s)} {e(run.mode or '')}".strip()]
    if run.scenario:
        facts.insert(0, f"scenario {e(run.scenario)}")
    load = load_view(record)
    if load is not None:
        facts.append(f"arrivals/s {e(load['card'])}")
    if record.resilience_score is not None:
        facts.append(f"resilience score **{fmt_num(record.resilience_score)}**")
    if impact is not None:
        facts.append(f"estimated cost **{impact.run.total:,.2f} {e(impact.currency)}**")
    out += [" · ".join(facts), ""]
    if sla.inconclusive:
        out += ["> **Inconclusive:** " + "; ".join(e(r) for r in sla.inconclusive), ""]
    if sla.blocked_by and sla.next_tier:
        rows = [criterion_row(c) for c in sla.blocked_by]
        out += [f"{e(sla.next_tier)} blocked by: "
                + "; ".join(f"{e(r['name'])} {e(r['actual'])} (needs {e(r['needs'])})" for r in rows), ""]

    criteria = [criterion_row(c) for c in sla.criteria]
    if criteria:
        out += ["### SLA criteria", ""]
        marks = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive"}
        out += _table(["criterion", "scope", "needs", "actual", "interval", "n", "margin", "result"],
                      [[e(r["name"]), e(r["scope"]), e(r["needs"]), e(r["actual"]), e(r["interval"]),
                        e(r["samples"]), e(r["margin"]), marks[r["status"]]] for r in criteria])

    fault_list = faults(record)
    if fault_list:
        costs = {f.name: f.cost.total for f in impact.faults} if impact else {}
        fault_rows = []
        for fault in fault_list:
            r = fault_row(fault)
            cost = costs.get(r["name"])
            fault_rows.append([e(r["name"]), e(r["kind"]), e(r["detect"]), e(r["peak_latency"]), e(r["peak_errors"]),
                         e(r["recover"]), e(r["graceful"]), e(r["fail_fast"]),
                         "n/a" if cost is None else f"{cost:,.2f}"])
        out += ["### Faults", ""]
        peak = f"peak {e(peak_label(fault_list, record))}"
        out += _table(["fault", "kind", "time to detect", peak, "peak errors", "time to recover", "graceful",
                       "fail-fast", f"cost ({e(impact.currency)})" if impact else "cost"], fault_rows)

    if impact is not None:
        c = impact.run
        out += ["### Business impact", "",
                f"Down {c.down_s} s: {c.downtime_cost:,.2f} · failed requests {c.failed_requests:,}: "
                f"{c.failure_cost:,.2f} · slow {c.slow_s} s (p95 over {fmt_ms(impact.latency_threshold_ms)}): "
                f"{c.slow_cost:,.2f} · **total {c.total:,.2f} {e(impact.currency)}**", ""]

    capacity = capacity_view(record)
    if capacity is not None:
        out += ["### Capacity", ""]
        if capacity["rows"]:
            out += _table(["tier", "max users", "req/s"],
                          [[e(r["tier"]), e(r["users"]), e(r["rps"])] for r in capacity["rows"]])
        notes = f" ({e(capacity['notes'])})" if capacity["notes"] else ""
        out += [f"Knee: {e(capacity['knee']) or 'not found'}{notes}", ""]

    if load is not None:
        out += ["### Load (open model)", ""]
        if load["headline"]:
            dropped = f", {load['dropped']:,} dropped" if load["dropped"] else ""
            out += [f"**{e(load['headline'])}**{dropped}", ""]
        out += _table(["load", "value"], [[e(k), e(v)] for k, v in load["facts"]])
        if load["stages"]:
            head = ["stage", "from schedule start", "rate per s", "asked", "started", "dropped", "achieved per s"]
            out += _table(head,
                          [[e(r["name"]), e(r["window"]), e(r["rate"]), e(r["asked"]), e(r["started"]),
                            e(r["dropped"]), e(r["achieved"])] for r in load["stages"]])

    recommendations = recommend(record)
    if recommendations:
        out += ["### Recommendations", ""]
        out += [f"- **{e(r.finding)}** (rule `{r.rule}`, {r.severity}): {e(r.evidence)}. {e(r.action)}."
                for r in recommendations]
        out.append("")

    endpoints = sorted(record.endpoints, key=lambda x: -(x.p95_ms or 0.0))
    if endpoints:
        out += [f"### Slowest endpoints (top {min(TOP_ENDPOINTS, len(endpoints))} by p95)", ""]
        out += _table(["endpoint", "requests", "error ratio", "p95", "p99"],
                      [[e(f"{x.type} {x.name}".strip()), fmt_num(x.requests), fmt_pct(x.error_ratio, 3),
                        fmt_ms(x.p95_ms), fmt_ms(x.p99_ms)] for x in endpoints[:TOP_ENDPOINTS]])

    errors = sorted(record.errors, key=lambda x: -x.count)
    if errors:
        out += [f"### Top errors (top {min(TOP_ERRORS, len(errors))})", ""]
        out += _table(["endpoint", "message", "count"],
                      [[e(f"{x.type} {x.name}".strip()), e(x.message), fmt_num(x.count)]
                       for x in errors[:TOP_ERRORS]])
    return "\n".join(out).rstrip() + "\n"
