"""Suite files, the combined record, the readiness grading and the readiness report (pure)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from reliability.exceptions import ScenarioError
from reliability.report import render, write_reports
from reliability.report.readiness import grade_suite
from reliability.schema import SuiteRecord, parse_suite_record
from reliability.suite import ScenarioResult, Suite, build_suite_record, load_suite, read_run_file

ROOT = Path(__file__).resolve().parents[2]

SCENARIOS = {
    "base.yaml": "name: baseline\nsla: {tier: gold}\n",
    "levels.yaml": "name: high load\nshape: {type: levels, levels: [BASELINE, HIGH_LOAD]}\n",
    "outage.yaml": """name: redis outage
shape: {type: steady, users: 5, ramp_s: 1s, tail_s: 5s}
faults:
  - {name: redis down, at_s: 8s, hold_s: 5s, fault: {type: http.latency, url: "http://127.0.0.1:9", latency_ms: 5}}
""",
    "knee.yaml": "name: capacity\nshape: {type: capacity_search, start_users: 5, step_users: 5, step_s: 10s}\n",
}


def write_suite(tmp_path: Path, body: str) -> Path:
    for name, text in SCENARIOS.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "suite.yaml"
    path.write_text(body)
    return path


SUITE = """name: readiness
defaults: {locustfile: users.py, workers: 2, env: {A: "1"}}
scenarios:
  - {scenario: base.yaml}
  - {scenario: levels.yaml, time_scale: 0.1, workers: 0}
  - {scenario: outage.yaml, env: {B: "2"}}
  - {scenario: knee.yaml, required: false, name: knee search}
