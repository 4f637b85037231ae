"""PostgresUser against a real PostgreSQL, run by Locust in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.harness import assert_outage_handled, run_harness, run_with_outage
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.timeout(90)

PASSWORD = "s3cret-not-logged"


def _env(pg: PostgresServer) -> dict[str, str]:
    # trust auth ignores the password; it is there to prove it never shows up anywhere
    return {"RELIABILITY_PG_DSN": pg.dsn.replace("postgres@", f"postgres:{PASSWORD}@")}


def test_queries_become_samples_in_locust_stats(tmp_path: Path, postgres_server: PostgresServer) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.postgres import PostgresUser

        class Db(PostgresUser):
            wait_time = constant(0.05)
            pool_size = 3

            @task
            def work(self):
                rows = self.query("three rows", "SELECT generate_series(1, %s)", (3,))
                assert rows == [(1,), (2,), (3,)]
                assert self.query("no fetch", "SELECT 1", fetch=False) == []
                assert self.query("no rows to fetch", "SET search_path TO public") == []
                assert self.query("bad sql", "SELECT * FROM no_such_table") is None

        def harness_report(env):
            return {"pool": Db.pool_stats()}
    """, users=3, run_time_s=2.0, env=_env(postgres_server))
    result.assert_clean()
    stats = result.stats
    assert stats["postgres three rows"]["requests"] > 10
    assert stats["postgres three rows"]["failures"] == 0
    assert stats["postgres bad sql"]["failures"] == stats["postgres bad sql"]["requests"] > 10
    sample = result.named("three rows")[0]
    assert sample.request_type == "postgres"
    assert sample.context["component"] == "db"
    assert sample.context["pool_wait_ms"] >= 0
    assert 0 < sample.response_time_ms < 1000
    assert {s.error for s in result.named("bad sql")} == {"UndefinedTable"}
    assert result.extra["pool"]["pool_size"] == 3
    assert PASSWORD not in result.stderr
    assert "pool wait" not in {s.name for s in result.samples}  # opt-in only


def test_fifty_users_sleep_concurrently(tmp_path: Path, postgres_server: PostgresServer) -> None:
    """psycopg cooperates with gevent: 50 x pg_sleep(0.2) overlap instead of taking 10 s."""
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.postgres import PostgresUser

        class Sleeper(PostgresUser):
            wait_time = constant(60)
            pool_size = 50

            @task
            def nap(self):
                self.query("nap", "SELECT pg_sleep(0.2)")
    """, users=50, run_time_s=2.0, env=_env(postgres_server))
    result.assert_clean()
    naps = result.named("nap")
    assert len(naps) == 50 and all(s.ok for s in naps)
    assert all(s.response_time_ms >= 199 for s in naps)
    first = min(s.start_time - s.context["pool_wait_ms"] / 1000 for s in naps)
    wall_s = max(s.end_time for s in naps) - first
    assert wall_s < 0.8, f"50 concurrent pg_sleep(0.2) took {wall_s:.2f}s of wall time"


def test_pool_wait_is_reported_when_users_outnumber_connections(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.postgres import PostgresUser

        class Crowd(PostgresUser):
            wait_time = constant(0)
            pool_size = 2
            report_pool_wait = True

            @task
            def nap(self):
                self.query("nap", "SELECT pg_sleep(0.05)")
    """, users=8, run_time_s=2.0, env=_env(postgres_server))
    result.assert_clean()
    waits = result.named("pool wait")
    naps = result.named("nap")
    assert waits and abs(len(waits) - len(naps)) <= 8  # a user stopped between the two samples
    # 8 users share 2 connections: a query waits for about 3 others' 50 ms
    assert max(s.response_time_ms for s in waits) > 100
    assert max(s.context["pool_wait_ms"] for s in naps) > 100
    assert all(40 < s.response_time_ms < 500 for s in naps)  # the query time excludes the wait


def test_query_timeout_fails_the_sample_and_the_user_goes_on(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.postgres import PostgresUser

        class Slow(PostgresUser):
            wait_time = constant(0.05)
            pool_size = 1
            query_timeout_s = 0.2

            @task
            def work(self):
                self.query("slow", "SELECT pg_sleep(5)")
                self.query("fast", "SELECT 1")
    """, users=1, run_time_s=2.0, env=_env(postgres_server))
    result.assert_clean()
    slow = result.named("slow")
    assert slow and all(s.error == "QueryTimeout" for s in slow)
    assert all(s.response_time_ms < 1000 for s in slow)
    fast = result.named("fast")
    assert fast and sum(s.ok for s in fast) >= len(fast) - 1


def test_missing_dsn_stops_the_test_with_a_clear_message(tmp_path: Path) -> None:
    result = run_harness(tmp_path, """
        from locust import task
        from reliability.users.postgres import PostgresUser

        class NoDsn(PostgresUser):
            @task
            def work(self):
                self.query("one", "SELECT 1")
    """, users=1, run_time_s=1.0, env={"RELIABILITY_PG_DSN": ""})
    assert "RELIABILITY_PG_DSN" in result.stderr
    assert result.samples == []


def test_server_stop_gives_failures_then_recovery(tmp_path: Path, postgres_server: PostgresServer) -> None:
    run = run_with_outage(tmp_path, """
        from locust import constant, task
        from reliability.users.postgres import PostgresUser

        class Db(PostgresUser):
            wait_time = constant(0.05)
            pool_size = 4
            pool_timeout_s = 1.0

            @task
            def work(self):
                self.query("one", "SELECT 1")
    """, postgres_server, users=4, env=_env(postgres_server))
    assert postgres_server.is_running()
    assert_outage_handled(run, users=4)
    assert {s.error for s in run.during() if not s.ok} <= {"AdminShutdown", "OperationalError", "PoolTimeout"}
    assert PASSWORD not in run.result.stderr
