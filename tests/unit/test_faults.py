"""The pure parts of the faults package: specs, registry, revert_all, leases, helpers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from reliability.exceptions import FaultError
from reliability.faults import Fault, FaultCheck, build_fault, injected, kinds, registry, revert_all
from reliability.faults.base import Lease, one_line, probe, renew_interval_s, secrets_of, wait_until
from reliability.faults.spec import FaultSpec, HttpErrorSpec, ProxyLatencySpec, parse_fault_spec
from tests.support.fakes import FakeClock
from tests.support.processes import assert_imports_without

MINIMAL: dict[str, dict[str, Any]] = {
    "redis.pause": {"url": "redis://127.0.0.1:6379/0"},
    "redis.memory": {"url": "redis://127.0.0.1:6379/0"},
    "redis.slow": {"url": "redis://127.0.0.1:6379/0"},
    "postgres.lock": {"dsn": "postgresql://app@db/app", "table": "items"},
    "postgres.outage": {"dsn": "postgresql://app@db/app"},
    "postgres.exhaust": {"dsn": "postgresql://app@db/app"},
    "proxy.latency": {"proxy": "pg", "latency_ms": 100},
    "proxy.bandwidth": {"proxy": "pg", "rate_kb_s": 10},
    "proxy.timeout": {"proxy": "pg"},
    "proxy.reset_peer": {"proxy": "pg"},
    "proxy.slow_close": {"proxy": "pg", "delay_ms": 100},
    "proxy.slicer": {"proxy": "pg", "average_size": 64, "size_variation": 16, "delay_us": 500},
    "proxy.limit_data": {"proxy": "pg", "bytes": 1000},
    "proxy.down": {"proxy": "pg"},
    "proxy.http": {"proxy": "api"},
    "http.error": {"url": "http://127.0.0.1:8080"},
    "http.latency": {"url": "http://127.0.0.1:8080", "latency_ms": 100},
    "process.suspend": {"pid": 1},
    "process.kill": {"match": "redis-server", "restart_command": "redis-server --daemonize yes"},
    "load.spike": {"url": "http://127.0.0.1:8080/api/items"},
    "load.ws_storm": {"url": "ws://127.0.0.1:8080/ws"},
    "webhook": {"inject": {"url": "http://hooks/chaos"}, "revert": {"url": "http://hooks/calm"}},
    "shell": {"inject": "true", "revert": "true"},
}
NO_BACKEND_EXPIRY = {"redis.memory", "process.kill", "webhook", "shell"}  # only the revert guard


def test_every_kind_has_a_spec_a_factory_and_an_example() -> None:
    union = get_args(get_args(FaultSpec)[0])
    spec_kinds = {get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert spec_kinds == set(kinds()) == set(registry()) == set(MINIMAL)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_each_kind_builds_a_fault_without_touching_the_network(kind: str) -> None:
    spec = parse_fault_spec({"type": kind, **MINIMAL[kind]})
    fault = build_fault(spec, f"the-{kind}", environ={})
    assert isinstance(fault, Fault)
    assert (fault.name, fault.kind) == (f"the-{kind}", kind)
    assert spec.dead_man_s is not None and spec.dead_man_s > 0  # every kind: the guard's lapse at least
    assert (fault.dead_man_s is None) == (kind in NO_BACKEND_EXPIRY)
    if kind == "redis.slow":
        assert fault.dead_man_s == pytest.approx(0.2)  # block_ms: the script ends by itself


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_revert_before_inject_touches_nothing(kind: str) -> None:
    # The endpoints in MINIMAL do not exist: any network call would raise.
    fault = build_fault(parse_fault_spec({"type": kind, **MINIMAL[kind]}), "never-injected", environ={})
    fault.revert()
    fault.revert()


def test_units_are_parsed_and_unknown_keys_rejected() -> None:
    spec = parse_fault_spec({"type": "proxy.latency", "proxy": "pg", "latency_ms": "1.5s", "dead_man_s": "2m"})
    assert isinstance(spec, ProxyLatencySpec)
    assert (spec.latency_ms, spec.dead_man_s) == (1500.0, 120.0)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse_fault_spec({"type": "redis.pause", "url": "redis://x", "timeout": 3})
    with pytest.raises(ValidationError, match="restart_command: required: without it the kill cannot be undone"):
        parse_fault_spec({"type": "process.kill", "pid": 4})
    with pytest.raises(ValidationError, match="revert: required"):
        parse_fault_spec({"type": "shell", "inject": "true"})
    with pytest.raises(ValidationError, match="revert: required"):
        parse_fault_spec({"type": "webhook", "inject": {"url": "http://hooks/x"}})
    with pytest.raises(ValidationError, match="dead_man_s: required for a postgres.lock fault"):
        parse_fault_spec({"type": "postgres.lock", "dsn": "postgresql://db/app", "table": "t", "dead_man_s": None})
    with pytest.raises(ValidationError, match="greater than block_ms"):
        parse_fault_spec({"type": "redis.slow", "url": "redis://x", "block_ms": 500, "period_ms": 400})
    with pytest.raises(ValidationError, match="exactly one of pid, pid_file, match"):
        parse_fault_spec({"type": "process.kill", "pid": 4, "match": "x"})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_fault_spec({"type": "redis.explode", "url": "redis://x"})


def test_specs_are_frozen_and_hide_tokens_from_repr() -> None:
    spec = parse_fault_spec({"type": "http.error", "url": "http://t", "admin_token": "s3cret"})
    assert isinstance(spec, HttpErrorSpec)
    with pytest.raises(ValidationError):
        spec.status = 500
    assert "s3cret" not in repr(spec)


def test_build_fault_takes_the_admin_token_from_the_environment() -> None:
    spec = parse_fault_spec({"type": "http.error", "url": "http://t"})
    fault = build_fault(spec, "errors", environ={"RELIABILITY_ADMIN_TOKEN": "tok"})
    assert fault._headers == {"X-Admin-Token": "tok"}  # type: ignore[attr-defined]


class Scripted:
    """A fault at our own seam: records calls, raises where told."""

    def __init__(self, name: str, revert_error: str | None = None, healthy: bool = True) -> None:
        self.name = name
        self.kind = "test.scripted"
        self.dead_man_s: float | None = None
        self.calls: list[str] = []
        self._revert_error = revert_error
        self._healthy = healthy

    def inject(self) -> None:
        self.calls.append("inject")

    def revert(self) -> None:
        self.calls.append("revert")
        if self._revert_error:
            raise FaultError(self._revert_error + "\nsecond line")

    def verify(self) -> FaultCheck:
        self.calls.append("verify")
        return FaultCheck(self._healthy, f"{self.name} checked")


def test_revert_all_reverts_every_fault_even_when_one_raises_then_verifies() -> None:
    first, broken, last = Scripted("a"), Scripted("b", revert_error="boom"), Scripted("c", healthy=False)
    checks = revert_all([first, broken, last])
    assert checks == [
        FaultCheck(True, "a checked"),
        FaultCheck(False, "b: revert failed: boom"),
        FaultCheck(False, "c checked"),
    ]
    assert first.calls == last.calls == ["revert", "verify"]
    assert broken.calls == ["revert"]
    assert revert_all([]) == []


def test_revert_all_reverts_everything_before_verifying_anything() -> None:
    log: list[str] = []
    faults = [Scripted("a"), Scripted("b")]
    for fault in faults:
        fault.calls = log
    revert_all(faults)
    assert log == ["revert", "revert", "verify", "verify"]


def test_injected_reverts_and_verifies_however_the_block_ends() -> None:
    first, second = Scripted("a"), Scripted("b", revert_error="stuck")
    with pytest.raises(RuntimeError, match="load failed"), injected(first, second) as checks:
        assert first.calls == second.calls == ["inject"]
        raise RuntimeError("load failed")
    assert first.calls == ["inject", "revert", "verify"]
    assert checks == [FaultCheck(True, "a checked"), FaultCheck(False, "b: revert failed: stuck")]


def test_lease_renews_until_stopped_and_survives_errors() -> None:
    calls: list[float] = []

    def renew() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise OSError("flaky\ndetails")

    lease = Lease(renew, 0.02, "t")
    lease.start()
    assert wait_until(lambda: len(calls) >= 4, 2.0)
    lease.stop()
    stopped_at = len(calls)
    time.sleep(0.06)
    assert len(calls) == stopped_at
    assert lease.last_error == "flaky"
    assert lease.renewals == stopped_at - 1
    lease.stop()  # idempotent
    assert renew_interval_s(30.0) == pytest.approx(10.0)


def test_helpers_mask_secrets_and_keep_one_line() -> None:
    assert secrets_of("postgresql://u:pw1@h/db", "host=h password='p w2' user=u", "redis://h:6379", None) == \
        ("pw1", "p w2")
    assert one_line(ValueError("login failed for pw1\nat line 2"), ["pw1"]) == "login failed for ***"
    assert one_line(ValueError("")) == "ValueError"
    check = probe("db", lambda: (_ for _ in ()).throw(OSError("refused for pw1")), ["pw1"])
    assert not check.healthy and check.detail == "db: refused for ***" and check.latency_ms is not None


def test_wait_until_uses_the_injected_clock() -> None:
    clock = FakeClock()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    assert not wait_until(lambda: False, 1.0, 0.25, clock=clock, sleep=sleep)
    assert sleeps == [0.25] * 4
    assert wait_until(lambda: clock.now >= 1.5, 5.0, 0.25, clock=clock, sleep=sleep)


def test_fault_modules_and_the_proxy_import_neither_locust_nor_gevent() -> None:
    modules = ["reliability.faults", "reliability.faults.redis", "reliability.faults.postgres",
               "reliability.faults.proxy", "reliability.faults.http", "reliability.faults.process",
               "reliability.faults.load", "reliability.faults.loadgen", "reliability.faults.generic",
               "reliability.chaosproxy.app"]
    assert_imports_without(modules)


def test_the_package_imports_no_driver_until_a_fault_is_built() -> None:
    code = ("import sys, reliability.faults\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'redis', 'psutil', 'aiohttp')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_lease_threads_are_daemons() -> None:
    lease = Lease(lambda: None, 10.0, "daemon")
    lease.start()
    try:
        assert any(t.name == "lease-daemon" and t.daemon for t in threading.enumerate())
    finally:
        lease.stop()
