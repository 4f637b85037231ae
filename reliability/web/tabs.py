"""The three tabs added to Locust's web UI (SLA, Faults, Health): their table structure for
``template_args`` and their rows for the ``extended_stats`` of ``/stats/requests``.

Locust renders tab cells as plain text, so values arrive formatted ("45.2 ms", "0.12 %") and
links are shown as paths. The first column's key is ``item``, not ``name``: Locust sorts a table
by its ``name`` column, and these rows are in reading order. Pure: it formats the dict of a
:class:`~reliability.web.state.LiveState`.

Example::

    web_ui.template_args["extended_tabs"] = TABS
    web_ui.template_args["extended_tables"] = TABLES
    rows = tab_rows(live.state(), page_path="/reliability/")   # [{"key": "reliability-sla", "data": [...]}, ...]
"""

from __future__ import annotations

from typing import TypedDict

from reliability.schema.sections import RuleBurn
from reliability.web.state import State

SLA_TAB = "reliability-sla"
FAULTS_TAB = "reliability-faults"
HEALTH_TAB = "reliability-health"

Row = dict[str, str]  # column key -> the cell's text


class Column(TypedDict):
    key: str
    title: str


class Table(TypedDict):
    key: str
    structure: list[Column]


class TabData(TypedDict):
    key: str
    data: list[Row]


TABS: list[dict[str, str]] = [
    {"title": "SLA", "key": SLA_TAB},
    {"title": "Faults", "key": FAULTS_TAB},
    {"title": "Health", "key": HEALTH_TAB},
]

TABLES: list[Table] = [
    {"key": SLA_TAB, "structure": [
        {"key": "item", "title": "SLA (rolling window)"},
        {"key": "value", "title": "Value"},
        {"key": "threshold", "title": "Threshold"},
        {"key": "status", "title": "Status"},
    ]},
    {"key": FAULTS_TAB, "structure": [
        {"key": "item", "title": "Fault"},
        {"key": "type", "title": "Type"},
        {"key": "state", "title": "State"},
        {"key": "planned", "title": "Planned"},
        {"key": "time", "title": "Time left / starts in"},
        {"key": "detail", "title": "Detail"},
    ]},
    {"key": HEALTH_TAB, "structure": [
        {"key": "item", "title": "Component"},
        {"key": "status", "title": "Status"},
        {"key": "latency", "title": "Probe latency"},
        {"key": "role", "title": "Diagnosis"},
        {"key": "detail", "title": "Detail"},
    ]},
]


