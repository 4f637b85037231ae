"""Business impact from the scenario's cost model, and the recommendation rules."""

from __future__ import annotations

from typing import Any

import pytest

from reliability.config import parse_scenario
from reliability.exceptions import ScenarioError
from reliability.report import CostSpec, estimate_impact, recommend, render
from tests.support.records import load

COST = CostSpec(currency="EUR", per_downtime_minute=600.0, per_failed_request=0.5, per_slow_minute=120.0)


def _record() -> dict[str, Any]:
    """Ten seconds at 100 req/s: 2-3 down (50 % errors), 4-6 slow (p95 300 ms over 200), 7 one failure."""
    rows = []
    for t in range(10):
        failures = 50 if t in (2, 3) else (1 if t == 7 else 0)
        p95 = 300.0 if t in (2, 4, 5, 6) else 50.0
        rows.append({"t": t, "users": 10, "requests": 100, "failures": failures, "p95_ms": p95, "partial": False})
    return {
        "run": {"started_at": "2026-11-27T10:00:00.000Z", "duration_s": 10.0},
        "sla": {"down_error_ratio": 0.05, "criteria": [
            {"name": "p95_ms", "scope": "total", "comparator": "<=", "threshold": 200.0, "actual": 300.0,
             "margin": -100.0, "passed": False}]},
        "timeline": rows,
        "faults": [{"name": "db down", "injected_at": 2, "reverted_at": 4, "time_to_recover_s": 1.0},
                   {"name": "never recovered", "injected_at": "2026-11-27T10:00:06.000Z",
                    "reverted_at": "2026-11-27T10:00:07.000Z", "time_to_recover_s": None}],
    }


def test_costs_are_counts_times_rates_and_an_outage_is_priced_once() -> None:
    impact = estimate_impact(_record(), COST)
    run = impact.run
    assert (run.down_s, run.failed_requests, run.slow_s) == (2, 101, 3)  # second 2 is down, not also slow
    assert run.downtime_cost == pytest.approx(2 / 60 * 600)
    assert run.failure_cost == pytest.approx(101 * 0.5)
    assert run.slow_cost == pytest.approx(3 / 60 * 120)
    assert run.total == pytest.approx(20 + 50.5 + 6)
    assert impact.latency_threshold_ms == 200.0 and impact.currency == "EUR"


def test_each_fault_is_charged_from_injection_until_it_recovered() -> None:
    db, never = estimate_impact(_record(), COST).faults
    assert (db.name, db.start_s, db.end_s) == ("db down", 2, 5)  # reverted at 4, recovered 1 s later
    assert (db.cost.down_s, db.cost.failed_requests, db.cost.slow_s) == (2, 100, 1)
    assert (never.start_s, never.end_s) == (6, 10)  # ISO times; never recovered: charged to the end
    assert (never.cost.down_s, never.cost.failed_requests, never.cost.slow_s) == (0, 1, 1)


def test_an_explicit_latency_threshold_overrides_the_sla_one() -> None:
    impact = estimate_impact(_record(), COST.model_copy(update={"latency_threshold_ms": 400.0}))
    assert impact.run.slow_s == 0 and impact.latency_threshold_ms == 400.0


def test_without_a_latency_threshold_slow_seconds_cost_nothing() -> None:
    record = _record()
    record["sla"]["criteria"] = []
    assert estimate_impact(record, COST).run.slow_cost == 0.0


def test_scenario_cost_section_parses_units_and_rejects_bad_values() -> None:
    spec = parse_scenario({"cost": {"currency": "EUR", "per_downtime_minute": 1200, "per_failed_request": 0.05,
                                    "per_slow_minute": 150, "latency_threshold_ms": "0.25s"}})
    assert spec.cost == CostSpec(currency="EUR", per_downtime_minute=1200, per_failed_request=0.05,
                                 per_slow_minute=150, latency_threshold_ms=250.0)
    assert parse_scenario({}).cost is None
    with pytest.raises(ScenarioError, match=r"x.yaml: cost.per_failed_request: .*greater than or equal to 0"):
        parse_scenario({"cost": {"per_failed_request": -1}}, "x.yaml")
    with pytest.raises(ScenarioError, match=r"cost.per_outage: unknown key"):
        parse_scenario({"cost": {"per_outage": 1}}, "x.yaml")


def test_cost_is_rendered_from_the_argument_or_the_records_cost_model() -> None:
    record = _record()
    assert "Business impact" not in render(record, "html")
    assert "Business impact" in render(record, "html", cost=COST)
    record["cost_model"] = {"currency": "GBP", "per_failed_request": 1}
    assert "101.00 GBP" in render(record, "md")
    record["cost_model"] = {"currency": "GBP", "per_failed_request": "lots"}  # invalid: left out, no crash
    assert "Business impact" not in render(record, "md")


