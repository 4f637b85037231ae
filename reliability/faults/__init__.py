"""Faults: one interface (inject, revert, verify), each kind a real mechanism.

==================  ==========================================================================
kind                mechanism
==================  ==========================================================================
redis.pause         ``CLIENT PAUSE`` in renewed slices (all commands, or writes only)
redis.memory        ``CONFIG SET maxmemory`` / ``maxmemory-policy``, originals restored
redis.slow          a Lua script busies the server ``block_ms`` every ``period_ms``
postgres.lock       a chaos session holds ``LOCK TABLE`` on the hot table
postgres.outage     a chaos session terminates every other client backend, repeatedly
postgres.exhaust    connections held up to the server's limit
proxy.latency       Toxiproxy-API toxics on our chaos proxy or a real Toxiproxy; ``proxy.down``
proxy.bandwidth     disables the proxy; ``proxy.http`` answers requests with an error status
proxy.timeout       (our proxy in HTTP mode)
proxy.reset_peer
proxy.slow_close
proxy.slicer
proxy.limit_data
proxy.down
proxy.http
http.error          error ratio / status / latency through the reference target's admin API
http.latency
process.suspend     SIGSTOP / SIGCONT (psutil), a detached watchdog resumes it if we die
process.kill        kill, then ``restart_command`` on revert
load.spike          extra HTTP load from a separate process
load.ws_storm       a WebSocket connection storm from a separate process
webhook             an HTTP call on inject and on revert
shell               a command on inject and on revert
==================  ==========================================================================

Example::

    from reliability.faults import build_fault, revert_all
    from reliability.faults.spec import parse_fault_spec

    fault = build_fault(parse_fault_spec({"type": "redis.pause", "url": "redis://127.0.0.1:6379/0"}), "cache-down")
    fault.inject()
    ...
    [check] = revert_all([fault])   # FaultCheck(healthy=True, detail='redis ...: PING ok', ...)

Mechanism modules are imported when a fault of their kind is built, so importing this package
pulls in no database driver (psycopg must be imported after gevent patches the process).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from reliability.exceptions import FaultError
from reliability.faults import spec as spec_models
from reliability.faults.base import Fault, FaultCheck, one_line
from reliability.faults.spec import FaultSpec, parse_fault_spec

__all__ = ["Fault", "FaultCheck", "FaultError", "FaultSpec", "build_fault", "injected", "kinds", "parse_fault_spec",
           "revert_all"]

Factory = Callable[[FaultSpec, str, Mapping[str, str]], Fault]


def _mismatch(spec: FaultSpec, family: str) -> FaultError:
    return FaultError(f"a {spec.type} spec is not one of the {family} faults")


S = TypeVar("S")


@dataclass(frozen=True)
class _Case(Generic[S]):
    """One fault class of a mechanism and the spec model it is built from."""

    spec_type: type[S]
    build: Callable[[S, str], Fault]

    def __call__(self, spec: FaultSpec, name: str) -> Fault | None:
        return self.build(spec, name) if isinstance(spec, self.spec_type) else None


def _first(spec: FaultSpec, name: str, family: str, *cases: Callable[[FaultSpec, str], Fault | None]) -> Fault:
    """The fault of the first case whose spec model ``spec`` is."""
    for case in cases:
        fault = case(spec, name)
        if fault is not None:
            return fault
    raise _mismatch(spec, family)


def _redis(spec: FaultSpec, name: str, _env: Mapping[str, str]) -> Fault:
    from reliability.faults import redis

    return _first(spec, name, "redis", _Case(spec_models.RedisPauseSpec, redis.RedisPauseFault),
                  _Case(spec_models.RedisMemorySpec, redis.RedisMemoryFault),
                  _Case(spec_models.RedisSlowSpec, redis.RedisSlowFault))


def _postgres(spec: FaultSpec, name: str, _env: Mapping[str, str]) -> Fault:
    from reliability.faults import postgres

    return _first(spec, name, "postgres", _Case(spec_models.PostgresLockSpec, postgres.PostgresLockFault),
                  _Case(spec_models.PostgresOutageSpec, postgres.PostgresOutageFault),
                  _Case(spec_models.PostgresExhaustSpec, postgres.PostgresExhaustFault))


def _proxy(spec: FaultSpec, name: str, _env: Mapping[str, str]) -> Fault:
    from reliability.faults.proxy import ProxyDownFault, ProxyToxicFault

    if isinstance(spec, spec_models.ProxyDownSpec):
        return ProxyDownFault(spec, name)
    if isinstance(spec, spec_models.ProxyLatencySpec | spec_models.ProxyBandwidthSpec | spec_models.ProxyTimeoutSpec
                  | spec_models.ProxyResetPeerSpec | spec_models.ProxySlowCloseSpec | spec_models.ProxySlicerSpec
                  | spec_models.ProxyLimitDataSpec | spec_models.ProxyHttpSpec):
        return ProxyToxicFault.from_spec(spec, name)
    raise _mismatch(spec, "proxy")


def _http(spec: FaultSpec, name: str, env: Mapping[str, str]) -> Fault:
    from reliability.faults.http import TargetHttpFault

    if isinstance(spec, spec_models.HttpErrorSpec | spec_models.HttpLatencySpec):
        return TargetHttpFault(spec, name, env)
    raise _mismatch(spec, "http")


def _process(spec: FaultSpec, name: str, _env: Mapping[str, str]) -> Fault:
    from reliability.faults.process import ProcessKillFault, ProcessSuspendFault

    return _first(spec, name, "process", _Case(spec_models.ProcessSuspendSpec, ProcessSuspendFault),
                  _Case(spec_models.ProcessKillSpec, ProcessKillFault))


def _load(spec: FaultSpec, name: str, _env: Mapping[str, str]) -> Fault:
    from reliability.faults.load import LoadFault

    if isinstance(spec, spec_models.LoadSpikeSpec | spec_models.LoadWsStormSpec):
        return LoadFault(spec, name)
    raise _mismatch(spec, "load")


def _generic(spec: FaultSpec, name: str, _env: Mapping[str, str]) -> Fault:
    from reliability.faults.generic import ShellFault, WebhookFault

    return _first(spec, name, "webhook/shell", _Case(spec_models.WebhookSpec, WebhookFault),
                  _Case(spec_models.ShellSpec, ShellFault))


def registry() -> dict[str, Factory]:
    """Kind -> factory. Built on each call: there is no module-level mutable registry."""
    groups: dict[Factory, tuple[str, ...]] = {
        _redis: ("redis.pause", "redis.memory", "redis.slow"),
        _postgres: ("postgres.lock", "postgres.outage", "postgres.exhaust"),
        _proxy: ("proxy.latency", "proxy.bandwidth", "proxy.timeout", "proxy.reset_peer", "proxy.slow_close",
                 "proxy.slicer", "proxy.limit_data", "proxy.down", "proxy.http"),
        _http: ("http.error", "http.latency"),
        _process: ("process.suspend", "process.kill"),
        _load: ("load.spike", "load.ws_storm"),
        _generic: ("webhook", "shell"),
    }
    return {kind: factory for factory, group in groups.items() for kind in group}


def kinds() -> list[str]:
    """Every fault kind, sorted."""
    return sorted(registry())


def build_fault(spec: FaultSpec, name: str, environ: Mapping[str, str] | None = None) -> Fault:
    """The fault for ``spec``, named ``name`` (the scenario's instance name).

    ``environ`` (default ``os.environ``) is where a fault looks up settings the spec leaves to
    the environment (the target's admin token).
    """
    try:
        factory = registry()[spec.type]
    except KeyError:
        raise FaultError(f"{name}: unknown fault kind {spec.type!r}; known: {', '.join(kinds())}") from None
    return factory(spec, name, os.environ if environ is None else environ)


def revert_all(faults: Iterable[Fault]) -> list[FaultCheck]:
    """Revert every fault (each even if others raise), then verify each: one check per fault,
    in order. A fault whose revert raised gets an unhealthy check naming the error."""
    faults = list(faults)
    errors: dict[int, str] = {}
    for index, fault in enumerate(faults):
        try:
            fault.revert()
        except Exception as exc:
            errors[index] = one_line(exc)
    checks = []
    for index, fault in enumerate(faults):
        if index in errors:
            checks.append(FaultCheck(False, f"{fault.name}: revert failed: {errors[index]}"))
            continue
        try:
            checks.append(fault.verify())
        except Exception as exc:
            checks.append(FaultCheck(False, f"{fault.name}: verify failed: {one_line(exc)}"))
    return checks


@contextmanager
def injected(*faults: Fault) -> Iterator[list[FaultCheck]]:
    """Inject ``faults`` in order for the duration of a ``with`` block; however the block ends
    (normally, by an exception, by Ctrl-C, or by an inject that failed half-way) every fault is
    reverted and verified, and the checks are appended to the list the block received.

    Example::

        with injected(build_fault(spec, "db-slow")) as checks:
            run_the_load()
        assert all(check.healthy for check in checks)
    """
    checks: list[FaultCheck] = []
    try:
        for fault in faults:
            fault.inject()
        yield checks
    finally:
        checks.extend(revert_all(faults))
