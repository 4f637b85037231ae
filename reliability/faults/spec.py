"""Fault specs: one frozen pydantic model per fault kind, told apart by their ``type`` key.

A scenario names a fault and says what to do; connection targets are DSN/URL strings whose
secrets come from ``${ENV}`` references (``reliability.config`` interpolates them). Durations
accept units ("250ms", "30s", "2m") through the parsers in ``reliability.units``.

Example (YAML)::

    type: redis.pause
    url: redis://:${REDIS_PASSWORD}@cache:6379/0
    dead_man_s: 10s

``parse_fault_spec(data)`` validates one mapping; :data:`FaultSpec` is the union to embed in a
larger model. ``dead_man_s`` bounds how long the fault outlives the process that injected it
(killed or hung): the backend's own expiry where it has one (TTLs, session timeouts), and the
revert guard (:mod:`reliability.revert.guard`) for every kind. A fault whose undo cannot be
described (a kill with no restart command, a webhook or shell fault with no revert) is refused.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, JsonValue, TypeAdapter, model_validator

from reliability.units import DurationS as Seconds
from reliability.units import FrozenSpec
from reliability.units import LatencyMs as Millis

Command = str | list[str]
Stream = Literal["upstream", "downstream"]
LockMode = Literal[
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
    "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE",
]
SignalName = Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP"]


class _FaultSpec(FrozenSpec):
    # Kinds whose only undo is the backend's own expiry need a dead_man_s.
    EXPIRY_ONLY: ClassVar[bool] = False

    type: str
    dead_man_s: Seconds | None = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _dead_man(self) -> _FaultSpec:
        if self.EXPIRY_ONLY and self.dead_man_s is None:
            raise ValueError(f"dead_man_s: required for a {self.type} fault: its backend's expiry is what undoes it "
                             "if we die")
        return self


class _NoDeadMan(_FaultSpec):
    """Kinds whose backend has no expiry: the revert guard undoes them ``dead_man_s`` after we die."""

    dead_man_s: Seconds = Field(default=10.0, gt=0)


# ---------------------------------------------------------------------------------------- Redis
class RedisPauseSpec(_FaultSpec):
    """Redis unavailable: ``CLIENT PAUSE`` (all commands, or writes only), renewed in slices of
    at most 1 s so a revert takes effect within a second and the pause ends by itself within
    ``dead_man_s`` of our death."""

    type: Literal["redis.pause"]
    url: str
    mode: Literal["all", "write"] = "all"
    dead_man_s: Seconds = Field(default=10.0, gt=0)


class RedisMemorySpec(_NoDeadMan):
    """Memory pressure: ``CONFIG SET maxmemory`` (default: the memory in use now, so nothing
    new fits) and ``maxmemory-policy``; the originals are restored on revert."""

    type: Literal["redis.memory"]
    url: str
    maxmemory_bytes: int | None = Field(default=None, ge=1)
    policy: Literal[
        "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
        "volatile-random", "volatile-ttl",
    ] = "noeviction"


class RedisSlowSpec(_NoDeadMan):
    """Slow commands: a Lua script keeps the server busy for ``block_ms`` every ``period_ms``,
    as one slow command (KEYS, a big SORT) stalls every client. Ends within ``block_ms`` of our
    death by construction."""

    type: Literal["redis.slow"]
    url: str
    block_ms: Millis = Field(default=200.0, gt=0, le=4000)
    period_ms: Millis = Field(default=1000.0, gt=0)

    @model_validator(mode="after")
    def _period(self) -> RedisSlowSpec:
        if self.period_ms <= self.block_ms:
            raise ValueError("period_ms: must be greater than block_ms")
        return self


# ----------------------------------------------------------------------------------- PostgreSQL
class PostgresLockSpec(_FaultSpec):
    """Slowness: a chaos session holds ``LOCK TABLE <table> IN <mode> MODE`` in an open
    transaction; queries on the table wait. The session carries
    ``idle_in_transaction_session_timeout`` = ``dead_man_s``."""

    EXPIRY_ONLY: ClassVar[bool] = True
    type: Literal["postgres.lock"]
    dsn: str
    table: str = Field(min_length=1)
    mode: LockMode = "ACCESS EXCLUSIVE"
    acquire_timeout_ms: Millis = Field(default=5000.0, gt=0)


class PostgresOutageSpec(_FaultSpec):
    """Unavailability: a chaos session terminates every other client backend of the database
    every ``interval_ms``, from a server-side loop bounded by ``statement_timeout`` =
    ``dead_man_s``; new connections are cut within ``interval_ms``."""

    EXPIRY_ONLY: ClassVar[bool] = True
    type: Literal["postgres.outage"]
    dsn: str
    interval_ms: Millis = Field(default=50.0, ge=5, le=10_000)


class PostgresExhaustSpec(_FaultSpec):
    """Connection exhaustion: open and hold connections until the server refuses more
    (``too many clients``), then give back ``leave_free``. Each carries
    ``idle_session_timeout`` = ``dead_man_s``."""

    EXPIRY_ONLY: ClassVar[bool] = True
    type: Literal["postgres.exhaust"]
    dsn: str
    leave_free: int = Field(default=0, ge=0)
    max_connections: int = Field(default=2000, ge=1, le=20_000)


# ---------------------------------------------------------------------------------------- proxy
class _ProxySpec(_FaultSpec):
    api_url: str = "http://127.0.0.1:8474"
    proxy: str = Field(min_length=1)


class _ToxicSpec(_ProxySpec):
    stream: Stream = "downstream"
    toxicity: float = Field(default=1.0, ge=0, le=1)


class ProxyLatencySpec(_ToxicSpec):
    """Toxiproxy ``latency`` toxic: ``latency_ms`` +/- ``jitter_ms`` on every chunk."""

    type: Literal["proxy.latency"]
    latency_ms: Millis = Field(ge=0)
    jitter_ms: Millis = Field(default=0.0, ge=0)


class ProxyBandwidthSpec(_ToxicSpec):
    """Toxiproxy ``bandwidth`` toxic: at most ``rate_kb_s`` kilobytes per second."""

    type: Literal["proxy.bandwidth"]
    rate_kb_s: int = Field(ge=0)


class ProxyTimeoutSpec(_ToxicSpec):
    """Toxiproxy ``timeout`` toxic: data stops; connections close after ``timeout_ms`` (0: held
    open until the toxic goes)."""

    type: Literal["proxy.timeout"]
    timeout_ms: Millis = Field(default=0.0, ge=0)


class ProxyResetPeerSpec(_ToxicSpec):
    """Toxiproxy ``reset_peer`` toxic: connections are reset (TCP RST) ``timeout_ms`` after data."""

    type: Literal["proxy.reset_peer"]
    timeout_ms: Millis = Field(default=0.0, ge=0)


class ProxySlowCloseSpec(_ToxicSpec):
    """Toxiproxy ``slow_close`` toxic: closing is delayed by ``delay_ms``."""

    type: Literal["proxy.slow_close"]
    delay_ms: Millis = Field(ge=0)


class ProxySlicerSpec(_ToxicSpec):
    """Toxiproxy ``slicer`` toxic: data cut into pieces of ``average_size`` +/- ``size_variation``
    bytes sent ``delay_us`` microseconds apart (small TCP segments, as over a bad link)."""

    type: Literal["proxy.slicer"]
    average_size: int = Field(ge=1)
    size_variation: int = Field(default=0, ge=0)
    delay_us: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _variation(self) -> ProxySlicerSpec:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation: must be smaller than average_size")
        return self


class ProxyLimitDataSpec(_ToxicSpec):
    """Toxiproxy ``limit_data`` toxic: each connection is closed after ``bytes`` bytes."""

    type: Literal["proxy.limit_data"]
    bytes: int = Field(ge=0)


class ProxyDownSpec(_ProxySpec):
    """The proxy disabled (``enabled: false``): connections are refused and open ones closed."""

    type: Literal["proxy.down"]


class ProxyHttpSpec(_ProxySpec):
    """HTTP errors from a chaos proxy in HTTP mode (our extension ``http_error`` toxic): a share
    ``error_ratio`` of requests under ``path_prefix`` is answered with ``status``. A real
    Toxiproxy (TCP only) cannot do this: the fault is refused when it first reaches one."""

    type: Literal["proxy.http"]
    status: int = Field(default=503, ge=400, le=599)
    error_ratio: float = Field(default=1.0, ge=0, le=1)
    path_prefix: str = Field(default="/", pattern=r"^/")


# ----------------------------------------------------------------------------------------- HTTP
class _TargetHttpSpec(_FaultSpec):
    url: str
    route_prefix: str = Field(default="/api", pattern=r"^/")
    admin_token: str | None = Field(default=None, repr=False)


class HttpErrorSpec(_TargetHttpSpec):
    """Errors through the reference target's admin API: ``error_ratio`` of requests answered
    with ``status`` (5xx, 429), optionally after ``latency_ms``."""

    type: Literal["http.error"]
    status: int = Field(default=503, ge=400, le=599)
    error_ratio: float = Field(default=1.0, ge=0, le=1)
    latency_ms: Millis = Field(default=0.0, ge=0, le=600_000)


class HttpLatencySpec(_TargetHttpSpec):
    """Added latency through the reference target's admin API."""

    type: Literal["http.latency"]
    latency_ms: Millis = Field(gt=0, le=600_000)