"""


def test_entries_resolve_names_kinds_defaults_and_paths(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, SUITE))
    assert [(e.name, e.kind, e.required) for e in suite.entries] == [
        ("baseline", "baseline", True), ("high load", "load", True), ("redis outage", "degradation", True),
        ("knee search", "capacity", False)]
    base, levels, outage, _ = suite.entries
    assert base.locustfile == str(tmp_path / "users.py") and base.workers == 2
    assert levels.workers == 0 and levels.env == {"A": "1", "RELIABILITY_TIME_SCALE": "0.1"}
    assert outage.env == {"A": "1", "B": "2"} and outage.scenario_path == str(tmp_path / "outage.yaml")
    assert [e.index for e in suite.entries] == [1, 2, 3, 4]


def test_a_suite_file_is_told_from_a_scenario_file(tmp_path: Path) -> None:
    path = write_suite(tmp_path, SUITE)
    suite, scenario = read_run_file(path)
    assert suite is not None and scenario is None
    suite, scenario = read_run_file(tmp_path / "base.yaml")
    assert suite is None and scenario is not None and scenario.name == "baseline"


@pytest.mark.parametrize(("body", "where", "reason"), [
    ("scenarios: [{scenario: base.yaml, bogus: 1}]\n", "scenarios[0].bogus", "unknown key"),
    ("scenarios: []\n", "scenarios", "at least 1 item"),
    ("scenarios: [{scenario: base.yaml}, {scenario: nope.yaml}]\n", "scenarios[1].scenario", "cannot read file"),
    ("scenarios: [{scenario: base.yaml}, {scenario: base.yaml}]\n", "scenarios[1].name", "used twice"),
    ("scenarios: [{scenario: base.yaml, workers: -1}]\n", "scenarios[0].workers", "greater than or equal to 0"),
    ("scenarios: [{scenario: base.yaml, kind: soak}]\n", "scenarios[0].kind", "'baseline', 'load'"),
    ("defaults: {env: {'1x': y}}\nscenarios: [{scenario: base.yaml}]\n", "defaults.env.1x", "not a valid"),
    ("scenarios: [{scenario: base.yaml, run_time_s: forever}]\n", "scenarios[0].run_time_s", "expected a duration"),
])
def test_errors_name_file_field_and_reason(tmp_path: Path, body: str, where: str, reason: str) -> None:
    path = write_suite(tmp_path, body)
    with pytest.raises(ScenarioError) as caught:
        load_suite(path)
    assert caught.value.path == str(path) and caught.value.field == where, str(caught.value)
    assert reason in caught.value.reason


def test_an_invalid_scenario_in_a_suite_names_both_files(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "scenarios: [{scenario: bad.yaml}]\n")
    (tmp_path / "bad.yaml").write_text("sla: {tier: diamond}\n")
    with pytest.raises(ScenarioError, match=r"suite\.yaml: scenarios\[0\]\.scenario: .*bad\.yaml: sla\.tier: unknown"):
        load_suite(path)


# -- the combined record and its grading ------------------------------------------------------------


def run_record(*, passed: bool = True, tier: str = "gold", p95: float = 80.0, inconclusive: tuple[str, ...] = (),
               **extra: Any) -> dict[str, Any]:
    criteria = [{"name": "p95_ms", "scope": "total", "comparator": "<=", "threshold": 200.0, "actual": p95,
                 "margin": 200.0 - p95, "passed": p95 <= 200.0}]
    return {"schema_version": 1, "run": {"mode": "master", "workers": 2, "scenario": "x"},
            "sla": {"tier": tier, "percentile": "p95", "passed": passed, "exit_code": 4 if inconclusive else (
                0 if passed else 3), "inconclusive": list(inconclusive), "highest_tier_met": tier if passed else None,
                    "criteria": criteria},
            "totals": {"requests": 1000, "failures": 0, "error_ratio": 0.0, "p95_ms": p95, "rps": 50.0},
            "timeline": [{"t": 0, "users": 100, "requests": 50, "failures": 0}], **extra}


def stages(top_passed: bool = True, top_rps: float = 450.0) -> list[dict[str, Any]]:
    return [{"name": "BASELINE", "users": 100, "requests": 1500, "rps": 50.0, "p95_ms": 40.0, "passed": True},
            {"name": "HIGH_LOAD", "users": 1000, "requests": 9000, "rps": top_rps, "p95_ms": 120.0,
             "passed": top_passed}]


def fault(graceful: bool = True, detect_s: float | None = 1.5, recover_s: float | None = 3.0) -> dict[str, Any]:
    return {"name": "redis down", "kind": "redis.pause", "injected_at_s": 10.0, "reverted_at_s": 20.0,
            "time_to_detect_s": detect_s, "time_to_recover_s": recover_s, "recovered": recover_s is not None,
            "graceful": graceful, "verified_healthy": True,
            "degradation": {"peak_p95_ms": 300.0, "peak_error_ratio": 0.001 if graceful else 0.4}}


def suite_record(tmp_path: Path, records: dict[str, dict[str, Any] | None],
                 codes: dict[str, int] | None = None) -> SuiteRecord:
    suite = load_suite(write_suite(tmp_path, SUITE))
    results = []
    for entry in suite.entries:
        if entry.name not in records:
            continue
        record = records[entry.name]
        code = (codes or {}).get(entry.name, record["sla"]["exit_code"] if record else 1)
        results.append(ScenarioResult(entry, code, f"suite/{entry.index:02d}.json", record, 100.0, 130.0))
    return build_suite_record(suite, results, started_at=100.0, ended_at=250.0)


def healthy_suite(tmp_path: Path) -> SuiteRecord:
    health = {"rounds": 20, "components": {"db": {}, "cache": {}}, "uptime_ratio": 0.99}
    return suite_record(tmp_path, {
        "baseline": run_record(),
        "high load": run_record(stages=stages()),
        "redis outage": run_record(passed=False, faults=[fault()], health=health, resilience_score=91.0),
        "knee search": run_record(passed=False, capacity={"tier": "gold", "knee": {"users": 1400, "rps": 600.0}}),
    })


def test_a_suite_that_holds_everywhere_is_ready(tmp_path: Path) -> None:
    readiness = grade_suite(healthy_suite(tmp_path))
    assert readiness.status == "ready" and readiness.exit_code == 0 and readiness.blockers == ()
    assert [d.name for d in readiness.dimensions] == ["scalability", "reliability", "performance", "monitoring"]
    assert {d.name: d.status for d in readiness.dimensions} == {
        "scalability": "pass", "reliability": "pass", "performance": "pass", "monitoring": "pass"}
    scalability = readiness.dimensions[0]
    assert any("holds up to 1,400 users" in f for f in scalability.findings)
    assert any("gold held at 1,000 users" in f for f in scalability.findings)


def test_the_combined_record_keeps_every_scenario_and_marks_the_ones_not_run(tmp_path: Path) -> None:
    record = suite_record(tmp_path, {"baseline": run_record(), "high load": run_record(stages=stages())})
    assert record.kind == "suite" and record.suite.name == "readiness"
    assert [(r.name, r.outcome) for r in record.scenarios] == [
        ("baseline", "met"), ("high load", "met"), ("redis outage", "skipped"), ("knee search", "skipped")]
    first = record.scenarios[0].record
    assert first is not None and first.totals.requests == 1000
    assert (record.scenarios[2].problem or "").startswith("not run")
    written = record.to_json_dict()
    assert "readiness" not in written and "faults" not in written["scenarios"][0]["record"]  # as a record file
    assert parse_suite_record(json.loads(json.dumps(written))) == record
    readiness = grade_suite(record)
    assert readiness.status == "inconclusive" and readiness.exit_code == 4
    assert readiness.blockers[0].startswith("re-run redis outage: skipped")
    assert not any(b.startswith("re-run knee search") for b in readiness.blockers)  # optional


def test_blockers_name_what_failed_and_where(tmp_path: Path) -> None:
    record = suite_record(tmp_path, {
        "baseline": run_record(passed=False, p95=250.0),
        "high load": run_record(stages=stages(top_passed=False, top_rps=200.0)),
        "redis outage": run_record(passed=False, faults=[fault(graceful=False, detect_s=None, recover_s=None)]),
        "knee search": run_record(capacity={"tier": "gold", "knee": {"users": 900, "rps": 400.0}}),
    })
    readiness = grade_suite(record)
    assert readiness.status == "not ready" and readiness.exit_code == 3
    text = "\n".join(readiness.blockers)
    assert "performance: baseline: p95_ms = 250.0 ms (needs <= 200)" in text
    assert "scalability: high load: gold not met at 1,000 users" in text
    assert "reliability: redis outage: fault 'redis down' was not graceful" in text
    assert "reliability: redis outage: fault 'redis down' did not recover" in text
    assert "monitoring: redis outage: fault 'redis down' was never detected" in text
    scalability = readiness.dimensions[0]
    assert any("throughput per user at 1,000 users is 40 %" in f for f in scalability.findings)
    assert any("needs 1.25x headroom" in f for f in scalability.findings)  # an optional knee only warns


def test_an_inconclusive_scenario_is_left_out_and_named(tmp_path: Path) -> None:
    record = suite_record(tmp_path, {
        "baseline": run_record(inconclusive=("worker w1 went missing",)),
        "high load": run_record(stages=stages()), "redis outage": run_record(faults=[fault()]),
        "knee search": None,
    }, codes={"knee search": 2})
    readiness = grade_suite(record)
    assert readiness.status == "inconclusive"
    assert readiness.blockers[0] == "re-run baseline: inconclusive (worker w1 went missing)"
    performance = readiness.dimensions[2]
    assert performance.status == "pass" and any("baseline: inconclusive, not graded" in f
                                                for f in performance.findings)


def test_unmeasured_dimensions_block_readiness(tmp_path: Path) -> None:
    record = suite_record(tmp_path, {"baseline": run_record()})
    record.scenarios = [r for r in record.scenarios if r.outcome != "skipped"]
    readiness = grade_suite(record)
    assert readiness.status == "not ready"
    assert {b.split(":")[0] for b in readiness.blockers} == {"scalability", "reliability", "monitoring"}
    assert any("not measured (add degradation scenarios" in b for b in readiness.blockers)


# -- the readiness report ------------------------------------------------------------------------------


def test_html_report_is_static_escaped_and_links_each_scenario(tmp_path: Path) -> None:
    record = healthy_suite(tmp_path)
    record.scenarios[0].name = "<script>alert(1)</script>"
    html = render(record, "html")
    assert "Production readiness: READY" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="suite/01.html"' in html
    for dimension in ("scalability", "reliability", "performance", "monitoring"):
        assert f"<strong>{dimension}</strong>" in html
    assert "default-src 'none'" in html


def test_markdown_and_junit_carry_the_blockers(tmp_path: Path) -> None:
    record = suite_record(tmp_path, {
        "baseline": run_record(passed=False, p95=250.0), "high load": run_record(stages=stages()),
        "redis outage": run_record(faults=[fault()], health={"rounds": 3}), "knee search": run_record(),
    })
    md = render(record, "md")
    assert md.startswith("## ❌ Production readiness: NOT READY (readiness)")
    assert "### What blocks production readiness" in md and "performance: baseline: p95\\_ms" in md
    root = ET.fromstring(render(record, "junit"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["performance"].find("failure") is not None and cases["reliability"].find("failure") is None
    assert root.get("tests") == str(4 + 4) and root.get("failures") == "1"


def test_write_reports_writes_the_readiness_report_next_to_the_combined_record(tmp_path: Path) -> None:
    record = healthy_suite(tmp_path)
    path = tmp_path / "out" / "suite.json"
    path.parent.mkdir()
    path.write_text(json.dumps(record.to_json_dict()))
    written = write_reports(json.loads(path.read_text()), path)
    assert sorted(p.name for p in written) == ["suite.html", "suite.junit.xml", "suite.md"]
    assert re.search(r"READY", (tmp_path / "out" / "suite.md").read_text())


def test_shipped_suite_files_are_valid() -> None:
    found = sorted((ROOT / "scenarios").glob("suite_*.yaml"))
    assert found, "no suite example shipped"
    for path in found:
        suite, _ = read_run_file(path)
        assert isinstance(suite, Suite) and suite.entries


def test_a_dimension_whose_scenarios_were_not_graded_says_so(tmp_path: Path) -> None:
    record = suite_record(tmp_path, {"baseline": run_record(), "high load": run_record(stages=stages()),
                                     "redis outage": run_record(inconclusive=("fault cut short",))})
    readiness = grade_suite(record)
    assert "reliability: not measured (its scenarios were not graded; re-run them)" in readiness.blockers
    assert "re-run redis outage: inconclusive (fault cut short)" in readiness.blockers


def test_a_suite_record_is_read_leniently_and_written_back_the_same(tmp_path: Path) -> None:
    written = healthy_suite(tmp_path).to_json_dict()
    raw = json.loads(json.dumps(written))
    raw["scenarios"][1]["duration_s"] = "long"  # a mistyped value: dropped, the rest kept
    raw["scenarios"][0]["record"] = {"schema_version": 1, "totals": {"requests": 7, "p95_ms": 12.0}}  # version 1
    raw["suite"]["added_by_a_newer_writer"] = True
    suite = parse_suite_record(raw)
    assert suite.scenarios[1].duration_s is None and suite.scenarios[1].name == "high load"
    first = suite.scenarios[0].record
    assert first is not None and first.totals.requests == 7 and first.totals.latency_ms == 12.0
    assert suite.suite.name == "readiness"
    assert parse_suite_record(written).to_json_dict() == written
