"""Each probe against a real server: the healthy path, the failing paths, and a hanging server
(SIGSTOP) that never holds a probe past its timeout.

Servers: the session's PostgreSQL, a fresh Redis per test, the reference target (embedded store)
and a Prometheus scraping it plus a port where nothing listens, all on loopback.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import redis
from pydantic import SecretStr

from reliability.health.base import ProbeResult, Status
from reliability.health.gateway import GatewayProbe
from reliability.health.http import HttpProbe
from reliability.health.orchestrator import Component, HealthCheck, build_probe
from reliability.health.postgres import PostgresProbe
from reliability.health.prometheus import PrometheusProbe
from reliability.health.redis import RedisProbe
from reliability.health.spec import (
    ComponentSpec,
    GatewayProbeSpec,
    HttpProbeSpec,
    PostgresProbeSpec,
    PrometheusProbeSpec,
    RedisProbeSpec,
    WebSocketProbeSpec,
)
from reliability.health.websocket import WebSocketProbe
from tests.support.servers import PostgresServer, PrometheusServer, RedisServer, TargetServer, free_port

TIMEOUT_S = 0.5
SLACK_S = 0.15  # thread start-up and scheduling on a busy machine


@pytest.fixture(scope="module")
def target() -> Iterator[TargetServer]:
    with TargetServer() as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(target: TargetServer) -> Iterator[PrometheusServer]:
    with PrometheusServer([f"127.0.0.1:{target.port}", f"127.0.0.1:{free_port()}"]) as server:
        server.wait_until_scraped()
        yield server


@contextmanager
def suspended(pid: int | None) -> Iterator[None]:
    """SIGSTOP a server (it accepts TCP connections in the kernel but never answers); always resume."""
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def probe_once(spec: Any, timeout_s: float = 2.0) -> ProbeResult:
    """One check through the orchestrator, as the CLI runs it."""
    check = HealthCheck([Component("x", build_probe(ComponentSpec(probe=spec)), timeout_s)])
    try:
        return check.run().results["x"]
    finally:
        check.close()


def assert_bounded(spec: Any) -> None:
    started = time.monotonic()
    result = probe_once(spec, TIMEOUT_S)
    elapsed = time.monotonic() - started
    assert result.status is Status.DOWN, result
    assert elapsed < TIMEOUT_S + SLACK_S, elapsed
    assert result.latency_ms <= (TIMEOUT_S + SLACK_S) * 1000, result


# -- HTTP API ----------------------------------------------------------------------------------------


def test_http_healthy_and_refused(target: TargetServer) -> None:
    ok = probe_once(HttpProbeSpec(type="http", url=f"{target.url}/health"))
    assert ok.status is Status.HEALTHY, ok
    assert ok.data["body_status"] == "healthy" and ok.data["components"] == {"db": "up", "cache": "up"}
    missing = probe_once(HttpProbeSpec(type="http", url=f"{target.url}/no-such-page"))
    assert missing.status is Status.DOWN and missing.detail.startswith("HTTP 404")
    refused = probe_once(HttpProbeSpec(type="http", url=f"http://127.0.0.1:{free_port()}/health"))
    assert refused.status is Status.DOWN and "refused" in refused.detail.lower()


def test_suspended_target_holds_no_probe_past_its_timeout(target: TargetServer) -> None:
    specs = [
        HttpProbeSpec(type="http", url=f"{target.url}/health"),
        WebSocketProbeSpec(type="websocket", url=target.ws_url),
        GatewayProbeSpec(type="gateway", url=target.url, username="demo", password=SecretStr("demo")),
    ]
    with suspended(target.pid):
        for spec in specs:
            assert_bounded(spec)
    assert probe_once(specs[0]).status is Status.HEALTHY


# -- WebSocket ----------------------------------------------------------------------------------------


def test_websocket_echo_and_failures(target: TargetServer) -> None:
    ok = probe_once(WebSocketProbeSpec(type="websocket", url=target.ws_url))
    assert ok.status is Status.HEALTHY, ok
    assert 0 < ok.data["rtt_ms"] < 1000 and ok.data["connect_ms"] > 0
    not_ws = probe_once(WebSocketProbeSpec(type="websocket", url=f"ws://127.0.0.1:{target.port}/health"))
    assert not_ws.status is Status.DOWN, not_ws
    refused = probe_once(WebSocketProbeSpec(type="websocket", url=f"ws://127.0.0.1:{free_port()}/ws"))
    assert refused.status is Status.DOWN


# -- security gateway ---------------------------------------------------------------------------------


def test_gateway_accepts_valid_and_rejects_the_rest(target: TargetServer) -> None:
    spec = GatewayProbeSpec(type="gateway", url=target.url, username="demo", password=SecretStr("demo"))
    probe = GatewayProbe(spec, "gw")
    ok = probe_once(spec)
    assert ok.status is Status.HEALTHY, ok
    assert ok.data == {"no_token": 401, "malformed_token": 401, "wrong_token": 403, "valid_token": 200}
    assert "demo" not in ok.detail
    probe.close()


def test_gateway_failures(target: TargetServer) -> None:
    wrong_password = probe_once(GatewayProbeSpec(type="gateway", url=target.url, username="demo",
                                                 password=SecretStr("not-the-password")))
    assert wrong_password.status is Status.DOWN and "login as 'demo' answered HTTP 401" in wrong_password.detail
    assert "not-the-password" not in wrong_password.detail
    open_path = probe_once(GatewayProbeSpec(type="gateway", url=target.url, path="/health",
                                            token=SecretStr("x" * 20)))
    assert open_path.status is Status.DOWN and open_path.detail.startswith("fails open: no_token, malformed_token")
    revoked = probe_once(GatewayProbeSpec(type="gateway", url=target.url, token=SecretStr("revoked-token-123")))
    assert revoked.status is Status.DOWN and revoked.detail.startswith("valid token rejected")
    assert "revoked-token-123" not in revoked.detail


# -- PostgreSQL ---------------------------------------------------------------------------------------


def test_postgres_healthy_reports_connections(postgres_server: PostgresServer) -> None:
    ok = probe_once(PostgresProbeSpec(type="postgres", dsn=SecretStr(postgres_server.dsn)))
    assert ok.status is Status.HEALTHY, ok
    assert ok.data["max_connections"] == 300 and ok.data["connections"] >= 0 and ok.data["slow_queries"] == 0


def test_postgres_slow_queries_and_busy_connections_degrade(postgres_server: PostgresServer) -> None:
    started = threading.Event()

    def sleeper() -> None:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
            started.set()
            conn.execute("SELECT pg_sleep(1.5)")

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        started.wait(5)
        time.sleep(0.4)
        dsn = SecretStr(postgres_server.dsn)
        slow = probe_once(PostgresProbeSpec(type="postgres", dsn=dsn, slow_query_ms=200))
        busy = probe_once(PostgresProbeSpec(type="postgres", dsn=dsn, max_connections_ratio=0.001))
    finally:
        thread.join()
    assert slow.status is Status.DEGRADED and slow.data["slow_queries"] >= 1, slow
    assert slow.data["longest_query_s"] >= 0.2
    assert busy.status is Status.DEGRADED and "of max_connections" in busy.detail, busy


def test_postgres_failures_hide_the_password(postgres_server: PostgresServer) -> None:
    dsn = f"postgresql://postgres:pg-secret-pw@127.0.0.1:{free_port()}/postgres"
    refused = probe_once(PostgresProbeSpec(type="postgres", dsn=SecretStr(dsn)))
    assert refused.status is Status.DOWN and "pg-secret-pw" not in refused.detail
    no_db_dsn = SecretStr(postgres_server.dsn.rsplit("/", 1)[0] + "/nope")
    no_db = probe_once(PostgresProbeSpec(type="postgres", dsn=no_db_dsn))
    assert no_db.status is Status.DOWN and 'database "nope" does not exist' in no_db.detail


def test_suspended_postgres_holds_no_probe_past_its_timeout(postgres_server: PostgresServer) -> None:
    with suspended(postgres_server.pid):
        assert_bounded(PostgresProbeSpec(type="postgres", dsn=SecretStr(postgres_server.dsn)))


# -- Redis --------------------------------------------------------------------------------------------


def test_redis_healthy_reports_memory_clients_and_hit_ratio(redis_server: RedisServer) -> None:
    spec = RedisProbeSpec(type="redis", url=SecretStr(redis_server.url))
    probe = RedisProbe(spec, "cache")
    client = redis.Redis.from_url(redis_server.url)
    client.set("k", "v")
    for key in ("k", "k", "k", "missing"):
        client.get(key)
    check = HealthCheck([Component("cache", probe, 2.0)])
    first = check.run().results["cache"]
    assert first.status is Status.HEALTHY, first
    assert first.data["hit_ratio"] == 0.75 and first.data["connected_clients"] >= 2
    assert first.data["used_memory_bytes"] > 0 and first.data["maxclients"] > 0
    client.get("missing")
    assert check.run().results["cache"].data["hit_ratio"] == 0.0  # since the previous check
    client.config_set("maxmemory", str(first.data["used_memory_bytes"] * 2))
    full = probe_once(RedisProbeSpec(type="redis", url=SecretStr(redis_server.url), max_memory_ratio=0.3))
    assert full.status is Status.DEGRADED and "of maxmemory" in full.detail, full
    client.close()
    check.close()


def test_redis_stopped_and_suspended(redis_server: RedisServer) -> None:
    spec = RedisProbeSpec(type="redis", url=SecretStr(redis_server.url.replace("redis://", "redis://:redis-pw@")))
    with suspended(redis_server.pid):
        assert_bounded(spec)
    redis_server.stop()
    down = probe_once(spec)
    assert down.status is Status.DOWN and "refused" in down.detail.lower() and "redis-pw" not in down.detail


# -- Prometheus ---------------------------------------------------------------------------------------


def test_prometheus_up_query(prometheus: PrometheusServer, target: TargetServer) -> None:
    live = f'up{{instance="127.0.0.1:{target.port}"}}'
    ok = probe_once(PrometheusProbeSpec(type="prometheus", url=prometheus.url, query=live))
    assert ok.status is Status.HEALTHY and ok.data == {"series": 1, "zero_series": []}, ok
    some_down = probe_once(PrometheusProbeSpec(type="prometheus", url=prometheus.url))
    assert some_down.status is Status.DEGRADED and some_down.data["series"] == 2, some_down
    assert some_down.data["zero_series"] == [prometheus.targets[1].join(["target/", ""])]
    bad = probe_once(PrometheusProbeSpec(type="prometheus", url=prometheus.url, query="up{"))
    assert bad.status is Status.DOWN and bad.detail.startswith("query 'up{' failed")


def test_prometheus_down_and_suspended(prometheus: PrometheusServer) -> None:
    refused = probe_once(PrometheusProbeSpec(type="prometheus", url=f"http://127.0.0.1:{free_port()}"))
    assert refused.status is Status.DOWN
    with suspended(prometheus.pid):
        assert_bounded(PrometheusProbeSpec(type="prometheus", url=prometheus.url))


def test_probe_classes_report_their_kind() -> None:
    kinds = {HttpProbe.kind, WebSocketProbe.kind, GatewayProbe.kind, PostgresProbe.kind, RedisProbe.kind,
             PrometheusProbe.kind}
    assert kinds == {"http", "websocket", "gateway", "postgres", "redis", "prometheus"}
