"""PostgresUser: named, timed PostgreSQL queries through a shared psycopg 3 connection pool.

Import order matters: ``locust`` is imported before ``psycopg`` on purpose. Importing locust
monkey-patches the process for gevent; psycopg 3 picks its wait strategy when it is imported and
cooperates with gevent only if ``select`` is already patched then. Imported the other way round,
50 users running ``pg_sleep(0.2)`` take 10 s instead of 0.2 s, because each query blocks the
whole process.
"""

from __future__ import annotations

import time
from typing import ClassVar

import locust  # noqa: F401  (before any driver: it patches the process for gevent)

# isort: split
import gevent
import psycopg
from locust import User
from locust.env import Environment
from psycopg import pq
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from reliability.users._base import ComponentContext, fire_request, user_setting

REQUEST_TYPE = "postgres"
POOL_WAIT_NAME = "pool wait"
DSN_ENV = "RELIABILITY_PG_DSN"

Row = TupleRow  # psycopg's default row: one value per column


class QueryTimeout(Exception):
    """A query ran longer than ``PostgresUser.query_timeout_s`` (client side; its connection is dropped)."""


class _SharedPool:
    """One pool per user class and process, opened by the first user and closed by the last."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Row]], url: str) -> None:
        self.pool = pool
        self.url = url
        self.users = 0


def _redacted_url(dsn: str) -> str:
    """host:port/dbname of a DSN, without user or password: safe to put in every sample."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgresql://"
    return f"postgresql://{parts.get('host', '')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


