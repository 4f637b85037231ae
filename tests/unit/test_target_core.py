"""Pure parts of the reference target, on a fake clock: breaker, token bucket, faults, auth,
config, the embedded store and cache, and cache degradation. No server, no event loop."""

from __future__ import annotations

import argparse
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from reliability.exceptions import TargetError
from reliability.masking import mask
from reliability.target.auth import Authenticator, AuthOutcome
from reliability.target.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from reliability.target.cache import CacheOutcome, CacheUnavailable, MemoryCache, ResilientCache
from reliability.target.config import (
    TargetConfig,
    add_options,
    config_from_namespace,
    parse_users,
)
from reliability.target.httpfault import FaultAction, FaultState, HttpFaultSpec, parse_fault
from reliability.target.ops import overall_status
from reliability.target.ratelimit import TokenBucket
from reliability.target.store import MemoryStore
from tests.support.fakes import FakeClock
from tests.support.processes import assert_imports_without

T0 = 1000.0
T = TypeVar("T")


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # A call, not the property: mypy would otherwise keep the narrowing from an earlier assert.
    return breaker.state


def done(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the embedded store and cache) without a loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("coroutine suspended")


# --- circuit breaker -------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = FakeClock(T0)
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=5.0, clock=clock)
    for _ in range(2):
        assert breaker.acquire() is False
        breaker.record_failure(False)
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record_success(breaker.acquire())
    assert breaker.consecutive_failures == 0, "a success resets the count: failures must be consecutive"
    for _ in range(3):
        breaker.record_failure(breaker.acquire())
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(2.0)
    with pytest.raises(CircuitOpenError) as raised:
        breaker.acquire()
    assert raised.value.retry_after_s == pytest.approx(3.0)


def test_breaker_half_open_admits_one_probe_and_closes_on_success() -> None:
    clock = FakeClock(T0)
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.record_failure(breaker.acquire())
    clock.advance(5.0)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.acquire() is True
    with pytest.raises(CircuitOpenError):
        breaker.acquire()  # only one probe at a time
    breaker.record_success(True)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.acquire() is False


def test_breaker_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock(T0)
    breaker = CircuitBreaker(2, 5.0, clock)
    for _ in range(2):
        breaker.record_failure(breaker.acquire())
    clock.advance(6.0)
    breaker.record_failure(breaker.acquire())
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(4.9)
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(0.1)
    assert state_of(breaker) is BreakerState.HALF_OPEN


def test_breaker_released_probe_lets_the_next_request_probe() -> None:
    clock = FakeClock(T0)
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.record_failure(breaker.acquire())
    clock.advance(1.0)
    breaker.release(breaker.acquire())
    assert breaker.acquire() is True


def test_breaker_ignores_late_results_of_calls_admitted_before_it_opened() -> None:
    clock = FakeClock(T0)
    breaker = CircuitBreaker(1, 5.0, clock)
    early = breaker.acquire()
    breaker.record_failure(breaker.acquire())
    breaker.record_success(early)
    assert state_of(breaker) is BreakerState.OPEN


@pytest.mark.parametrize(("threshold", "cooldown_s"), [(0, 1.0), (1, 0.0)])
def test_breaker_rejects_bad_settings(threshold: int, cooldown_s: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, cooldown_s)


# --- token bucket ----------------------------------------------------------------------------


def test_token_bucket_allows_one_second_burst_then_paces() -> None:
    clock = FakeClock(T0)
    bucket = TokenBucket(10.0, clock=clock)
    assert [bucket.take() for _ in range(10)] == [0.0] * 10
    assert bucket.take() == pytest.approx(0.1)
    clock.advance(0.1)
    assert bucket.take() == 0.0
    clock.advance(60.0)
    assert sum(bucket.take() == 0.0 for _ in range(20)) == 10, "never more than the burst"


def test_token_bucket_below_one_per_second_still_admits() -> None:
    clock = FakeClock(T0)
    bucket = TokenBucket(0.5, clock=clock)
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(2.0)


# --- HTTP faults -----------------------------------------------------------------------------


def test_parse_fault_defaults_and_validation() -> None:
    assert parse_fault({}) == HttpFaultSpec(0.0, 0.0, 500, "/api", None)
    spec = parse_fault({"latency_ms": 5, "error_ratio": 1, "status": 503, "route_prefix": "/auth", "ttl_s": 2})
    assert spec == HttpFaultSpec(5.0, 1.0, 503, "/auth", 2.0)
    for bad in ({"latency_ms": float("nan")}, {"error_ratio": -0.1}, {"status": 302}, {"ttl_s": -1}, {"x": 1}):
        with pytest.raises(ValueError):
            parse_fault(bad)


