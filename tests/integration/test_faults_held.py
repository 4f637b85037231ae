"""While a fault is held, ``still_applied()`` re-checks it on its data path (real PostgreSQL and
Redis servers, real processes): None while it is in effect, one line once someone or something
has undone it behind our back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from reliability.faults import build_fault
from reliability.faults.base import hold_check
from reliability.faults.postgres import app_name
from reliability.faults.spec import parse_fault_spec
from tests.support.servers import PostgresServer, RedisServer, TargetServer

pytestmark = pytest.mark.timeout(90)


def _fault(spec: dict[str, Any], name: str) -> Any:
    fault = build_fault(parse_fault_spec(spec), name)
    check, why = hold_check(fault)
    assert check is not None and why is None, why
    return fault


@pytest.fixture(scope="module")
def dsn(postgres_server: PostgresServer) -> Iterator[str]:
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS held_items (id int PRIMARY KEY)")
    yield postgres_server.dsn


def _terminate(admin: psycopg.Connection[Any], fault_name: str) -> int:
    row = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                        (app_name(fault_name),)).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("mode", ["ACCESS EXCLUSIVE", "EXCLUSIVE", "SHARE"])
def test_a_lock_is_held_until_its_session_is_terminated(dsn: str, mode: str) -> None:
    fault = _fault({"type": "postgres.lock", "dsn": dsn, "table": "held_items", "mode": mode, "dead_man_s": 10},
                   "held-lock")
    with psycopg.connect(dsn, autocommit=True) as admin:
        fault.inject()
        try:
            assert fault.still_applied() is None
            assert _terminate(admin, "held-lock") == 1
            gone = fault.still_applied()
            assert gone is not None and "no lock held" in gone, gone
        finally:
            fault.revert()
    assert fault.verify().healthy


def test_an_outage_is_applied_while_new_connections_are_cut(dsn: str) -> None:
    fault = _fault({"type": "postgres.outage", "dsn": dsn, "interval_ms": 20, "dead_man_s": 10}, "held-outage")
    with psycopg.connect(dsn, autocommit=True, application_name=app_name("admin")) as admin:  # spared by the loop
        fault.inject()
        try:
            for _ in range(3):
                assert fault.still_applied() is None
            assert _terminate(admin, "held-outage") == 1  # the terminator itself, as a DBA would
            time.sleep(0.2)
            gone = fault.still_applied()
            assert gone is not None and "terminator loop has stopped" in gone, gone
            # its connection gone, nothing cuts a new client any more
            with psycopg.connect(dsn, autocommit=True) as client:
                time.sleep(0.1)
                client.execute("SELECT 1")
        finally:
            fault.revert()
    assert fault.verify().healthy


def test_exhaustion_is_applied_while_a_new_connection_is_refused(dsn: str) -> None:
    admin = psycopg.connect(dsn, autocommit=True)  # opened before: the fault leaves them their slots
    pooled = psycopg.connect(dsn, autocommit=True)
    fault = _fault({"type": "postgres.exhaust", "dsn": dsn, "dead_man_s": 20}, "held-exhaust")
    try:
        fault.inject()
        try:
            assert fault.still_applied() is None
            pooled.close()  # a client gives a slot back: the probe gets in, but the fault holds all it took
            time.sleep(0.3)
            assert fault.still_applied() is None
            held = len(fault.held)
            assert _terminate(admin, "held-exhaust") == held
            time.sleep(0.3)
            gone = fault.still_applied()
            assert gone == f"a new connection got in: 0 of the {held} held sessions left", gone
        finally:
            fault.revert()
    finally:
        admin.close()
        pooled.close()
    assert fault.verify().healthy


def test_exhaustion_leaving_slots_free_counts_its_held_sessions(dsn: str) -> None:
    admin = psycopg.connect(dsn, autocommit=True)
    fault = _fault({"type": "postgres.exhaust", "dsn": dsn, "leave_free": 2, "dead_man_s": 20}, "held-free")
    try:
        fault.inject()
        try:
            assert fault.still_applied() is None  # the probe gets in, and every held session is there
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                          "LIMIT 3", (app_name("held-free"),))
            time.sleep(0.3)
            gone = fault.still_applied()
            assert gone is not None and "held sessions left" in gone, gone
        finally:
            fault.revert()
    finally:
        admin.close()


def test_slow_redis_is_applied_while_the_server_spends_the_time(redis_server: RedisServer) -> None:
    period_ms = 300
    fault = _fault({"type": "redis.slow", "url": redis_server.url, "block_ms": 100, "period_ms": period_ms},
                   "held-slow")
    fault.inject()
    try:
        time.sleep(0.7)
        assert fault.still_applied() is None
        time.sleep(0.7)
        assert fault.still_applied() is None
    finally:
        fault.revert()
    # a new baseline, so the EVAL time between the last verdict and the revert is not counted: a
    # verdict within one period of the last keeps the old baseline, so wait a period first
    time.sleep(period_ms / 1000 + 0.05)
    fault.still_applied()
    time.sleep(0.7)  # the script no longer runs: the server spends nothing on it
    gone = fault.still_applied()
    assert gone is not None and "in EVAL" in gone and "not the 200 ms planned" in gone, gone


@pytest.fixture
def sleeper() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    marker = f"reliability-held-{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker], start_new_session=True)
    try:
        yield marker, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_a_suspension_is_applied_until_someone_resumes_the_process(
        sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    _marker, proc = sleeper
    fault = _fault({"type": "process.suspend", "pid": proc.pid, "dead_man_s": 30}, "held-stop")
    fault.inject()
    try:
        assert fault.still_applied() is None
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.2)
        gone = fault.still_applied()
        assert gone is not None and f"pid {proc.pid} is" in gone and "again" in gone, gone
    finally:
        fault.revert()


def test_a_kill_by_match_is_applied_until_the_process_is_back(sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    marker, proc = sleeper
    fault = _fault({"type": "process.kill", "match": marker, "restart_command": "true", "restart_timeout_s": 1},
                   "held-kill")
    fault.inject()
    proc.wait(10)
    assert fault.still_applied() is None
    again = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker], start_new_session=True)
    try:
        gone = fault.still_applied()
        assert gone == f"running again: pid {again.pid}", gone
    finally:
        again.kill()
        again.wait(10)


def test_a_kill_by_pid_and_the_generic_kinds_say_why_nothing_re_checks_them(
        sleeper: tuple[str, subprocess.Popen[bytes]]) -> None:
    _marker, proc = sleeper
    specs: list[tuple[dict[str, Any], str]] = [
        ({"type": "process.kill", "pid": proc.pid, "restart_command": "true"}, "killed by pid"),
        ({"type": "shell", "inject": "true", "revert": "true"}, "shell command"),
        ({"type": "webhook", "inject": {"url": "http://127.0.0.1:9/on"}, "revert": {"url": "http://127.0.0.1:9/off"}},
         "webhook"),
    ]
    for spec, reason in specs:
        check, why = hold_check(build_fault(parse_fault_spec(spec), "unchecked"))
        assert check is None and why is not None and reason in why, (spec, why)


def test_a_load_spike_is_applied_while_its_process_runs(target_server: TargetServer) -> None:
    fault = _fault({"type": "load.spike", "url": f"{target_server.url}/healthz", "concurrency": 2,
                    "dead_man_s": 10}, "held-load")
    fault.inject()
    try:
        assert fault.still_applied() is None
        os.kill(fault._proc.pid, signal.SIGKILL)
        fault._proc.wait(10)
        assert fault.still_applied() == "the load process exited with -9"
    finally:
        fault.revert()