class PostgresUser(ComponentContext, User):
    """Abstract base for users that query PostgreSQL; each query is a Locust sample.

    Samples have request type ``postgres``, the name you give, ``response_time`` in float ms
    measured with ``perf_counter`` from the moment a pooled connection is in hand until the rows
    are fetched, ``response_length`` = rows fetched (or affected), and ``context`` =
    ``{"component": "db", "pool_wait_ms": <time spent waiting for a connection>}``.

    **Pool**: one ``psycopg_pool.ConnectionPool`` of ``pool_size`` connections per user class and
    process, shared by that class's users. A shared pool is what an application has, so its
    saturation is something to see: when users outnumber connections they queue, and the wait
    appears as ``pool_wait_ms`` in every sample's context (the query's ``response_time`` excludes
    it, so database latency stays clean). Set ``report_pool_wait = True`` to also get the wait as a
    separate sample named ``pool wait`` in Locust's table; it is off by default because those
    near-zero samples would dilute the aggregated percentiles. With one pool per user the pool
    would hold a single connection and never show a wait. A wait longer than ``pool_timeout_s``
    fails the query sample with ``PoolTimeout``.

    **Failures**: a refused connection, a dropped server, an SQL error or a query running longer
    than ``query_timeout_s`` is a failed sample (``exception`` set) and ``query`` returns
    ``None``; the user keeps running. Broken connections are discarded and the pool reconnects
    in the background, retrying about once a second (``reconnect_timeout_s`` bounds one retry
    cycle; the next caller starts a new one), so a down server costs each user at most one
    ``pool_timeout_s`` wait per query instead of a tight loop of failures.

    **DSN**: the ``dsn`` class attribute, else the ``RELIABILITY_PG_DSN`` environment variable.
    It is never logged; samples carry ``url`` = host:port/dbname only.

    Example::

        from locust import constant, task
        from reliability.users.postgres import PostgresUser

        class Reader(PostgresUser):
            wait_time = constant(0.1)
            pool_size = 20

            @task
            def one_row(self) -> None:
                self.query("select item", "SELECT * FROM items WHERE id = %s", (42,))
    """

    abstract = True
    dsn: str | None = None
    pool_size: int = 10
    pool_timeout_s: float = 5.0
    connect_timeout_s: int = 5
    query_timeout_s: float | None = 30.0
    reconnect_timeout_s: float = 2.0
    report_pool_wait: bool = False
    component: str = "db"

    _pools: ClassVar[dict[type[PostgresUser], _SharedPool]] = {}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._dsn = user_setting(self.dsn, DSN_ENV, type(self).__name__, "dsn")
        self._shared: _SharedPool | None = None

    # -- pool lifecycle ---------------------------------------------------------------------
    def _acquire_pool(self) -> _SharedPool:
        cls = type(self)
        shared = PostgresUser._pools.get(cls)
        if shared is None:
            pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
                self._dsn,
                min_size=self.pool_size,
                max_size=self.pool_size,
                timeout=self.pool_timeout_s,
                reconnect_timeout=self.reconnect_timeout_s,
                name=cls.__name__,
                open=False,
                kwargs={
                    "autocommit": True,
                    "connect_timeout": self.connect_timeout_s,
                    "application_name": "locust-reliability",
                },
            )
            # Register before opening: open() yields to other greenlets, whose users must find
            # this pool instead of creating their own.
            shared = PostgresUser._pools[cls] = _SharedPool(pool, _redacted_url(self._dsn))
            pool.open()
        shared.users += 1
        return shared

    def _release_pool(self) -> None:
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            cls = type(self)
            if PostgresUser._pools.get(cls) is shared:
                del PostgresUser._pools[cls]
            shared.pool.close(timeout=1.0)

    def on_start(self) -> None:
        self._shared = self._acquire_pool()

    def on_stop(self) -> None:
        self._release_pool()

    @classmethod
    def pool_stats(cls) -> dict[str, int]:
        """psycopg_pool's counters for this class's pool in this process (empty if none is open)."""
        shared = PostgresUser._pools.get(cls)
        return dict(shared.pool.get_stats()) if shared else {}

    # -- queries ----------------------------------------------------------------------------
    def query(self, name: str, sql: str, params: Params | None = None, fetch: bool = True) -> list[Row] | None:
        """Run ``sql`` as one sample named ``name``; return its rows, or ``None`` if it failed.

        With ``fetch=False`` the rows are not read (use it for INSERT/UPDATE without RETURNING);
        the result is then ``[]`` and ``response_length`` is the affected row count.
        Statements run in autocommit mode: one statement, one transaction.
        """
        if self._shared is None:  # query() called before on_start (e.g. from a test_start hook)
            self._shared = self._acquire_pool()
        pool = self._shared.pool
        url = self._shared.url
        wait_start_time = time.time()
        wait_start = time.perf_counter()
        try:
            conn = pool.getconn(timeout=self.pool_timeout_s)
        except PoolTimeout as exc:
            wait_ms = (time.perf_counter() - wait_start) * 1000.0
            fire_request(self, REQUEST_TYPE, name, wait_start_time, wait_start, exception=exc,
                         context={"pool_wait_ms": wait_ms}, url=url)
            return None
        start = time.perf_counter()
        wait_ms = (start - wait_start) * 1000.0
        start_time = wait_start_time + wait_ms / 1000.0
        if self.report_pool_wait:
            fire_request(self, REQUEST_TYPE, POOL_WAIT_NAME, wait_start_time, wait_start, end_perf=start,
                         url=url)
        rows: list[Row] | None = None
        length = 0
        error: BaseException | None = None
        # A fresh timer per query: a fired Timeout re-armed later can go off at once.
        timeout = gevent.Timeout(self.query_timeout_s) if self.query_timeout_s else None
        if timeout is not None:
            timeout.start()
        try:
            cur = conn.execute(sql, params)
            # pgresult.status, not cur.description: that builds Column objects on every call
            result = cur.pgresult
            if fetch and result is not None and result.status == pq.ExecStatus.TUPLES_OK:
                rows = cur.fetchall()
                length = len(rows)
            else:
                rows, length = [], max(cur.rowcount, 0)
        except psycopg.Error as exc:
            error = exc
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            error = QueryTimeout(f"query ran longer than {self.query_timeout_s} s")
        finally:
            end = time.perf_counter()
            if timeout is not None:
                timeout.close()
            # The pool discards connections left broken or mid-query (after a timeout) and
            # replaces them in the background.
            pool.putconn(conn)
        fire_request(self, REQUEST_TYPE, name, start_time, start, response_length=length, exception=error,
                     context={"pool_wait_ms": wait_ms}, url=url, end_perf=end)
        return rows