@pytest.mark.parametrize(
    ("prefix", "path", "matches"),
    [
        ("/api", "/api/items/1", True),
        ("/api", "/api", True),
        ("/api", "/apiary", False),
        ("/api/", "/api/items", True),
        ("/", "/auth/login", True),
        ("/", "/health", False),
        ("/", "/metrics", False),
        ("/", "/admin/faults", False),
    ],
)
def test_fault_route_matching_spares_operator_routes(prefix: str, path: str, matches: bool) -> None:
    assert HttpFaultSpec(route_prefix=prefix).matches(path) is matches


def test_fault_state_expires_after_ttl() -> None:
    clock = FakeClock(T0)
    faults = FaultState(clock, random.Random(1))
    faults.set(parse_fault({"latency_ms": 100, "ttl_s": 10}))
    assert faults.action_for("/api/x") == FaultAction(0.1, None)
    described = faults.describe()
    assert described is not None and described["expires_in_s"] == pytest.approx(10.0)
    clock.advance(10.0)
    assert faults.action_for("/api/x") is None
    assert faults.describe() is None


def test_fault_state_error_ratio_follows_the_rng() -> None:
    faults = FaultState(FakeClock(T0), random.Random(7))
    faults.set(parse_fault({"error_ratio": 0.25, "status": 429}))
    actions = [faults.action_for("/api/items") for _ in range(4000)]
    failed = sum(1 for a in actions if a is not None and a.status == 429)
    assert 0.22 <= failed / 4000 <= 0.28


# --- auth ------------------------------------------------------------------------------------


def test_authenticator_issues_distinct_tokens_and_checks_them() -> None:
    auth = Authenticator({"demo": "demo"})
    assert auth.login("demo", "bad") is None
    assert auth.login("nobody", "demo") is None
    first, second = auth.login("demo", "demo"), auth.login("demo", "demo")
    assert first and second and first != second and len(first) >= 32
    assert auth.check(f"Bearer {first}") is AuthOutcome.OK
    assert auth.check(f"bearer {second}") is AuthOutcome.OK
    assert auth.check("Bearer other") is AuthOutcome.UNKNOWN
    for header in (None, "", "Bearer", "Bearer ", "Token abc", f"Bearer {first} x"):
        assert auth.check(header) is AuthOutcome.MISSING


def test_authenticator_forgets_the_oldest_tokens_beyond_its_bound() -> None:
    auth = Authenticator({"u": "p"}, max_tokens=2)
    tokens = [auth.login("u", "p") for _ in range(3)]
    assert [auth.check(f"Bearer {t}") for t in tokens] == [AuthOutcome.UNKNOWN, AuthOutcome.OK, AuthOutcome.OK]


# --- config ----------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser)
    return parser.parse_args(argv)


def test_config_defaults() -> None:
    config = config_from_namespace(_args(), {})
    assert config == TargetConfig()
    assert (config.host, config.port, config.dsn, config.redis_url) == ("127.0.0.1", 8080, None, None)
    assert (config.db_timeout_ms, config.breaker_failures, config.breaker_cooldown_s) == (500.0, 5, 5.0)
    assert (config.rate_limit_rps, config.cache_ttl_s, config.users) == (0.0, 30.0, (("demo", "demo"),))


def test_config_flag_beats_env_beats_default() -> None:
    env = {"RELIABILITY_TARGET_PORT": "9000", "RELIABILITY_TARGET_CACHE_TTL_S": "7", "RELIABILITY_TARGET_DSN": "x"}
    config = config_from_namespace(_args("--port", "0"), env)
    assert (config.port, config.cache_ttl_s, config.dsn) == (0, 7.0, "x")


def test_config_bad_env_value_names_the_variable_not_the_value() -> None:
    with pytest.raises(TargetError, match="RELIABILITY_TARGET_DB_TIMEOUT_MS") as raised:
        config_from_namespace(_args(), {"RELIABILITY_TARGET_DB_TIMEOUT_MS": "hunter2"})
    assert "hunter2" not in str(raised.value)


def test_config_password_env_and_users() -> None:
    assert config_from_namespace(_args(), {"RELIABILITY_TARGET_PASSWORD": "pw"}).users == (("demo", "pw"),)
    assert parse_users("a:1, b", "env") == (("a", "1"), ("b", "env"))
    with pytest.raises(TargetError, match="RELIABILITY_TARGET_PASSWORD"):
        parse_users("a", None)
    with pytest.raises(TargetError):
        parse_users(" , ", "x")


