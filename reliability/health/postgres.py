"""PostgreSQL probe: connect, ``SELECT 1``, connections in use vs ``max_connections``, slow queries.

A fresh connection per check (what a new application connection would meet), with the
connect timeout, ``statement_timeout`` and the socket bounded by the deadline (libpq cannot wait
less than 2 s to connect; the orchestrator's own timeout cuts in before that).

* down: cannot connect, or ``SELECT 1`` fails;
* degraded: client connections in use reach ``max_connections_ratio`` of ``max_connections``, or
  more than ``max_slow_queries`` queries have been running longer than ``slow_query_ms``;
* healthy otherwise. The data carries ``connections`` (in use, this probe's excluded),
  ``max_connections``, ``slow_queries`` and ``longest_query_s``.

Example::

    spec = PostgresProbeSpec(type="postgres", dsn="postgresql://app@127.0.0.1:5432/app")
    measure(PostgresProbe(spec, "db"), timeout_s=0.8).data["connections"]
"""

from __future__ import annotations

import math

import psycopg

from reliability.health.base import Deadline, Finding, Status
from reliability.health.spec import PostgresProbeSpec
from reliability.jsontypes import JsonData

ACTIVITY_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()),
       current_setting('max_connections')::int,
       count(*) FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active'
                        AND query_start < now() - make_interval(secs => %(slow_s)s)),
       coalesce(extract(epoch FROM max(now() - query_start)
                FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active')), 0)
FROM pg_stat_activity
"""
APPLICATION_NAME = "reliability-health"


def grade_activity(in_use: int, max_connections: int, slow: int, longest_s: float,
                   spec: PostgresProbeSpec) -> Finding:
    """The finding for one sample of ``pg_stat_activity`` (pure, for unit tests)."""
    data: dict[str, JsonData] = {"connections": in_use, "max_connections": max_connections,
                            "slow_queries": slow, "longest_query_s": round(longest_s, 3)}
    detail = f"connections {in_use}/{max_connections}, {slow} slow queries"
    problems = []
    if max_connections > 0 and in_use / max_connections >= spec.max_connections_ratio:
        problems.append(f"connections at {in_use / max_connections:.0%} of max_connections")
    if slow > spec.max_slow_queries:
        problems.append(f"{slow} queries running > {spec.slow_query_ms:g} ms (longest {longest_s:.1f} s)")
    return Finding.graded(problems, detail, data)


class PostgresProbe:
    """Connect and query within the deadline; see the module docstring."""

    kind = "postgres"

    def __init__(self, spec: PostgresProbeSpec, target: str) -> None:
        self.spec = spec
        self._dsn = spec.dsn.get_secret_value()
        self.target = target

    def check(self, deadline: Deadline) -> Finding:
        statement_ms = max(1, int(deadline.remaining_s() * 1000))
        conn = psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=max(2, math.ceil(deadline.remaining_s())),
            application_name=APPLICATION_NAME,
            options=f"-c statement_timeout={statement_ms}",
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                if cur.fetchone() != (1,):
                    return Finding(Status.DOWN, "SELECT 1 did not return 1")
                deadline.remaining_s()
                cur.execute(ACTIVITY_SQL, {"slow_s": self.spec.slow_query_ms / 1000.0})
                row = cur.fetchone()
        finally:
            conn.close()
        assert row is not None
        in_use, max_connections, slow, longest_s = row
        return grade_activity(int(in_use), int(max_connections), int(slow), float(longest_s), self.spec)

    def close(self) -> None:
        pass
