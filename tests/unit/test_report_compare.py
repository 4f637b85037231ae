"""``compare`` and the ``report`` / ``compare`` command functions."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reliability.report import RegressionThresholds, compare
from reliability.report.cli import add_compare_arguments, add_report_arguments, run_compare, run_report
from tests.support.records import FIXTURES, NAMES, SCRIPT, hostile, load


def _regressed(record: dict[str, Any]) -> dict[str, Any]:
    """GET /api/items 60 % and 10 ms slower (past both latency conditions however fast the fixture's
    run was), errors up 1 point on it: a planted regression."""
    for e in record["endpoints"]:
        if (e["type"], e["name"]) == ("GET", "/api/items"):
            e["p95_ms"] = e["p95_ms"] * 1.6 + 10.0
            e["error_ratio"] += 0.01
    return record


def _regressions(base: dict[str, Any], new: dict[str, Any], **thresholds: Any) -> dict[tuple[str, str], str]:
    result = compare(base, new, RegressionThresholds(**thresholds))
    return {(d.subject, d.metric): d.reason for d in result.regressions}


@pytest.mark.parametrize("name", NAMES)
def test_an_identical_pair_has_no_regression(name: str) -> None:
    result = compare(load(name), load(name))
    assert result.regressions == () and result.exit_code == 0
    assert result.deltas and all(d.change in (0, None) for d in result.deltas)


def test_a_planted_endpoint_regression_is_flagged() -> None:
    found = _regressions(load("pass"), _regressed(load("pass")))
    assert set(found) == {("GET /api/items", "p95_ms"), ("GET /api/items", "error_ratio")}
    assert found[("GET /api/items", "p95_ms")].startswith("+")


def test_small_changes_stay_within_thresholds() -> None:
    new = load("pass")
    for e in new["endpoints"]:
        e["p95_ms"] *= 1.08  # +8 % < 10 %
        e["rps"] *= 0.95
    new["totals"]["error_ratio"] += 0.001
    assert _regressions(load("pass"), new) == {}
    # both latency conditions must hold: +60 % of a 2 ms endpoint is only 1.2 ms
    base = load("pass")
    base["endpoints"][0]["p95_ms"] = 2.0
    new = load("pass")
    new["endpoints"][0]["p95_ms"] = 3.2
    assert _regressions(base, new) == {}


def test_low_traffic_endpoints_are_shown_but_not_flagged() -> None:
    base, new = load("pass"), _regressed(load("pass"))
    assert _regressions(base, new, min_endpoint_requests=10**9) == {}
    assert any(d.subject == "GET /api/items" and d.change for d in compare(base, new).deltas)


def test_a_criterion_that_stops_passing_and_a_lost_verdict_are_regressions() -> None:
    found = _regressions(load("pass"), load("fail"))
    assert ("SLA gold", "met") in found
    assert found[("p95_ms", "p95_ms")].startswith("passed before, fails now")
    assert ("all requests", "rps") not in found or found[("all requests", "rps")].startswith("-")


def test_fault_recovery_and_graceful_regressions() -> None:
    base, new = load("faults"), load("faults")
    i, fault = next((i, f) for i, f in enumerate(base["faults"]) if f["time_to_recover_s"] is not None)
    name = fault["name"]
    new["faults"][i]["time_to_recover_s"] = fault["time_to_recover_s"] + 10.0
    new["faults"][i]["time_to_detect_s"] = fault["time_to_detect_s"]
    graceful = next(j for j, f in enumerate(base["faults"]) if f["graceful"] is True)
    new["faults"][graceful]["graceful"] = False
    new["resilience_score"] = base["resilience_score"] - 10.0
    found = _regressions(base, new)
    assert (name, "time_to_recover_s") in found
    assert (base["faults"][graceful]["name"], "graceful") in found
    assert ("run", "resilience_score") in found
    new = load("faults")
    new["faults"][i]["time_to_recover_s"] = None  # recovered before, never now
    assert "no data now" in _regressions(base, new)[(name, "time_to_recover_s")]


def test_unmatched_items_become_notes() -> None:
    base, new = load("pass"), load("pass")
    new["endpoints"][0]["name"] = "/api/v2/items"
    notes = compare(base, new).notes
    assert "endpoint GET /api/v2/items is new" in notes
    assert "endpoint GET /api/items is missing from the new run" in notes


def _parser(add: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser


def _write(tmp_path: Path, name: str, record: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(record), encoding="utf-8")
    return str(path)


def test_run_compare_exit_codes_and_markdown(tmp_path: Path) -> None:
    base = _write(tmp_path, "base.json", load("pass"))
    same = _write(tmp_path, "same.json", load("pass"))
    worse = _write(tmp_path, "worse.json", _regressed(load("pass")))
    summary = tmp_path / "summary.md"
    out = io.StringIO()
    assert run_compare(_parser(add_compare_arguments).parse_args([base, same]), out=out) == 0
    assert out.getvalue().rstrip().endswith("no regression")
    out = io.StringIO()
    args = _parser(add_compare_arguments).parse_args([base, worse, "--markdown", str(summary)])
    assert run_compare(args, out=out) == 1
    assert "REGRESSION" in out.getvalue() and "2 regression(s)" in out.getvalue()
    assert summary.read_text().startswith("## ❌ Run comparison: 2 regression(s)")
    # a looser threshold lets the same pair pass
    args = _parser(add_compare_arguments).parse_args([base, worse, "--latency-increase-ms", "20",
                                                      "--error-increase-pct", "2"])
    assert run_compare(args, out=io.StringIO()) == 0


def test_run_compare_rejects_unreadable_records(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    err = io.StringIO()
    args = _parser(add_compare_arguments).parse_args([str(bad), str(tmp_path / "missing.json")])
    assert run_compare(args, out=io.StringIO(), err=err) == 2
    assert "a run record is a JSON object" in err.getvalue()


def test_compare_markdown_escapes_names(tmp_path: Path) -> None:
    base = _write(tmp_path, "base.json", hostile())
    new_record = hostile()
    new_record["endpoints"][0]["p95_ms"] *= 3
    new = _write(tmp_path, "new.json", new_record)
    summary = tmp_path / "summary.md"
    args = _parser(add_compare_arguments).parse_args([base, new, "--markdown", str(summary)])
    assert run_compare(args, out=io.StringIO()) == 1
    assert SCRIPT not in summary.read_text() and "&lt;script&gt;" in summary.read_text()


def test_run_report_writes_three_files_next_to_the_record(tmp_path: Path) -> None:
    record = tmp_path / "faults.json"
    shutil.copy(FIXTURES / "faults.json", record)
    out = io.StringIO()
    assert run_report(_parser(add_report_arguments).parse_args([str(record)]), out=out) == 0
    written = [Path(line) for line in out.getvalue().splitlines()]
    assert [p.name for p in written] == ["faults.html", "faults.junit.xml", "faults.md"]
    assert all(p.exists() for p in written)


def test_run_report_options(tmp_path: Path) -> None:
    record = str(FIXTURES / "pass.json")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cost: {currency: EUR, per_slow_minute: 60, latency_threshold_ms: 100ms}\n")
    out = io.StringIO()
    args = _parser(add_report_arguments).parse_args([record, "--stdout", "-f", "md", "--scenario", str(scenario)])
    assert run_report(args, out=out) == 0
    assert "### Business impact" in out.getvalue() and "EUR" in out.getvalue()
    args = _parser(add_report_arguments).parse_args([record, "-f", "junit", "-o", str(tmp_path / "out")])
    assert run_report(args, out=io.StringIO()) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["pass.junit.xml"]


@pytest.mark.parametrize("argv, message", [
    (["missing.json"], "cannot read run record"),
    (["{fixture}", "--stdout"], "--stdout needs exactly one --format"),
    (["{fixture}", "--scenario", "missing.yaml"], "missing.yaml: cannot read file"),
])
def test_run_report_errors_exit_2(argv: list[str], message: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{fixture}", str(FIXTURES / "pass.json")) for a in argv]
    err = io.StringIO()
    assert run_report(_parser(add_report_arguments).parse_args(argv), out=io.StringIO(), err=err) == 2
    assert message in err.getvalue()
