"""Capacity search end to end: the test sets the target's capacity (a global rate limit answered
with 429), users make a known request rate, and the search must find the knee within one step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.locust_runs import launch, running
from tests.support.servers import TargetServer

pytestmark = pytest.mark.slow

CAPACITY_RPS = 155  # the target answers 429 beyond this
USER_RPS = 10  # each user: constant_throughput(10)
STEP_USERS = 5
# The limiter admits a burst of one second's worth (155 requests): at 20 users the 45 rps excess
# drains it in 3.4 s, so each step settles 4 s before it is graded.


def test_capacity_search_finds_the_knee_within_one_step(tmp_path: Path) -> None:
    scenario = f"""
sla: {{tier: gold}}
shape:
  type: capacity_search
  start_users: {2 * STEP_USERS}
  step_users: {STEP_USERS}
  step_s: 6s
  settle_s: 4s
  window_s: 1s
  breach_windows: 2
  max_users: 60
"""
    env = {"DEGRADATION_TASK": "get", "DEGRADATION_RATE": str(USER_RPS)}
    with TargetServer(extra_args=("--rate-limit-rps", str(CAPACITY_RPS))) as target, \
            running(launch(tmp_path, scenario, target.url, env, run_time="60s")) as run:
        run.finish()
        record = run.record()
    capacity = record["capacity"]
    true_knee_users = CAPACITY_RPS / USER_RPS  # 15.5: 15 users hold, 20 do not
    knee = capacity["knee"]
    assert knee is not None, capacity
    assert true_knee_users - STEP_USERS <= knee["users"] <= true_knee_users, capacity
    assert knee["rps"] == pytest.approx(knee["users"] * USER_RPS, rel=0.15)
    # the breach streak completes in the first overload step or, with one graded window per step, the next
    assert capacity["complete"] is True
    assert capacity["broke_at_users"] in (knee["users"] + STEP_USERS, knee["users"] + 2 * STEP_USERS)
    assert "gold failed 2 consecutive 1 s windows" in capacity["stopped_because"]
    # the search stopped the run soon after the tier broke (grading lags a step's end by ~1 s), far
    # below max_users
    assert capacity["steps"][-1]["users"] <= capacity["broke_at_users"] + STEP_USERS
    assert capacity["tiers"]["bronze"]["users"] == knee["users"]  # 429s break every tier alike
    assert any("429" in e["message"] for e in record["errors"])
