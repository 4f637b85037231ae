"""The run record: required keys, JSON-safe values, atomic write, re-readable."""

from __future__ import annotations

import json
from pathlib import Path

from reliability.config import parse_scenario
from reliability.metrics import WindowStore
from reliability.record import GeneratorUsage, build_record, read_record, write_record
from reliability.schema import RunRecord
from reliability.schema.sections import Run
from reliability.sla import evaluate
from tests.support.fakes import FakeClock
from tests.support.schemas import assert_valid_record

T0 = 1_700_000_000.0


def _record() -> RunRecord:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    for i in range(300):
        clock.now = 1_700_000_000 + i / 100
        store.record("GET", "/a", 10.0 + i % 7, i % 50 == 0, "HTTP 500 <script>")
    store.note_users(1_700_000_000, 5)
    sla = parse_scenario({}).sla
    snap = store.snapshot()
    gen = GeneratorUsage("local", "local")
    gen.add(clock.now, 95.0, 80.0)
    gen.add(clock.now + 3, 97.0, 81.0)
    run = Run(started_at="2023-11-14T22:13:20.000Z", ended_at="2023-11-14T22:13:23.000Z", duration_s=3.0,
              mode="local", workers=0, locust_version="2.47.0", reliability_version="0.1.0")
    return build_record(verdict=evaluate(snap, sla), snapshot=snap, store=store, run=run,
                        down_error_ratio=sla.down_error_ratio, generators=[gen])


def test_record_has_the_documented_keys(tmp_path: Path) -> None:
    record = _record()
    data = assert_valid_record(record.to_json_dict())
    for key in ("schema_version", "run", "sla", "totals", "uptime", "endpoints", "timeline", "generators"):
        assert key in data
    assert data["schema_version"] == 2
    assert set(data["sla"]) >= {"tier", "percentile", "passed", "highest_tier_met", "criteria"}
    assert set(data["totals"]) >= {"requests", "failures", "error_ratio", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                                   "rps", "percentile", "latency_ms"}
    assert record.totals.requests == 300 and record.totals.failures == 6
    assert record.totals.percentile == "p95" and record.totals.latency_ms == record.totals.p95_ms
    assert record.timeline[0].users == 5 and record.timeline[0].t == 0
    assert record.generators[0].saturated is True
    path = write_record(record, tmp_path / "deep" / "run.json")
    assert read_record(path) == record
    assert read_record(path).to_json_dict() == json.loads(path.read_text())
    assert not list(path.parent.glob(".run-*"))  # no temp file left behind
