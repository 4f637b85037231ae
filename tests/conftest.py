"""Shared fixtures: throwaway PostgreSQL, Redis and reference-target servers, and free ports.

Kept light on purpose: nothing here imports locust (importing it monkey-patches the process
with gevent) or a database driver, so unit tests run in a clean interpreter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.support.servers import PostgresServer, RedisServer, TargetServer
from tests.support.servers import free_port as _free_port

ServerT = TypeVar("ServerT", PostgresServer, RedisServer, TargetServer)


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
def free_port() -> Callable[[], int]:
    """A function returning a TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_port