def test_config_repr_and_secrets_keep_passwords_out_of_sight() -> None:
    config = TargetConfig(dsn="postgresql://u:dbpw@h/d", redis_url="redis://:rpw@h", admin_token="adm")
    assert not any(secret in repr(config) for secret in ("dbpw", "rpw", "adm", "demo"))
    assert set(config.secrets) >= {"dbpw", "rpw", "adm", "demo"}
    assert mask("failed for dbpw and adm", config.secrets) == "failed for *** and ***"
    assert "it's x" in TargetConfig(dsn="host=h password='it\\'s x'").secrets


@pytest.mark.parametrize(
    "bad",
    [{"port": 70000}, {"breaker_failures": 0}, {"db_timeout_ms": 0}, {"rate_limit_rps": -1}, {"users": ()}],
)
def test_config_validation_fails_loudly(bad: dict[str, Any]) -> None:
    with pytest.raises(TargetError):
        TargetConfig(**bad)


# --- embedded store and cache, and degradation -----------------------------------------------


def test_memory_store_crud_and_report() -> None:
    store = MemoryStore(seed_items=3)
    done(store.open())
    assert [item.id for item in done(store.list_items(10))] == [3, 2, 1]
    created = done(store.create_item("x", 10.0))
    assert created.id == 4
    updated = done(store.update_item(4, "y", 2.0))
    assert updated is not None and updated.name == "y" and updated.created_at == created.created_at
    assert done(store.update_item(99, "z", 1.0)) is None
    assert done(store.delete_item(4)) is True and done(store.delete_item(4)) is False
    report = done(store.report()).to_dict()
    assert report == {"count": 3, "sum": 6.0, "avg": 2.0, "min": 1.0, "max": 3.0}
    assert done(MemoryStore(0).report()).to_dict()["avg"] is None


def test_memory_cache_expires_entries_on_its_clock() -> None:
    clock = FakeClock(T0)
    cache = MemoryCache(clock, max_entries=2)
    done(cache.set("a", "1", 5.0))
    assert done(cache.get("a")) == "1"
    clock.advance(5.0)
    assert done(cache.get("a")) is None
    for key in ("b", "c", "d"):
        done(cache.set(key, key, 60.0))
    assert done(cache.get("b")) is None, "bounded: the oldest entry went first"
    assert done(cache.get("d")) == "d"


class BrokenCache:
    """A cache (our own seam) that fails while ``down`` is set."""

    description = "broken"

    def __init__(self) -> None:
        self.down = True
        self.calls = 0
        self.data: dict[str, str] = {}

    def _use(self) -> None:
        self.calls += 1
        if self.down:
            raise CacheUnavailable("down")

    async def get(self, key: str) -> str | None:
        self._use()
        return self.data.get(key)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        self._use()
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self._use()
        self.data.pop(key, None)

    async def ping(self) -> None:
        self._use()

    async def close(self) -> None:
        return None


def test_resilient_cache_bypasses_and_skips_a_failing_cache_then_recovers() -> None:
    clock = FakeClock(T0)
    raw = BrokenCache()
    cache = ResilientCache(raw, retry_s=0.5, clock=clock)
    assert done(cache.get("k")).outcome is CacheOutcome.BYPASS
    assert done(cache.get("k")).outcome is CacheOutcome.BYPASS
    assert raw.calls == 1, "inside the skip window the cache is not called"
    assert done(cache.set("k", "v", 1.0)) is False
    assert done(cache.delete("k")) is False and raw.calls == 2, "invalidation is always tried"
    raw.down = False
    clock.advance(0.5)
    assert done(cache.get("k")).outcome is CacheOutcome.MISS
    assert done(cache.set("k", "v", 1.0)) is True
    hit = done(cache.get("k"))
    assert (hit.value, hit.outcome) == ("v", CacheOutcome.HIT)


@pytest.mark.parametrize(
    ("db_up", "cache_up", "breaker", "status"),
    [
        (True, True, BreakerState.CLOSED, "healthy"),
        (True, False, BreakerState.CLOSED, "degraded"),
        (True, True, BreakerState.HALF_OPEN, "degraded"),
        (True, True, BreakerState.OPEN, "down"),
        (False, True, BreakerState.CLOSED, "down"),
        (False, False, BreakerState.HALF_OPEN, "down"),
    ],
)
def test_overall_health_status(db_up: bool, cache_up: bool, breaker: BreakerState, status: str) -> None:
    assert overall_status(db_up, cache_up, breaker) == status


def test_target_imports_neither_locust_nor_gevent() -> None:
    assert_imports_without(["reliability.target.app", "reliability.target.__main__"])
