"""Run every component's probe at once, each under its own timeout, and diagnose the round.

:class:`HealthCheck` holds the components (probe, dependencies, weight, criticality) and a
*runner*: the function that runs the probes concurrently and gives up on each at its timeout.
The default, :func:`run_in_threads`, uses daemon threads (the CLI); the load-run monitor passes
one built on greenlets. A probe that is still running at its timeout is reported *down* and
abandoned, so one hanging dependency never delays the round past the longest timeout.

Example::

    check = build_check(load_scenario("scenarios/health.yaml").health)
    report = check.run()
    report.status, report.score, report.diagnosis.root_causes
    check.close()
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reliability.health.base import Probe, ProbeResult, Status, measure
from reliability.health.graph import Diagnosis, diagnose, health_score, overall_status
from reliability.health.spec import ComponentSpec, HealthSpec, probe_summary
from reliability.jsontypes import JsonData

# Each probe type's class, imported only when a scenario uses it (drivers are heavy, and psycopg
# must be imported after gevent has patched the process, which the monitor guarantees).
PROBE_TYPES = {
    "http": "reliability.health.http:HttpProbe",
    "postgres": "reliability.health.postgres:PostgresProbe",
    "redis": "reliability.health.redis:RedisProbe",
    "websocket": "reliability.health.websocket:WebSocketProbe",
    "prometheus": "reliability.health.prometheus:PrometheusProbe",
    "gateway": "reliability.health.gateway:GatewayProbe",
}

Task = Callable[[], ProbeResult]
Runner = Callable[[Mapping[str, tuple[Task, float]]], dict[str, ProbeResult | None]]


def run_in_threads(tasks: Mapping[str, tuple[Task, float]]) -> dict[str, ProbeResult | None]:
    """Run each ``(task, timeout_s)`` in a daemon thread; a task not done at its timeout is None.

    Daemon threads, because a probe stuck in a C call (libpq's 2 s connect minimum) cannot be
    interrupted: it is left behind rather than waited for.
    """
    results: dict[str, ProbeResult | None] = dict.fromkeys(tasks)
    threads: dict[str, threading.Thread] = {}

    def work(name: str, task: Task) -> None:
        results[name] = task()

    for name, (task, _timeout) in tasks.items():
        thread = threading.Thread(target=work, args=(name, task), name=f"health-{name}", daemon=True)
        threads[name] = thread
        thread.start()
    started = time.monotonic()
    for name, thread in threads.items():
        thread.join(max(0.0, started + tasks[name][1] - time.monotonic()))
    return {name: results[name] if not threads[name].is_alive() else None for name in tasks}


@dataclass(frozen=True)
class Component:
    """A component as the orchestrator sees it: a built probe plus its place in the graph."""

    name: str
    probe: Probe
    timeout_s: float
    depends_on: tuple[str, ...] = ()
    critical: bool = True
    weight: float = 1.0
    degraded_ms: float | None = None


@dataclass(frozen=True)
class HealthReport:
    """One round: every component's result, the diagnosis, the score and the overall status."""

    at: float  # epoch seconds when the round started
    results: Mapping[str, ProbeResult]
    diagnosis: Diagnosis
    score: float
    status: Status
    kinds: Mapping[str, str] = field(default_factory=dict)  # component -> probe type

    @property
    def statuses(self) -> dict[str, Status]:
        return {name: r.status for name, r in self.results.items()}

    def to_dict(self) -> dict[str, JsonData]:
        return {
            "at": self.at,
            "status": self.status.value,
            "score": round(self.score, 2),
            "components": {n: {"probe": self.kinds.get(n), **r.to_dict()} for n, r in self.results.items()},
            **self.diagnosis.to_dict(),
        }


class HealthCheck:
    """Probe all components concurrently and diagnose the round; see the module docstring."""

    def __init__(self, components: list[Component], runner: Runner = run_in_threads,
                 secrets: tuple[str, ...] = (), wall_clock: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.components = {c.name: c for c in components}
        self.runner = runner
        self.secrets = secrets
        self.wall_clock = wall_clock
        self.clock = clock
        self.deps = {c.name: c.depends_on for c in components}

    def _task(self, component: Component) -> Task:
        return lambda: measure(component.probe, component.timeout_s, self.secrets, self.clock)

    def run(self) -> HealthReport:
        at = self.wall_clock()
        done = self.runner({n: (self._task(c), c.timeout_s) for n, c in self.components.items()})
        results: dict[str, ProbeResult] = {}
        for name, component in self.components.items():
            result = done.get(name)
            if result is None:
                result = ProbeResult(Status.DOWN, component.timeout_s * 1000.0,
                                     f"no answer within {component.timeout_s * 1000:.0f} ms")
            elif (component.degraded_ms is not None and result.status is Status.HEALTHY
                  and result.latency_ms > component.degraded_ms):
                result = ProbeResult(Status.DEGRADED, result.latency_ms,
                                     f"slow: {result.latency_ms:.0f} ms > {component.degraded_ms:g} ms; "
                                     + result.detail, result.data)
            results[name] = result
        statuses = {n: r.status for n, r in results.items()}
        return HealthReport(
            at=at,
            results=results,
            diagnosis=diagnose(statuses, self.deps),
            score=health_score(statuses, {n: c.weight for n, c in self.components.items()}),
            status=overall_status(statuses, {n: c.critical for n, c in self.components.items()}),
            kinds={n: c.probe.kind for n, c in self.components.items()},
        )

    def close(self) -> None:
        for component in self.components.values():
            with contextlib.suppress(Exception):  # a dead component's probe must not hide the report
                component.probe.close()


def build_probe(spec: ComponentSpec, secrets: tuple[str, ...] = ()) -> Probe:
    """The probe for a component spec (its module is imported here, on first use)."""
    module_name, _, class_name = PROBE_TYPES[spec.probe.type].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    probe: Probe = cls(spec.probe, probe_summary(spec.probe))
    return probe


def build_check(spec: HealthSpec, runner: Runner = run_in_threads,
                wall_clock: Callable[[], float] = time.time) -> HealthCheck:
    """A :class:`HealthCheck` with one probe per component of ``spec``."""
    secrets = spec.secrets()
    components = [
        Component(name, build_probe(c, secrets), spec.timeout_for(name), c.depends_on, c.critical, c.weight,
                  c.degraded_ms)
        for name, c in spec.components.items()
    ]
    return HealthCheck(components, runner, secrets, wall_clock)