def _rules(record: dict[str, Any]) -> set[str]:
    return {r.rule for r in recommend(record)}


def test_a_clean_pass_only_says_what_blocks_the_next_tier() -> None:
    record = load("pass")
    assert record["sla"]["passed"] is True
    assert {r.rule for r in recommend(record)} <= {"next-tier"}  # a clean pass: nothing else to say
    record["sla"].update(highest_tier_met="gold", next_tier="platinum",
                         blocked_by=[{"name": "p95_ms", "scope": "total", "comparator": "<=", "threshold": 50.0,
                                      "actual": 80.0, "margin": -30.0, "passed": False}])
    recs = recommend(record)
    assert [r.rule for r in recs] == ["next-tier"]
    assert "p95_ms" in recs[0].evidence and "platinum" in recs[0].finding


def test_fault_rules_fire_on_their_evidence() -> None:
    record = load("faults")
    assert {"sla-criterion-failed", "fault-not-graceful", "fault-budget-burn", "health-root-cause"} <= _rules(record)
    by_rule = {r.rule: r for r in recommend(record)}
    harsh = next(f for f in record["faults"] if f["graceful"] is False)
    assert harsh["name"] in by_rule["fault-not-graceful"].finding
    assert f"{harsh['degradation']['peak_error_ratio'] * 100:.2f} %" in by_rule["fault-not-graceful"].evidence
    assert f"{harsh['burn_rate']:.1f}x" in by_rule["fault-budget-burn"].evidence
    never = record["faults"][0]
    never.update(time_to_recover_s=None, recovered=False)
    assert never["name"] in {r.rule: r for r in recommend(record)}["fault-no-recovery"].finding
    # a fault that fails fast, recovers and is detected at once triggers none of those rules
    record["faults"] = [dict(harsh, graceful=True, fail_fast=True, burn_rate=1.0, time_to_detect_s=1.0,
                             time_to_recover_s=1.0, recovered=True)]
    assert not any(harsh["name"] in r.finding for r in recommend(record))
    record["faults"][0].update(fail_fast=False, time_to_recover_s=60.0, time_to_detect_s=30.0)
    assert {"fault-not-fail-fast", "fault-slow-recovery", "fault-slow-detection"} <= _rules(record)


def test_run_health_rules_fire_on_their_evidence() -> None:
    assert {"verdict-inconclusive", "worker-lost"} <= _rules(load("distributed"))
    assert "capacity-headroom" in _rules(load("capacity"))
    record = _record()
    assert "down-seconds" not in _rules(record)  # its down seconds have faults to explain them
    del record["faults"]
    assert "down-seconds" in _rules(record)  # seconds 2-3 had 50 % errors without any fault
    record["faults"] = [{"name": "x", "injected_at": 1, "reverted_at": 2, "time_to_recover_s": None,
                         "verified_healthy": False}]
    assert {"fault-no-recovery", "fault-not-verified"} <= _rules(record)
    health = load("faults")
    health["health"]["components"]["api"]["uptime_ratio"] = 0.9
    assert "component-unhealthy" in _rules(health)
    assert "endpoint-over-threshold" in _rules(load("fail"))  # its p95 bound is 1 ms


def test_recommendations_are_ordered_by_severity() -> None:
    order = {"high": 0, "medium": 1, "info": 2}
    severities = [order[r.severity] for r in recommend(load("faults"))]
    assert severities == sorted(severities)


def test_an_analysis_note_makes_missing_recovery_not_measured_rather_than_never() -> None:
    record = load("faults")
    name = record["faults"][0]["name"]
    record["faults"][0].update(time_to_recover_s=None, time_to_detect_s=None, recovered=None,
                               note="no baseline windows before the fault")
    rules = [r for r in recommend(record) if name in r.finding]
    assert [r.rule for r in rules] == ["fault-problem"]
    assert "no baseline windows" in rules[0].evidence
    junit = render(record, "junit")
    assert "no baseline windows before the fault" in junit and f"{name}: did not recover" not in junit


def test_a_single_cpu_peak_is_a_warning_and_sustained_saturation_is_high() -> None:
    record = load("pass")
    record["generators"][0].update(cpu_max_pct=97.0, saturated=False)
    assert [(r.rule, r.severity) for r in recommend(record) if r.rule.startswith("generator")] == [
        ("generator-cpu-peak", "medium")]
    record["generators"][0]["saturated"] = True
    assert [(r.rule, r.severity) for r in recommend(record) if r.rule.startswith("generator")] == [
        ("generator-saturated", "high")]
