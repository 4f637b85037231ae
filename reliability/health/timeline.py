"""The health timeline of a load run: every probe round, state changes, incidents and uptime.

:class:`HealthTimeline` collects :class:`~reliability.health.orchestrator.HealthReport` rounds
(with the target's resources sampled alongside) and turns them into the run record's ``health``
section. Probe-based uptime: a component is *up* in a round when it is healthy or degraded; the
system is up when no critical component is down. Times are ``t`` (seconds since the run
started, the same origin as the record's ``timeline``) and ``epoch_s``.

Example::

    timeline = HealthTimeline(started_at=time.time(), interval_s=1.0)
    timeline.add(check.run(), {"cpu_pct": 12.5, "rss_mb": 80.1})
    record.health = timeline.to_record()
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from reliability.health.base import Status
from reliability.health.orchestrator import HealthReport
from reliability.health.resources import ResourceSample
from reliability.schema import sections as s
from reliability.sla import Criterion

UPTIME_CRITERION = "health_uptime"


@dataclass(frozen=True)
class ComponentInfo:
    """What the record says about a component besides its results."""

    probe: str
    target: str
    depends_on: tuple[str, ...] = ()
    critical: bool = True
    weight: float = 1.0


@dataclass
class _Round:
    report: HealthReport
    resources: ResourceSample | None


@dataclass
class HealthTimeline:
    """Rounds of one run, in order; see the module docstring."""

    started_at: float
    interval_s: float
    components: Mapping[str, ComponentInfo] = field(default_factory=dict)
    rounds: list[_Round] = field(default_factory=list)

    def add(self, report: HealthReport, resources: ResourceSample | None = None) -> None:
        self.rounds.append(_Round(report, resources))

    def _t(self, epoch_s: float) -> float:
        return round(epoch_s - self.started_at, 3)

    def uptime_ratio(self) -> float | None:
        """Share of rounds in which no critical component was down (None without rounds)."""
        if not self.rounds:
            return None
        return sum(r.report.status.up for r in self.rounds) / len(self.rounds)

    def criterion(self, uptime_pct: float) -> Criterion:
        """The SLA criterion ``health_uptime >= uptime_pct / 100`` (fails when nothing was probed)."""
        threshold = uptime_pct / 100.0
        actual = self.uptime_ratio()
        if actual is None:
            return Criterion(UPTIME_CRITERION, ">=", threshold, None, False, None, "health")
        return Criterion(UPTIME_CRITERION, ">=", threshold, actual, actual >= threshold, actual - threshold, "health")

    def transitions(self) -> list[s.HealthTransition]:
        """Every change of a component's status (and its first status when not healthy)."""
        out: list[s.HealthTransition] = []
        last: dict[str, Status] = {}
        for rnd in self.rounds:
            for name, result in rnd.report.results.items():
                before = last.get(name)
                if before is not result.status and not (before is None and result.status is Status.HEALTHY):
                    out.append(s.HealthTransition.model_validate({
                        "t": self._t(rnd.report.at), "epoch_s": round(rnd.report.at, 3), "component": name,
                        "from": before.value if before else None, "to": result.status.value,
                        "detail": result.detail}))
                last[name] = result.status
        return out

    def incidents(self) -> list[s.HealthIncident]:
        """Runs of consecutive rounds with a failing component: root causes, affected, held."""
        out: list[s.HealthIncident] = []
        current: s.HealthIncident | None = None
        for rnd in self.rounds:
            d = rnd.report.diagnosis
            at = round(rnd.report.at, 3)
            if not d.root_causes:
                if current is not None:
                    current.end_t, current.end_epoch_s, current.ongoing = self._t(rnd.report.at), at, False
                    current.duration_s = round(at - (current.start_epoch_s or at), 3)
                    current = None
                continue
            if current is None:
                current = s.HealthIncident(start_t=self._t(rnd.report.at), start_epoch_s=at, ongoing=True,
                                           worst_status=Status.HEALTHY.value)
                out.append(current)
            for names, into in ((d.root_causes, current.root_causes), (d.affected, current.affected),
                                (d.held, current.held)):
                into += [n for n in names if n not in into]
            current.worst_status = Status.worst([Status(current.worst_status), rnd.report.status]).value
        if current is not None and self.rounds:
            last = self.rounds[-1].report.at
            current.end_t, current.end_epoch_s = self._t(last), round(last, 3)
            current.duration_s = round(last - (current.start_epoch_s or last) + self.interval_s, 3)
        return out

    def _component(self, name: str) -> s.HealthComponent:
        results = [r.report.results[name] for r in self.rounds if name in r.report.results]
        counts = {st: sum(x.status is st for x in results) for st in Status}
        latencies = [x.latency_ms for x in results]
        info = self.components.get(name)
        n = len(results)
        return s.HealthComponent(
            probe=info.probe if info else (self.rounds[-1].report.kinds.get(name) if self.rounds else None),
            target=info.target if info else None,
            depends_on=list(info.depends_on) if info else [],
            critical=info.critical if info else True,
            weight=info.weight if info else 1.0,
            rounds=n,
            healthy=counts[Status.HEALTHY],
            degraded=counts[Status.DEGRADED],
            down=counts[Status.DOWN],
            uptime_ratio=round((n - counts[Status.DOWN]) / n, 6) if n else None,
            healthy_ratio=round(counts[Status.HEALTHY] / n, 6) if n else None,
            latency_p50_ms=round(statistics.median(latencies), 3) if latencies else None,
            latency_max_ms=round(max(latencies), 3) if latencies else None,
            root_cause_rounds=sum(name in r.report.diagnosis.root_causes for r in self.rounds),
            last_status=results[-1].status.value if results else None,
            last_detail=results[-1].detail if results else None,
        )

    def _row(self, rnd: _Round) -> s.HealthRound:
        report = rnd.report
        # the first PostgreSQL probe's connection count stands for the target's database connections
        connections = [result.data["connections"] for name, result in report.results.items()
                       if report.kinds.get(name) == "postgres" and "connections" in result.data][:1]
        resources = None
        if rnd.resources or connections:
            resources = s.Resources.model_validate({**(rnd.resources or {}),
                                                    "db_connections": next(iter(connections), None)})
        return s.HealthRound(
            t=self._t(report.at), epoch_s=round(report.at, 3), status=report.status.value,
            score=round(report.score, 2),
            components={n: s.ProbeResult(status=r.status.value, latency_ms=round(r.latency_ms, 3))
                        for n, r in report.results.items()},
            root_causes=list(report.diagnosis.root_causes),
            resources=resources,
        )

    def to_record(self, uptime_pct: float | None = None) -> s.Health:
        """The record's ``health`` section (:class:`reliability.schema.sections.Health`)."""
        names = list(self.components) or (list(self.rounds[0].report.results) if self.rounds else [])
        scores = [r.report.score for r in self.rounds]
        ratio = self.uptime_ratio()
        roots: dict[str, s.HealthRootCause] = {}
        for rnd in self.rounds:
            for name in rnd.report.diagnosis.root_causes:
                entry = roots.setdefault(name, s.HealthRootCause(component=name, first_t=self._t(rnd.report.at)))
                entry.rounds += 1
        section = s.Health(
            interval_s=self.interval_s,
            rounds=len(self.rounds),
            status=self.rounds[-1].report.status.value if self.rounds else None,
            uptime_ratio=None if ratio is None else round(ratio, 6),
            score_mean=round(statistics.fmean(scores), 2) if scores else None,
            score_min=round(min(scores), 2) if scores else None,
            components={name: self._component(name) for name in names},
            transitions=self.transitions(),
            incidents=self.incidents(),
            root_causes=list(roots.values()),
            timeline=[self._row(r) for r in self.rounds],
        )
        if uptime_pct is not None:
            c = self.criterion(uptime_pct)
            section.uptime_criterion = s.UptimeCriterion(name=c.name, threshold=c.threshold, actual=c.actual,
                                                         passed=c.passed)
        return section
