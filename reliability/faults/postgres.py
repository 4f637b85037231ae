"""PostgreSQL faults: a held table lock, an outage, connection exhaustion.

Every chaos session is named ``reliability-chaos:<fault name>`` (``application_name``) and
carries server-side timeouts equal to the fault's ``dead_man_s``, read back from ``pg_settings``
after setting them, so the server itself ends the fault if we stop renewing it: a SIGKILLed
master's sessions die with their sockets at once, a hung master's within ``dead_man_s``.

Example::

    fault = PostgresLockFault(PostgresLockSpec(type="postgres.lock", dsn=DSN, table="items"), "db-slow")
    fault.inject()   # queries on items now wait
    fault.revert()   # ROLLBACK: they run

**Why the outage is a terminator loop and not a refusal.** ``ALTER DATABASE ... ALLOW_CONNECTIONS
false`` or ``CONNECTION LIMIT 0`` would refuse new connections, but they are stored in the
catalog and survive us: a master killed mid-fault would leave the database closed. Instead a
chaos session runs a server-side loop that terminates every other client backend of the database
every ``interval_ms``; it runs under ``statement_timeout`` (renewed while held) and
``client_connection_check_interval``, so it stops soon after we do. New connections get in and
are cut within ``interval_ms``. For a hard refusal, put the chaos proxy in front of PostgreSQL and
use ``proxy.down``, whose expiry our proxy honours.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.rows import RowMaker

if TYPE_CHECKING:  # where psycopg.rows itself takes the type from
    from psycopg._cursor_base import BaseCursor

from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, Lease, one_line, probe, renew_interval_s, secrets_of, wait_until
from reliability.faults.spec import PostgresExhaustSpec, PostgresLockSpec, PostgresOutageSpec
from reliability.masking import mask
from reliability.revert.journal import Undo

CONNECT_TIMEOUT_S = 5
APP_PREFIX = "reliability-chaos:"
CHECK_INTERVAL_MS = 1000
PARALLEL_CONNECTS = 16
LEFTOVER_WAIT_S = 3.0
# One statement, bounded by statement_timeout; each pass re-reads pg_stat_activity (its snapshot
# is otherwise cached for the whole transaction) and skips chaos sessions and itself.
TERMINATOR = """
DO $chaos$
DECLARE victim int;
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    FOR victim IN
      SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND coalesce(application_name, '') NOT LIKE 'reliability-chaos:%'
    LOOP
      BEGIN
        PERFORM pg_terminate_backend(victim);
      EXCEPTION WHEN OTHERS THEN NULL;  -- e.g. a superuser's session when we are not one
      END;
    END LOOP;
    PERFORM pg_sleep({interval_s});
  END LOOP;
END
$chaos$
"""


# Mode held -> the weakest mode that conflicts with it (PostgreSQL's table-level lock conflicts):
# what a statement the fault blocks takes, e.g. a read (ACCESS SHARE) behind ACCESS EXCLUSIVE, a
# write (ROW EXCLUSIVE) behind SHARE, SELECT ... FOR UPDATE (ROW SHARE) behind EXCLUSIVE.
BLOCKED_MODE = {
    "ACCESS EXCLUSIVE": "ACCESS SHARE",
    "EXCLUSIVE": "ROW SHARE",
    "SHARE ROW EXCLUSIVE": "ROW EXCLUSIVE",
    "SHARE": "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE": "SHARE UPDATE EXCLUSIVE",
    "ROW EXCLUSIVE": "SHARE",
    "ROW SHARE": "EXCLUSIVE",
    "ACCESS SHARE": "ACCESS EXCLUSIVE",
}
RECHECK_APP = "reliability-recheck"
# A fresh client connection must be cut within this long for an outage to count as applied; longer
# terminator intervals are checked by the loop's session only.
CUT_WAIT_MAX_S = 2.5


def app_name(fault_name: str) -> str:
    """The ``application_name`` of a fault's chaos sessions (PostgreSQL keeps 63 bytes)."""
    return (APP_PREFIX + fault_name)[:63]


def table_ident(table: str) -> sql.Identifier:
    """``schema.table`` or ``table`` as a quoted identifier."""
    return sql.Identifier(*table.split(".", 1))


Scalar = str | int | float | bool | None
"""One value of the single-column queries these faults run (a setting, a count, a flag, a state)."""


