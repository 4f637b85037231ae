"""Reports rendered from a run record: HTML, JUnit XML, Markdown; run-to-run comparison.

Everything here reads the record (a plain mapping, as ``json.load`` returns it) and nothing else:
no locust, no gevent, no ``reliability.config`` at import time (``config`` imports
``reliability.report.spec`` for the scenario's ``cost`` section, so importing back would cycle).

Example::

    from reliability.record import read_record
    from reliability.report import render, write_reports

    record = read_record("reports/run.json")
    html = render(record, "html")
    paths = write_reports(record, "reports/run.json")  # run.html, run.junit.xml, run.md
"""

from __future__ import annotations

from reliability.report.compare import ComparisonResult, Delta, RegressionThresholds, compare
from reliability.report.impact import BusinessImpact, CostBreakdown, FaultCost, estimate_impact
from reliability.report.markdown import md_escape
from reliability.report.output import FORMATS, render, report_paths, write_reports
from reliability.report.rules import Recommendation, recommend
from reliability.report.spec import CostSpec

__all__ = [
    "FORMATS",
    "BusinessImpact",
    "ComparisonResult",
    "CostBreakdown",
    "CostSpec",
    "Delta",
    "FaultCost",
    "Recommendation",
    "RegressionThresholds",
    "compare",
    "estimate_impact",
    "md_escape",
    "recommend",
    "render",
    "report_paths",
    "write_reports",
]
