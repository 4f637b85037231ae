"""The record contract seen from the reports: fixtures from the writer, the p99 scenario's peak
latency, and version 1 records read by ``reliability report``."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import pytest

from reliability.report import render
from reliability.report.cli import add_report_arguments, run_report
from reliability.report.data import fmt_ms
from reliability.schema import SCHEMA_VERSION, RunRecord, parse_record
from tests.support.records import FIXTURES, NAMES, load
from tests.support.schemas import schema_errors

V1_FIXTURES = FIXTURES.parent / "records-v1"


def _report(path: Path, fmt: str) -> str:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    out = io.StringIO()
    assert run_report(parser.parse_args([str(path), "--stdout", "-f", fmt]), out=out, err=io.StringIO()) == 0
    return out.getvalue()


def test_every_fixture_is_a_current_record_that_validates() -> None:
    paths = sorted(FIXTURES.glob("*.json"))
    assert {p.stem for p in paths} == set(NAMES)
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["schema_version"] == SCHEMA_VERSION, path.name
        assert schema_errors(data) == [], path.name
        assert RunRecord.model_validate(data).to_json_dict() == data  # strictly: nothing dropped, nothing added


def test_the_fixtures_hold_every_feature_section() -> None:
    present = {key for name in NAMES for key in load(name)}
    assert {"faults", "recovery", "resilience_score", "stages", "capacity", "health", "alerts", "cost_model"} <= present


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_a_p99_scenario_report_shows_its_peak_latency(fmt: str) -> None:
    record = load("faults")
    assert record["sla"]["percentile"] == "p99"
    peaks = [f["degradation"]["peak_latency_ms"] for f in record["faults"]]
    assert all(isinstance(p, float) and p > 0 for p in peaks)
    page = render(record, fmt)
    for peak in peaks:
        assert fmt_ms(peak) in page
    assert "peak p99" in page and "peak p95" not in page


def test_a_version_1_record_is_read_by_reliability_report(tmp_path: Path) -> None:
    path = tmp_path / "run-v1.json"
    shutil.copy(V1_FIXTURES / "faults-p99.json", path)
    v1 = json.loads(path.read_text(encoding="utf-8"))
    assert v1["schema_version"] == 1
    peaks = [f["degradation"]["peak_p99_ms"] for f in v1["faults"]]  # the version 1 key
    assert peaks and all(p > 0 for p in peaks)
    for fmt in ("html", "md"):
        page = _report(path, fmt)
        assert all(fmt_ms(p) in page for p in peaks), fmt
        assert "peak p99" in page, fmt
    junit = _report(path, "junit")
    assert junit.count("<testcase") == len(v1["sla"]["criteria"]) + 2 * len(v1["faults"])
    upgraded = parse_record(v1)
    assert upgraded.schema_version == SCHEMA_VERSION and schema_errors(upgraded.to_json_dict()) == []
    assert upgraded.faults is not None
    assert [f.degradation.peak_latency_ms for f in upgraded.faults if f.degradation] == peaks
    assert upgraded.totals.percentile == "p99" and upgraded.totals.latency_ms == v1["totals"]["p99_ms"]
    assert upgraded.stages is not None and upgraded.stages[0].latency_ms == v1["stages"][0]["p99_ms"]
