"""The dependency graph: cycle check, root-cause attribution, isolation, and the health score.

Root-cause rule. A component is *failing* when it is degraded or down. A failing component is
**explained** by a direct dependency that is failing at least as severely (a down cache explains a
degraded API; a merely degraded database does not explain an API that is down). A failing
component that no dependency explains is a **root cause**; every other failing component is
**affected**, and traces back (through the dependencies that explain it) to one or more root
causes: its blast radius. A component that stayed healthy although something it depends on,
directly or not, is failing is a **bulkhead that held**.

Score. Each component scores 1 when healthy, 0.5 when degraded, 0 when down; the health score is
``100 * sum(weight * value) / sum(weight)``. The system is *down* when a critical component is
down, else *degraded* when any component is failing, else *healthy*.

Example::

    deps = {"db": (), "cache": (), "api": ("db", "cache"), "ws": ("api",)}
    d = diagnose({"db": HEALTHY, "cache": DOWN, "api": DEGRADED, "ws": HEALTHY}, deps)
    d.root_causes == ("cache",); d.affected == ("api",); d.held == ("ws",)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reliability.health.base import Status
from reliability.jsontypes import JsonData

STATUS_VALUE = {Status.HEALTHY: 1.0, Status.DEGRADED: 0.5, Status.DOWN: 0.0}


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]``, or None when the graph is acyclic.

    >>> find_cycle({"a": ["b"], "b": ["a"]})
    ['a', 'b', 'a']
    """
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in done:
            return None
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        visiting.append(node)
        for dep in deps.get(node, ()):
            found = visit(dep)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    for name in deps:
        cycle = visit(name)
        if cycle:
            return cycle
    return None


@dataclass(frozen=True)
class Diagnosis:
    """Who failed first, who followed, and who stayed up (see the module docstring)."""

    root_causes: tuple[str, ...]
    affected: tuple[str, ...]
    healthy: tuple[str, ...]
    held: tuple[str, ...]
    blast_radius: Mapping[str, tuple[str, ...]]  # root cause -> the affected components it explains

    def to_dict(self) -> dict[str, JsonData]:
        return {
            "root_causes": list(self.root_causes),
            "affected": list(self.affected),
            "healthy": list(self.healthy),
            "held": list(self.held),
            "blast_radius": {k: list(v) for k, v in self.blast_radius.items()},
        }


def diagnose(statuses: Mapping[str, Status], deps: Mapping[str, Sequence[str]]) -> Diagnosis:
    """Apply the root-cause rule to one round of statuses (names in ``statuses`` order)."""

    def failing(name: str) -> bool:
        return statuses[name] is not Status.HEALTHY

    explained_by = {
        name: [d for d in deps.get(name, ()) if failing(d) and statuses[d].severity >= statuses[name].severity]
        for name in statuses
        if failing(name)
    }
    roots_memo: dict[str, frozenset[str]] = {}

    def roots_of(name: str) -> frozenset[str]:
        if name not in roots_memo:
            by = explained_by[name]
            roots_memo[name] = frozenset({name}) if not by else frozenset().union(*(roots_of(d) for d in by))
        return roots_memo[name]

    roots = tuple(n for n, by in explained_by.items() if not by)
    affected = tuple(n for n, by in explained_by.items() if by)
    blast = {r: tuple(a for a in affected if r in roots_of(a)) for r in roots}

    def upstream(name: str, seen: set[str]) -> set[str]:
        for dep in deps.get(name, ()):
            if dep not in seen:
                seen.add(dep)
                upstream(dep, seen)
        return seen

    healthy = tuple(n for n in statuses if not failing(n))
    held = tuple(n for n in healthy if any(failing(d) for d in upstream(n, set())))
    return Diagnosis(roots, affected, healthy, held, blast)


def health_score(statuses: Mapping[str, Status], weights: Mapping[str, float]) -> float:
    """``100 * sum(weight * value) / sum(weight)`` with healthy 1, degraded 0.5, down 0.

    >>> health_score({"a": Status.HEALTHY, "b": Status.DOWN}, {"a": 3.0, "b": 1.0})
    75.0
    """
    total = sum(weights.get(n, 1.0) for n in statuses)
    if total <= 0:
        return 100.0
    return 100.0 * sum(weights.get(n, 1.0) * STATUS_VALUE[s] for n, s in statuses.items()) / total


def overall_status(statuses: Mapping[str, Status], critical: Mapping[str, bool]) -> Status:
    """Down if a critical component is down, degraded if any component fails, else healthy."""
    if any(s is Status.DOWN and critical.get(n, True) for n, s in statuses.items()):
        return Status.DOWN
    if any(s is not Status.HEALTHY for s in statuses.values()):
        return Status.DEGRADED
    return Status.HEALTHY
