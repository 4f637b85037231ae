"""Helpers for the fault and chaos proxy tests: servers as subprocesses, timing, and an injector
running in a child process that a test can SIGKILL or SIGSTOP (for dead-man checks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.processes import ROOT, Served, serve
from tests.support.servers import RedisServer

# Builds the fault from the JSON spec on stdin, injects it, says so, and waits to be killed.
INJECTOR = """
import json, sys, time
from reliability.faults import build_fault
from reliability.faults.spec import parse_fault_spec
fault = build_fault(parse_fault_spec(json.loads(sys.stdin.readline())), sys.argv[1])
fault.inject()
print("injected", flush=True)
time.sleep(600)
"""


@contextmanager
def chaos_proxy(*extra: str) -> Iterator[Served]:
    """``python -m reliability.chaosproxy --port 0`` until the block ends (SIGTERM)."""
    with serve(["-m", "reliability.chaosproxy", "--port", "0", "--seed", "7", *extra]) as served:
        yield served


@contextmanager
def reference_target(*extra: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``python -m reliability.target --port 0`` (embedded store) until the block ends."""
    with serve(["-m", "reliability.target", "--port", "0", *extra], env=env) as served:
        yield served


def elapsed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000.0


def redis_client(port: int, timeout_s: float = 5.0) -> redis.Redis:
    """One attempt per command, no hidden retries."""
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                       retry=Retry(NoBackoff(), 0))


class RedisClients:
    """Redis clients made during one test, all closed at its end."""

    def __init__(self) -> None:
        self._made: list[redis.Redis] = []

    def __call__(self, port: int, timeout_s: float = 5.0) -> redis.Redis:
        client = redis_client(port, timeout_s)
        self._made.append(client)
        return client

    def close(self) -> None:
        for client in self._made:
            client.close()


# Fixtures shared by the fault and proxy test modules, which import these functions; the
# fixtures' names are the ``name=`` values.
@pytest.fixture(name="connect")
def connect_fixture() -> Iterator[RedisClients]:
    """Redis clients for one test, closed at its end."""
    clients = RedisClients()
    yield clients
    clients.close()


@pytest.fixture(name="upstream", scope="module")
def upstream_fixture() -> Iterator[RedisServer]:
    """A Redis server for a module's proxies to forward to."""
    with RedisServer() as server:
        yield server


@pytest.fixture(name="proxy_api", scope="module")
def proxy_api_fixture() -> Iterator[Served]:
    """One chaos proxy process per module."""
    with chaos_proxy() as served:
        yield served


def until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> float | None:
    """Seconds until ``check()`` held, or None if it did not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(interval_s)
    return None


class Injector:
    """A child process that injects one fault and then idles, to be killed without reverting."""

    def __init__(self, spec: dict[str, Any], name: str = "dead-man") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", INJECTOR, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != "injected":
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"injector failed: {line}{err[-2000:]}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
