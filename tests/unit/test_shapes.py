"""Stage math, shape specs and the capacity search, on a fake clock (no locust, no sleeping)."""

from __future__ import annotations

from pathlib import Path

import pytest

import reliability.shapes
from reliability.config import load_scenario, parse_scenario
from reliability.exceptions import ScenarioError
from reliability.schema.sections import CapacityPoint
from reliability.shapes.capacity import CapacitySearch, WindowGrade
from reliability.shapes.spec import CapacitySearchSpec, LevelsShapeSpec, SteadyShapeSpec, fault_names
from reliability.shapes.stages import (
    LEVEL_NAMES,
    Stage,
    StagePlan,
    level_stages,
    scale_stages,
    spike_stages,
    step_stages,
)
from tests.support.processes import assert_imports_without

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
MINE = ("gold_high_load", "redis_outage", "db_slowness", "network_latency", "capacity_search", "arrival_rate")


def test_shapes_package_is_pure_and_exports_exactly_all() -> None:
    assert_imports_without(["reliability.shapes", "reliability.shapes.spec", "reliability.shapes.recovery",
                            "reliability.shapes.sections"])
    public = {n for n in dir(reliability.shapes) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(reliability.shapes, n)).__name__ == "module"}
    assert public - modules == set(reliability.shapes.__all__)


# -- the five levels --------------------------------------------------------------------------------


def test_levels_have_the_documented_users_and_durations() -> None:
    stages = level_stages(breaking_step_users=0)
    assert [(s.name, s.users, s.duration_s) for s in stages] == [
        ("BASELINE", 100, 30.0), ("MODERATE", 500, 60.0), ("HIGH_LOAD", 1000, 120.0),
        ("STRESS_LIMIT", 1500, 180.0), ("BREAKING_POINT", 2000, 300.0)]
    # each ramps from the previous level's users in 10 % of its own duration
    assert stages[0].spawn_rate == pytest.approx(100 / 3.0)
    assert stages[1].spawn_rate == pytest.approx(400 / 6.0)


def test_breaking_point_climbs_past_2000() -> None:
    stages = level_stages(["BREAKING_POINT"])
    assert [s.users for s in stages] == [2000, 2250, 2500, 2750, 3000]
    assert sum(s.duration_s for s in stages) == pytest.approx(300.0)


def test_levels_by_name_with_time_and_user_scale() -> None:
    plan = StagePlan(level_stages(["baseline", "High_Load"], time_scale=0.1, user_scale=0.01))
    assert plan.total_s == pytest.approx(15.0)
    assert plan.at(0.0) == (1, pytest.approx(1 / 0.3))  # 1 user ramped in 10 % of 3 s
    assert plan.at(2.99)[0] == 1  # type: ignore[index]
    assert plan.at(3.0)[0] == 10  # type: ignore[index]
    assert plan.at(14.99)[0] == 10  # type: ignore[index]
    assert plan.at(15.0) is None
    assert plan.index_at(3.5) == 1 and plan.index_at(99) is None
    with pytest.raises(ValueError, match="unknown level 'EXTREME'"):
        level_stages(["EXTREME"])


def test_stage_plan_steps_a_fake_clock() -> None:
    plan = StagePlan([Stage("a", 10, 5, 5.0), Stage("b", 20, 50, 10.0)])
    seen = [plan.at(t / 2) for t in range(0, 62)]
    assert seen[0] == (5, 5.0) and seen[19] == (5, 5.0) and seen[20] == (50, 10.0) and seen[59] == (50, 10.0)
    assert seen[60] is None and seen[61] is None
    assert plan.starts() == (0.0, 10.0)


