"""Fault schedules end to end: a real Locust run (headless local, master + worker, web UI) against
the reference target, faults from ``reliability.faults`` driven by the master, recovery metrics
checked against what the test knows happened.

Each run is bounded by a shape that ends (``-t`` as a backstop) and stays on loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, locust_cmd
from tests.support.schemas import assert_valid_record
from tests.support.servers import PostgresServer, RedisServer, TargetServer, free_port

LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/degradation_user.py")

pytestmark = pytest.mark.slow


@dataclass
class LocustRun:
    """A Locust master (or local runner) subprocess, its workers, and the master's output lines."""

    master: subprocess.Popen[str]
    workers: list[subprocess.Popen[bytes]]
    record_path: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.master.stdout is not None
        for line in self.master.stdout:
            self.lines.append((time.time(), line))

    def output(self) -> str:
        return "".join(line for _, line in self.lines)

    def wait_for(self, needle: str, timeout_s: float = 30.0) -> float:
        """When ``needle`` appeared in the master's output (waits for it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if needle in line:
                    return at
            if self.master.poll() is not None and self.reader is not None and not self.reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not seen; output:\n{self.output()[-4000:]}")

    def finish(self, timeout_s: float = 90.0) -> int:
        code = self.master.wait(timeout_s)
        if self.reader is not None:
            self.reader.join(10)
        return code

    def record(self) -> dict[str, Any]:
        assert self.record_path.exists(), self.output()[-4000:]
        return assert_valid_record(self.record_path)

    def cleanup(self) -> None:
        for proc in (self.master, *self.workers):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        if self.master.stdout is not None:
            self.master.stdout.close()


def launch(tmp_path: Path, scenario: str, host: str, env: dict[str, str] | None = None, *, workers: int = 0,
           web: bool = False, run_time: str = "90s", locustfile: str = LOCUSTFILE) -> LocustRun:
    """Start Locust on ``scenario`` (YAML text): headless local, a master with ``workers``, or the
    web UI with autostart (and autoquit once the shape ends)."""
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(scenario)
    record = tmp_path / "run.json"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    args = ["-f", locustfile, "--host", host, "--scenario", str(scenario_path), "--run-record", str(record),
            "--only-summary", "-t", run_time, "--sla-status-interval", "2"]
    if web:
        args += ["--autostart", "--autoquit", "1", "--web-host", "127.0.0.1", "--web-port", str(free_port())]
    else:
        args += ["--headless"]
    port = free_port()
    if workers:
        args += ["--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
                 "--master-bind-port", str(port)]
    master = subprocess.Popen(locust_cmd(*args), cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    procs = [subprocess.Popen(locust_cmd("-f", locustfile, "--worker", "--master-host", "127.0.0.1",
                                         "--master-port", str(port)),
                              cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    run = LocustRun(master, procs, record)
    run.reader = threading.Thread(target=run._read, daemon=True)
    run.reader.start()
    return run


def faults_now(url: str) -> Any:
    with urllib.request.urlopen(f"{url}/admin/faults", timeout=5) as response:
        return json.load(response)["fault"]


def redis_answers(port: int, timeout_s: float = 0.3) -> bool:
    """PING answered within ``timeout_s`` (a paused Redis holds the command back)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running(run: LocustRun) -> Iterator[LocustRun]:
    try:
        yield run
    finally:
        run.cleanup()


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


@pytest.fixture
def backed_target(postgres_server: PostgresServer, redis_server: RedisServer) -> Iterator[TargetServer]:
    target = TargetServer(extra_args=("--dsn", postgres_server.dsn, "--redis-url", redis_server.url,
                                      "--db-timeout-ms", "300", "--breaker-failures", "5",
                                      "--breaker-cooldown-s", "1"))
    target.start()
    try:
        yield target
    finally:
        target.close()


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
