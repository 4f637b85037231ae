"""Render a record in one format, or write every format next to the record file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from reliability.files import write_text_atomic
from reliability.jsontypes import JsonData
from reliability.masking import mask_data
from reliability.report.data import Record
from reliability.report.html import render_html
from reliability.report.impact import BusinessImpact, cost_from_record, estimate_impact
from reliability.report.junit import render_junit
from reliability.report.markdown import render_markdown
from reliability.report.spec import CostSpec
from reliability.report.suite import render_suite
from reliability.schema import RunRecord, SuiteRecord, is_suite_record, parse_record, parse_suite_record
from reliability.textsafe import display_data

FORMATS = ("html", "junit", "md")
SUFFIXES = {"html": ".html", "junit": ".junit.xml", "md": ".md"}


def _impact(record: Record, cost: CostSpec | None) -> BusinessImpact | None:
    spec = cost if cost is not None else cost_from_record(record)
    return None if spec is None else estimate_impact(record, spec)


def render(record: RunRecord | SuiteRecord | Mapping[str, JsonData], fmt: str, *,
           cost: CostSpec | None = None) -> str:
    """The record as ``"html"``, ``"junit"`` (XML) or ``"md"``. ``cost`` defaults to the record's
    own ``cost_model``; without either, business impact is left out. A run record of any schema
    version (a decoded JSON mapping is read with :func:`reliability.schema.parse_record`); a
    suite's combined record (``kind: suite``) renders as its readiness report."""
    raw = record.to_json_dict() if isinstance(record, RunRecord | SuiteRecord) else record
    # every format shows text that came from the target: no control or bidi character obeyed, no
    # 10 kB name (the record keeps the raw, full text); and no password, even in an older record
    safe = display_data(mask_data(raw))
    if is_suite_record(safe):
        return render_suite(parse_suite_record(safe), fmt)
    shown = parse_record(safe)
    if fmt == "html":
        return render_html(shown, _impact(shown, cost))
    if fmt == "junit":
        return render_junit(shown)
    if fmt == "md":
        return render_markdown(shown, _impact(shown, cost))
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def report_paths(record_path: str | os.PathLike[str], formats: tuple[str, ...] = FORMATS,
                 directory: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Where each format goes: ``<stem>.html`` etc. next to the record (or in ``directory``)."""
    path = Path(record_path)
    folder = Path(directory) if directory is not None else path.parent
    return {fmt: folder / f"{path.stem}{SUFFIXES[fmt]}" for fmt in formats}


def _write_atomic(target: Path, content: str) -> None:
    # a CI job that uploads artefacts while the run ends must never pick up half a file
    write_text_atomic(target, content, prefix=".report-")


def write_reports(record: RunRecord | SuiteRecord | Mapping[str, JsonData], record_path: str | os.PathLike[str], *,
                  cost: CostSpec | None = None, formats: tuple[str, ...] = FORMATS,
                  directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Render every format and write it next to the record; returns the paths written."""
    if not isinstance(record, RunRecord | SuiteRecord):
        record = parse_suite_record(record) if is_suite_record(record) else parse_record(record)  # once, not per format
    written = []
    for fmt, target in report_paths(record_path, formats, directory).items():
        _write_atomic(target, render(record, fmt, cost=cost))
        written.append(target)
    return written


def summary_targets(summary_file: str | os.PathLike[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the Markdown summary is appended: ``$GITHUB_STEP_SUMMARY`` (GitHub Actions' job
    summary) when set, and ``summary_file`` (``--summary-file``); each once."""
    env = os.environ if environ is None else environ
    targets = [Path(p) for p in (env.get("GITHUB_STEP_SUMMARY"), summary_file) if p]
    return list(dict.fromkeys(targets))


def append_summary(markdown: str, targets: list[Path]) -> list[Path]:
    """Append ``markdown`` to each target (created if missing), separated from what is there."""
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
            fh.write("\n")
    return targets
