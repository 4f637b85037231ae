"""Fault schedules end to end: a real Locust run (headless local, master + worker, web UI) against
the reference target, faults from ``reliability.faults`` driven by the master, recovery metrics
checked against what the test knows happened.

Each run is bounded by a shape that ends (``-t`` as a backstop) and stays on loopback.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import faults_now
from tests.support.locust_runs import launch, running
from tests.support.servers import PostgresServer, RedisServer, TargetServer, redis_answers

pytestmark = pytest.mark.slow


def only_fault(record: dict[str, Any]) -> dict[str, Any]:
    assert len(record["faults"]) == 1, record["faults"]
    fault: dict[str, Any] = record["faults"][0]
    assert fault["state"] == "reverted" and fault["verified_healthy"] is True, fault
    return fault


# -- the reference target in memory: HTTP faults through its admin API --------------------------------


def http_scenario(tier: str, name: str, fault: str) -> str:
    """8 steady users; ``fault`` (a YAML flow mapping) from +3 s for 3 s; the run ends 4 s later."""
    return f"""
sla: {{tier: {tier}}}
recovery: {{warmup_s: 1s, windows: 2, band_slack_ms: 20}}
shape: {{type: steady, users: 8, ramp_s: 1s, tail_s: 4s}}
faults:
  - name: {name}
    at_s: 3s
    hold_s: 3s
    fault: {fault}
"""


def test_distributed_errors_fail_fast_and_recover(target_server: TargetServer, tmp_path: Path) -> None:
    scenario = http_scenario("gold", "api errors",
                             f'{{type: http.error, url: "{target_server.url}", status: 503, dead_man_s: 5s}}')
    with running(launch(tmp_path, scenario, target_server.url, workers=1)) as run:
        code = run.finish()
        record = run.record()
    assert code == 3, run.output()[-3000:]  # every request failed for 3 s: gold is not met
    assert record["run"]["mode"] == "master" and record["run"]["workers"] == 1
    fault = only_fault(record)
    assert faults_now(target_server.url) is None
    assert fault["reverted_because"] == "its hold time is over"
    assert fault["reverted_at_s"] - fault["injected_at_s"] == pytest.approx(3.0, abs=0.5)
    assert fault["error_ratio"] >= 0.6 and fault["graceful"] is False  # the edge seconds are half faulty
    assert fault["fail_fast"] is True  # injected 503s answer at once
    assert fault["time_to_detect_s"] is not None and fault["time_to_detect_s"] <= 2.0
    assert fault["time_to_recover_s"] is not None and fault["time_to_recover_s"] <= 2.0
    assert fault["burn_rate"] > 100  # ~100 % errors against a 0.5 % error target
    phases = [row["phase"] for row in record["timeline"]]
    assert phases[0] == "baseline" and "fault" in phases and phases[-1] == "baseline"
    fault_rows = [row for row in record["timeline"] if row["phase"] == "fault"]
    assert 3 <= len(fault_rows) <= 5
    assert sum(row["failures"] for row in fault_rows) == fault["failures"]
    assert record["resilience_score"] == fault["score"] and 0 < fault["score"] < 80
    assert record["sla"]["inconclusive"] == []


def test_web_ui_latency_fault_is_graceful(target_server: TargetServer, tmp_path: Path) -> None:
    scenario = http_scenario("silver", "api slow",
                             f'{{type: http.latency, url: "{target_server.url}", latency_ms: 200, dead_man_s: 5s}}')
    with running(launch(tmp_path, scenario, target_server.url, web=True)) as run:
        code = run.finish()
        record = run.record()
    assert code == 0, run.output()[-3000:]  # silver's p95 <= 500 ms holds through +200 ms
    fault = only_fault(record)
    assert fault["graceful"] is True and fault["error_ratio"] == 0.0 and fault["fail_fast"] is None
    assert fault["degradation"]["percentile"] == "p95"
    assert fault["degradation"]["peak_latency_ms"] >= 200
    assert fault["degradation"]["baseline_latency_ms"] < 50
    assert fault["time_to_detect_s"] is not None and fault["time_to_detect_s"] <= 2.0
    assert fault["time_to_recover_s"] is not None and fault["time_to_recover_s"] <= 2.0
    assert record["stages"][0]["name"] == "steady" and record["stages"][0]["users"] == 8


# -- real PostgreSQL and Redis behind the target --------------------------------------------------------


def test_redis_outage_is_bypassed_gracefully(backed_target: TargetServer, redis_server: RedisServer,
                                             tmp_path: Path) -> None:
    scenario = f"""
