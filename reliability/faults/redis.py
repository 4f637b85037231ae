"""Redis faults: unavailable (``CLIENT PAUSE``), memory pressure (``CONFIG SET``), slow commands.

Example::

    fault = RedisPauseFault(RedisPauseSpec(type="redis.pause", url="redis://127.0.0.1:6379/0"), "cache-down")
    fault.inject()      # every client's next command now waits
    fault.revert()      # within a second they run again
    fault.verify()      # FaultCheck(healthy=True, detail='PING: ok', latency_ms=0.3)

**Why the pause is a chain of short pauses.** ``CLIENT PAUSE ... ALL`` also holds back
``CLIENT UNPAUSE`` from any client (seen on Redis 7.0), so a long pause could not be reverted
before it ran out. Instead one control connection pipelines ``CLIENT PAUSE <slice> ALL``
commands: while the server is paused the next one waits at the head of the postponed clients, so
it runs first when the slice ends and extends the pause with no gap (no other command got through
in a 2 s test under load). A revert closes that connection, which discards what it had queued,
and the pause ends within one slice (at most 1 s). If we are SIGKILLed the same happens; if we
merely hang, the at most two queued pauses still run out: the dead-man is three slices.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, Lease, one_line, probe, secrets_of, wait_until
from reliability.faults.spec import RedisMemorySpec, RedisPauseSpec, RedisSlowSpec
from reliability.masking import mask
from reliability.revert.journal import Undo, redis_action, reference_secrets

TIMEOUT_S = 5.0
MAX_SLICE_MS = 1000
PROBE_KEY = "reliability:chaos:probe"
# Occupies the server for ARGV[1] ms, as one slow command would (TIME is allowed in scripts since
# Redis 5 replicates effects, not scripts).
BUSY_SCRIPT = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
local limit = tonumber(ARGV[1]) * 1000
while true do
  local n = redis.call('TIME')
  if n[1] * 1000000 + n[2] - start >= limit then return 1 end
end
"""