def first_column(_cursor: BaseCursor[psycopg.Connection[Scalar], Scalar]) -> RowMaker[Scalar]:
    """A row factory for single-column queries: each row is its one value, checked to be a scalar."""

    def make(values: Sequence[object]) -> Scalar:
        value = values[0]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise TypeError(f"expected a text, number or boolean column, got {type(value).__name__}")

    return make


Session = psycopg.Connection[Scalar]

class _PostgresFault:
    kind = ""

    def __init__(self, dsn: str, name: str, dead_man_s: float | None) -> None:
        self.name = name
        self.dsn = dsn
        self.dead_man_s = dead_man_s
        self.app = app_name(name)
        self._secrets = secrets_of(dsn)
        self.backend = f"postgres {mask(dsn)}"

    def undo(self, _environ: Mapping[str, str]) -> Undo:
        """Nothing to call: the chaos sessions end when their connection closes, and the server's
        own session timeouts (``dead_man_s``) end them when we hang."""
        return Undo(self.backend, (), expires_s=self.dead_man_s)

    def _fail(self, action: str, exc: BaseException) -> FaultError:
        return FaultError(f"{self.name} ({self.kind}) {action} on {mask(self.dsn)}: {one_line(exc, self._secrets)}")

    def _connect(self) -> Session:
        return psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, application_name=self.app,
                               row_factory=first_column)

    def _chaos_session(self, **timeouts_ms: float) -> Session:
        """A chaos connection with server-side timeouts set and read back (the server enforces
        what ``pg_settings`` shows, so a setting the server ignored fails the inject)."""
        conn = self._connect()
        try:
            for setting, value_ms in timeouts_ms.items():
                conn.execute("SELECT set_config(%s, %s, false)", (setting, str(int(value_ms))))
                row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (setting,)).fetchone()
                if row is None or int(row) != int(value_ms):
                    raise FaultError(f"the server did not take {setting}={int(value_ms)}ms (shows {row})")
        except BaseException:
            conn.close()
            raise
        return conn

    def _dead_man_ms(self) -> float:
        return (self.dead_man_s or 30.0) * 1000.0

    def _leftover_sessions(self, conn: Session) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (self.app,),
        ).fetchone()
        return int(row) if row else 0

    def _healthy(self, extra: sql.Composed | None = None) -> str:
        with psycopg.connect(self.dsn, connect_timeout=3, autocommit=True, row_factory=first_column) as conn:
            conn.execute("SET statement_timeout = '3s'")
            conn.execute("SET lock_timeout = '1s'")
            conn.execute("SELECT 1")
            if extra is not None:
                conn.execute(extra)
            # A closed session leaves pg_stat_activity a moment after the client hangs up.
            wait_until(lambda: self._leftover_sessions(conn) == 0, LEFTOVER_WAIT_S)
            left = self._leftover_sessions(conn)
        if left:
            raise FaultError(f"{left} chaos session(s) of {self.name} still connected")
        return "query ok, no chaos sessions left"

    def verify(self) -> FaultCheck:
        return probe(f"postgres {mask(self.dsn)}", self._healthy, self._secrets)