sla: {{tier: silver}}
recovery: {{warmup_s: 1s, windows: 2}}
shape: {{type: steady, users: 10, ramp_s: 1s, tail_s: 4s}}
faults:
  - name: redis down
    at_s: 4s
    hold_s: 5s
    fault: {{type: redis.pause, url: "{redis_server.url}", dead_man_s: 3s}}
"""
    env = {"DEGRADATION_TASK": "get", "DEGRADATION_WAIT_S": "0.05"}
    with running(launch(tmp_path, scenario, backed_target.url, env)) as run:
        run.finish()
        record = run.record()
    assert redis_answers(redis_server.port)
    fault = only_fault(record)
    assert fault["kind"] == "redis.pause"
    assert fault["post_revert_check"]["detail"].startswith("redis")
    # the cache is bypassed: reads wait for the cache timeout now and then, but none fails
    assert fault["graceful"] is True and fault["error_ratio"] <= 0.01
    assert fault["degradation"]["peak_latency_ms"] > fault["band"]["latency_hi_ms"]
    assert fault["time_to_detect_s"] is not None and fault["time_to_detect_s"] <= 2.0
    assert fault["recovered"] is True
    assert record["sla"]["inconclusive"] == []


class GroundTruth(threading.Thread):
    """Polls, every 20 ms, whether the chaos session holds the lock on ``items`` (from PostgreSQL)
    and the target's circuit breaker (from its /health)."""

    def __init__(self, dsn: str, url: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.url = url
        self.samples: list[tuple[float, bool, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                   "WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted"
                                   ).fetchone()
                try:
                    with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                        breaker = json.load(response)["breaker"]
                except OSError as exc:  # 503 while the breaker is open still carries the body
                    body = getattr(exc, "read", lambda: b"{}")()
                    breaker = json.loads(body or b"{}").get("breaker", "unknown")
                self.samples.append((time.time(), bool(row and row[0]), breaker))
                time.sleep(0.02)

    def recovery_s(self) -> tuple[float, float]:
        """(lock released at, seconds from then until the breaker was closed again)."""
        held = [i for i, (_, locked, _) in enumerate(self.samples) if locked]
        assert held, "the lock was never seen"
        released = self.samples[held[-1] + 1][0]
        assert any(b == "open" for _, locked, b in self.samples if locked), "the breaker never opened"
        closed = next(t for t, _, b in self.samples[held[-1] + 1:] if b == "closed")
        return released, closed - released


def test_db_lock_503s_and_recovery_time_matches_ground_truth(backed_target: TargetServer,
                                                            postgres_server: PostgresServer,
                                                            tmp_path: Path) -> None:
    scenario = f"""
sla: {{tier: bronze}}
recovery: {{warmup_s: 1s, windows: 2, band_slack_ms: 30}}
shape: {{type: steady, users: 10, ramp_s: 1s, tail_s: 5s}}
faults:
  - name: items locked
    at_s: 4s
    hold_s: 4s
    fault: {{type: postgres.lock, dsn: "{postgres_server.dsn}", table: items, dead_man_s: 20s}}
"""
    truth = GroundTruth(postgres_server.dsn, backed_target.url)
    truth.start()
    env = {"DEGRADATION_TASK": "list", "DEGRADATION_WAIT_S": "0.05"}
    try:
        with running(launch(tmp_path, scenario, backed_target.url, env)) as run:
            run.finish()
            record = run.record()
    finally:
        truth.stop.set()
        truth.join(10)
    fault = only_fault(record)
    released_at, truth_s = truth.recovery_s()
    reverted_epoch = record["timeline"][0]["epoch_s"] - record["timeline"][0]["t"]  # int(started)
    assert abs(released_at - (reverted_epoch + fault["reverted_at_s"])) < 1.5
    assert fault["time_to_recover_s"] is not None
    assert abs(fault["time_to_recover_s"] - truth_s) <= 1.0, (fault["time_to_recover_s"], truth_s)
    assert fault["graceful"] is False and fault["error_ratio"] > 0.5
    assert fault["fail_fast"] is True  # the open breaker answers 503 at once
    assert any("503" in e["message"] for e in record["errors"])
    assert record["sla"]["inconclusive"] == []
