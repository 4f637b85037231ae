"""Tier grading at the boundaries, uptime, no-data runs, per-endpoint criteria."""

from __future__ import annotations

import pytest

from reliability.config import SlaSpec, parse_scenario
from reliability.metrics import WindowStore
from reliability.metrics.windows import SecondCounts
from reliability.sla import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_PASSED, compute_uptime, evaluate, status_line
from tests.support.fakes import FakeClock

T0 = 5_000_000.0


def _store(seconds: int, per_second: int, latency_ms: float, fail_per_second: int = 0,
           down_seconds: frozenset[int] = frozenset(), name: str = "/a") -> WindowStore:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    start = clock.now
    for s in range(seconds):
        for i in range(per_second):
            clock.now = start + s + i / (per_second + 1)
            failed = s in down_seconds or i < fail_per_second
            store.record("GET", name, latency_ms, failed)
    return store


def _spec(**sla: object) -> SlaSpec:
    return parse_scenario({"sla": sla}).sla


def test_gold_met_when_every_interval_is_on_the_passing_side() -> None:
    # 2000 requests, none failed (Wilson 95 % upper bound 0.19 %), p95 199 ms on every sample
    verdict = evaluate(_store(10, 200, 199.0).snapshot(), _spec(tier="gold"))
    by_name = {c.name: c for c in verdict.criteria}
    err = by_name["error_ratio"]
    assert err.actual == 0 and err.ci_low == 0 and err.ci_high == pytest.approx(3.8415 / 2003.8415, rel=1e-3)
    assert err.passed and err.state == "pass" and err.samples == 2000
    assert by_name["p95_ms"].passed and by_name["p95_ms"].margin == pytest.approx(1.0, abs=1.0)
    assert verdict.passed and verdict.exit_code == EXIT_PASSED
    assert verdict.highest_tier_met == "gold"
    assert verdict.next_tier == "platinum"
    # platinum: p95 fails outright, 0.1 % errors cannot be shown with 2000 clean requests
    assert {c.name: c.state for c in verdict.blocked_by} == {"p95_ms": "fail", "error_ratio": "inconclusive"}


def test_exactly_at_the_threshold_is_not_enough_evidence() -> None:
    verdict = evaluate(_store(10, 200, 199.0, fail_per_second=1).snapshot(), _spec(tier="gold"))
    err = {c.name: c for c in verdict.criteria}["error_ratio"]
    assert err.actual == pytest.approx(0.005)
    assert err.state == "inconclusive" and err.ci_low < 0.005 < err.ci_high
    assert not verdict.passed and verdict.exit_code == EXIT_INCONCLUSIVE
    assert any(r.startswith("not enough evidence: error_ratio 95 % CI") and "against 0.5 %" in r
               for r in verdict.inconclusive), verdict.inconclusive


def test_one_failure_over_the_threshold_fails_gold_and_leaves_silver_unproven() -> None:
    # 1 % errors over 2000 requests: 95 % CI ~0.68-1.5 %: above gold's 0.5 %, straddles silver's 1 %
    verdict = evaluate(_store(10, 200, 150.0, fail_per_second=2).snapshot(), _spec(tier="gold"))
    assert not verdict.passed and verdict.exit_code == EXIT_FAILED
    assert verdict.highest_tier_met == "bronze"
    assert [(c.name, c.state) for c in verdict.blocked_by] == [("error_ratio", "inconclusive")]
    failed = [c for c in verdict.criteria if c.state == "fail"]
    assert [c.name for c in failed] == ["error_ratio"] and failed[0].margin == pytest.approx(-0.005)
    assert failed[0].ci_low is not None and failed[0].ci_low > 0.005


def test_latency_just_over_a_tier_threshold_fails_it() -> None:
    verdict = evaluate(_store(10, 100, 205.0).snapshot(), _spec(tier="gold"))
    assert verdict.highest_tier_met == "silver"
    assert [c.name for c in verdict.blocked_by] == ["p95_ms"]


def test_uptime_counts_down_windows() -> None:
    # 1000 windows, 2 fully down: uptime 99.8 % -> gold (99.9) fails, silver (99.5) holds on uptime
    store = _store(1000, 3, 10.0, down_seconds=frozenset({10, 11}))
    verdict = evaluate(store.snapshot(), _spec(tier="gold"))
    assert verdict.uptime.windows == 1000 and verdict.uptime.up_windows == 998
    assert verdict.uptime.request_availability == pytest.approx(0.998)
    assert "uptime" in {c.name for c in verdict.blocked_by}


def test_window_at_the_down_threshold_counts_as_down() -> None:
    seconds = [SecondCounts(1, 100, 5, None, False), SecondCounts(2, 100, 4, None, False),
               SecondCounts(3, 0, 0, 10, False), SecondCounts(4, 3, 3, None, False)]
    up = compute_uptime(seconds, down_error_ratio=0.05)
    assert (up.windows, up.up_windows) == (3, 1)  # 5 % is down, 4 % is up, idle excluded, all-failed down
    assert up.ratio == pytest.approx(1 / 3)


def test_no_requests_is_never_a_pass() -> None:
    store = WindowStore(clock=FakeClock(T0))
    store.note_users(5_000_000, 10)
    verdict = evaluate(store.snapshot(), _spec(tier="bronze"))
    assert not verdict.passed
    assert verdict.exit_code == EXIT_INCONCLUSIVE
    assert verdict.highest_tier_met is None
    assert all(c.actual is None and not c.passed for c in verdict.criteria)
    assert "no data" in status_line(verdict) or "n/a" in status_line(verdict)


def test_percentile_is_configurable() -> None:
    store = _store(10, 100, 50.0)
    verdict = evaluate(store.snapshot(), _spec(tier="gold", percentile="p99.9"))
    assert [c.name for c in verdict.criteria] == ["uptime", "p99.9_ms", "error_ratio"]


def test_custom_tier_and_endpoint_override() -> None:
    store = _store(10, 100, 50.0, name="/slow")
    spec = _spec(tier="strict", tiers={"strict": {"rank": 5, "p95_ms": 40, "p99_ms": 60, "error_pct": 0}},
                 endpoints={"GET /slow": {"p95_ms": 45}, "/never-called": {"error_pct": 1}})
    verdict = evaluate(store.snapshot(), spec)
    names = {c.name: c for c in verdict.criteria}
    assert not names["p95_ms"].passed and names["p99_ms"].passed
    assert not names["GET /slow p95_ms"].passed
    assert names["/never-called error_ratio"].actual is None  # graded but never hit: fails
    assert verdict.highest_tier_met is None  # the endpoint criteria apply to every tier


def test_a_reason_for_doubt_turns_a_pass_into_inconclusive() -> None:
    verdict = evaluate(_store(5, 100, 1.0).snapshot(), _spec(tier="bronze"))
    assert verdict.exit_code == EXIT_PASSED
    worse = verdict.with_inconclusive(["worker w1 went missing"])
    assert worse.exit_code == EXIT_INCONCLUSIVE and worse.passed
