"""The web UI's live state and tabs, from a real window store and real SLA evaluation.

The plugin is reached through the duck-typed surface the state reads (``store``, ``sla``, ``live``,
``scenario``, ``extensions``), so a plain namespace stands in for it and for the extensions
(``tests/support/plugin_fakes.py``): no locust, no gevent.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from reliability.alerts import BurnRateAlerts, CountSeries, scaled_rules
from reliability.config import SlaSpec
from reliability.metrics.windows import WindowStore
from reliability.schema.sections import AlertEvent
from reliability.web.state import CHART_S, ChartSeries, LiveState, budget_state, scenario_secrets
from reliability.web.tabs import FAULTS_TAB, HEALTH_TAB, SLA_TAB, TABLES, fmt_seconds, tab_rows
from tests.support.fakes import FakeClock
from tests.support.plugin_fakes import (
    PASSWORD,
    T0,
    TOKEN,
    fault_run,
    fill,
    health_ext,
    plugin_at,
    scenario,
    straddling_plugin,
)
from tests.support.processes import assert_imports_without


def test_state_tabs_and_metrics_import_without_locust_or_gevent() -> None:
    assert_imports_without(["reliability.web.state", "reliability.web.tabs", "reliability.web.metrics"],
                           ("locust", "gevent", "flask"))


def test_state_grades_the_rolling_window_and_the_whole_run_budget() -> None:
    now = T0 + 30.2
    plugin, _ = plugin_at(now)
    state = LiveState(plugin, lag_s=1, clock=lambda: now, runner_state=lambda: "running").state()
    sla = state["sla"]
    assert (sla["tier"], sla["percentile"], sla["window_s"], sla["passed"]) == ("gold", "p95", 10, False)
    by_name = {c["name"]: c for c in sla["criteria"]}
    assert by_name["error_ratio"]["actual"] == pytest.approx(0.1) and not by_name["error_ratio"]["passed"]
    assert by_name["p95_ms"]["unit"] == "ms" and by_name["p95_ms"]["actual"] > 200
    assert sla["highest_tier_met"] is None and sla["next_tier"] == "bronze"
    budget = state["budget"]
    assert budget["slo"] == pytest.approx(0.995) and budget["run_requests"] == 3000
    assert budget["run_failures"] == 100
    assert budget["remaining"] == pytest.approx(1 - 100 / (0.005 * 3000))
    assert budget["burn_rate"] == pytest.approx(0.1 / 0.005)
    endpoints = {e["name"]: e for e in state["endpoints"]}
    assert endpoints["/api/items"]["requests"] == 1000 and endpoints["Aggregated"]["rps"] == 100.0
    assert state["runner_state"] == "running" and state["run"]["elapsed_s"] == pytest.approx(30.2)
    rows = state["series"]["rows"]
    assert len(rows) == 30 and rows[0][:3] == [T0, 100, 0] and rows[-1][2] == 10
    assert state["series"]["latency_threshold_ms"] == 200.0 and state["series"]["error_threshold"] == 0.005
    json.dumps(state, allow_nan=False)


def test_lag_keeps_open_seconds_out_and_since_trims_rows() -> None:
    now = T0 + 30.2
    plugin, _ = plugin_at(now)
    live = LiveState(plugin, lag_s=4, clock=lambda: now)
    state = live.state()
    assert state["run"]["data_until"] == T0 + 27
    assert [r[0] for r in state["series"]["rows"]][-1] == T0 + 26
    trimmed = json.loads(live.json(since=T0 + 25))
    assert [r[0] for r in trimmed["series"]["rows"]] == [T0 + 25, T0 + 26]


def test_state_is_cached_for_a_second_and_invalidated_on_demand() -> None:
    clock = FakeClock(T0 + 30.2)
    plugin, _ = plugin_at(clock.now)
    live = LiveState(plugin, lag_s=1, clock=clock)
    first = live.state()
    clock.now += 0.5
    assert live.state() is first
    live.invalidate()
    assert live.state() is not first
    clock.now += 1.0
    assert live.state()["now"] == pytest.approx(T0 + 31.7)


def test_a_new_test_starts_a_new_series() -> None:
    now = T0 + 30.2
    plugin, _ = plugin_at(now)
    live = LiveState(plugin, lag_s=1, clock=lambda: now, min_interval_s=0)
    assert len(live.state()["series"]["rows"]) == 30
    plugin.store = WindowStore(clock=lambda: now)
    plugin.started_at = T0 + 29.0
    assert live.state()["series"]["rows"] == []


def test_before_the_first_test_everything_reads_no_data() -> None:
    plugin = SimpleNamespace(store=WindowStore(), sla=scenario().sla, scenario=scenario(), live=None,
                             started_at=None, ended_at=None, role="master", extensions=[])
    state = LiveState(plugin, clock=lambda: float(T0)).state()
    assert state["sla"]["evaluated"] is False and state["sla"]["passed"] is None
    assert state["endpoints"] == [] and state["series"]["rows"] == []
    assert state["budget"]["remaining"] is None and state["faults"]["configured"] is False
    rows = {r["key"]: r["data"] for r in tab_rows(state, "/reliability/")}
    assert rows[SLA_TAB][0]["value"] == "waiting for the first window"
    assert rows[FAULTS_TAB][0]["item"] == "no fault schedule in this run"
    assert rows[HEALTH_TAB][0]["item"] == "no health section in this run's scenario"


def test_faults_show_time_left_and_time_to_start() -> None:
    now = T0 + 30.2
    schedule = SimpleNamespace(name="schedule", started_at=float(T0), inject_now=None, revert_all=None, runs=[
        fault_run("api-latency", "reverted", 2, 5, injected_at=T0 + 2.1, reverted_at=T0 + 7.0),
        fault_run("db-down", "active", 25, 20, injected_at=T0 + 25.0),
        fault_run("by-hand", "active", 3600, 60, injected_at=T0 + 29.0, revert_due_at=T0 + 89.0),
        fault_run("cache-down", "pending", 100, 10),
    ])
    plugin, _ = plugin_at(now, extensions=[schedule])
    faults = LiveState(plugin, lag_s=1, clock=lambda: now).state()["faults"]
    items = {f["name"]: f for f in faults["items"]}
    assert faults["active"] == 2 and faults["can_inject"] and faults["can_revert"]
    assert items["db-down"]["time_left_s"] == pytest.approx(14.8) and items["db-down"]["starts_in_s"] is None
    assert items["by-hand"]["time_left_s"] == pytest.approx(58.8)
    assert items["cache-down"]["starts_in_s"] == pytest.approx(69.8) and not items["cache-down"]["active"]
    assert items["api-latency"]["injected_at_s"] == 2.1 and items["api-latency"]["reverted_at_s"] == 7.0
    rows = {r["item"]: r for r in tab_rows(LiveState(plugin, lag_s=1, clock=lambda: now).state(), "/p/")[1]["data"]}
    assert rows["db-down"]["time"] == "15 s left" and rows["db-down"]["planned"] == "at +25 s for 20 s"
    assert rows["cache-down"]["time"] == "starts in 1 min 9 s"
    assert [fmt_seconds(v) for v in (None, -3, 59.6, 600, 3600, 5400)] == ["", "0 s", "60 s", "10 min", "1 h",
                                                                           "1 h 30 min"]


def test_health_shows_the_last_round_with_its_diagnosis() -> None:
    now = T0 + 30.2
    plugin, _ = plugin_at(now, extensions=[health_ext(T0 + 29.0)])
    health = LiveState(plugin, lag_s=1, clock=lambda: now).state()["health"]
    assert (health["status"], health["score"], health["root_causes"]) == ("down", 25.0, ["db"])
    components = {c["name"]: c for c in health["components"]}
    assert components["db"]["role"] == "root cause" and components["api"]["role"] == "affected"
    assert components["api"]["critical"] is False and components["api"]["latency_ms"] == 310.0


def test_alert_state_comes_from_the_alerting_extension() -> None:
    now = T0 + 30.2
    rules = scaled_rules(60, 1)
    alerts = BurnRateAlerts(rules, 0.005, started_at=float(T0))
    ext = SimpleNamespace(name="alerts", alerts=alerts, rules=rules, budget_ratio=0.001,
                          uptime_budget_ratio=None, run_length_s=60.0,
                          webhooks=[object()], entries=[AlertEvent(kind="breach", severity="page", t_s=21.0,
                                                                   reasons=["x"])])
    plugin, _ = plugin_at(now, extensions=[ext])
    state = LiveState(plugin, lag_s=1, clock=lambda: now).state()
    assert state["budget"]["slo"] == pytest.approx(0.999)  # the alerting section's SLO wins
    assert state["alerts"]["configured"] and state["alerts"]["webhooks"] == 1
    assert [r["name"] for r in state["alerts"]["rules"]] == ["page-fast", "page-slow", "ticket"]
    assert state["alerts"]["events"][0]["kind"] == "breach" and "burn_rates" not in state["alerts"]["events"][0]


def test_secrets_never_leave_the_state() -> None:
    now = T0 + 30.2
    plugin, clock = plugin_at(now, extensions=[health_ext(T0 + 29.0)])
    fill(plugin.store, clock, range(28, 29), 5, 0, 10.0, name=f"/login?password={PASSWORD}")
    secrets = scenario_secrets(plugin.scenario)
    assert PASSWORD in secrets and any(TOKEN in s for s in secrets)
    text = LiveState(plugin, lag_s=1, clock=lambda: now).json()
    assert PASSWORD not in text and TOKEN not in text
    assert "/login?password=***" in text and "postgresql://app:***@db" in text


def test_sla_tab_rows_read_in_order() -> None:
    now = T0 + 30.2
    rules = scaled_rules(60, 1)
    ext = SimpleNamespace(name="alerts", alerts=BurnRateAlerts(rules, 0.005), rules=rules, budget_ratio=0.005,
                          uptime_budget_ratio=None,
                          run_length_s=60.0, webhooks=[], entries=[])
    ext.alerts.evaluate(CountSeries(T0), T0, T0 + 30, now)
    plugin, _ = plugin_at(now, extensions=[ext])
    rows = tab_rows(LiveState(plugin, lag_s=1, clock=lambda: now).state(), "/base/reliability/")[0]["data"]
    items = [r["item"] for r in rows]
    assert items[0] == "verdict for gold (p95, last 10 s)" and rows[0]["status"] == "FAIL"  # on evidence
    assert items[1:4] == ["uptime", "p95_ms", "error_ratio"]
    error = rows[3]
    assert (error["value"], error["threshold"], error["status"]) == ("10 %", "<= 0.5 %", "FAIL")
    budget = next(r for r in rows if r["item"] == "error budget remaining (whole run)")
    assert budget["value"] == "-566.7 %" and budget["status"] == "SPENT" and budget["threshold"] == "SLO 99.5 %"
    assert rows[-1] == {"item": "live charts and fault controls", "value": "/base/reliability/",
                        "threshold": "linked from the Download Data tab", "status": ""}
    fast = next(r for r in rows if r["item"].startswith("burn rate page-fast"))
    assert (fast["value"], fast["threshold"]) == ("n/a / n/a", ">= 14.4x: page")
    keys = {t["key"]: [c["key"] for c in t["structure"]] for t in TABLES}
    for entry in tab_rows(LiveState(plugin, lag_s=1, clock=lambda: now).state(), "/p/"):
        for row in entry["data"]:
            assert list(row) == keys[entry["key"]]  # every cell the table shows, and nothing else


def test_chart_series_keeps_a_bounded_window() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock, fine_horizon_s=CHART_S + 100)
    fill(store, clock, range(0, CHART_S + 50), 1, 0, 5.0)
    series = ChartSeries(T0, 0.95)
    series.sync(store, T0 + CHART_S + 50, SlaSpec())
    assert len(series.rows) == CHART_S and series.rows[0][0] == T0 + 50
    assert series.counts.counts(T0, T0 + CHART_S + 50) == (CHART_S + 50, 0)
    series.sync(store, T0 + CHART_S + 50, SlaSpec())  # nothing new: nothing read twice
    assert series.counts.end_t == T0 + CHART_S + 50


def test_chart_series_first_read_after_a_rollup_charts_only_fine_seconds() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)  # 300 s of fine windows
    fill(store, clock, range(0, 600), 2, 1, 5.0)
    store.rollup(T0 + 600)
    series = ChartSeries(T0, 0.95)
    series.sync(store, T0 + 600, SlaSpec())
    assert [r[0] for r in series.rows] == list(range(T0 + 360, T0 + 600))
    assert all(r[1:3] == [2, 1] for r in series.rows)
    assert series.counts.counts(T0, T0 + 600) == (1200, 600)  # the budget still sees the whole run


def test_a_straddling_interval_reads_inconclusive_not_fail() -> None:
    now = T0 + 10.2
    state = LiveState(straddling_plugin(now), lag_s=1, clock=lambda: now).state()
    sla = state["sla"]
    by_name = {c["name"]: c for c in sla["criteria"]}
    assert by_name["error_ratio"]["actual"] == 0 and by_name["error_ratio"]["outcome"] == "inconclusive"
    assert by_name["p95_ms"]["outcome"] == "pass" and sla["outcome"] == "inconclusive"
    assert sla["passed"] is False  # not met: a pass needs evidence
    rows = {r["item"]: r for r in tab_rows(state, "/base/reliability/")[0]["data"]}
    assert rows["verdict for gold (p95, last 10 s)"]["status"] == "INCONCLUSIVE"
    assert rows["error_ratio"]["status"] == "INCONCLUSIVE" and rows["p95_ms"]["status"] == "PASS"


def test_the_web_budget_sees_late_completions_and_stalled_seconds() -> None:
    """A request counts in the second it was sent: one held through a freeze is known only when it
    completes, after the chart has read that second. The budget figures re-read the rolling
    window, as uptime and the alerts do, and burn the down-seconds budget on the frozen seconds."""
    clock = FakeClock(float(T0))
    store = WindowStore(clock=clock)
    sla = SlaSpec()
    for s in (0, 1, 2, 3, 7, 8, 9):  # 10 requests a second at 5 ms; frozen through seconds 4-6
        for i in range(10):
            store.record_request("GET", "/a", 5.0, False, None, T0 + s + i / 10)
    series = ChartSeries(T0, 0.95)
    series.sync(store, T0 + 6, sla)  # while frozen: the held request has not completed
    assert series.counts.counts(T0, T0 + 6) == (40, 0)
    store.record_request("GET", "/a", 3000.0, False, None, T0 + 4.0)  # answered when the freeze ended
    series.sync(store, T0 + 10, sla)
    assert series.counts.counts(T0, T0 + 10) == (71, 0)  # the late one is counted in its second
    counted, down, _ = series.counts.seconds(T0, T0 + 10)
    assert (counted, down) == (10, 3)  # second 4 slow (3 s at p95), 5 and 6 stalled
    state_budget = budget_state(series, float(T0), T0 + 10, 10, 0.005, 0.001)
    assert state_budget["run_requests"] == 71 and state_budget["run_down_seconds"] == 3
    assert state_budget["uptime_slo"] == pytest.approx(0.999)
    assert state_budget["uptime_remaining"] == pytest.approx(1 - 3 / (0.001 * 10))
    assert state_budget["uptime_burn_rate"] == pytest.approx(0.3 / 0.001)
