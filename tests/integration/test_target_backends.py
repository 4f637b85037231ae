"""The reference target on real PostgreSQL and Redis: cache-aside, degradation, breaker, health."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis

from tests.support.clients import Http, logged_in
from tests.support.processes import TargetProcess
from tests.support.servers import PostgresServer, RedisServer
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(90)

DB_TIMEOUT_MS = 300
BREAKER_FAILURES = 3
BREAKER_COOLDOWN_S = 1.0
TEST_DB = "reliability_target"
# The test cluster uses trust auth, so any password works: it is here to prove it never leaks.
DB_PASSWORD = "pg-s3cret"


@pytest.fixture(scope="module")
def target_dsn(postgres_server: PostgresServer) -> str:
    """A database of our own on the shared cluster, so our ``items`` table meets no one else's."""
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DB,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {TEST_DB}")
    base = postgres_server.dsn.rsplit("/", 1)[0].replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    assert DB_PASSWORD in base
    return f"{base}/{TEST_DB}"


@pytest.fixture
def target(target_dsn: str, redis_server: RedisServer) -> Iterator[TargetProcess]:
    args = (
        "--dsn", target_dsn,
        "--redis-url", redis_server.url,
        "--db-timeout-ms", str(DB_TIMEOUT_MS),
        "--breaker-failures", str(BREAKER_FAILURES),
        "--breaker-cooldown-s", str(BREAKER_COOLDOWN_S),
        "--cache-ttl-s", "30",
    )  # fmt: skip
    with TargetProcess(*args) as proc:
        yield proc


@pytest.fixture
def client(target: TargetProcess) -> Iterator[Http]:
    yield from logged_in(target)


def health(client: Http) -> tuple[int, dict[str, object]]:
    reply = client.get("/health", auth=False)
    body = reply.json()
    assert isinstance(body, dict)
    return reply.status, body


def test_schema_and_seed_exist_and_the_dsn_password_never_shows(
    target: TargetProcess, client: Http, target_dsn: str
) -> None:
    with psycopg.connect(target_dsn) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'items'"
            " ORDER BY ordinal_position"
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM items").fetchone()
    assert columns == [
        ("id", "integer"),
        ("name", "text"),
        ("value", "double precision"),
        ("created_at", "timestamp with time zone"),
    ]
    assert count is not None and count[0] >= 300
    assert client.get("/api/report").json()["count"] == count[0]
    status, body = health(client)
    assert status == 200 and body["status"] == "healthy", body
    components = body["components"]
    assert isinstance(components, dict)
    assert "postgres:***@" in components["db"]["detail"]
    shown = [target.ready_line, target.log, client.get("/health").body.decode(), client.get("/metrics").body.decode()]
    assert not any(DB_PASSWORD in text for text in shown)


def test_cache_aside_fills_redis_and_writes_invalidate(client: Http, redis_server: RedisServer) -> None:
    item = client.request("POST", "/api/items", {"name": "pg-item", "value": 42}).json()
    path, key = f"/api/items/{item['id']}", f"item:{item['id']}"
    cache = redis.Redis.from_url(redis_server.url)
    try:
        assert client.get(path).headers["X-Cache"] == "miss"
        assert 0 < cache.pttl(key) <= 30_000
        hit = client.get(path)
        assert hit.headers["X-Cache"] == "hit" and hit.json() == item
        client.request("PUT", path, {"name": "pg-item", "value": 43})
        assert cache.exists(key) == 0, "PUT invalidates"
        assert client.get(path).json()["value"] == 43.0
        client.request("DELETE", path)
        assert cache.exists(key) == 0, "DELETE invalidates"
        assert client.get(path).status == 404
    finally:
        cache.close()


