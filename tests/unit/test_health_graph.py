"""Root-cause attribution, isolation, the score and the overall status (pure)."""

from __future__ import annotations

import pytest

from reliability.health.base import Status
from reliability.health.graph import diagnose, find_cycle, health_score, overall_status

H, D, X = Status.HEALTHY, Status.DEGRADED, Status.DOWN
DEPS = {"db": (), "cache": (), "api": ("db", "cache"), "ws": ("api",), "gateway": ("api",), "prom": ("api",)}


def _statuses(**changed: Status) -> dict[str, Status]:
    return {name: changed.get(name, H) for name in DEPS}


def test_all_healthy_has_no_root_cause() -> None:
    d = diagnose(_statuses(), DEPS)
    assert d.root_causes == d.affected == d.held == ()
    assert d.healthy == tuple(DEPS)


def test_redis_down_is_the_root_of_a_degraded_api_and_the_rest_held() -> None:
    d = diagnose(_statuses(cache=X, api=D), DEPS)
    assert d.root_causes == ("cache",)
    assert d.affected == ("api",)
    assert d.blast_radius == {"cache": ("api",)}
    assert d.held == ("ws", "gateway", "prom")  # healthy although something upstream failed
    assert d.healthy == ("db", "ws", "gateway", "prom")


def test_a_suspended_api_is_the_root_and_its_dependents_follow() -> None:
    d = diagnose(_statuses(api=X, ws=X, gateway=X, prom=D), DEPS)
    assert d.root_causes == ("api",)
    assert d.affected == ("ws", "gateway", "prom")
    assert d.blast_radius == {"api": ("ws", "gateway", "prom")}
    assert d.healthy == ("db", "cache") and d.held == ()


def test_a_lesser_failure_does_not_explain_a_worse_one() -> None:
    # a degraded database does not explain an API that is down: two independent roots
    d = diagnose(_statuses(db=D, api=X, ws=X), DEPS)
    assert d.root_causes == ("db", "api")
    assert d.affected == ("ws",)
    assert d.blast_radius == {"db": (), "api": ("ws",)}


def test_two_failing_dependencies_share_the_blame_transitively() -> None:
    d = diagnose(_statuses(db=X, cache=X, api=X, ws=X), DEPS)
    assert d.root_causes == ("db", "cache")
    assert d.blast_radius == {"db": ("api", "ws"), "cache": ("api", "ws")}


def test_a_failure_below_a_healthy_component_does_not_propagate() -> None:
    # db down, api healthy (its bulkhead held), ws down on its own: ws is its own root cause
    d = diagnose(_statuses(db=X, ws=X), DEPS)
    assert d.root_causes == ("db", "ws")
    assert set(d.held) == {"api", "gateway", "prom"}


def test_cycles_are_found() -> None:
    assert find_cycle(DEPS) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]


@pytest.mark.parametrize(("statuses", "weights", "score"), [
    ({"a": H, "b": H}, {}, 100.0),
    ({"a": H, "b": D}, {}, 75.0),
    ({"a": H, "b": X}, {"a": 3, "b": 1}, 75.0),
    ({"a": D, "b": X}, {"a": 1, "b": 1}, 25.0),
    ({"a": X}, {"a": 0}, 100.0),
])
def test_score_formula(statuses: dict[str, Status], weights: dict[str, float], score: float) -> None:
    assert health_score(statuses, weights) == pytest.approx(score)


def test_overall_status_is_down_only_for_a_critical_component() -> None:
    assert overall_status({"a": H, "b": H}, {}) is H
    assert overall_status({"a": H, "b": D}, {}) is D
    assert overall_status({"a": H, "b": X}, {"b": False}) is D
    assert overall_status({"a": H, "b": X}, {"b": True}) is X
