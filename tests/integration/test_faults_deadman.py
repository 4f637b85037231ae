"""Dead-man's timeouts: a child process injects a fault and is then SIGKILLed (or frozen with
SIGSTOP, as a hung master) without reverting; the backend must be healthy again within the
fault's ``dead_man_s`` plus a small margin."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest
import redis

from reliability.faults.httpcall import call
from reliability.faults.proxy import ToxiproxyClient
from tests.support.clients import RedisClients
from tests.support.processes import Injector, chaos_proxy, reference_target
from tests.support.servers import PostgresServer, RedisServer
from tests.support.waits import seconds_until

pytestmark = pytest.mark.timeout(60)
MARGIN_S = 0.8


def _redis_answers(connect: RedisClients, port: int) -> bool:
    try:
        return bool(connect(port, timeout_s=0.2).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize(("signum", "within_s"), [(signal.SIGKILL, 0.5), (signal.SIGSTOP, 1.5)],
                         ids=["killed", "frozen"])
def test_redis_pause_ends_when_the_injector_dies_or_hangs(redis_server: RedisServer, connect: RedisClients,
                                                          signum: int, within_s: float) -> None:
    # dead_man_s 1.5: 0.5 s slices. Killed, its queued slices are dropped with the connection (one
    # slice left); frozen, the queued ones still run (three slices, the dead-man).
    with Injector({"type": "redis.pause", "url": redis_server.url, "dead_man_s": 1.5}) as injector:
        time.sleep(0.8)
        assert not _redis_answers(connect, redis_server.port)
        injector.signal(signum)
        back = seconds_until(lambda: _redis_answers(connect, redis_server.port), within_s + MARGIN_S)
        assert back is not None, f"Redis still paused {within_s + MARGIN_S}s after the injector's {signum!r}"


def _lock_released(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            conn.execute("SET lock_timeout = '100ms'")
            conn.execute("SELECT 1 FROM deadman_items LIMIT 1")
        return True
    except psycopg.errors.LockNotAvailable:
        return False


@pytest.mark.parametrize(("signum", "within_s"), [(signal.SIGKILL, 0.3), (signal.SIGSTOP, 2.0)],
                         ids=["killed", "frozen"])
def test_postgres_lock_is_released_by_the_server(postgres_server: PostgresServer, signum: int,
                                                 within_s: float) -> None:
    dsn = postgres_server.dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS deadman_items (id int)")
    # Frozen, the injector keeps its socket open: only the server-side
    # idle_in_transaction_session_timeout (= dead_man_s) ends the session.
    with Injector({"type": "postgres.lock", "dsn": dsn, "table": "deadman_items", "dead_man_s": 2.0}) as injector:
        assert not _lock_released(dsn)
        started = time.monotonic()
        injector.signal(signum)
        back = seconds_until(lambda: _lock_released(dsn), within_s + MARGIN_S)
        assert back is not None, f"lock still held {time.monotonic() - started:.1f}s after {signum!r}"
        if signum == signal.SIGSTOP:
            assert back > 1.0  # it was the timeout, not a closed socket


def test_postgres_outage_loop_stops_when_the_injector_dies(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.dsn

    def usable() -> bool:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
                time.sleep(0.1)
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    with Injector({"type": "postgres.outage", "dsn": dsn, "interval_ms": 20, "dead_man_s": 5.0}) as injector:
        assert not usable()
        injector.signal(signal.SIGKILL)
        # client_connection_check_interval (1 s) notices the dead client well before dead_man_s.
        back = seconds_until(usable, 1.0 + 2 * MARGIN_S)
        assert back is not None


def test_proxy_toxic_expires_by_itself() -> None:
    with RedisServer() as upstream, chaos_proxy() as api:
        client = ToxiproxyClient(api.url)
        client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
        with Injector({"type": "proxy.latency", "api_url": api.url, "proxy": "cache", "latency_ms": 300,
                       "dead_man_s": 1.0}) as injector:
            assert [t["name"] for t in client.toxics("cache")] == ["chaos-dead-man"]
            time.sleep(1.2)  # the injector's lease keeps it past its ttl
            assert client.toxics("cache")
            injector.signal(signal.SIGKILL)
            assert seconds_until(lambda: not client.toxics("cache"), 1.0 + MARGIN_S) is not None


def test_proxy_down_comes_back_by_itself() -> None:
    with RedisServer() as upstream, chaos_proxy() as api:
        client = ToxiproxyClient(api.url)
        client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
        with Injector({"type": "proxy.down", "api_url": api.url, "proxy": "cache", "dead_man_s": 1.0}) as injector:
            assert client.proxy("cache")["enabled"] is False
            injector.signal(signal.SIGKILL)
            assert seconds_until(lambda: client.proxy("cache")["enabled"], 1.0 + MARGIN_S) is not None


def test_target_http_fault_expires_by_itself() -> None:
    with reference_target() as target, Injector({"type": "http.error", "url": target.url, "dead_man_s": 1.0}) as inj:
        assert call("GET", f"{target.url}/api/items").status == 503
        inj.signal(signal.SIGKILL)
        assert seconds_until(lambda: call("GET", f"{target.url}/api/items").status == 401, 1.0 + MARGIN_S) is not None


def test_suspended_process_is_resumed_by_the_watchdog() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Injector({"type": "process.suspend", "pid": sleeper.pid, "dead_man_s": 1.0}) as injector:
            assert psutil.Process(sleeper.pid).status() == psutil.STATUS_STOPPED
            injector.signal(signal.SIGKILL)
            resumed = seconds_until(lambda: psutil.Process(sleeper.pid).status() != psutil.STATUS_STOPPED,
                                    1.0 + MARGIN_S)
            assert resumed is not None
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_load_spike_stops_when_the_injector_dies() -> None:
    with reference_target() as target:
        def served() -> float:
            text = call("GET", f"{target.url}/metrics").body.decode()
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("reliability_target_requests_total{") and 'route="/health"' in line)

        with Injector({"type": "load.spike", "url": f"{target.url}/health", "concurrency": 4}) as injector:
            time.sleep(0.3)
            assert served() > 20
            injector.signal(signal.SIGKILL)

            def quiet() -> bool:
                before = served()
                time.sleep(0.2)
                return served() - before < 3

            assert seconds_until(quiet, 2.0) is not None