def test_step_spike_and_scaling() -> None:
    steps = step_stages(10, 10, 3, 30)
    assert [s.users for s in steps] == [10, 20, 30]
    spike = spike_stages(10, 200, 30, 10, 30)
    assert [s.users for s in spike] == [10, 200, 10]
    assert spike[1].spawn_rate == 190.0  # reached within about a second
    fast = scale_stages(steps, 0.1)
    assert [s.duration_s for s in fast] == pytest.approx([3.0, 3.0, 3.0])
    assert fast[1].spawn_rate == pytest.approx(steps[1].spawn_rate * 10)
    with pytest.raises(ValueError):
        Stage("bad", 0, 1, 1.0)


# -- scenario sections ------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "message"), [
    ({"shape": {"type": "levels", "levels": ["BASELINE", "EXTREME"]}}, "shape.levels[1]: unknown level 'EXTREME'"),
    ({"shape": {"type": "ramp"}}, "shape.type: unknown shape type 'ramp'"),
    ({"shape": {"type": "step", "start_users": 1, "step_users": 1, "steps": 2}}, "shape.step_s: Field required"),
    ({"shape": {"type": "steady", "users": 5}}, "shape.duration_s: required when the scenario has no faults"),
    ({"shape": {"type": "capacity_search", "tier": "diamond"}}, "shape.tier: unknown tier 'diamond'"),
    ({"shape": {"type": "capacity_search", "step_s": "3s"}}, "shape.step_s: must hold settle_s + window_s"),
    ({"recovery": {"windows": 0}}, "recovery.windows: Input should be greater than or equal to 1"),
    ({"faults": [{"at_s": 10, "hold_s": 5}]}, "faults[0].fault: give exactly one of fault"),
    ({"faults": [{"at_s": 2, "hold_s": 5, "factory": "a.b:c"}]}, "faults[0].at_s: leaves no baseline"),
    ({"faults": [{"at_s": 10, "hold_s": 5, "factory": "a.b:c"}, {"at_s": 12, "hold_s": 5, "factory": "a.b:d"}]},
     "faults[1].at_s: starts at 12 s, before faults[0] (c) ends at 15 s"),
    ({"faults": [{"at_s": 10, "hold_s": 5, "factory": "a.b:c", "name": "x"},
                 {"at_s": 20, "hold_s": 5, "factory": "a.b:c", "name": "x"}]}, "faults[1].name: duplicate fault"),
    ({"faults": [{"at_s": 10, "hold_s": "5 parsecs", "factory": "a.b:c"}]}, "faults[0].hold_s: expected a duration"),
    ({"faults": [{"at_s": 10, "hold_s": 5, "factory": "not a path"}]}, "faults[0].factory: expected"),
    ({"faults": [{"at_s": 10, "hold_s": 5, "fault": {"type": "http.latency", "url": "http://t"}}]},
     "faults[0].fault.latency_ms: Field required"),
    ({"faults": [{"at_s": 10, "hold_s": 30, "factory": "a.b:c"}], "shape": {"type": "steady", "users": 1,
                                                                           "duration_s": "20s"}},
     "shape: lasts 20 s, but faults[0] is reverted only at 40 s"),
])
def test_bad_sections_are_one_line_with_the_field_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "s.yaml")
    text = str(info.value)
    assert text.startswith(f"s.yaml: {message}"), text
    assert "\n" not in text


def test_steady_shape_lasts_until_the_schedule_ends_plus_the_tail() -> None:
    spec = parse_scenario({"shape": {"type": "steady", "users": 20, "tail_s": "10s"},
                           "faults": [{"at_s": "20s", "hold_s": "15s", "factory": "a.b:c"},
                                      {"at_s": "1m", "hold_s": "10s", "factory": "a.b:c"}]})
    assert isinstance(spec.shape, SteadyShapeSpec)
    assert spec.shape.length_s(70.0) == pytest.approx(80.0)
    assert fault_names(spec.faults) == ["c-1", "c-2"]
    assert spec.faults[1].end_s == 70.0


