"""The record fixtures (``tests/support/records.py``) keep the run record's shape and cover every
feature section."""

from __future__ import annotations

import pytest

from tests.support.records import NAMES, load

BASE_KEYS = {"schema_version", "run", "sla", "totals", "uptime", "endpoints", "components", "timeline", "errors",
             "generators", "workers"}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_has_the_run_record_keys(name: str) -> None:
    record = load(name)
    assert set(record) >= BASE_KEYS
    assert record["sla"]["criteria"] and record["timeline"]
    assert sum(r["requests"] for r in record["timeline"]) == record["totals"]["requests"]


def test_fixtures_cover_pass_fail_faults_distributed_and_capacity() -> None:
    assert load("pass")["sla"]["passed"] is True
    assert load("fail")["sla"]["passed"] is False
    faults = load("faults")
    assert {"faults", "resilience_score", "health", "cost_model"} <= set(faults)
    phases = {r["phase"] for r in faults["timeline"]}
    assert {"baseline", "fault"} <= phases <= {"baseline", "fault", "recovery"}
    distributed = load("distributed")
    assert distributed["run"]["mode"] == "master" and distributed["workers"]["lost"]
    assert distributed["sla"]["inconclusive"]
    assert "knee" in load("capacity")["capacity"]
    arrival = load("arrival")["load"]
    assert arrival["model"] == "open" and arrival["stages"] and arrival["started"] == arrival["finished"]
    assert all("load" not in load(name) for name in NAMES if name != "arrival")
