"""A headless Locust run with a ``health:`` scenario section and Redis stopped in the middle.

The run record's health timeline must show the outage where it happened: the cache goes down
within 2 s of the moment Redis was stopped and comes back within 2 s of its restart, the cache
is named the root cause, the target's CPU, memory and database connections sit on the same
timeline, the probe-based uptime criterion is graded, and no secret reaches the record or the
log.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, locust_cmd
from tests.support.schemas import assert_valid_record
from tests.support.servers import PostgresServer, RedisServer, TargetServer

LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/health_api_user.py")
API_PASSWORD = "api-secret-2718"
PG_PASSWORD = "pg-secret-3141"  # trust auth ignores it; it must still never be written
RUN_S = 14
STOP_AT_S = 5.0
RESTART_AT_S = 9.0

pytestmark = pytest.mark.slow


@pytest.fixture
def target(postgres_server: PostgresServer, redis_server: RedisServer) -> Iterator[TargetServer]:
    dsn = postgres_server.dsn.replace("postgres@", f"postgres:{PG_PASSWORD}@")
    args = ("--dsn", dsn, "--redis-url", redis_server.url, "--users", f"demo:{API_PASSWORD}")
    with TargetServer(extra_args=args) as server:
        yield server


def _scenario(tmp_path: Path, pg: PostgresServer, redis: RedisServer, target: TargetServer) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"""
name: health e2e
sla: {{tier: bronze}}
health:
  interval_s: 1s
  timeout_s: 500ms
  uptime_pct: 50
  resources: {{port: {target.port}}}
  components:
    db: {{probe: {{type: postgres, dsn: "${{E2E_PG_DSN}}"}}}}
    cache: {{probe: {{type: redis, url: "{redis.url}"}}, critical: false}}
    api: {{probe: {{type: http, url: "{target.url}/health"}}, depends_on: [db, cache]}}
    ws: {{probe: {{type: websocket, url: "{target.ws_url}"}}, depends_on: [api]}}
    gateway:
      probe: {{type: gateway, url: "{target.url}", username: demo, password: "${{RELIABILITY_API_PASSWORD}}"}}
      depends_on: [api]
""")
    return path


def _change(health: dict[str, Any], component: str, to: str) -> dict[str, Any]:
    changes = [c for c in health["transitions"] if c["component"] == component and c["to"] == to]
    assert changes, health["transitions"]
    first: dict[str, Any] = changes[0]
    return first


def test_redis_outage_lands_on_the_health_timeline(postgres_server: PostgresServer, redis_server: RedisServer,
                                                   target: TargetServer, tmp_path: Path) -> None:
    record_path = tmp_path / "run.json"
    env = {
        "PYTHONUNBUFFERED": "1",
        "RELIABILITY_API_PASSWORD": API_PASSWORD,
        "E2E_PG_DSN": postgres_server.dsn.replace("postgres@", f"postgres:{PG_PASSWORD}@"),
    }
    cmd = locust_cmd("-f", LOCUSTFILE, "--headless", "-u", "5", "-r", "5", "-t", f"{RUN_S}s", "--host", target.url,
                     "--scenario", str(_scenario(tmp_path, postgres_server, redis_server, target)),
                     "--run-record", str(record_path), "--sla-status-interval", "5")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, **env})
    launched = time.time()
    try:
        time.sleep(STOP_AT_S)
        redis_server.stop()
        stopped_at = time.time()
        time.sleep(RESTART_AT_S - STOP_AT_S)
        redis_server.start()
        restarted_at = time.time()
        out, _ = proc.communicate(timeout=RUN_S + 40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, 3), out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    text = record_path.read_text()
    for secret in (API_PASSWORD, PG_PASSWORD):
        assert secret not in text and secret not in out
    record = assert_valid_record(json.loads(text))
    assert record["sla"]["inconclusive"] == []
    health = record["health"]
    assert RUN_S - 2 <= health["rounds"] <= RUN_S + 1, health["rounds"]
    assert launched < health["timeline"][0]["epoch_s"] < launched + 5

    down = _change(health, "cache", "down")
    assert abs(down["epoch_s"] - stopped_at) <= 2.0, (down, stopped_at)
    back = _change(health, "cache", "healthy")
    assert abs(back["epoch_s"] - restarted_at) <= 2.0, (back, restarted_at)
    assert _change(health, "api", "degraded")["epoch_s"] == down["epoch_s"]
    (incident,) = health["incidents"]
    assert incident["root_causes"] == ["cache"] and incident["affected"] == ["api"]
    assert set(incident["held"]) == {"ws", "gateway"}
    assert health["root_causes"][0]["component"] == "cache"
    cache = health["components"]["cache"]
    assert 0.5 < cache["uptime_ratio"] < 1.0 and cache["target"] == redis_server.url
    assert health["components"]["db"]["target"].startswith("postgresql://postgres:***@")
    assert health["uptime_ratio"] == 1.0  # the cache is not critical: the system stayed up
    assert health["status"] == "healthy"
    rows = health["timeline"]
    assert all(r["resources"]["pid"] == target.pid for r in rows)
    assert max(r["resources"]["cpu_pct"] for r in rows) > 0  # the target worked under the load
    assert all(r["resources"]["db_connections"] >= 1 for r in rows)
    # the load timeline and the health timeline share epoch seconds
    load_seconds = {row["epoch_s"] for row in record["timeline"]}
    assert sum(int(r["epoch_s"]) in load_seconds for r in rows) >= len(rows) - 2
    criterion = next(c for c in record["sla"]["criteria"] if c["name"] == "health_uptime")
    assert criterion["passed"] and criterion["actual"] == 1.0 and criterion["scope"] == "health"
    assert "health: cache healthy -> down" in out
    # what the probes cost the target: one /health request a round, next to ~100 requests/s of load
    with urllib.request.urlopen(f"{target.url}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    health_requests = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                          if line.startswith("reliability_target_requests_total{") and 'route="/health"' in line)
    assert health["rounds"] <= health_requests <= health["rounds"] + 1
    assert record["totals"]["requests"] > 20 * health_requests
