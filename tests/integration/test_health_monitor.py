"""The load-run health monitor on a gevent-patched interpreter, as on a Locust master.

The pytest process never imports locust (it would monkey-patch this interpreter), so this file
doubles as the script it tests: run as ``python test_health_monitor.py SCENARIO_JSON SECONDS`` it
imports locust first, starts a :class:`~reliability.health.monitor.HealthMonitor` next to a
greenlet that measures event-loop lag, and prints the record's ``health`` section as one JSON
line. The test freezes PostgreSQL, Redis and the target (SIGSTOP) in the middle: every probe
still ends at its timeout, rounds keep their one-second beat, and the loop never stalls.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import PostgresServer, RedisServer, TargetServer

RESULT_PREFIX = "HEALTH_RESULT "
TIMEOUT_S = 0.5
RUN_S = 7.0
FREEZE_AT_S = 2.0
FREEZE_FOR_S = 2.5


def _main() -> None:  # pragma: no cover - runs in the subprocess
    import locust  # noqa: F401, I001  (first: patches the process, as on a master)
    import gevent

    from reliability.config import parse_scenario
    from reliability.extension import RunContext
    from reliability.health.monitor import HealthMonitor
    from reliability.metrics.windows import WindowStore
    from reliability.schema.sections import Health

    scenario = parse_scenario(json.loads(sys.argv[1]))
    assert scenario.health is not None
    lags: list[float] = []

    def measure_lag() -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    run = RunContext(scenario, WindowStore(), started_at=time.time())
    gevent.spawn(measure_lag)
    monitor = HealthMonitor(scenario.health)
    monitor.on_test_start(run)
    print("READY", flush=True)
    gevent.sleep(float(sys.argv[2]))
    monitor.on_test_stop(run)
    result = monitor.finish(run)
    health = result.sections["health"]
    assert isinstance(health, Health)
    out = {"health": health.model_dump(mode="json", by_alias=True), "reasons": list(result.inconclusive),
           "max_lag_s": max(lags), "criteria": [c.__dict__ for c in result.criteria]}
    print(RESULT_PREFIX + json.dumps(out), flush=True)


@pytest.fixture
def target(postgres_server: PostgresServer, redis_server: RedisServer) -> Any:
    with TargetServer(extra_args=("--dsn", postgres_server.dsn, "--redis-url", redis_server.url)) as server:
        yield server


def test_frozen_dependencies_never_hold_a_probe_or_the_loop(
        postgres_server: PostgresServer, redis_server: RedisServer, target: TargetServer) -> None:
    scenario = {"health": {
        "interval_s": 1, "timeout_s": TIMEOUT_S, "uptime_pct": 99, "resources": {"pid": target.pid},
        "components": {
            "db": {"probe": {"type": "postgres", "dsn": postgres_server.dsn}},
            "cache": {"probe": {"type": "redis", "url": redis_server.url}},
            "api": {"probe": {"type": "http", "url": f"{target.url}/health"}, "depends_on": ["db", "cache"]},
            "ws": {"probe": {"type": "websocket", "url": target.ws_url}, "depends_on": ["api"]},
            "gateway": {"probe": {"type": "gateway", "url": target.url, "username": "demo", "password": "demo"},
                        "depends_on": ["api"]},
        },
    }}
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, __file__, json.dumps(scenario), str(RUN_S)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
    frozen = [p for p in (postgres_server.pid, redis_server.pid, target.pid) if p is not None]
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(FREEZE_AT_S)
        frozen_at = time.time()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(FREEZE_FOR_S)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(next(line for line in out.splitlines() if line.startswith(RESULT_PREFIX))
                        .removeprefix(RESULT_PREFIX))
    health = result["health"]
    assert result["reasons"] == []
    assert result["max_lag_s"] < 0.1, result["max_lag_s"]  # the event loop never waited on a probe
    assert RUN_S - 1 <= health["rounds"] <= RUN_S + 1  # one round a second, frozen servers or not
    for row in health["timeline"]:
        for name, component in row["components"].items():
            assert component["latency_ms"] <= TIMEOUT_S * 1000 + 100, (row["t"], name, component)
    frozen_rows = [row for row in health["timeline"]
                   if frozen_at + 0.6 <= row["epoch_s"] <= frozen_at + FREEZE_FOR_S - 0.6]
    assert frozen_rows
    for row in frozen_rows:
        assert {n: c["status"] for n, c in row["components"].items()} == dict.fromkeys(
            ("db", "cache", "api", "ws", "gateway"), "down")
        assert row["root_causes"] == ["db", "cache"]  # the API's outage is explained by both
    db_down = [c for c in health["transitions"] if c["component"] == "db" and c["to"] == "down"]
    assert db_down and abs(db_down[0]["epoch_s"] - frozen_at) <= 1.2
    assert health["timeline"][-1]["status"] == "healthy"  # recovered after SIGCONT
    assert health["components"]["db"]["uptime_ratio"] < 1.0
    assert set(health["incidents"][0]["root_causes"]) == {"db", "cache"}
    first = health["timeline"][0]["resources"]
    assert first["pid"] == target.pid and first["cpu_pct"] is not None and first["rss_mb"] > 0
    assert first["db_connections"] >= 1  # the target's pool
    (criterion,) = result["criteria"]
    assert criterion["name"] == "health_uptime" and criterion["passed"] is False


if __name__ == "__main__":
    _main()
