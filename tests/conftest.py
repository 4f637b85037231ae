"""Shared fixtures, built on ``tests/support``: throwaway PostgreSQL, Redis and reference-target
servers, free ports, the chaos proxy, the pattern server, an alert receiver, and Redis clients
closed at the end of a test.

Kept light on purpose: nothing here imports locust (importing it monkey-patches the process
with gevent) or a database driver at import time, so unit tests run in a clean interpreter; a
fixture that needs a driver imports it when it runs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.support.processes import Served, chaos_proxy
from tests.support.servers import PostgresServer, RedisServer, TargetServer, serve_in_thread
from tests.support.servers import free_port as _free_port
from tests.support.weblocust import Hooks, serve_pattern

if TYPE_CHECKING:
    from tests.support.clients import RedisClients
    from tests.support.locust_runs import Run

ServerT = TypeVar("ServerT", PostgresServer, RedisServer, TargetServer)


@pytest.fixture(scope="session", autouse=True)
def interruptible_children() -> Iterator[None]:
    """The signal tests send SIGINT to the Locust processes they start. A suite started in the
    background of a non-interactive shell (``bash -c '... &'``) inherits SIGINT ignored, and an
    ignored signal stays ignored across ``exec``: every child would ignore Ctrl-C and those tests
    fail for the launch, not the code. A handler (unlike SIG_IGN) is reset to the default on exec."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if before == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="session", autouse=True)
def revert_journals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs started by tests keep their revert journals in the session's temporary directory
    (children inherit the variable), never in the user's state directory."""
    before = os.environ.get("RELIABILITY_JOURNAL_DIR")
    os.environ["RELIABILITY_JOURNAL_DIR"] = str(tmp_path_factory.mktemp("journals"))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RELIABILITY_JOURNAL_DIR", None)
        else:
            os.environ["RELIABILITY_JOURNAL_DIR"] = before


def _serve(server: ServerT) -> Iterator[ServerT]:
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (initdb is slow). Tests that stop or restart it
    must leave it running; a test that needs a private one builds its own ``PostgresServer``."""
    yield from _serve(PostgresServer())


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server per test (it starts in milliseconds)."""
    yield from _serve(RedisServer())


@pytest.fixture
def target_server() -> Iterator[TargetServer]:
    """The reference target (in-memory store) in its own process, fresh per test."""
    yield from _serve(TargetServer())


@pytest.fixture
def backed_target(postgres_server: PostgresServer, redis_server: RedisServer) -> Iterator[TargetServer]:
    """The reference target on the session's PostgreSQL and a fresh Redis, with a short database
    timeout and a breaker that opens after 5 failures for 1 s."""
    target = TargetServer(extra_args=("--dsn", postgres_server.dsn, "--redis-url", redis_server.url,
                                      "--db-timeout-ms", "300", "--breaker-failures", "5",
                                      "--breaker-cooldown-s", "1"))
    yield from _serve(target)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """``reliability run`` commands a test started (``locust_runs.start``); all killed at its end."""
    started: list[Run] = []
    yield started
    for run in started:
        run.kill_all()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_port


@pytest.fixture
def connect() -> Iterator[RedisClients]:
    """Redis clients for one test (``connect(port)``), closed at its end."""
    from tests.support.clients import RedisClients  # imports the driver: only when used

    clients = RedisClients()
    yield clients
    clients.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[RedisServer]:
    """A Redis server for a module's proxies to forward to."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy_api() -> Iterator[Served]:
    """One chaos proxy process per module."""
    with chaos_proxy() as served:
        yield served


@pytest.fixture
def pattern() -> Iterator[Served]:
    """The pattern server, 5 ms per answer, no errors until told (``pattern_set``)."""
    with serve_pattern() as served:
        yield served


@pytest.fixture
def hooks() -> Iterator[str]:
    """An alert receiver on a free port (its URL); what it got is in ``Hooks.received``."""
    Hooks.received = []
    with serve_in_thread(Hooks) as url:
        yield url