def test_level_names_are_normalised_and_time_scale_parsed() -> None:
    spec = parse_scenario({"shape": {"type": "levels", "levels": "high_load", "time_scale": 0.5}})
    assert spec.shape == LevelsShapeSpec(levels=("HIGH_LOAD",), time_scale=0.5)
    assert spec.shape.length_s() == pytest.approx(60.0)
    assert LEVEL_NAMES[2] == "HIGH_LOAD"


@pytest.mark.parametrize("name", MINE)
def test_shipped_scenarios_validate(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TARGET_URL", "TARGET_DSN", "TARGET_REDIS_URL", "TOXIPROXY_URL"):
        monkeypatch.delenv(var, raising=False)
    spec = load_scenario(SCENARIOS / f"{name}.yaml")
    assert spec.shape is not None


# -- capacity search --------------------------------------------------------------------------------


def _grade(start: int, end: int, passed: bool, requests: int = 100) -> WindowGrade:
    return WindowGrade(start, end, requests, 0 if passed else 10, 50.0 if passed else 900.0,
                       {"bronze": True, "gold": passed})


def _search(**kw: object) -> CapacitySearch:
    args: dict[str, object] = {"start_users": 10, "step_users": 10, "step_s": 10, "max_users": 100, "tier": "gold",
                               "breach_windows": 2, "window_s": 2, "settle_s": 2}
    args.update(kw)
    return CapacitySearch(**args)  # type: ignore[arg-type]


def test_capacity_search_steps_up_until_the_tier_breaks_twice_in_a_row() -> None:
    search = _search()
    capacity_users = 30  # the system under test holds gold up to 30 users
    t0 = 1000.0
    for k in range(200):
        now = t0 + k * 0.5
        target = search.target(now)
        if target is None:
            break
        for start, end in search.windows_due(int(now) - 1):
            users = next(s.users for s in search.steps if s.started_at <= start < s.started_at + 10)
            search.observe(_grade(start, end, users <= capacity_users))
    assert search.done
    assert search.knee("gold") is not None and search.knee("gold").users == 30  # type: ignore[union-attr]
    assert search.broke_at is not None and search.broke_at.users == 40
    result = search.result(["bronze", "gold"])
    assert result.knee == CapacityPoint(users=30, rps=50.0, latency_ms=50.0) and result.percentile == "p95"
    assert result.knee.rate_per_s is None and result.mode == "users"
    assert result.complete is True
    assert result.stopped_because == "gold failed 2 consecutive 2 s windows at 40 users"
    assert [s.users for s in result.steps] == [10, 20, 30, 40]
    assert result.steps[3].passed == {"bronze": True, "gold": False}
    # windows start after the settle time and stay inside their step
    assert [(w.start_t, w.end_t) for w in search.steps[0].windows] == [(1002, 1004), (1004, 1006), (1006, 1008),
                                                                        (1008, 1010)]


def test_one_bad_window_resets_with_a_good_one() -> None:
    search = _search(breach_windows=2)
    search.target(0.0)
    for start, end in search.windows_due(10):
        search.observe(_grade(start, end, start != 4))  # one isolated breach
    assert not search.done and search.streak == 0
    assert search.knee("gold") is None  # the step did not hold gold in every window
    assert search.knee("bronze") is not None


def test_capacity_search_stops_at_max_users() -> None:
    search = _search(max_users=20)
    assert search.target(0.0) == (10, pytest.approx(5.0))
    assert search.target(10.0)[0] == 20  # type: ignore[index]
    assert search.target(20.0) is None
    assert search.stopped_because == "max_users 20 reached without gold breaking"
    assert search.result(["gold"]).complete is False


def test_capacity_spec_scales_time() -> None:
    spec = CapacitySearchSpec(step_s=60, settle_s=10, window_s=10, time_scale=0.1).scaled()
    assert (spec.step_s, spec.settle_s, spec.window_s) == (pytest.approx(6.0), pytest.approx(1.0), 1.0)
    with pytest.raises(ValueError):
        _search(settle_s=9)
