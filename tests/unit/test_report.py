"""Rendering a run record as HTML, JUnit XML and Markdown: content, escaping, tolerance."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import reliability.report as report
from reliability.report import render, write_reports
from reliability.report.data import fmt_ms, fmt_num, fmt_s
from reliability.report.html import default_environment
from reliability.schema import parse_record
from reliability.textsafe import neutralize
from tests.support.records import BREAKER, NAMES, QUOTE, SCRIPT, hostile, load


def _junit(record: dict[str, Any]) -> ET.Element:
    return ET.fromstring(render(record, "junit"))


def _suite(root: ET.Element, name_start: str) -> ET.Element:
    return next(s for s in root.findall("testsuite") if (s.get("name") or "").startswith(name_start))


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_renders_in_every_format(name: str) -> None:
    record = load(name)
    page = render(record, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower()  # no script at all: the page works offline and under its CSP
    # nothing loaded from anywhere (URLs the target put in error messages are text, not references)
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//""", page)
    for chart in ("users", "rps", "p95", "errors"):
        assert f'data-chart="{chart}"' in page
    assert "<polyline" in page
    ET.fromstring(render(record, "junit"))
    assert render(record, "md").startswith("## ")


def test_html_shows_verdict_criteria_and_threshold_line() -> None:
    record = load("fail")
    page = render(record, "html")
    sla = record["sla"]
    assert f"SLA {sla['tier']} ({sla['percentile']}): NOT MET" in page
    failed = [c for c in sla["criteria"] if not c["passed"]]
    assert failed and all(html.escape(c["name"]) in page for c in failed)
    threshold = next(c["threshold"] for c in sla["criteria"] if c["name"] == "p95_ms" and c["scope"] == "total")
    assert f"threshold {threshold:g} ms" in page  # the threshold line on the p95 chart
    top_error = max(record["errors"], key=lambda e: e["count"])
    assert html.escape(top_error["message"]) in page
    assert "rule sla-criterion-failed" in page


def test_html_of_a_fault_run_shades_windows_and_lists_faults_health_and_cost() -> None:
    record = load("faults")
    page = render(record, "html")
    assert page.count('class="band fault"') == len(record["faults"]) * 4  # each fault on the four timeline charts
    assert 'class="band recovery"' in page
    assert all(html.escape(f["name"]) in page for f in record["faults"])
    assert f"resilience score: <strong>{record['resilience_score']:.1f}</strong>" in page
    root = record["health"]["root_causes"][0]
    assert "Root causes" in page and f"component: {root['component']}" in page
    assert all(f'aria-label="{name} health"' in page for name in record["health"]["components"])
    assert "Business impact" in page and record["cost_model"]["currency"] in page
    assert "rule fault-not-graceful" in page and "rule fault-budget-burn" in page


def test_a_typed_record_and_its_json_render_the_same() -> None:
    record = load("faults")
    typed = parse_record(record)
    for fmt in report.FORMATS:
        assert render(typed, fmt) == render(record, fmt)


def test_html_of_capacity_and_distributed_runs() -> None:
    record = load("capacity")
    capacity = render(record, "html")
    knee = record["capacity"]["knee"]
    assert (f"Knee: <strong>users {knee['users']}, rps {fmt_num(knee['rps'])}, "
            f"{record['capacity']['percentile']}_ms {fmt_num(knee['latency_ms'])}</strong>") in capacity
    assert f"broke at {record['capacity']['broke_at_users']} users" in capacity
    never = [tier for tier, point in record["capacity"]["tiers"].items() if point is None]
    assert ("not held" in capacity) == bool(never)
    assert capacity.count('class="band knee"') == 4  # a marker on each timeline chart where users reach it
    record = load("distributed")
    distributed = render(record, "html")
    assert "INCONCLUSIVE" in distributed and "went missing" in distributed
    lost = record["workers"]["lost"][0]
    assert lost["id"] in distributed and "rule worker-lost" in distributed
    assert distributed.count('class="band partial"') >= 4  # the seconds the lost worker's data is missing from
    assert 'data-chart="gen-cpu"' in distributed and distributed.count('class="line s') >= 3 * 2


