"""The run record's contract: the shipped JSON Schema is current, and every version reads."""

from __future__ import annotations

import copy
import json
from typing import Any

from reliability.schema import SCHEMA_PATH, SCHEMA_VERSION, RunRecord, json_schema, parse_record
from reliability.schema.schema import render_schema
from reliability.schema.sections import Degradation, Fault
from tests.support.schemas import schema_errors


def test_the_shipped_schema_is_generated_from_the_types() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), \
        "record.schema.json is stale: run `python -m reliability.schema --write`"
    assert json_schema()["properties"]["schema_version"] == {"const": SCHEMA_VERSION, "title": "Schema Version"}


def test_a_written_record_has_every_field_and_validates() -> None:
    record = RunRecord(faults=[Fault(name="db", degradation=Degradation(percentile="p99", peak_latency_ms=80.0))])
    data = record.to_json_dict()
    assert schema_errors(data) == []
    assert "capacity" not in data and "health" not in data  # feature sections only when the run has them
    assert data["faults"][0]["degradation"]["peak_latency_ms"] == 80.0
    assert set(data["faults"][0]) == set(Fault.model_fields)  # "not measured" is written as null


def test_the_schema_rejects_undeclared_and_mistyped_fields() -> None:
    data: dict[str, Any] = RunRecord().to_json_dict()
    bad = copy.deepcopy(data)
    bad["totals"]["peak_p99_ms"] = 1.0
    bad["sla"]["passed"] = "yes"
    errors = schema_errors(bad)
    assert any(e.startswith("totals:") and "peak_p99_ms" in e for e in errors), errors
    assert any(e.startswith("sla/passed:") for e in errors), errors
    missing = copy.deepcopy(data)
    del missing["uptime"]["ratio"]
    assert any("'ratio' is a required property" in e for e in schema_errors(missing))


def test_a_version_1_record_is_upgraded() -> None:
    v1 = {"schema_version": 1, "sla": {"tier": "gold", "percentile": "p99.9", "passed": True},
          "totals": {"requests": 10, "p95_ms": 5.0, "p99.9_ms": 9.0},
          "faults": [{"name": "db", "degradation": {"peak_p99.9_ms": 70.0, "p99.9_ms": 40.0,
                                                    "baseline_p99.9_ms": 8.0, "min_throughput_ratio": 0.5}}],
          "stages": [{"name": "steady", "users": 5, "p99.9_ms": 12.0}],
          "capacity": {"tier": "gold", "knee": {"users": 20, "rps": 100.0, "p99.9_ms": 30.0},
                       "tiers": {"gold": {"users": 20, "rps": 100.0, "p99.9_ms": 30.0}, "platinum": None},
                       "steps": [{"users": 20, "p99.9_ms": 30.0, "passed": {"gold": True}}]}}
    record = parse_record(json.loads(json.dumps(v1)))
    assert record.schema_version == 2
    assert (record.totals.percentile, record.totals.latency_ms, record.totals.p95_ms) == ("p99.9", 9.0, 5.0)
    assert record.faults is not None
    d = record.faults[0].degradation
    assert d is not None
    assert (d.percentile, d.peak_latency_ms, d.latency_ms, d.baseline_latency_ms) == ("p99.9", 70.0, 40.0, 8.0)
    assert d.min_throughput_ratio == 0.5
    assert record.stages is not None and record.stages[0].latency_ms == 12.0
    capacity = record.capacity
    assert capacity is not None and capacity.knee is not None and capacity.percentile == "p99.9"
    assert capacity.knee.latency_ms == capacity.steps[0].latency_ms == 30.0
    assert capacity.tiers["platinum"] is None
    assert schema_errors(record.to_json_dict()) == []


def test_what_does_not_fit_is_dropped_and_the_rest_kept() -> None:
    record = parse_record({"schema_version": 2, "run": None, "sla": {"passed": False, "tier": ["x"]},
                           "timeline": [{"t": 0, "requests": 3}, {"t": "bad"}, 7],
                           "faults": [None, {"name": "db", "from_a_newer_writer": 1}],
                           "health": {"components": {"a": None}}})
    assert record.run.started_at is None
    assert record.sla.passed is False and record.sla.tier is None
    assert [s.requests for s in record.timeline] == [3]
    assert record.faults is not None and [f.name for f in record.faults] == ["db"]
    assert record.health is not None and record.health.components == {}
    assert parse_record("not a record") == RunRecord()
