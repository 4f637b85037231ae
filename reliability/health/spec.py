"""The ``health:`` section of a scenario file: components, their probes and dependencies.

Example::

    health:
      interval_s: 1s                # one probe round a second during a load run
      timeout_s: 800ms              # default per-probe bound (a component may set its own)
      uptime_pct: 99.5              # optional SLA criterion on probe-based uptime
      resources: {port: 8080}       # CPU / memory of the local process listening there (or pid:)
      components:
        db:    {probe: {type: postgres, dsn: "${PG_DSN}"}}
        cache: {probe: {type: redis, url: "${REDIS_URL}"}, critical: false}
        api:   {probe: {type: http, url: "http://127.0.0.1:8080/health"}, depends_on: [db, cache]}
        ws:    {probe: {type: websocket, url: "ws://127.0.0.1:8080/ws"}, depends_on: [api]}

Secrets (DSNs with passwords, tokens) belong in ``${ENV}`` references; they are held as
``SecretStr`` so that a printed or logged spec never shows them. Validation rejects unknown keys,
``depends_on`` names that are not components, dependency cycles and timeouts longer than the
interval, each with the field path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from reliability.units import FrozenSpec, parse_duration_s, parse_latency_ms


class HttpProbeSpec(FrozenSpec):
    """``GET url``: 2xx is up; a JSON body's ``status`` (healthy/degraded/down, ok/warn/fail ...)
    refines it. Example: ``{type: http, url: "http://127.0.0.1:8080/health"}``."""

    type: Literal["http"]
    url: str


class PostgresProbeSpec(FrozenSpec):
    """Connect, ``SELECT 1``, connections in use vs ``max_connections`` and queries running longer
    than ``slow_query_ms``. Example: ``{type: postgres, dsn: "${PG_DSN}", slow_query_ms: 500}``."""

    type: Literal["postgres"]
    dsn: SecretStr
    max_connections_ratio: float = Field(default=0.9, gt=0, le=1)
    slow_query_ms: float = Field(default=1000.0, gt=0)
    max_slow_queries: int = Field(default=0, ge=0)

    @field_validator("slow_query_ms", mode="before")
    @classmethod
    def _ms(cls, v: object) -> float:
        return parse_latency_ms(v)


class RedisProbeSpec(FrozenSpec):
    """``PING``, then ``INFO``: used memory vs ``maxmemory``, hit ratio, connected clients vs
    ``maxclients``. Example: ``{type: redis, url: "${REDIS_URL}", min_hit_ratio: 0.8}``."""

    type: Literal["redis"]
    url: SecretStr
    max_memory_ratio: float = Field(default=0.9, gt=0, le=1)
    max_clients_ratio: float = Field(default=0.9, gt=0, le=1)
    min_hit_ratio: float | None = Field(default=None, ge=0, le=1)


class WebSocketProbeSpec(FrozenSpec):
    """Connect and time one echo round trip. Example: ``{type: websocket, url: "ws://h:8080/ws"}``."""

    type: Literal["websocket"]
    url: str


class PrometheusProbeSpec(FrozenSpec):
    """``GET /-/healthy`` and an instant ``query`` (default ``up``) through the HTTP API; every
    returned series must be non-zero. Example: ``{type: prometheus, url: "http://127.0.0.1:9090"}``."""

    type: Literal["prometheus"]
    url: str
    query: str = "up"


class GatewayProbeSpec(FrozenSpec):
    """The security gateway in front of ``path``: no token, a malformed and a wrong token must be
    rejected (401/403), a valid one accepted. The valid token is ``token``, or one obtained by
    logging in at ``login_path`` with ``username`` / ``password``.

    Example: ``{type: gateway, url: "http://127.0.0.1:8080", username: demo, password: "${PW}"}``.
    """

    type: Literal["gateway"]
    url: str
    path: str = "/api/items?limit=1"
    login_path: str = "/auth/login"
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _credentials(self) -> GatewayProbeSpec:
        if self.token is None and (self.username is None or self.password is None):
            raise ValueError("token: give a token, or a username and a password to log in with")
        return self


ProbeSpec = Annotated[
    HttpProbeSpec | PostgresProbeSpec | RedisProbeSpec | WebSocketProbeSpec | PrometheusProbeSpec | GatewayProbeSpec,
    Field(discriminator="type"),
]


class ComponentSpec(FrozenSpec):
    """One component: its probe, what it depends on, and how much it counts.

    ``critical`` components that are down make the whole system down; others only degrade it.
    ``weight`` is the component's share of the health score. ``degraded_ms``: a healthy answer
    slower than this counts as degraded. Example::

        api: {probe: {type: http, url: "http://127.0.0.1:8080/health"}, depends_on: [db], degraded_ms: 200}
    """

    probe: ProbeSpec
    depends_on: tuple[str, ...] = ()
    critical: bool = True
    weight: float = Field(default=1.0, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)
    degraded_ms: float | None = Field(default=None, gt=0)

    @field_validator("timeout_s", mode="before")
    @classmethod
    def _dur(cls, v: object) -> float | None:
        return None if v is None else parse_duration_s(v)

    @field_validator("degraded_ms", mode="before")
    @classmethod
    def _ms(cls, v: object) -> float | None:
        return None if v is None else parse_latency_ms(v)


class ResourcesSpec(FrozenSpec):
    """The local target process whose CPU and memory are sampled with the probes: by ``pid`` or
    by the TCP ``port`` it listens on (looked up again if the process restarts)."""

    pid: int | None = Field(default=None, gt=0)
    port: int | None = Field(default=None, gt=0, lt=65536)

    @model_validator(mode="after")
    def _one(self) -> ResourcesSpec:
        if (self.pid is None) == (self.port is None):
            raise ValueError("pid: give exactly one of pid and port")
        return self


class HealthSpec(FrozenSpec):
    """The ``health:`` section; see the module docstring for an example."""

    interval_s: float = Field(default=1.0, ge=0.1, le=3600)
    timeout_s: float = Field(default=0.8, gt=0)
    uptime_pct: float | None = Field(default=None, ge=0, le=100)
    resources: ResourcesSpec | None = None
    components: dict[str, ComponentSpec] = Field(min_length=1)

    @field_validator("interval_s", "timeout_s", mode="before")
    @classmethod
    def _dur(cls, v: object) -> float:
        return parse_duration_s(v)

    @model_validator(mode="after")
    def _check_graph(self) -> HealthSpec:
        if self.timeout_s > self.interval_s:
            raise ValueError(f"timeout_s: {self.timeout_s:g} s is longer than interval_s ({self.interval_s:g} s)")
        for name, component in self.components.items():
            for i, dep in enumerate(component.depends_on):
                if dep not in self.components:
                    raise ValueError(f"components.{name}.depends_on[{i}]: unknown component {dep!r}; "
                                     f"known: {', '.join(self.components)}")
            if self.timeout_for(name) > self.interval_s:
                raise ValueError(f"components.{name}.timeout_s: {self.timeout_for(name):g} s is longer than "
                                 f"interval_s ({self.interval_s:g} s)")
        from reliability.health.graph import find_cycle

        cycle = find_cycle(self.dependencies())
        if cycle:
            raise ValueError(f"components.{cycle[0]}.depends_on: dependency cycle {' -> '.join(cycle)}")
        if sum(c.weight for c in self.components.values()) <= 0:
            raise ValueError("components: at least one component needs a weight above 0")
        return self

    def timeout_for(self, name: str) -> float:
        """The probe timeout of component ``name`` (its own, else the section's)."""
        own = self.components[name].timeout_s
        return self.timeout_s if own is None else own

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """``{component: depends_on}`` for every component."""
        return {name: c.depends_on for name, c in self.components.items()}

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in the section (DSNs, URLs with passwords, passwords, tokens) and the
        passwords inside them, for scrubbing text that is shown, logged or written."""
        from reliability.masking import passwords_in

        found: list[str] = []
        for component in self.components.values():
            for value in component.probe.__dict__.values():
                if isinstance(value, SecretStr) and value.get_secret_value():
                    raw = value.get_secret_value()
                    found.append(raw)
                    found += passwords_in(raw)
        # Longest first, so a DSN is replaced whole before the password inside it.
        return tuple(sorted(set(found), key=len, reverse=True))


def probe_summary(spec: ProbeSpec) -> str:
    """A printable target for a probe spec, without secrets (``postgresql://u:***@h:5432/db``)."""
    from reliability.masking import mask

    if isinstance(spec, PostgresProbeSpec):
        return mask(spec.dsn.get_secret_value())
    if isinstance(spec, RedisProbeSpec):
        return mask(spec.url.get_secret_value())
    if isinstance(spec, GatewayProbeSpec):
        return mask(spec.url.rstrip("/") + spec.path)
    return mask(str(spec.url))
