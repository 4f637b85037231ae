"""``python -m reliability.health SCENARIO`` (the ``reliability health`` command) on a real stack:
PostgreSQL, Redis, the reference target on both, and Prometheus scraping it.

Root cause from the dependency graph: stopping Redis blames the cache (the API only degrades,
the rest held); suspending the API process blames the API (WebSocket, gateway and Prometheus'
view of it follow; the database and cache stay healthy). Secrets from the environment never
reach the output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import PostgresServer, PrometheusServer, RedisServer, TargetServer
from tests.support.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]
PG_PASSWORD = "pg-secret-0451"  # trust auth ignores it; it must still never be printed
API_PASSWORD = "gw-secret-1138"
SCENARIO = """
health:
  interval_s: 1s
  timeout_s: 800ms
  components:
    db: {probe: {type: postgres, dsn: "${HEALTH_PG_DSN}"}}
    cache: {probe: {type: redis, url: "${HEALTH_REDIS_URL}"}, critical: false}
    api: {probe: {type: http, url: "${HEALTH_API}/health"}, depends_on: [db, cache]}
    ws: {probe: {type: websocket, url: "${HEALTH_WS}"}, depends_on: [api]}
    gateway:
      probe: {type: gateway, url: "${HEALTH_API}", username: demo, password: "${HEALTH_API_PASSWORD}"}
      depends_on: [api]
    prom: {probe: {type: prometheus, url: "${HEALTH_PROM}"}, depends_on: [api], critical: false}
"""


class Stack:
    def __init__(self, pg: PostgresServer, redis: RedisServer, target: TargetServer, prom: PrometheusServer,
                 scenario: Path) -> None:
        self.pg, self.redis, self.target, self.prom, self.scenario = pg, redis, target, prom, scenario
        self.env = {
            **os.environ,
            "HEALTH_PG_DSN": pg.dsn.replace("postgres@", f"postgres:{PG_PASSWORD}@"),
            "HEALTH_REDIS_URL": redis.url,
            "HEALTH_API": target.url,
            "HEALTH_WS": target.ws_url,
            "HEALTH_API_PASSWORD": API_PASSWORD,
            "HEALTH_PROM": prom.url,
        }

    def health(self, *args: str, scenario: Path | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "reliability.health", str(scenario or self.scenario), *args],
                              capture_output=True, text=True, timeout=30, env=self.env, cwd=ROOT)
        for secret in (PG_PASSWORD, API_PASSWORD):
            assert secret not in proc.stdout + proc.stderr
        return proc

    def report(self) -> tuple[int, dict[str, Any]]:
        proc = self.health("--json")
        assert proc.stdout, proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    def wait_healthy(self, timeout_s: float = 15.0) -> dict[str, Any]:
        reports: list[tuple[int, dict[str, Any]]] = []

        def healthy() -> bool:
            reports.append(self.report())
            return reports[-1][0] == 0

        wait_until(healthy, timeout_s, interval_s=0.3, what="a healthy report", detail=lambda: str(reports[-1][1]))
        return reports[-1][1]


@pytest.fixture(scope="module")
def stack(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    scenario = tmp_path_factory.mktemp("health") / "scenario.yaml"
    scenario.write_text(SCENARIO)
    with RedisServer() as redis:
        dsn = postgres_server.dsn.replace("postgres@", f"postgres:{PG_PASSWORD}@")
        args = ("--dsn", dsn, "--redis-url", redis.url, "--users", f"demo:{API_PASSWORD}")
        with TargetServer(extra_args=args) as target, PrometheusServer([f"127.0.0.1:{target.port}"]) as prom:
            prom.wait_until_scraped()
            yield Stack(postgres_server, redis, target, prom, scenario)


def test_all_healthy_exits_0_with_a_table(stack: Stack) -> None:
    report = stack.wait_healthy()
    assert report["status"] == "healthy" and report["score"] == 100.0 and report["root_causes"] == []
    assert report["components"]["db"]["data"]["max_connections"] == 300
    proc = stack.health()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["component", "probe", "status", "latency", "detail"]
    assert [line.split()[:3] for line in lines[1:7]] == [
        ["db", "postgres", "healthy"], ["cache", "redis", "healthy"], ["api", "http", "healthy"],
        ["ws", "websocket", "healthy"], ["gateway", "gateway", "healthy"], ["prom", "prometheus", "healthy"]]
    assert lines[-1] == "health: healthy, score 100.0/100"


def test_redis_stopped_blames_the_cache_and_exits_1(stack: Stack) -> None:
    stack.wait_healthy()
    stack.redis.stop()
    try:
        code, report = stack.report()
    finally:
        stack.redis.start()
    assert code == 1, report
    statuses = {name: c["status"] for name, c in report["components"].items()}
    assert statuses == {"db": "healthy", "cache": "down", "api": "degraded", "ws": "healthy",
                        "gateway": "healthy", "prom": "healthy"}
    assert report["root_causes"] == ["cache"] and report["affected"] == ["api"]
    assert report["held"] == ["ws", "gateway", "prom"]  # healthy although the cache below them failed
    assert report["blast_radius"] == {"cache": ["api"]}
    assert report["score"] == pytest.approx(100 * 4.5 / 6, abs=0.01)


def test_suspended_api_is_the_root_cause_and_exits_2_within_the_timeout(stack: Stack) -> None:
    stack.wait_healthy()
    os.kill(stack.target.pid or 0, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # let Prometheus fail a scrape of the frozen target
        started = time.monotonic()
        code, report = stack.report()
        elapsed = time.monotonic() - started
        table = stack.health()
    finally:
        os.kill(stack.target.pid or 0, signal.SIGCONT)
    assert code == 2, report
    assert elapsed < 0.8 + 3.0  # the probe timeout plus interpreter start-up, never a hang
    statuses = {name: c["status"] for name, c in report["components"].items()}
    assert statuses == {"db": "healthy", "cache": "healthy", "api": "down", "ws": "down", "gateway": "down",
                        "prom": "degraded"}
    assert report["components"]["api"]["latency_ms"] <= 900
    assert report["root_causes"] == ["api"]
    assert report["affected"] == ["ws", "gateway", "prom"]
    assert report["healthy"] == ["db", "cache"]
    assert table.stdout.splitlines()[-1] == (
        "health: down, score 41.7/100; root cause: api; affected: ws, gateway, prom; healthy: db, cache")


def test_unusable_scenarios_exit_4(stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: no health here\n")
    proc = stack.health(scenario=empty)
    assert proc.returncode == 4 and "health: the scenario has no health section" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIO.replace("depends_on: [api]}", "depends_on: [apx]}", 1))
    proc = stack.health(scenario=bad)
    assert proc.returncode == 4 and "health.components.ws.depends_on[0]: unknown component 'apx'" in proc.stderr
