"""Every JUnit report validates against Jenkins' xUnit junit-10.xsd, with real times and a timestamp."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reliability.report import render
from tests.support.records import NAMES, hostile, load
from tests.support.schemas import validate_junit


@pytest.mark.parametrize("name", NAMES)
def test_fixture_reports_are_valid_junit_10(name: str) -> None:
    xml_text = render(load(name), "junit")
    validate_junit(xml_text)
    root = ET.fromstring(xml_text)
    assert root.get("skipped") is None  # not allowed on <testsuites>
    record = load(name)
    duration = float(record["run"]["duration_s"])
    assert float(root.get("time") or -1) == pytest.approx(duration, abs=1e-3)
    sla = next(s for s in root.findall("testsuite") if (s.get("name") or "").startswith("SLA"))
    assert sla.get("timestamp") == record["run"]["started_at"].rstrip("Z").split(".")[0]
    assert float(sla.get("time") or -1) == pytest.approx(duration, abs=1e-3)
    if duration > 0:
        assert all(float(c.get("time") or 0) > 0 for c in sla.findall("testcase"))


def test_hostile_text_still_validates() -> None:
    validate_junit(render(hostile(), "junit"))
