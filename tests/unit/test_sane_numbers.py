"""Every number of a scenario finite and within a sane range, each refusal one line naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from reliability.config import parse_scenario
from reliability.exceptions import ScenarioError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"load": {"run_time_s": INF}}, "load.run_time_s: a duration must be a finite number"),
        ({"load": {"run_time_s": 1e300}}, "load.run_time_s: a duration must be at most 30 days"),
        ({"load": {"run_time_s": "9999999h"}}, "load.run_time_s: a duration must be at most"),
        ({"load": {"users": 10**15}}, "load.users"),
        ({"load": {"spawn_rate": NAN}}, "load.spawn_rate"),
        ({"sla": {"tiers": {"gold": {"p95_ms": NAN}}}}, "sla.tiers.gold.p95_ms: a latency must be a finite number"),
        ({"sla": {"tiers": {"gold": {"p95_ms": "inf"}}}}, "sla.tiers.gold.p95_ms: a latency must be a finite"),
        ({"sla": {"tiers": {"gold": {"error_pct": NAN}}}}, "sla.tiers.gold.error_pct"),
        ({"sla": {"tiers": {"x": {"rank": 1e300, "p95_ms": 5}}}}, "sla.tiers.x.rank: 1e+300 is out of range"),
        ({"sla": {"endpoints": {"/a": {"latency_ms": INF}}}}, "sla.endpoints./a.latency_ms"),
        ({"sla": {"abort": {"enabled": True, "grace_s": NAN}}}, "sla.abort.grace_s: a duration must be a finite"),
        ({"shape": {"type": "levels", "levels": ["BASELINE"], "user_scale": 1e300}}, "shape.user_scale"),
        ({"shape": {"type": "levels", "levels": ["BASELINE"], "user_scale": 5000}}, "shape.user_scale"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "s.yaml")
    assert str(caught.value).startswith("s.yaml: ") and field in str(caught.value), str(caught.value)


def test_sane_numbers_still_pass() -> None:
    spec = parse_scenario({"load": {"users": 50_000, "spawn_rate": 500, "run_time_s": "72h"},
                           "sla": {"abort": {"enabled": True, "grace_s": "30s"}, "tiers": {"gold": {"p99_ms": 400}}}})
    assert spec.load.run_time_s == 72 * 3600 and spec.sla.abort.grace_s == 30.0
