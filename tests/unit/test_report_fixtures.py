"""Record fixtures for the report tests, and checks that they keep the run record's shape.

``tests/fixtures/records/*.json`` follow README's run record; the keys other features add
(``faults``, ``phase``, ``resilience_score``, ``capacity``, ``health``, ``cost_model``) appear in
the fixtures named after them. ``hostile()`` plants markup and quote-breaking text wherever the
target or the scenario can put a string.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "records"
NAMES = ("pass", "fail", "faults", "distributed", "capacity")
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
    record["health"]["root_causes"] = [BREAKER, {"component": SCRIPT, "evidence": QUOTE}]
    record["generators"][0]["id"] = BREAKER
    record["sla"]["inconclusive"] = [f"worker {BREAKER} went missing"]
    record["sla"]["criteria"].append({"name": f"GET {BREAKER} p95_ms", "scope": f"GET {BREAKER}", "comparator": "<=",
                                      "threshold": 100.0, "actual": 250.0, "margin": -150.0, "passed": False})
    record["cost_model"]["currency"] = "<b>"
    return record


def runner_shaped() -> dict[str, Any]:
    """The faults fixture in the shape the fault runner and health timeline write: ISO times next to
    ``*_at_s``, ``peak_latency_ms``, an ``error_budget`` block, a ``post_revert_check``, health
    ``uptime_ratio`` and per-round ``health.timeline`` instead of ``states``."""
    record = copy.deepcopy(load("faults"))
    started = record["timeline"][0]["epoch_s"]
    for f in record["faults"]:
        at = {k: record["timeline"][0]["epoch_s"] + _rel(f[k], started) for k in ("injected_at", "reverted_at")}
        d = f.pop("degradation")
        f.update({
            "type": f.pop("kind"), "kind": None, "state": "reverted",
            "injected_at": "2026-11-27T11:46:40.000Z", "reverted_at": None,  # the *_s keys are preferred
            "injected_at_s": at["injected_at"] - started, "reverted_at_s": at["reverted_at"] - started,
            "degradation": {"percentile": "p95", "peak_latency_ms": d["peak_p95_ms"],
                            "peak_error_ratio": d["peak_error_ratio"],
                            "lowest_throughput_ratio": d["min_throughput_ratio"]},
            "error_budget": {"burn_rate": f.pop("burn_rate"), "consumed": f.pop("budget_consumed")},
            "post_revert_check": {"healthy": f.pop("verified_healthy"), "detail": "ok"},
            "recovered": True, "note": None, "inject_error": None, "revert_error": None,
        })
    health = record["health"]
    rounds = []
    for t in range(0, 90, 1):
        statuses = {}
        for name, comp in health["components"].items():
            current = [st["status"] for st in comp["states"] if st["t"] <= t]
            statuses[name] = {"status": current[-1], "latency_ms": 1.0}
        rounds.append({"t": float(t), "epoch_s": started + t, "status": "healthy", "components": statuses,
                       "root_causes": []})
    record["health"] = {
        "interval_s": 1.0, "rounds": len(rounds), "uptime_ratio": 0.88,
        "components": {name: {"probe": name, "uptime_ratio": comp["uptime"], "last_status": "healthy"}
                       for name, comp in health["components"].items()},
        "root_causes": [{"component": "cache", "rounds": 11, "first_t": 55.0}],
        "timeline": rounds,
    }
    return record


def _rel(value: object, started: float) -> float:
    if isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - started
    assert isinstance(value, int | float)
    return float(value)


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
    assert {r["phase"] for r in faults["timeline"]} == {"baseline", "fault", "recovery"}
    distributed = load("distributed")
    assert distributed["run"]["mode"] == "master" and distributed["workers"]["lost"]
    assert distributed["sla"]["inconclusive"]
    assert "knee" in load("capacity")["capacity"]
