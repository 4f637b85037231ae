"""Settings of the reference target: one frozen :class:`TargetConfig`, built from CLI flags and env.

Every option can come from a flag or an environment variable; the flag wins, then the variable,
then the default. One table (:data:`OPTIONS`) drives both the argparse flags and the env lookup so
the two can never drift apart.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from reliability.exceptions import TargetError
from reliability.masking import passwords_in
from reliability.origins import is_loopback

PASSWORD_ENV = "RELIABILITY_TARGET_PASSWORD"
ADMIN_TOKEN_ENV = "RELIABILITY_ADMIN_TOKEN"
# libpq key=value syntax: a value is a bare word or single-quoted with backslash escapes.


@dataclass(frozen=True)
class TargetConfig:
    """Everything the target needs to start; secrets are kept out of ``repr``.

    Example::

        config = TargetConfig(port=0, rate_limit_rps=100.0)
        app = build_app(config)          # from reliability.target.app
    """

    host: str = "127.0.0.1"
    port: int = 8080
    dsn: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    rate_limit_rps: float = 0.0
    db_timeout_ms: float = 500.0
    breaker_failures: int = 5
    breaker_cooldown_s: float = 5.0
    cache_ttl_s: float = 30.0
    users: tuple[tuple[str, str], ...] = field(default=(("demo", "demo"),), repr=False)
    admin_token: str | None = field(default=None, repr=False)
    seed_items: int = 300
    cache_timeout_ms: float = 100.0
    # After a cache error, skip the cache this long so a hung Redis costs one timeout per window,
    # not one per request.
    cache_retry_s: float = 0.5
    health_timeout_ms: float = 500.0
    db_pool_min: int = 2
    db_pool_max: int = 10
    max_tokens: int = 100_000
    # Host names the admin API answers besides its own (a compose service name, a DNS name)
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(self.admin_token is not None or is_loopback(self.host), "host",
                 f"{self.host or 'all interfaces'} is not a loopback address: set {ADMIN_TOKEN_ENV}, or anyone on "
                 "the network can inject faults through the admin API")
        _require(0 <= self.port <= 65535, "port", "must be 0..65535")
        _require(_finite(self.rate_limit_rps) and self.rate_limit_rps >= 0, "rate_limit_rps", "must be >= 0")
        for name in (
            "db_timeout_ms",
            "breaker_cooldown_s",
            "cache_ttl_s",
            "cache_timeout_ms",
            "cache_retry_s",
            "health_timeout_ms",
        ):
            value = getattr(self, name)
            _require(_finite(value) and value > 0, name, "must be > 0")
        _require(self.breaker_failures >= 1, "breaker_failures", "must be >= 1")
        _require(self.seed_items >= 0, "seed_items", "must be >= 0")
        _require(1 <= self.db_pool_min <= self.db_pool_max, "db_pool_min", "must be 1..db_pool_max")
        _require(self.max_tokens >= 1, "max_tokens", "must be >= 1")
        _require(len(self.users) >= 1, "users", "needs at least one user")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this config holds, so log and health text can be scrubbed of them."""
        found = [password for _, password in self.users]
        if self.admin_token:
            found.append(self.admin_token)
        for url in (self.dsn, self.redis_url):
            found += passwords_in(url)
        return tuple(s for s in found if s)


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _require(ok: bool, name: str, reason: str) -> None:
    if not ok:
        raise TargetError(f"target option {name}: {reason}")


def parse_users(spec: str, password: str | None) -> tuple[tuple[str, str], ...]:
    """Parse ``"alice:pw1,bob:pw2"``; an entry without ``:`` takes ``password`` (from the env).

    >>> parse_users("demo:demo,ops", "s3cret")
    (('demo', 'demo'), ('ops', 's3cret'))
    """
    users: list[tuple[str, str]] = []
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, secret = entry.partition(":")
        if not sep:
            if not password:
                raise TargetError(f"users: {name!r} has no password and {PASSWORD_ENV} is not set")
            secret = password
        if not name or not secret:
            raise TargetError("users: each entry must be NAME:PASSWORD or NAME")
        users.append((name, secret))
    if not users:
        raise TargetError("users: needs at least one NAME:PASSWORD")
    return tuple(users)


OptionValue = str | int | float
V = TypeVar("V", str, int, float)