def test_cache_bypass_while_redis_is_stopped_then_recovery(client: Http, redis_server: RedisServer) -> None:
    assert client.get("/api/items/11").status == 200
    redis_server.stop()

    bypass = client.get("/api/items/11")
    assert bypass.status == 200 and bypass.headers["X-Cache"] == "bypass"
    assert bypass.json()["id"] == 11
    assert bypass.elapsed_s < 0.5
    for _ in range(20):
        reply = client.get("/api/items/12")
        assert reply.status == 200, "a cache outage never becomes a 5xx"
        assert reply.headers["X-Cache"] == "bypass"
    status, body = health(client)
    assert status == 200 and body["status"] == "degraded"
    components = body["components"]
    assert isinstance(components, dict)
    assert components["cache"]["status"] == "down" and components["db"]["status"] == "up"

    redis_server.start()
    wait_until(lambda: client.get("/api/items/11").headers["X-Cache"] in ("miss", "hit"), timeout_s=5)
    assert client.get("/api/items/11").headers["X-Cache"] == "hit"
    assert health(client)[1]["status"] == "healthy"


def test_a_hung_redis_costs_one_short_timeout_then_is_bypassed(client: Http, redis_server: RedisServer) -> None:
    assert client.get("/api/items/13").status == 200
    pid = redis_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing: the worst kind of outage
    try:
        replies = [client.get("/api/items/13") for _ in range(10)]
        assert all(r.status == 200 and r.headers["X-Cache"] == "bypass" for r in replies)
        assert replies[0].elapsed_s < 0.5, "bounded by the short socket timeout, with no client retry"
        assert sum(r.elapsed_s for r in replies[1:]) < 0.5, "then skipped for a while, not waited on"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: client.get("/api/items/13").headers["X-Cache"] in ("miss", "hit"), timeout_s=5)


def test_breaker_opens_while_items_is_locked_and_closes_after(client: Http, target_dsn: str) -> None:
    assert client.get("/api/items?limit=1").status == 200
    locker = psycopg.connect(target_dsn)
    try:
        # psycopg opens a transaction on the first statement; the lock is held until rollback.
        locker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        timeouts = [client.get("/api/items?limit=1") for _ in range(BREAKER_FAILURES)]
        assert [r.status for r in timeouts] == [504] * BREAKER_FAILURES
        assert all(r.elapsed_s < DB_TIMEOUT_MS / 1000 + 0.5 for r in timeouts)

        fast = client.get("/api/items?limit=1")
        assert fast.status == 503 and fast.json() == {"error": "database circuit open"}
        assert fast.elapsed_s < 0.1, "an open breaker fails fast, without a database call"
        assert 1 <= int(fast.headers["Retry-After"]) <= BREAKER_COOLDOWN_S + 1
        assert client.request("POST", "/api/items", {"name": "x", "value": 1}).status == 503
        status, body = health(client)
        assert status == 503 and body["status"] == "down" and body["breaker"] == "open"
    finally:
        locker.rollback()
        locker.close()

    time.sleep(BREAKER_COOLDOWN_S + 0.1)
    assert health(client)[1]["breaker"] == "half_open"
    probe = client.get("/api/items?limit=1")
    assert probe.status == 200, "the half-open probe succeeds and closes the breaker"
    status, body = health(client)
    assert status == 200 and body["breaker"] == "closed" and body["status"] == "healthy"
    assert [client.get("/api/report").status for _ in range(5)] == [200] * 5


def test_health_is_down_while_postgres_is_stopped_and_recovers(client: Http, postgres_server: PostgresServer) -> None:
    postgres_server.stop()
    try:
        status, body = health(client)
        assert status == 503 and body["status"] == "down"
        components = body["components"]
        assert isinstance(components, dict)
        assert components["db"]["status"] == "down" and components["cache"]["status"] == "up"
        replies = [client.get("/api/items?limit=1") for _ in range(BREAKER_FAILURES + 2)]
        assert all(r.status in (503, 504) for r in replies), [r.status for r in replies]
        assert replies[-1].json() == {"error": "database circuit open"}
    finally:
        postgres_server.start()
    wait_until(lambda: client.get("/api/items?limit=1").status == 200, timeout_s=20, interval_s=0.2)
    wait_until(lambda: health(client)[1]["status"] == "healthy", timeout_s=10)