class PostgresLockFault(_PostgresFault):
    """Slowness: a chaos session holds ``LOCK TABLE`` on the hot table in an open transaction.

    Queries that need a conflicting lock wait (``ACCESS EXCLUSIVE``, the default, blocks even
    reads; ``EXCLUSIVE`` only writes). The session has ``idle_in_transaction_session_timeout`` =
    ``dead_man_s``; a lease runs ``SELECT 1`` every third of it while the fault is held.
    """

    kind = "postgres.lock"

    def __init__(self, spec: PostgresLockSpec, name: str) -> None:
        super().__init__(spec.dsn, name, spec.dead_man_s)
        self.table = spec.table
        self.mode = spec.mode
        self.acquire_timeout_ms = spec.acquire_timeout_ms
        self._conn: Session | None = None
        self._lease: Lease | None = None
        self._io = threading.Lock()

    def inject(self) -> None:
        if self._conn is not None:
            return
        lock = sql.SQL("LOCK TABLE {} IN {} MODE").format(table_ident(self.table), sql.SQL(self.mode))
        try:
            self._conn = self._chaos_session(
                idle_in_transaction_session_timeout=self._dead_man_ms(),
                statement_timeout=self._dead_man_ms(),
                lock_timeout=self.acquire_timeout_ms,
            )
            self._conn.execute("BEGIN")
            self._conn.execute(lock)
        except (psycopg.Error, FaultError) as exc:
            self.revert()
            raise self._fail("inject", exc) from None
        self._lease = Lease(self._keepalive, renew_interval_s(self.dead_man_s or 30.0), self.name)
        self._lease.start()

    def still_applied(self) -> str | None:
        """None while our chaos session still holds its lock (``pg_locks``) and a query's lock on the
        table is refused (``LOCK TABLE ... NOWAIT`` in the mode the blocked statements take, rolled
        back), else why not."""
        probe_lock = sql.SQL("LOCK TABLE {} IN {} MODE NOWAIT").format(
            table_ident(self.table), sql.SQL(BLOCKED_MODE.get(self.mode, "ACCESS SHARE")))
        conn = psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, row_factory=first_column)
        try:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE a.application_name = %s AND l.locktype = 'relation' AND l.granted", (self.app,)).fetchone()
            if not row:
                return f"no lock held by {self.app} any more"
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(probe_lock)
            except psycopg.errors.LockNotAvailable:
                return None
        finally:
            conn.close()
        return f"a {BLOCKED_MODE.get(self.mode, 'ACCESS SHARE')} lock on {self.table} was granted at once"

    def _keepalive(self) -> None:
        with self._io:
            if self._conn is not None:
                self._conn.execute("SELECT 1")  # resets the idle-in-transaction clock

    def revert(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()
        with self._io:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the session is gone already, and its lock with it
        finally:
            conn.close()

    def verify(self) -> FaultCheck:
        query = sql.SQL("SELECT 1 FROM {} LIMIT 1").format(table_ident(self.table))
        return probe(f"postgres {mask(self.dsn)}", lambda: self._healthy(query), self._secrets)


class PostgresOutageFault(_PostgresFault):
    """Unavailability: every other client backend of the database is terminated, repeatedly.

    See the module docstring for why this and not ``ALLOW_CONNECTIONS false``. Needs a superuser
    or a member of ``pg_signal_backend`` (superusers' sessions can only be ended by a superuser).
    """

    kind = "postgres.outage"

    def __init__(self, spec: PostgresOutageSpec, name: str) -> None:
        super().__init__(spec.dsn, name, spec.dead_man_s)
        self.interval_ms = spec.interval_ms
        self._conn: Session | None = None
        self._loop: threading.Thread | None = None
        self._pid: int | None = None
        self._stopping = threading.Event()
        self.last_error: str | None = None

    def inject(self) -> None:
        if self._conn is not None:
            return
        self._stopping.clear()
        try:
            self._conn = self._chaos_session(statement_timeout=self._dead_man_ms())
            # PostgreSQL 14+: notice a vanished client during the loop, not at its timeout.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT set_config('client_connection_check_interval', %s, false)",
                                   (str(CHECK_INTERVAL_MS),))
            allowed = self._conn.execute(
                "SELECT rolsuper OR pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') "
                "FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not allowed:
                raise FaultError("needs a superuser or a member of pg_signal_backend")
            pid = self._pid = self._conn.info.backend_pid
        except (psycopg.Error, FaultError) as exc:
            self.revert()
            raise self._fail("inject", exc) from None
        self._loop = threading.Thread(target=self._terminate, name=f"pg-outage-{self.name}", daemon=True)
        self._loop.start()
        if not wait_until(lambda: self._running(pid), 5.0):
            self.revert()
            raise self._fail("inject", FaultError(self.last_error or "the terminator loop did not start"))

    def still_applied(self) -> str | None:
        """None while the terminator loop runs (its thread, and its session active in
        ``pg_stat_activity``) and, for intervals up to ~1 s, a fresh client connection is cut
        within two intervals (a real connection attempt and query); else why not."""
        loop, pid = self._loop, self._pid
        if loop is None or not loop.is_alive() or pid is None:
            return f"the terminator loop has stopped ({self.last_error or 'ended'})"
        if not self._running(pid):
            return "the terminator session is not running in the server"
        wait_s = 2 * self.interval_ms / 1000.0 + 0.25
        if wait_s > CUT_WAIT_MAX_S:
            return None
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True,
                                   application_name=RECHECK_APP)
        except psycopg.OperationalError:
            return None  # cut while it connected
        try:
            time.sleep(wait_s)
            conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return None
        finally:
            conn.close()
        return f"a new client connection still answered after {wait_s * 1000:.0f} ms"

    def _running(self, pid: int) -> bool:
        if self._loop is None or not self._loop.is_alive():
            return False
        with self._connect() as probe_conn:
            row = probe_conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        return row == "active"

    def _terminate(self) -> None:
        statement = TERMINATOR.format(interval_s=f"{self.interval_ms / 1000.0:.3f}")
        while not self._stopping.is_set():
            conn = self._conn
            if conn is None:
                return
            try:
                conn.execute(statement)
            except psycopg.errors.QueryCanceled:
                continue  # statement_timeout: the lease period ran out; start the next one
            except psycopg.Error as exc:
                self.last_error = one_line(exc, self._secrets)
                return

    def revert(self) -> None:
        self._stopping.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=CONNECT_TIMEOUT_S)
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.join(CONNECT_TIMEOUT_S)
        if conn is not None:
            conn.close()


