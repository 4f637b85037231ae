"""Redis faults against a real redis-server: the effect seen from a client, then revert + verify."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from reliability.faults import build_fault
from reliability.faults.spec import parse_fault_spec
from tests.support.clients import RedisClients
from tests.support.servers import RedisServer
from tests.support.waits import elapsed_ms

pytestmark = pytest.mark.timeout(60)


def test_pause_blocks_every_command_until_reverted_then_verifies(
    redis_server: RedisServer, connect: RedisClients,
) -> None:
    fault = build_fault(parse_fault_spec({"type": "redis.pause", "url": redis_server.url, "dead_man_s": 1.5}),
                        "cache-down")
    fault.revert()  # before inject: a no-op
    client = connect(redis_server.port)
    done: list[float] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            client.get("k")
            done.append(time.monotonic())

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.1)
        injected = time.monotonic()
        fault.inject()
        # Longer than the dead-man (three 0.5 s slices): the chain of pauses is renewed seamlessly.
        time.sleep(2.0)
        reverted = time.monotonic()
        fault.revert()
        assert connect(redis_server.port).ping()
    finally:
        stop.set()
        worker.join(10)
    during = [t for t in done if injected + 0.05 < t < reverted]
    assert during == [], f"{len(during)} commands got through the pause"
    assert any(t > reverted for t in done)
    fault.revert()  # twice: still fine
    check = fault.verify()
    assert check.healthy, check
    assert "PING ok" in check.detail


def test_write_pause_lets_reads_through(redis_server: RedisServer, connect: RedisClients) -> None:
    fault = build_fault(parse_fault_spec({"type": "redis.pause", "url": redis_server.url, "mode": "write",
                                          "dead_man_s": 5}), "writes-down")
    client = connect(redis_server.port, timeout_s=0.3)
    fault.inject()
    try:
        assert client.get("k") is None
        with pytest.raises(redis.TimeoutError):
            client.set("k", "v")
    finally:
        fault.revert()
    assert connect(redis_server.port).set("k", "v")
    assert fault.verify().healthy


def test_memory_pressure_refuses_writes_and_restores_the_config(
    redis_server: RedisServer, connect: RedisClients,
) -> None:
    client = connect(redis_server.port)
    before = client.config_get("maxmemory*")
    fault = build_fault(parse_fault_spec({"type": "redis.memory", "url": redis_server.url}), "oom")
    fault.inject()
    try:
        with pytest.raises(redis.OutOfMemoryError):
            client.set("k", "x" * 10_000)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        fault.revert()
    fault.revert()
    assert client.config_get("maxmemory*") == before
    assert client.set("k", "x" * 10_000)
    check = fault.verify()
    assert check.healthy and "maxmemory=0" in check.detail, check


def test_slow_commands_stall_other_clients_until_reverted(redis_server: RedisServer, connect: RedisClients) -> None:
    fault = build_fault(parse_fault_spec({"type": "redis.slow", "url": redis_server.url, "block_ms": 250,
                                          "period_ms": 400}), "slow")
    client = connect(redis_server.port)
    fault.inject()
    try:
        samples = []
        for _ in range(40):
            samples.append(elapsed_ms(client.ping))
            time.sleep(0.02)
    finally:
        fault.revert()
    assert max(samples) > 100.0
    assert max(elapsed_ms(client.ping) for _ in range(20)) < 50.0
    assert any(entry["command"].startswith(b"EVAL") for entry in client.slowlog_get(10))
    assert fault.verify().healthy
