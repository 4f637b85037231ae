"""The run record: required keys, JSON-safe values, atomic write, re-readable."""

from __future__ import annotations

import json
from pathlib import Path

from reliability.config import parse_scenario
from reliability.metrics import WindowStore
from reliability.record import GeneratorUsage, RunInfo, build_record, read_record, write_record
from reliability.sla import evaluate


class Clock:
    t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def _record() -> dict[str, object]:
    clock = Clock()
    store = WindowStore(clock=clock)
    for i in range(300):
        clock.t = 1_700_000_000 + i / 100
        store.record("GET", "/a", 10.0 + i % 7, i % 50 == 0, "HTTP 500 <script>")
    store.note_users(1_700_000_000, 5)
    sla = parse_scenario({}).sla
    snap = store.snapshot()
    gen = GeneratorUsage("local", "local")
    gen.add(clock.t, 95.0, 80.0)
    gen.add(clock.t + 3, 97.0, 81.0)
    run: RunInfo = {"started_at": "2023-11-14T22:13:20.000Z", "ended_at": "2023-11-14T22:13:23.000Z",
                    "duration_s": 3.0, "mode": "local", "workers": 0, "locust_version": "2.47.0",
                    "reliability_version": "0.1.0", "scenario": None, "aborted": None}
    return dict(build_record(verdict=evaluate(snap, sla), snapshot=snap, store=store, run=run,
                             down_error_ratio=sla.down_error_ratio, generators=[gen]))


def test_record_has_the_documented_keys(tmp_path: Path) -> None:
    record = _record()
    for key in ("schema_version", "run", "sla", "totals", "uptime", "endpoints", "timeline", "generators"):
        assert key in record
    assert set(record["sla"]) >= {"tier", "percentile", "passed", "highest_tier_met", "criteria"}  # type: ignore[arg-type]
    assert set(record["totals"]) >= {"requests", "failures", "error_ratio", "p50_ms", "p95_ms", "p99_ms",  # type: ignore[arg-type]
                                     "max_ms", "rps"}
    assert record["totals"]["requests"] == 300 and record["totals"]["failures"] == 6  # type: ignore[index]
    assert record["timeline"][0]["users"] == 5 and record["timeline"][0]["t"] == 0  # type: ignore[index]
    assert record["generators"][0]["saturated"] is True  # type: ignore[index]
    path = write_record(record, tmp_path / "deep" / "run.json")  # type: ignore[arg-type]
    assert read_record(path) == json.loads(path.read_text())
    assert not list(path.parent.glob(".run-*"))  # no temp file left behind