def test_html_and_markdown_show_the_open_model_load() -> None:
    record = load("arrival")
    section = record["load"]
    page = render(record, "html")
    md = render(record, "md")
    ratio = f"{section['achieved_ratio'] * 100:.1f} %"
    rates = f"{fmt_num(section['asked_rate_per_s'])} / {fmt_num(section['achieved_rate_per_s'])} per s ({ratio})"
    assert '<section id="load">' in page and f"<td>{rates}</td>" in page
    assert f"achieved {ratio} of the asked rate" in page
    lag = section["schedule_lag_ms"]
    assert f"p50 {fmt_ms(lag['p50'])} · p99 {fmt_ms(lag['p99'])}" in page
    assert f"peak in flight {section['max_in_flight']}" in page
    assert f"{section['dropped']} (no free user within {fmt_s(section['max_delay_s'])})" in page
    for stage in section["stages"]:
        assert f"<td>{stage['name']}</td>" in page and f"| {stage['name']} |" in md
    assert "### Load (open model)" in md and f"| rate asked / achieved | {rates} |" in md
    card = f"{fmt_num(section['achieved_rate_per_s'])} of {fmt_num(section['asked_rate_per_s'])} ({ratio})"
    assert f"arrivals/s {card}" in md.splitlines()[2]  # in the summary line under the verdict
    assert f"<div><dt>arrivals/s achieved</dt><dd>{card}</dd></div>" in page  # a summary card
    for name in NAMES:  # absent where the run had no open-model load
        if name != "arrival":
            assert 'id="load"' not in render(load(name), "html") and "Load (open model)" not in render(load(name), "md")


def test_junit_carries_the_open_model_load_as_suite_properties() -> None:
    record = load("arrival")
    suite = _suite(_junit(record), "SLA ")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    section = record["load"]
    assert props["load.achieved_ratio"] == str(section["achieved_ratio"])
    assert props["load.dropped"] == str(section["dropped"]) and props["load.model"] == "open"
    assert props["load.schedule_lag_p99_ms"] == str(section["schedule_lag_ms"]["p99"])
    assert _junit(load("pass")).find(".//properties") is None  # closed model: no load, no properties


def test_a_run_short_of_its_rate_says_so() -> None:
    typed = parse_record(load("arrival"))
    assert typed.load is not None
    typed.load = typed.load.model_copy(update={"started": 400, "dropped": 125, "achieved_ratio": 0.8,
                                               "achieved_rate_per_s": 40.0})
    typed.load.stages[-1] = typed.load.stages[-1].model_copy(update={"dropped": 125})
    page = render(typed, "html")
    assert '<p class="bad"><strong>achieved 80.0 % of the asked rate</strong>' in page
    assert '<span class="bad">125 arrival(s) dropped</span>' in page and '<td class="num bad">125</td>' in page
    assert "**achieved 80.0 % of the asked rate**, 125 dropped" in render(typed, "md")


def test_hostile_text_is_escaped_in_html() -> None:
    page = render(hostile(), "html")
    assert SCRIPT not in page and QUOTE not in page
    assert "<script" not in page.lower() and "<b>" not in page
    assert 'onmouseover="' not in page  # as text it is harmless; with a raw quote it would be an attribute
    assert html.escape(SCRIPT) in page
    assert html.escape(QUOTE, quote=True).replace("&quot;", "&#34;") in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_hostile_text_round_trips_through_junit() -> None:
    xml_text = render(hostile(), "junit")
    assert SCRIPT not in xml_text
    root = ET.fromstring(xml_text)  # well-formed despite quotes, markup and newlines
    names = {c.get("name") for c in root.iter("testcase")}
    classnames = {c.get("classname") for c in root.iter("testcase")}
    shown = neutralize(BREAKER)  # one line: the newline is shown as "\n", not obeyed
    assert f"GET {shown} p95_ms" in names
    assert any(shown in (c or "") for c in classnames)
    messages = [f.get("message") or "" for f in root.iter("failure")]
    assert any(shown in m for m in messages)


def test_hostile_text_is_escaped_in_markdown() -> None:
    md = render(hostile(), "md")
    assert "<script" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert not re.search(r"(?<!\\)\]\(", md)  # no link can form: brackets are escaped
    for line in md.splitlines():
        ours = re.sub(r"rule `[a-z-]+`", "", line)  # the rule ids are the only code spans we write
        assert not re.search(r"(?<!\\)`", ours), line
    tables: dict[int, int] = {}
    for block in md.split("\n\n"):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        if rows:
            widths = {len(re.findall(r"(?<!\\)\|", r)) for r in rows}
            assert len(widths) == 1, block  # every row has the header's column count
            tables[len(tables)] = widths.pop()
    assert tables
    assert "next line" in md and "\nnext line" not in md