class PostgresExhaustFault(_PostgresFault):
    """Connection exhaustion: hold connections until the server refuses more.

    Each held session has ``idle_session_timeout`` = ``dead_man_s`` (PostgreSQL 14+); a lease
    runs ``SELECT 1`` on each every third of it. ``leave_free`` connections are given back, so a
    pool that already holds its connections keeps working while new ones are refused.
    """

    kind = "postgres.exhaust"

    def __init__(self, spec: PostgresExhaustSpec, name: str) -> None:
        super().__init__(spec.dsn, name, spec.dead_man_s)
        self.leave_free = spec.leave_free
        self.max_connections = spec.max_connections
        self.held: list[Session] = []
        self.refusal: str | None = None
        self._lease: Lease | None = None
        self._io = threading.Lock()

    def inject(self) -> None:
        if self.held:
            return
        self.refusal = None
        failure: BaseException | None = None
        # A few connects at a time: hundreds of them one by one take seconds.
        with ThreadPoolExecutor(max_workers=PARALLEL_CONNECTS, thread_name_prefix=f"pg-exhaust-{self.name}") as pool:
            while failure is None and self.refusal is None and len(self.held) < self.max_connections:
                batch = min(PARALLEL_CONNECTS, self.max_connections - len(self.held))
                opening = [pool.submit(self._chaos_session, idle_session_timeout=self._dead_man_ms())
                           for _ in range(batch)]
                for future in opening:
                    try:
                        self.held.append(future.result())
                    except psycopg.OperationalError as exc:
                        if _too_many(exc):
                            self.refusal = one_line(exc, self._secrets)
                        else:
                            failure = exc
                    except (psycopg.Error, FaultError) as exc:
                        failure = exc
        if failure is None and self.refusal is None:
            failure = FaultError(f"still accepting after {self.max_connections} connections")
        if failure is not None:
            self.revert()
            raise self._fail("inject", failure) from None
        for _ in range(min(self.leave_free, len(self.held))):
            self.held.pop().close()
        self._lease = Lease(self._keepalive, renew_interval_s(self.dead_man_s or 30.0), self.name)
        self._lease.start()

    def still_applied(self) -> str | None:
        """None while a new connection (same DSN, so same role and reserved slots) is refused for
        too many clients, or gets in (``leave_free``, or a slot another client gave back) while every
        held session is still connected (``pg_stat_activity``); else why not."""
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True,
                                   application_name=RECHECK_APP, row_factory=first_column)
        except psycopg.OperationalError as exc:
            if _too_many(exc):
                return None
            raise
        try:
            held = self._leftover_sessions(conn)
        finally:
            conn.close()
        expected = len(self.held)
        return None if held >= expected else f"a new connection got in: {held} of the {expected} held sessions left"

    def _keepalive(self) -> None:
        with self._io:
            for conn in self.held:
                # A session that timed out or was killed has freed its slot: nothing to hold.
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT 1")

    def revert(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()
        with self._io:
            held, self.held = self.held, []
        for conn in held:
            conn.close()


def _too_many(exc: psycopg.OperationalError) -> bool:
    text = str(exc)
    return exc.sqlstate == "53300" or "too many clients" in text or "connection slots are reserved" in text
