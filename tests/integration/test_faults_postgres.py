"""PostgreSQL faults against a real server: queries wait, connections drop or are refused; then
revert + verify."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from reliability.faults import build_fault
from reliability.faults.postgres import app_name
from reliability.faults.spec import parse_fault_spec
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def dsn(postgres_server: PostgresServer) -> Iterator[str]:
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS hot_items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO hot_items VALUES (1, 'one') ON CONFLICT DO NOTHING")
    yield postgres_server.dsn


def _query_ms(dsn: str, sql: str = "SELECT name FROM hot_items WHERE id = 1", timeout_ms: int = 400) -> float:
    """Milliseconds one query took; raises psycopg's QueryCanceled past ``timeout_ms``."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"SET statement_timeout = {timeout_ms}")
        started = time.perf_counter()
        conn.execute(sql)
        return (time.perf_counter() - started) * 1000.0


def test_lock_makes_queries_wait_until_reverted(dsn: str) -> None:
    fault = build_fault(parse_fault_spec({"type": "postgres.lock", "dsn": dsn, "table": "hot_items",
                                          "dead_man_s": 1.2}), "db-slow")
    fault.revert()
    fault.inject()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            _query_ms(dsn)
        # Past the dead-man timeout the lease has kept the session (and its lock) alive.
        time.sleep(1.6)
        with pytest.raises(psycopg.errors.QueryCanceled):
            _query_ms(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT state FROM pg_stat_activity WHERE application_name = %s",
                               (app_name("db-slow"),)).fetchone()
        assert row == ("idle in transaction",)
    finally:
        fault.revert()
    assert _query_ms(dsn) < 100.0
    fault.revert()
    check = fault.verify()
    assert check.healthy and "no chaos sessions left" in check.detail, check


def test_lock_mode_exclusive_blocks_writes_not_reads(dsn: str) -> None:
    fault = build_fault(parse_fault_spec({"type": "postgres.lock", "dsn": dsn, "table": "hot_items",
                                          "mode": "EXCLUSIVE", "dead_man_s": 5}), "db-writes")
    fault.inject()
    try:
        assert _query_ms(dsn) < 200.0
        with pytest.raises(psycopg.errors.QueryCanceled):
            _query_ms(dsn, "UPDATE hot_items SET name = 'uno' WHERE id = 1")
    finally:
        fault.revert()
    assert fault.verify().healthy


def test_lock_on_a_missing_table_fails_in_one_line_and_leaves_nothing(dsn: str) -> None:
    fault = build_fault(parse_fault_spec({"type": "postgres.lock", "dsn": dsn, "table": "no_such_table"}), "x")
    with pytest.raises(Exception, match=r'^x \(postgres.lock\) inject on .*: relation "no_such_table" does not exist$'):
        fault.inject()
    fault.revert()
    with psycopg.connect(dsn, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            (app_name("x"),)).fetchone()
    assert left == (0,)
    check = fault.verify()  # the table it was told to guard does not exist: not healthy
    assert not check.healthy and "no_such_table" in check.detail


def test_outage_cuts_existing_and_new_connections_until_reverted(dsn: str) -> None:
    fault = build_fault(parse_fault_spec({"type": "postgres.outage", "dsn": dsn, "interval_ms": 20,
                                          "dead_man_s": 1.0}), "db-down")
    victim = psycopg.connect(dsn, autocommit=True)
    fault.inject()
    try:
        time.sleep(0.1)
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        time.sleep(1.2)  # past statement_timeout: the loop was started again
        failures = 0
        for _ in range(5):
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
                    time.sleep(0.06)
                    conn.execute("SELECT 1")
            except psycopg.OperationalError:
                failures += 1
        assert failures == 5
    finally:
        fault.revert()
        victim.close()
    assert _query_ms(dsn) < 100.0
    fault.revert()
    assert fault.verify().healthy


def test_exhaustion_refuses_new_connections_until_reverted(dsn: str) -> None:
    fault = build_fault(parse_fault_spec({"type": "postgres.exhaust", "dsn": dsn, "dead_man_s": 20}), "no-slots")
    fault.inject()
    try:
        assert "too many clients" in (fault.refusal or "")  # type: ignore[attr-defined]
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            psycopg.connect(dsn, connect_timeout=3)
    finally:
        fault.revert()
    assert _query_ms(dsn) < 100.0
    fault.revert()
    assert fault.verify().healthy
