"""Health probes during a load run: a plugin extension on the master (or local runner).

:class:`HealthMonitor` probes every component once per ``interval_s`` from a background greenlet,
each probe in a greenlet of its own under ``gevent.Timeout`` (on top of the probes' client-level
timeouts), so a hanging dependency costs its timeout and never blocks the event loop that runs
the users, the shape and the SLA engine: the master is monkey-patched, so the probes' blocking
sockets yield. Rounds are scheduled against a fixed start, not "sleep after work", so they do not
drift. State changes are logged as they happen; at the end :meth:`finish` returns the record's
``health`` section and the optional ``health_uptime`` SLA criterion (:meth:`criteria`).

This is the only module of :mod:`reliability.health` that imports gevent. Built by the plugin
when the scenario has a ``health:`` section::

    features.append(HealthMonitor(scenario.health))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import gevent

from reliability.extension import Contribution, RunContext
from reliability.health.base import ProbeResult, Status
from reliability.health.orchestrator import HealthCheck, HealthReport, Task, build_check
from reliability.health.resources import ResourceSampler
from reliability.health.spec import HealthSpec, probe_summary
from reliability.health.timeline import ComponentInfo, HealthTimeline
from reliability.schema import sections as s
from reliability.sla import Criterion

logger = logging.getLogger("reliability.health")

JOIN_GRACE_S = 0.1


def _bounded(task: Task, timeout_s: float) -> ProbeResult | None:
    with gevent.Timeout(timeout_s, False):  # False: leave the block quietly, returning None
        return task()
    return None


def run_in_greenlets(tasks: Mapping[str, tuple[Task, float]]) -> dict[str, ProbeResult | None]:
    """The orchestrator's runner on gevent: one greenlet per probe, each cut off at its timeout."""
    greenlets = {name: gevent.spawn(_bounded, task, timeout_s) for name, (task, timeout_s) in tasks.items()}
    longest = max((timeout_s for _task, timeout_s in tasks.values()), default=0.0)
    gevent.joinall(list(greenlets.values()), timeout=longest + JOIN_GRACE_S)
    out: dict[str, ProbeResult | None] = {}
    for name, greenlet in greenlets.items():
        if greenlet.ready() and greenlet.successful():
            out[name] = greenlet.value
        else:
            greenlet.kill(block=False)
            out[name] = None
    return out


class HealthMonitor:
    """The ``health`` extension of the plugin; see the module docstring.

    Example (what the plugin does)::

        monitor = HealthMonitor(scenario.health)
        plugin.add_extension(monitor)   # on_test_start spawns the probing greenlet
    """

    name = "health"

    def __init__(self, spec: HealthSpec, wall_clock: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic,
                 build: Callable[..., HealthCheck] = build_check) -> None:
        self.spec = spec
        self.wall_clock = wall_clock
        self.clock = clock
        self._build = build
        self.check: HealthCheck | None = None
        self.sampler: ResourceSampler | None = None
        self.timeline = HealthTimeline(wall_clock(), spec.interval_s, self._infos())
        self._greenlet: gevent.Greenlet | None = None
        self._failure: str | None = None
        self._last: HealthReport | None = None

    def _infos(self) -> dict[str, ComponentInfo]:
        return {name: ComponentInfo(c.probe.type, probe_summary(c.probe), c.depends_on, c.critical, c.weight)
                for name, c in self.spec.components.items()}

    # -- plugin hooks ------------------------------------------------------------------------------

    def on_test_start(self, run: RunContext) -> None:
        started = run.started_at
        self.timeline = HealthTimeline(started, self.spec.interval_s, self._infos())
        self.check = self._build(self.spec, run_in_greenlets, self.wall_clock)
        resources = self.spec.resources
        if resources is not None:
            self.sampler = ResourceSampler(pid=resources.pid, port=resources.port)
        self._greenlet = gevent.spawn(self._loop)
        logger.info("health: probing %s every %g s", ", ".join(self.spec.components), self.spec.interval_s)

    def on_tick(self, run: RunContext, now: float) -> None:
        pass  # the probing greenlet keeps its own schedule

    def on_test_stop(self, run: RunContext) -> None:
        self.stop()

    def finish(self, run: RunContext) -> Contribution:
        self.stop()
        section = self.timeline.to_record(self.spec.uptime_pct)
        if self.spec.resources is not None:
            section.resources_of = s.ResourcesOf(pid=self.spec.resources.pid, port=self.spec.resources.port,
                                                 problem=self.sampler.problem if self.sampler else None)
        reasons = []
        if self._failure is not None:
            reasons.append(f"health monitoring failed: {self._failure}")
        elif not self.timeline.rounds:
            reasons.append("health monitoring made no probe round")
        return Contribution(sections={"health": section}, criteria=tuple(self.criteria()),
                            inconclusive=tuple(reasons))

    def criteria(self) -> list[Criterion]:
        """``health_uptime >= uptime_pct`` when the scenario asks for it."""
        if self.spec.uptime_pct is None:
            return []
        return [self.timeline.criterion(self.spec.uptime_pct)]

    # -- the probing greenlet ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop probing (idempotent) and release the probes."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=1.0)
            self._greenlet = None
        if self.check is not None:
            self.check.close()
            self.check = None

    def _loop(self) -> None:
        assert self.check is not None
        next_at = self.clock()
        try:
            while True:
                report = self.check.run()
                resources = self.sampler.sample() if self.sampler is not None else None
                self.timeline.add(report, resources)
                self._log_changes(report)
                next_at += self.spec.interval_s
                now = self.clock()
                if next_at < now:  # a round overran (it cannot by much): skip, do not catch up
                    next_at = now
                gevent.sleep(next_at - now)
        except gevent.GreenletExit:
            raise
        except Exception as exc:  # recorded and reported as inconclusive, never raised into Locust
            logger.exception("health monitoring stopped")
            self._failure = f"{type(exc).__name__}: {exc}"

    def _log_changes(self, report: HealthReport) -> None:
        before = self._last.statuses if self._last is not None else {}
        for name, result in report.results.items():
            was = before.get(name)
            if result.status is not was and not (was is None and result.status is Status.HEALTHY):
                log = logger.info if result.status is Status.HEALTHY else logger.warning
                log("health: %s %s -> %s (%s)", name, was.value if was else "start", result.status.value,
                    result.detail)
        roots = report.diagnosis.root_causes
        if roots and (self._last is None or self._last.diagnosis.root_causes != roots):
            logger.warning("health: root cause %s; affected %s; held %s", ", ".join(roots),
                           ", ".join(report.diagnosis.affected) or "none", ", ".join(report.diagnosis.held) or "none")
        self._last = report
