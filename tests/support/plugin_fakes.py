"""Stand-ins for the plugin and its extensions, for the live-state, tab and ``/metrics`` tests.

The web UI's state reads the plugin through a duck-typed surface (``store``, ``sla``, ``live``,
``scenario``, ``extensions``), so a plain namespace holding a real window store and a real SLA
evaluation stands in for it, with no locust and no gevent.

Example::

    plugin, clock = plugin_at(T0 + 30.2)
    state = LiveState(plugin, lag_s=1, clock=clock).state()
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from reliability.config import parse_scenario
from reliability.health.base import ProbeResult, Status
from reliability.health.graph import diagnose
from reliability.health.orchestrator import HealthReport
from reliability.health.timeline import ComponentInfo, HealthTimeline
from reliability.metrics.windows import WindowStore
from reliability.shapes.spec import ScheduledFaultSpec
from reliability.sla import evaluate
from tests.support.fakes import FakeClock

T0 = 1_800_000_000
PASSWORD = "pw-41c9e2"
TOKEN = "tok-88d1aa"


def fill(store: WindowStore, clock: FakeClock, seconds: range, per_second: int, failures: int, latency_ms: float,
         name: str = "/api/items") -> None:
    for s in seconds:
        clock.now = T0 + s + 0.5
        for i in range(per_second):
            store.record("GET", name, latency_ms + i % 5, failed=i < failures)


def scenario() -> Any:
    return parse_scenario({
        "name": "checkout",
        "target": {"dsn": "postgresql://app:${PG_PASSWORD}@db:5432/shop"},
        "sla": {"rolling_window_s": "10s"},
        "alerts": {"webhooks": ["http://hooks.example/x?token=${TOKEN}"]},
    }, env={"PG_PASSWORD": PASSWORD, "TOKEN": TOKEN})


def fault_run(name: str, state: str, at_s: float, hold_s: float, **times: float | None) -> SimpleNamespace:
    spec = ScheduledFaultSpec(name=name, at_s=at_s, hold_s=hold_s, factory="tests.fake:fault")
    values: dict[str, Any] = {"injected_at": None, "inject_started_at": None, "reverted_at": None,
                              "revert_due_at": None, **times}
    return SimpleNamespace(name=name, spec=spec, state=state, fault=SimpleNamespace(kind="webhook"),
                           inject_error=None, revert_error=None, build_error=None, **values)


def health_ext(at: float) -> SimpleNamespace:
    statuses = {"db": Status.DOWN, "api": Status.DEGRADED}
    report = HealthReport(
        at=at,
        results={"db": ProbeResult(Status.DOWN, 800.0, f"cannot connect to postgresql://app:{PASSWORD}@db"),
                 "api": ProbeResult(Status.DEGRADED, 310.0, "HTTP 200 in 310 ms")},
        diagnosis=diagnose(statuses, {"api": ("db",), "db": ()}),
        score=25.0, status=Status.DOWN)
    timeline = HealthTimeline(T0, 1.0, {"db": ComponentInfo("postgres", "postgresql://app:***@db"),
                                        "api": ComponentInfo("http", "http://api/health", ("db",), False)})
    timeline.add(report)
    return SimpleNamespace(name="health", timeline=timeline)


def plugin_at(now: float, *, extensions: list[Any] | None = None) -> tuple[SimpleNamespace, FakeClock]:
    clock = FakeClock(T0)
    spec = scenario()
    store = WindowStore(clock=clock)
    fill(store, clock, range(0, 20), 100, 0, 20.0)
    fill(store, clock, range(20, 30), 100, 10, 250.0)  # the last 10 s: 10 % errors, p95 over 200 ms
    sla = spec.sla
    end = int(now)
    live = evaluate(store.snapshot(end - 10, end), sla)
    plugin = SimpleNamespace(store=store, sla=sla, scenario=spec, live=live, started_at=float(T0), ended_at=None,
                             role="local", extensions=extensions or [])
    return plugin, clock


def straddling_plugin(now: float) -> SimpleNamespace:
    """10 s of 62 clean requests a second: error_ratio 0 %, 95 % CI 0 % .. 0.61 %, n=620, against
    gold's 0.5 %: not enough evidence either way."""
    clock = FakeClock(T0)
    spec = scenario()
    store = WindowStore(clock=clock)
    fill(store, clock, range(0, 10), 62, 0, 20.0)
    end = int(now)
    live = evaluate(store.snapshot(end - 10, end), spec.sla)
    return SimpleNamespace(store=store, sla=spec.sla, scenario=spec, live=live, started_at=float(T0),
                           ended_at=None, role="local", extensions=[])