def connect(url: str, timeout_s: float = TIMEOUT_S) -> redis.Redis:
    """A client that tries once (no retries) with bounded socket timeouts."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )



class _PauseConnection(Protocol):
    """The calls ``redis.pause`` makes on one raw connection of redis-py's pool (whose connection
    class leaves them unannotated)."""

    def connect(self) -> None: ...

    def pack_commands(self, commands: list[tuple[str | int, ...]]) -> list[bytes]: ...

    def send_packed_command(self, command: list[bytes]) -> None: ...

    def send_command(self, *args: str | int) -> None: ...

    def read_response(self) -> object: ...  # the reply: "OK" (unused)

    def disconnect(self) -> None: ...


class _RedisFault:
    kind = ""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.url = url
        self._secrets = secrets_of(url)
        self.backend = f"redis {mask(url)}"

    def _undo(self, commands: list[list[str]], expires_s: float | None, environ: Mapping[str, str]) -> Undo:
        actions = (redis_action(self.url, commands),) if commands else ()
        return Undo(self.backend, tuple(reference_secrets(actions, self._secrets, environ, self.name)), expires_s)

    def _fail(self, action: str, exc: BaseException) -> FaultError:
        return FaultError(f"{self.name} ({self.kind}) {action} on {mask(self.url)}: {one_line(exc, self._secrets)}")

    def _ping(self, write: bool = False) -> str | None:
        client = connect(self.url, 2.0)
        try:
            client.ping()
            if write:
                client.set(PROBE_KEY, "1", px=1000)
        finally:
            client.close()
        return "PING and a write ok" if write else "PING ok"

    def verify(self) -> FaultCheck:
        return probe(f"redis {mask(self.url)}", self._ping, self._secrets)


class RedisPauseFault(_RedisFault):
    """Redis unavailable: ``CLIENT PAUSE`` (see the module docstring for the renewal chain).

    ``mode="write"`` pauses only writes; then a plain lease renews ``CLIENT PAUSE <dead_man_s>
    WRITE`` and the revert is ``CLIENT UNPAUSE``.
    """

    kind = "redis.pause"

    def __init__(self, spec: RedisPauseSpec, name: str) -> None:
        super().__init__(spec.url, name)
        self.mode = spec.mode
        self.dead_man_s: float | None = spec.dead_man_s
        # Three slices may still run after we hang (one active, two queued).
        self.slice_ms = max(10, min(MAX_SLICE_MS, int(spec.dead_man_s * 1000 / 3)))
        self._client: redis.Redis | None = None
        self._conn: _PauseConnection | None = None
        self._chain: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lease: Lease | None = None

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """Writes: ``CLIENT UNPAUSE``; all commands: the slices run out by themselves."""
        if self.mode == "write":
            return self._undo([["CLIENT", "UNPAUSE"]], self.dead_man_s, environ)
        return self._undo([], 3 * self.slice_ms / 1000.0, environ)

    def inject(self) -> None:
        if self._client is not None:
            return
        self._stopping.clear()
        self._client = connect(self.url, TIMEOUT_S + self.slice_ms / 1000.0)
        try:
            if self.mode == "write":
                self._pause_writes()
                self._lease = Lease(self._pause_writes, self.dead_man_s / 3 if self.dead_man_s else 1.0, self.name)
                self._lease.start()
                return
            conn: _PauseConnection = self._client.connection_pool.make_connection()
            self._conn = conn
            conn.connect()
            pause = ("CLIENT", "PAUSE", self.slice_ms, "ALL")
            conn.send_packed_command(conn.pack_commands([pause, pause]))
            conn.read_response()
        except (redis.RedisError, OSError) as exc:
            self.revert()
            raise self._fail("inject", exc) from None
        self._chain = threading.Thread(target=self._extend, name=f"redis-pause-{self.name}", daemon=True)
        self._chain.start()

    def still_applied(self) -> str | None:
        """None while clients are held back, else why not. Writes only: a SET must not answer within
        0.3 s. All commands: the chain of pauses must still be running (its connection drops when the
        server restarts); a probe command would itself queue behind the pause with the load's."""
        if self.mode != "write":
            chain = self._chain
            return None if chain is not None and chain.is_alive() else "the pause chain's connection is gone"
        client = connect(self.url, 0.3)
        try:
            client.set(PROBE_KEY, "1", px=1000)
        except redis.TimeoutError:
            return None
        finally:
            client.close()
        return "a write was answered at once: the pause is gone"

    def _pause_writes(self) -> None:
        assert self._client is not None
        self._client.client_pause(int((self.dead_man_s or 1.0) * 1000), all=False)

    def _extend(self) -> None:
        conn = self._conn
        while conn is not None and not self._stopping.is_set():
            try:
                # Queue the next slice before the current one ends, then wait for it to start.
                conn.send_command("CLIENT", "PAUSE", self.slice_ms, "ALL")
                conn.read_response()
            except (redis.RedisError, OSError, ValueError, AttributeError):
                return  # revert closed the connection under us (or the server went away)

    def revert(self) -> None:
        self._stopping.set()
        if self._lease is not None:
            self._lease.stop()
            self._lease = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()  # drops the queued slices; the active one runs out
        chain, self._chain = self._chain, None
        if chain is not None:
            chain.join(TIMEOUT_S)
        client, self._client = self._client, None
        try:
            if client is not None and self.mode == "write":
                client.client_unpause()
        except (redis.RedisError, OSError) as exc:
            raise self._fail("revert", exc) from None
        finally:
            if client is not None:
                client.close()
        if chain is not None or conn is not None:
            wait_until(self._answers, self.slice_ms / 1000.0 + TIMEOUT_S)

    def _answers(self) -> bool:
        try:
            self._ping()
        except (redis.RedisError, OSError):
            return False
        return True

    def verify(self) -> FaultCheck:
        return probe(f"redis {mask(self.url)}", lambda: self._ping(write=self.mode == "write"), self._secrets)


