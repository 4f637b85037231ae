"""The executive readiness report of a suite record (``kind: suite``): HTML, Markdown and JUnit XML.

:func:`reliability.report.render` hands suite records here, so ``reliability report SUITE.json`` and
:func:`reliability.report.write_reports` work on them as on run records. The page shows the
readiness verdict and what blocks it, the four graded dimensions with their evidence, and one row
per scenario linking to that scenario's own report. Same safety as the run report: autoescaped
template, no script, Markdown through :func:`md_escape`, XML through ``ElementTree``.

Example::

    from reliability.report import render
    html = render(suite_record, "html")   # the same call as for a run record
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import PurePath
from typing import TypedDict

from reliability.report.data import (
    NA,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
)
from reliability.report.html import default_environment
from reliability.report.junit import _case, _clean, _count, _outcome
from reliability.report.markdown import md_escape
from reliability.report.readiness import FAIL, NOT_MEASURED, PASS, WARN, Readiness, grade_suite
from reliability.report.rules import Recommendation, recommend
from reliability.schema import SuiteRecord
from reliability.schema.sections import Sla, Totals
from reliability.schema.suite import SuiteScenario

STATUS_CSS = {PASS: "ok", WARN: "warn", FAIL: "bad", NOT_MEASURED: "na", "ready": "ok", "not ready": "bad",
              "inconclusive": "warn", "met": "ok", "not met": "bad", "error": "bad", "skipped": "na"}
_ICONS = {"ready": "✅", "not ready": "❌", "inconclusive": "⚠️", PASS: "✅", WARN: "⚠️", FAIL: "❌",
          NOT_MEASURED: "➖"}
TOP_RECOMMENDATIONS = 3


@dataclass(frozen=True)
class ScenarioRow:
    """One scenario of the suite as the report shows it (formatted, not escaped)."""

    index: str
    name: str
    kind: str
    required: bool
    outcome: str
    css: str
    tier: str
    highest_tier: str
    requests: str
    p95: str
    errors: str
    rps: str
    generators: str
    duration: str
    href: str | None
    problem: str
    inconclusive: str
    recommendations: list[Recommendation]


class DimensionView(TypedDict):
    name: str
    status: str
    css: str
    score: str
    findings: list[str]


class SuiteContext(TypedDict):
    """What the suite's HTML template and Markdown read."""

    title: str
    description: str
    status: str
    status_css: str
    blockers: list[str]
    facts: list[tuple[str, str]]
    scenarios: list[ScenarioRow]
    dimensions: list[DimensionView]


def _report_href(row: SuiteScenario) -> str | None:
    """The scenario's HTML report, relative to the suite record (its ``record_path`` is)."""
    path = row.record_path
    if path is None or not path.endswith(".json"):
        return None
    return PurePath(path).with_suffix(".html").as_posix()


def scenario_rows(record: SuiteRecord) -> list[ScenarioRow]:
    """One display row per scenario of the suite (formatted, not escaped)."""
    out = []
    for row in record.scenarios:
        run = row.record
        sla, totals = (run.sla, run.totals) if run is not None else (Sla(), Totals())
        mode = run.run.mode or "" if run is not None else ""
        workers = run.run.workers if run is not None else None
        out.append(ScenarioRow(
            index=str(row.index), name=row.name, kind=row.kind, required=row.required, outcome=row.outcome,
            css=STATUS_CSS.get(row.outcome, "warn"),
            tier=sla.tier or NA, highest_tier=(sla.highest_tier_met or "none") if run is not None else NA,
            requests=fmt_num(totals.requests) if run is not None else NA, p95=fmt_ms(totals.p95_ms),
            errors=fmt_pct(totals.error_ratio, 3), rps=fmt_num(totals.rps),
            generators=f"{mode} ({fmt_num(workers)} workers)" if mode == "master" else (mode or NA),
            duration=fmt_s(row.duration_s), href=_report_href(row), problem=row.problem or "",
            inconclusive="; ".join(sla.inconclusive),
            recommendations=[r for r in recommend(run) if r.severity != "info"][:TOP_RECOMMENDATIONS]
            if run is not None else [],
        ))
    return out