# -------------------------------------------------------------------------------------- process
class _ProcessSpec(_FaultSpec):
    pid: int | None = Field(default=None, ge=1)
    pid_file: str | None = None
    match: str | None = Field(default=None, min_length=1)
    # whose processes ``match`` may hit: this user name only (default: the user running the test)
    user: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_target(self) -> _ProcessSpec:
        given = [key for key in ("pid", "pid_file", "match") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("pid: give exactly one of pid, pid_file, match (a command-line substring)")
        if self.user is not None and self.match is None:
            raise ValueError("user: only used with match")
        return self


class ProcessSuspendSpec(_ProcessSpec):
    """SIGSTOP a process (and its children if asked); SIGCONT on revert. A detached watchdog
    sends SIGCONT by itself ``dead_man_s`` after the last renewal."""

    type: Literal["process.suspend"]
    children: bool = False
    dead_man_s: Seconds | None = Field(default=60.0, gt=0)


class ProcessKillSpec(_ProcessSpec):
    """Kill a process; on revert run ``restart_command`` (if any) and wait for it to be back."""

    type: Literal["process.kill"]
    dead_man_s: Seconds = Field(default=10.0, gt=0)
    signal: SignalName = "SIGKILL"
    restart_command: Command | None = None
    restart_timeout_s: Seconds = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _undoable(self) -> ProcessKillSpec:
        if self.restart_command is None:
            raise ValueError("restart_command: required: without it the kill cannot be undone")
        return self


# ----------------------------------------------------------------------------------------- load
class LoadSpikeSpec(_FaultSpec):
    """A burst of extra load from a separate process: ``concurrency`` clients requesting
    ``url`` back to back. The process exits when we die or after ``dead_man_s`` unrenewed."""

    EXPIRY_ONLY: ClassVar[bool] = True
    type: Literal["load.spike"]
    url: str
    concurrency: int = Field(default=50, ge=1, le=5000)
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    request_timeout_s: Seconds = Field(default=10.0, gt=0)


class LoadWsStormSpec(_FaultSpec):
    """A WebSocket connection storm from a separate process: ``connections`` sockets opened at
    ``rate_per_s`` and held open."""

    EXPIRY_ONLY: ClassVar[bool] = True
    type: Literal["load.ws_storm"]
    url: str
    connections: int = Field(default=200, ge=1, le=50_000)
    rate_per_s: float = Field(default=100.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)


# -------------------------------------------------------------------------------------- generic
def _http_url(value: str) -> str:
    """http:// and https:// only: urllib would also read ``file://`` and fetch ``ftp://``."""
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got scheme {scheme or 'none'!r}")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class HttpCallSpec(FrozenSpec):
    """One HTTP call: ``body`` is sent as JSON unless it is a string."""

    url: HttpUrl
    method: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    body: JsonValue = None  # pydantic's JSON type (the same shape as reliability.jsontypes.JsonValue)


class WebhookSpec(_NoDeadMan):
    """An HTTP call on inject and on revert; ``verify_url`` answers 2xx when healthy."""

    type: Literal["webhook"]
    inject: HttpCallSpec
    revert: HttpCallSpec | None = None
    verify_url: HttpUrl | None = None
    timeout_s: Seconds = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _undoable(self) -> WebhookSpec:
        if self.revert is None:
            raise ValueError("revert: required: without a revert call the webhook's effect cannot be undone")
        return self


class ShellSpec(_NoDeadMan):
    """A command on inject and on revert, optionally on verify (exit 0 = healthy). A string
    runs through ``/bin/sh -c``; a list runs as-is."""

    type: Literal["shell"]
    inject: Command
    revert: Command | None = None
    verify: Command | None = None
    timeout_s: Seconds = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _undoable(self) -> ShellSpec:
        if self.revert is None:
            raise ValueError("revert: required: without a revert command the fault cannot be undone")
        return self


FaultSpec = Annotated[
    RedisPauseSpec | RedisMemorySpec | RedisSlowSpec
    | PostgresLockSpec | PostgresOutageSpec | PostgresExhaustSpec
    | ProxyLatencySpec | ProxyBandwidthSpec | ProxyTimeoutSpec | ProxyResetPeerSpec | ProxySlowCloseSpec
    | ProxySlicerSpec | ProxyLimitDataSpec | ProxyDownSpec | ProxyHttpSpec
    | HttpErrorSpec | HttpLatencySpec
    | ProcessSuspendSpec | ProcessKillSpec
    | LoadSpikeSpec | LoadWsStormSpec
    | WebhookSpec | ShellSpec,
    Field(discriminator="type"),
]
"""Any fault spec; the ``type`` key picks the model (and the kind in the registry)."""

FAULT_SPEC: TypeAdapter[FaultSpec] = TypeAdapter(FaultSpec)


def parse_fault_spec(data: Any) -> FaultSpec:
    """Validate one fault mapping (already interpolated); raises pydantic's ValidationError.

    >>> parse_fault_spec({"type": "http.latency", "url": "http://t:8080", "latency_ms": "250ms"}).latency_ms
    250.0
    """
    return FAULT_SPEC.validate_python(data)
