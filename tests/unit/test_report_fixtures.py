"""Record fixtures for the report tests, and checks that they keep the run record's shape.

``tests/fixtures/records/*.json`` are records real runs wrote (``tests/fixtures/make_records.py``
regenerates them); the sections other features add (``faults``, ``phase``, ``resilience_score``,
``capacity``, ``health``, ``alerts``, ``cost_model``) appear in the fixtures named after them.
``hostile()`` plants markup and quote-breaking text wherever the target or the scenario can put a
string.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "records"
NAMES = ("pass", "fail", "faults", "distributed", "capacity", "arrival")
SCRIPT = "<script>alert(1)</script>"
QUOTE = '" onmouseover="x'
BREAKER = f"{SCRIPT}{QUOTE} | `tick` [link](http://e.invalid)\nnext line"
BASE_KEYS = {"schema_version", "run", "sla", "totals", "uptime", "endpoints", "components", "timeline", "errors",
             "generators", "workers"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def hostile() -> dict[str, Any]:
    """The faults fixture with hostile text in every name and message, and a failing endpoint criterion."""
    record = copy.deepcopy(load("faults"))
    record["run"]["scenario"] = BREAKER
    for e in record["endpoints"]:
        e["name"] = f"{e['name']} {BREAKER}"
    for c in record["components"]:
        c["component"] = f"{c['component']}{QUOTE}"
    for e in record["errors"]:
        e["name"] = BREAKER
        e["message"] = f"{SCRIPT} {QUOTE} {e['message']}"
    for f in record["faults"]:
        f["name"] = f"{f['name']} {BREAKER}"
        f["kind"] = QUOTE
    record["health"]["components"] = {f"db{SCRIPT}": comp for comp in record["health"]["components"].values()}
    record["health"]["root_causes"] = [{"component": BREAKER, "rounds": 1, "first_t": 0.0},
                                       {"component": f"{SCRIPT}{QUOTE}", "rounds": 1, "first_t": 1.0}]
    record["generators"][0]["id"] = BREAKER
    record["sla"]["inconclusive"] = [f"worker {BREAKER} went missing"]
    record["sla"]["criteria"].append({"name": f"GET {BREAKER} p95_ms", "scope": f"GET {BREAKER}", "comparator": "<=",
                                      "threshold": 100.0, "actual": 250.0, "margin": -150.0, "passed": False})
    record["cost_model"]["currency"] = "<b>"
    load_section = copy.deepcopy(load("arrival")["load"])  # an open-model run's load, stages named by the scenario
    for stage in load_section["stages"]:
        stage["name"] = f"{stage['name']} {BREAKER}"
    for generator in load_section["per_generator"]:
        generator["id"] = f"{SCRIPT}{QUOTE}"
    record["load"] = load_section
    return record


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