@dataclass(frozen=True)
class Option:
    """One target option: its flag, env variable, parser and default."""

    flag: str
    env: str
    parse: Callable[[str], OptionValue]
    default: OptionValue | None
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--host", "RELIABILITY_TARGET_HOST", str, "127.0.0.1", "address to bind"),
    Option("--port", "RELIABILITY_TARGET_PORT", int, 8080, "port to bind; 0 picks a free port"),
    Option("--dsn", "RELIABILITY_TARGET_DSN", str, None, "PostgreSQL DSN; absent means the embedded in-memory store"),
    Option(
        "--redis-url", "RELIABILITY_TARGET_REDIS_URL", str, None, "Redis URL; absent means the embedded in-memory cache"
    ),
    Option(
        "--rate-limit-rps",
        "RELIABILITY_TARGET_RATE_LIMIT_RPS",
        float,
        0.0,
        "global request rate limit (burst = 1 s worth); 0 turns it off",
    ),
    Option(
        "--db-timeout-ms",
        "RELIABILITY_TARGET_DB_TIMEOUT_MS",
        float,
        500.0,
        "bound on every database call (client and server side)",
    ),
    Option(
        "--breaker-failures",
        "RELIABILITY_TARGET_BREAKER_FAILURES",
        int,
        5,
        "consecutive database failures that open the circuit breaker",
    ),
    Option(
        "--breaker-cooldown-s",
        "RELIABILITY_TARGET_BREAKER_COOLDOWN_S",
        float,
        5.0,
        "seconds the breaker stays open before one probe request",
    ),
    Option("--cache-ttl-s", "RELIABILITY_TARGET_CACHE_TTL_S", float, 30.0, "cache entry lifetime"),
    Option(
        "--allowed-hosts",
        "RELIABILITY_TARGET_ALLOWED_HOSTS",
        str,
        "",
        "Host names the admin API also answers to (comma-separated, e.g. a compose service name)",
    ),
    Option(
        "--users",
        "RELIABILITY_TARGET_USERS",
        str,
        "demo:demo",
        f"NAME:PASSWORD[,...]; a bare NAME takes its password from {PASSWORD_ENV}",
    ),
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :data:`OPTIONS` entry; defaults stay ``None`` so env can fill them later."""
    for option in OPTIONS:
        shown = "(none)" if option.default is None else option.default
        parser.add_argument(
            option.flag,
            dest=option.dest,
            type=option.parse,
            default=None,
            help=f"{option.help} [env {option.env}; default {shown}]",
        )


def config_from_namespace(args: argparse.Namespace, environ: Mapping[str, str]) -> TargetConfig:
    """Resolve each option as flag, then env variable, then default; raise TargetError on bad env."""
    values: dict[str, OptionValue | None] = {}
    for option in OPTIONS:
        value = getattr(args, option.dest, None)
        if value is None and environ.get(option.env):
            raw = environ[option.env]
            try:
                value = option.parse(raw)
            except ValueError:
                # The value may be a secret (a DSN), so name the variable, never echo it.
                raise TargetError(f"{option.env}: cannot parse its value as {option.parse.__name__}") from None
        values[option.dest] = option.default if value is None else value
    password = environ.get(PASSWORD_ENV) or None
    users_spec = _value(values, "users", str)
    if getattr(args, "users", None) is None and not environ.get("RELIABILITY_TARGET_USERS") and password:
        # With only the password in the env, the default user takes it, keeping it off the command line.
        users_spec = "demo"
    config = TargetConfig(
        host=_value(values, "host", str),
        port=_value(values, "port", int),
        dsn=_optional_text(values, "dsn"),
        redis_url=_optional_text(values, "redis_url"),
        rate_limit_rps=_value(values, "rate_limit_rps", float),
        db_timeout_ms=_value(values, "db_timeout_ms", float),
        breaker_failures=_value(values, "breaker_failures", int),
        breaker_cooldown_s=_value(values, "breaker_cooldown_s", float),
        cache_ttl_s=_value(values, "cache_ttl_s", float),
        allowed_hosts=tuple(h.strip() for h in _value(values, "allowed_hosts", str).split(",") if h.strip()),
        users=parse_users(users_spec, password),
        admin_token=environ.get(ADMIN_TOKEN_ENV) or None,
    )
    if values:  # each setting above takes its option out: one left over has no TargetConfig field
        raise TargetError(f"option(s) without a setting: {', '.join(sorted(values))}")
    return config


def _value(values: dict[str, OptionValue | None], dest: str, kind: type[V]) -> V:
    """An option's resolved value (taken out of ``values``), which its parser or default gave as ``kind``."""
    value = values.pop(dest)
    if not isinstance(value, kind):
        raise TargetError(f"{dest}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional_text(values: dict[str, OptionValue | None], dest: str) -> str | None:
    if values.get(dest) is None:
        values.pop(dest)
        return None
    return _value(values, dest, str)