class RedisMemoryFault(_RedisFault):
    """Memory pressure: ``maxmemory`` lowered (default: to the memory in use) with ``policy``.

    Under ``noeviction`` writes fail with OOM; under an ``allkeys-*`` policy keys are evicted
    (cache misses). The original ``maxmemory`` and ``maxmemory-policy`` are restored on revert.
    Redis has no expiry for configuration, so this fault has no dead-man's timeout.
    """

    kind = "redis.memory"

    def __init__(self, spec: RedisMemorySpec, name: str) -> None:
        super().__init__(spec.url, name)
        self.maxmemory_bytes = spec.maxmemory_bytes
        self.policy = spec.policy
        self.dead_man_s: float | None = None
        self.original: dict[str, str] | None = None
        self.limit: int | None = None

    def still_applied(self) -> str | None:
        """None while ``maxmemory`` is still the injected limit (``CONFIG GET``), else why not."""
        client = connect(self.url, 2.0)
        try:
            found = client.config_get("maxmemory")
        finally:
            client.close()
        now = int(str(found["maxmemory"]))
        return None if now == self.limit else f"maxmemory is {now}, not the injected {self.limit}"

    def _read_original(self, client: redis.Redis) -> dict[str, str]:
        if self.original is None:
            found = client.config_get("maxmemory*")
            self.original = {key: str(found[key]) for key in ("maxmemory", "maxmemory-policy")}
        return self.original

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """Restore ``maxmemory`` and ``maxmemory-policy`` (read from the server now, before the inject)."""
        client = connect(self.url)
        try:
            original = self._read_original(client)
        except (redis.RedisError, OSError, KeyError) as exc:
            raise self._fail("reading the settings to restore", exc) from None
        finally:
            client.close()
        return self._undo([["CONFIG", "SET", "maxmemory", original["maxmemory"]],
                           ["CONFIG", "SET", "maxmemory-policy", original["maxmemory-policy"]]], None, environ)

    def inject(self) -> None:
        client = connect(self.url)
        try:
            self._read_original(client)
            limit = self.maxmemory_bytes or int(client.info("memory")["used_memory"])
            client.config_set("maxmemory-policy", self.policy)
            client.config_set("maxmemory", str(limit))
            self.limit = limit
        except (redis.RedisError, OSError, KeyError) as exc:
            raise self._fail("inject", exc) from None
        finally:
            client.close()

    def revert(self) -> None:
        if self.original is None:
            return
        client = connect(self.url)
        try:
            client.config_set("maxmemory", self.original["maxmemory"])
            client.config_set("maxmemory-policy", self.original["maxmemory-policy"])
        except (redis.RedisError, OSError) as exc:
            raise self._fail("revert", exc) from None
        finally:
            client.close()
        self.original = None

    def verify(self) -> FaultCheck:
        def check() -> str:
            client = connect(self.url, 2.0)
            try:
                found = client.config_get("maxmemory*")
                client.set(PROBE_KEY, "1", px=1000)
            finally:
                client.close()
            return f"writes ok, maxmemory={found['maxmemory']} policy={found['maxmemory-policy']}"

        return probe(f"redis {mask(self.url)}", check, self._secrets)


class RedisSlowFault(_RedisFault):
    """Slow commands: a Lua script busies the server for ``block_ms`` every ``period_ms``.

    Every other client's command in that time waits, as behind one slow ``KEYS *``; the script
    shows in ``SLOWLOG``. Nothing persists: if we die, the running script still ends within
    ``block_ms``, which is this fault's dead-man's timeout.
    """

    kind = "redis.slow"

    def __init__(self, spec: RedisSlowSpec, name: str) -> None:
        super().__init__(spec.url, name)
        self.block_ms = spec.block_ms
        self.period_ms = spec.period_ms
        self.dead_man_s: float | None = spec.block_ms / 1000.0
        self._client: redis.Redis | None = None
        self._lease: Lease | None = None
        self._seen: tuple[float, int] | None = None  # (monotonic time, EVAL usec) of the last verdict

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """Nothing to call: the script in progress ends within ``block_ms``."""
        return self._undo([], self.block_ms / 1000.0, environ)

    def inject(self) -> None:
        if self._lease is not None:
            return
        self._client = connect(self.url, TIMEOUT_S + self.block_ms / 1000.0)
        try:
            self._seen = (time.monotonic(), self._eval_usec())
            self._busy()
        except (redis.RedisError, OSError) as exc:
            self.revert()
            raise self._fail("inject", exc) from None
        self._lease = Lease(self._busy, (self.period_ms - self.block_ms) / 1000.0, self.name)
        self._lease.start()

    def still_applied(self) -> str | None:
        """None while the server keeps spending at least half the planned busy time in ``EVAL``
        (``INFO commandstats``: the time Redis itself accounts to the script, whose run every other
        client waits behind) since the last verdict, else why not. Other clients' ``EVAL`` counts
        too; a reset of the statistics (``CONFIG RESETSTAT``, a restart) starts a new baseline."""
        now = time.monotonic()
        busy_us = self._eval_usec()
        since = self._seen
        if since is None or busy_us < since[1]:
            self._seen = (now, busy_us)
            return None
        cycles = int((now - since[0]) * 1000.0 // self.period_ms)
        if cycles == 0:
            return None  # less than one period since the baseline: keep it and wait
        self._seen = (now, busy_us)
        wanted_us = 0.5 * cycles * self.block_ms * 1000.0
        done_us = busy_us - since[1]
        if done_us >= wanted_us:
            return None
        return (f"the server spent {done_us / 1000.0:.0f} ms in EVAL over {now - since[0]:.1f} s, "
                f"not the {cycles * self.block_ms:.0f} ms planned")

    def _eval_usec(self) -> int:
        client = connect(self.url, TIMEOUT_S + self.block_ms / 1000.0)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        entry = stats.get("cmdstat_eval")
        return int(entry.get("usec", 0)) if isinstance(entry, dict) else 0

    def _busy(self) -> None:
        assert self._client is not None
        self._client.eval(BUSY_SCRIPT, 0, int(self.block_ms))

    def revert(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop(TIMEOUT_S + self.block_ms / 1000.0)
        client, self._client = self._client, None
        if client is not None:
            client.close()