@pytest.mark.parametrize("name", NAMES)
def test_junit_failures_match_the_verdict(name: str) -> None:
    record = load(name)
    sla = _suite(_junit(record), "SLA")
    status = [c["outcome"] or ("pass" if c["passed"] else "fail") for c in record["sla"]["criteria"]]
    failed, unsure = status.count("fail"), status.count("inconclusive")
    assert int(sla.get("failures") or 0) == failed == len(sla.findall("testcase/failure"))
    if not unsure:  # every criterion decided: the verdict fails exactly when one failed
        assert (failed == 0) == record["sla"]["passed"]
    assert int(sla.get("tests") or 0) == len(record["sla"]["criteria"]) + bool(record["sla"]["inconclusive"])
    assert int(sla.get("errors") or 0) == unsure + (1 if record["sla"]["inconclusive"] else 0)


def test_junit_has_graceful_and_recovery_cases_per_fault() -> None:
    record = load("faults")
    faults = _suite(_junit(record), "faults")
    cases = {(c.get("classname"), c.get("name")): c for c in faults.findall("testcase")}
    assert set(cases) == {(f"fault.{f['name']}", check) for f in record["faults"] for check in ("graceful", "recovery")}
    for f in record["faults"]:
        assert (cases[(f"fault.{f['name']}", "graceful")].find("failure") is not None) == (f["graceful"] is False)
        assert (cases[(f"fault.{f['name']}", "recovery")].find("failure") is not None) == (f["recovered"] is False)
    expected = sum((f["graceful"] is False) + (f["recovered"] is False) for f in record["faults"])
    assert faults.get("failures") == str(expected) and expected >= 1


def test_junit_fails_a_fault_that_never_recovered_and_skips_unmeasured_checks() -> None:
    record = load("faults")
    record["faults"][0].update(time_to_recover_s=None, recovered=False, graceful=True)
    record["faults"][1] = {"name": "bare", "injected_at_s": 5.0}
    faults = _suite(_junit(record), "faults")
    assert faults.get("failures") == "1" and faults.get("skipped") == "2"
    failure = faults.find("testcase[@name='recovery']/failure")
    assert failure is not None and "did not recover" in (failure.get("message") or "")


def test_markdown_summary_holds_the_verdict_tables_and_recommendations() -> None:
    record = load("faults")
    md = render(record, "md")
    assert md.startswith(f"## ❌ SLA {record['sla']['tier']} ({record['sla']['percentile']}): NOT MET")
    assert "| fault | kind | time to detect | peak p99 |" in md
    assert "### Business impact" in md and record["cost_model"]["currency"] in md
    assert "rule `fault-not-graceful`" in md
    assert "### Slowest endpoints" in md
    passed = load("pass")
    assert render(passed, "md").startswith(f"## ✅ SLA {passed['sla']['tier']} ({passed['sla']['percentile']}): MET")
    assert "⚠️" in render(load("distributed"), "md").splitlines()[0]


@pytest.mark.parametrize("record", [
    {},
    {"schema_version": 1},
    {"run": None, "sla": [], "timeline": "x", "faults": [None, 3, {}], "health": {"components": {"a": None}}},
    {"sla": {"criteria": [{"name": "p95_ms"}]}, "timeline": [{"t": 0}, {"t": "bad"}], "capacity": {"knee": 40},
     "generators": [{"samples": [[1, 2], "x", [None, 1, 2]]}], "faults": [{"injected_at": "not a time"}]},
])
def test_missing_or_mistyped_keys_render_as_not_measured(record: dict[str, Any]) -> None:
    for fmt in report.FORMATS:
        out = render(record, fmt)
        assert out
    assert "not measured" in render(record, "html") or "n/a" in render(record, "html")


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        render(load("pass"), "pdf")


def test_write_reports_puts_three_files_next_to_the_record(tmp_path: Path) -> None:
    record_path = tmp_path / "run-1.json"
    paths = write_reports(load("pass"), record_path)
    assert [p.name for p in paths] == ["run-1.html", "run-1.junit.xml", "run-1.md"]
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in paths)
    assert not list(tmp_path.glob(".report-*"))  # no temp file left behind


def test_templates_autoescape_everything() -> None:
    env = default_environment()
    assert env.autoescape is True
    template = env.from_string("{{ value }}")
    assert template.render(value=SCRIPT) == html.escape(SCRIPT)


def test_exported_members() -> None:
    public = {n for n in dir(report) if not n.startswith("_")} - {"annotations"}
    submodules = {n for n in public if type(getattr(report, n)).__name__ == "module"}
    assert public - submodules == set(report.__all__)


def test_long_runs_are_thinned_without_losing_spikes() -> None:
    from reliability.report.charts import MAX_POINTS, thin

    points: list[tuple[float, float | None]] = [(float(t), 10.0) for t in range(86_400)]
    points[50_001] = (50_001.0, 900.0)
    points[70_000] = (70_000.0, None)
    thinned = thin(points)
    assert len(thinned) <= MAX_POINTS
    assert max(y for _, y in thinned if y is not None) == 900.0