def fmt_value(value: float | None, unit: str) -> str:
    """``45.2 ms``, ``0.12 %`` or ``no data``."""
    if value is None:
        return "no data"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value * 100:.3g} %"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return ""
    value = max(0.0, value)
    if value >= 3600:
        hours, minutes = int(value // 3600), int(value % 3600 // 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if value >= 60:
        minutes, seconds = int(value // 60), int(value % 60)
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{value:.0f} s"


def _status(outcome: str | None) -> str:
    """PASS / FAIL / INCONCLUSIVE for a pass / fail / inconclusive outcome, ``no data`` for None."""
    return "no data" if outcome is None else outcome.upper()


def sla_rows(state: State, page_path: str) -> list[Row]:
    sla = state["sla"]
    rows: list[Row] = []
    if not sla["evaluated"]:
        rows.append({"item": f"{sla['tier']} ({sla['percentile']})", "value": "waiting for the first window",
                     "threshold": "", "status": ""})
    else:
        rows.append({"item": f"verdict for {sla['tier']} ({sla['percentile']}, last {sla['window_s']} s)",
                     "value": f"{sla['requests']} requests, {sla['failures']} failed",
                     "threshold": "", "status": _status(sla["outcome"])})
        for c in sla["criteria"]:
            rows.append({"item": c["name"], "value": fmt_value(c["actual"], c["unit"]),
                         "threshold": f"{c['comparator']} {fmt_value(c['threshold'], c['unit'])}",
                         "status": "no data" if c["actual"] is None else _status(c["outcome"])})
        met = [t["tier"] for t in sla["tiers"] if t["passed"]]
        rows.append({"item": "highest tier met", "value": sla["highest_tier_met"] or "none",
                     "threshold": "tiers met: " + (", ".join(met) or "none"), "status": ""})
        if sla["next_tier"] and sla["blocked_by"]:
            rows.append({"item": f"{sla['next_tier']} blocked by", "value": "; ".join(sla["blocked_by"]),
                         "threshold": "", "status": ""})
    budget = state["budget"]
    slo = "" if budget["slo"] is None else f"SLO {budget['slo'] * 100:g} %"
    remaining = budget["remaining"]
    rows.append({"item": "error budget remaining (whole run)",
                 "value": "no data" if remaining is None else f"{remaining * 100:.1f} %",
                 "threshold": slo, "status": "" if remaining is None else "OK" if remaining > 0 else "SPENT"})
    burn = budget["burn_rate"]
    rows.append({"item": f"burn rate (last {budget['window_s']} s)",
                 "value": "no data" if burn is None else f"{burn:.2f}x",
                 "threshold": "1x spends the budget exactly", "status": ""})
    alerts = state["alerts"]
    if alerts["configured"]:
        for row in alerts["burn_rates"]:
            def x(v: float | None) -> str:
                return "n/a" if v is None else f"{v:.1f}x"

            b = RuleBurn.model_validate(row)
            rows.append({"item": f"burn rate {b.rule} ({b.long_s} s / {b.short_s} s)",
                         "value": f"{x(b.long)} / {x(b.short)}",
                         "threshold": f">= {b.threshold:g}x: {b.severity}",
                         "status": "FIRING" if b.firing else ""})
        severity = alerts["severity"]
        rows.append({"item": "alert", "value": severity.upper() if severity else "none",
                     "threshold": f"{alerts['webhooks']} webhook(s)", "status": "FIRING" if severity else "OK"})
    rows.append({"item": "live charts and fault controls", "value": page_path,
                 "threshold": "linked from the Download Data tab", "status": ""})
    return rows


def fault_rows(state: State) -> list[Row]:
    faults = state["faults"]
    if not faults["items"]:
        text = "none configured in this run's scenario" if faults["configured"] else "no fault schedule in this run"
        return [{"item": text, "type": "", "state": "", "planned": "", "time": "", "detail": ""}]
    rows: list[Row] = []
    for f in faults["items"]:
        if f["active"]:
            time_text = f"{fmt_seconds(f['time_left_s'])} left"
        elif f["state"] == "pending" and f["starts_in_s"] is not None:
            time_text = f"starts in {fmt_seconds(f['starts_in_s'])}"
        else:
            time_text = ""
        rows.append({"item": f["name"], "type": f["type"], "state": f["state"],
                     "planned": f"at +{fmt_seconds(f['at_s'])} for {fmt_seconds(f['hold_s'])}",
                     "time": time_text, "detail": f["error"] or ""})
    return rows


def health_rows(state: State) -> list[Row]:
    health = state["health"]
    if not health["configured"]:
        return [{"item": "no health section in this run's scenario", "status": "", "latency": "", "role": "",
                 "detail": ""}]
    rows = [{"item": "system", "status": health["status"] or "not probed yet",
             "latency": "", "role": f"score {health['score']:g}" if health["score"] is not None else "",
             "detail": ("root cause: " + ", ".join(health["root_causes"])) if health["root_causes"] else ""}]
    for c in health["components"]:
        rows.append({"item": c["name"] + ("" if c["critical"] else " (non-critical)"),
                     "status": c["status"] or "not probed yet",
                     "latency": "" if c["latency_ms"] is None else f"{c['latency_ms']:.1f} ms",
                     "role": c["role"] or "", "detail": c["detail"] or ""})
    return rows


def tab_rows(state: State, page_path: str) -> list[TabData]:
    """``extended_stats`` for ``/stats/requests``: one entry per tab."""
    return [
        {"key": SLA_TAB, "data": sla_rows(state, page_path)},
        {"key": FAULTS_TAB, "data": fault_rows(state)},
        {"key": HEALTH_TAB, "data": health_rows(state)},
    ]
