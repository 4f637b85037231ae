"""Run-record fixtures for the report tests: real records, and hostile text planted in them.

``tests/fixtures/records/*.json`` are records real runs wrote (``tests/fixtures/make_records.py``
regenerates them); the sections other features add (``faults``, ``phase``, ``resilience_score``,
``capacity``, ``health``, ``alerts``, ``cost_model``) appear in the fixtures named after them.
``hostile()`` plants markup and quote-breaking text wherever the target or the scenario can put a
string.

Example::

    html = render(hostile(), "html")
    assert SCRIPT not in html
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.processes import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "records"
NAMES = ("pass", "fail", "faults", "distributed", "capacity", "arrival")
SCRIPT = "<script>alert(1)</script>"
QUOTE = '" onmouseover="x'
BREAKER = f"{SCRIPT}{QUOTE} | `tick` [link](http://e.invalid)\nnext line"


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