def _facts(record: SuiteRecord, rows: list[ScenarioRow]) -> list[tuple[str, str]]:
    suite = record.suite
    counts = {s: sum(1 for r in rows if r.outcome == s) for s in ("met", "not met", "inconclusive")}
    facts = [("started", (suite.started_at or NA).replace("T", " ").split(".")[0]),
             ("duration", fmt_s(suite.duration_s)), ("scenarios", str(len(rows))),
             ("SLA met", str(counts["met"])), ("SLA not met", str(counts["not met"])),
             ("inconclusive", str(counts["inconclusive"])),
             ("locust-reliability", suite.reliability_version or NA)]
    if suite.interrupted:
        facts.append(("interrupted", suite.interrupted))
    return facts


def _context(record: SuiteRecord, readiness: Readiness) -> SuiteContext:
    rows = scenario_rows(record)
    return {
        "title": record.suite.name or "suite", "description": record.suite.description,
        "status": readiness.status.upper(), "status_css": STATUS_CSS[readiness.status],
        "blockers": list(readiness.blockers), "facts": _facts(record, rows), "scenarios": rows,
        "dimensions": [{"name": d.name, "status": d.status, "css": STATUS_CSS[d.status],
                        "score": NA if d.score is None else f"{d.score:.0f}", "findings": d.findings}
                       for d in readiness.dimensions],
    }


def render_suite_html(record: SuiteRecord) -> str:
    return default_environment().get_template("suite.html.j2").render(**_context(record, grade_suite(record)))


def render_suite_markdown(record: SuiteRecord) -> str:
    readiness = grade_suite(record)
    ctx = _context(record, readiness)
    e = md_escape
    out = [f"## {_ICONS[readiness.status]} Production readiness: {readiness.status.upper()} ({e(ctx['title'])})", "",
           " · ".join(f"{k} {e(v)}" for k, v in ctx["facts"]), ""]
    if readiness.blockers:
        out += ["### What blocks production readiness", ""] + [f"- {e(b)}" for b in readiness.blockers] + [""]
    out += ["### Dimensions", "", "| dimension | status | score | evidence |", "|---|---|---|---|"]
    out += [f"| {d['name']} | {_ICONS[d['status']]} {d['status']} | {d['score']} | "
            + ("<br>".join(e(f) for f in d["findings"]) or "n/a") + " |" for d in ctx["dimensions"]]
    out += ["", "### Scenarios", "", "| # | scenario | kind | result | tier | highest met | p95 | errors | req/s |",
            "|---|---|---|---|---|---|---|---|---|"]
    out += [f"| {r.index} | {e(r.name)} | {e(r.kind)} | {e(r.outcome)} | {e(r.tier)} | "
            f"{e(r.highest_tier)} | {r.p95} | {r.errors} | {r.rps} |" for r in ctx["scenarios"]]
    return "\n".join(out).rstrip() + "\n"


def render_suite_junit(record: SuiteRecord) -> str:
    """One testcase per dimension (a failed or unmeasured one fails) and one per scenario (an
    inconclusive, failed-to-run or skipped one is an error)."""
    readiness = grade_suite(record)
    name = record.suite.name or "suite"
    root = ET.Element("testsuites", name=_clean(f"readiness {name}"))
    dims = ET.SubElement(root, "testsuite", name="readiness")
    for d in readiness.dimensions:
        case = _case(dims, "readiness", d.name)
        if d.status in (FAIL, NOT_MEASURED):
            blockers = [b for b in readiness.blockers if b.startswith(f"{d.name}:")]
            _outcome(case, "failure", "; ".join(blockers) or d.status, "\n".join(d.findings))
    scenarios = ET.SubElement(root, "testsuite", name="scenarios")
    for r in scenario_rows(record):
        case = _case(scenarios, f"scenario.{r.kind}", f"{r.index} {r.name}")
        if r.outcome in ("inconclusive", "error", "skipped") and r.required:
            _outcome(case, "error", f"{r.outcome}: {r.inconclusive or r.problem or 'no record'}")
    for suite in (dims, scenarios):
        _count(suite)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key) or 0) for s in (dims, scenarios))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_suite(record: SuiteRecord, fmt: str) -> str:
    """A suite record as ``"html"``, ``"junit"`` or ``"md"``."""
    renderers = {"html": render_suite_html, "junit": render_suite_junit, "md": render_suite_markdown}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(renderers)}")
    return renderers[fmt](record)

