"""Burn-rate alerting (pure): the scaled SRE rules, the state machine's breach -> escalation ->
recovery, the scenario section, the payloads and the webhook sender against a real local server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from reliability.alerts import (
    AlertsSpec,
    BurnRateAlerts,
    CountSeries,
    budget_ratio_for,
    budget_remaining,
    burn_rate,
    deliver,
    json_payload,
    scaled_rules,
    slack_payload,
    uptime_budget_ratio_for,
    wants,
    webhook_label,
    window_burn,
)
from reliability.config import parse_scenario
from reliability.exceptions import ScenarioError
from tests.support.processes import assert_imports_without
from tests.support.servers import serve_in_thread

T0 = 1_800_000_000
SECRET = "tok-7f3a9c"


def test_alerts_import_without_locust_or_gevent() -> None:
    assert_imports_without(["reliability.alerts"], ("locust", "gevent", "flask"))


# -- rules ---------------------------------------------------------------------------------------------


def test_rules_keep_the_sre_windows_for_a_ten_hour_run() -> None:
    rules = {r.name: r for r in scaled_rules(36_000, min_window_s=1)}
    assert (rules["page-fast"].burn_rate, rules["page-fast"].long_s, rules["page-fast"].short_s) == (14.4, 3600, 300)
    assert (rules["page-slow"].burn_rate, rules["page-slow"].long_s, rules["page-slow"].short_s) == (6.0, 21600, 1800)
    assert (rules["ticket"].burn_rate, rules["ticket"].long_s, rules["ticket"].short_s) == (1.0, 259200, 21600)
    assert [r.severity for r in rules.values()] == ["page", "page", "warning"]


def test_rules_scale_to_the_run_with_a_floor() -> None:
    ten_minutes = [(r.long_s, r.short_s) for r in scaled_rules(600, min_window_s=5)]
    assert ten_minutes == [(60, 5), (360, 30), (4320, 360)]
    short_run = [(r.long_s, r.short_s) for r in scaled_rules(20, min_window_s=1)]
    assert short_run == [(2, 1), (12, 1), (144, 12)]
    assert [(r.long_s, r.short_s) for r in scaled_rules(20, min_window_s=5)] == [(5, 5), (12, 5), (144, 12)]
    with pytest.raises(ValueError):
        scaled_rules(0)


def test_budget_comes_from_slo_then_tier_errors_then_tier_uptime() -> None:
    assert budget_ratio_for(AlertsSpec(slo_pct=99.9), 0.005) == pytest.approx(0.001)
    assert budget_ratio_for(AlertsSpec(), 0.005, 0.999) == 0.005
    assert budget_ratio_for(None, None, 0.999) == pytest.approx(0.001)
    assert budget_ratio_for(None, None, None) is None
    assert burn_rate(1000, 10, 0.005) == pytest.approx(2.0)
    assert burn_rate(0, 0, 0.005) is None
    assert budget_remaining(1000, 1, 0.005) == pytest.approx(0.8)
    assert budget_remaining(1000, 10, 0.005) == pytest.approx(-1.0)


# -- the per-second series -----------------------------------------------------------------------------


def test_count_series_sums_windows_with_gaps_and_clips() -> None:
    series = CountSeries(T0)
    series.add(T0, 10, 1)
    series.add(T0 + 3, 20, 2)  # T0+1, T0+2 had no traffic
    series.extend_to(T0 + 6)
    assert series.end_t == T0 + 6
    assert series.counts(T0, T0 + 6) == (30, 3)
    assert series.counts(T0 + 1, T0 + 3) == (0, 0)
    assert series.counts(T0 - 100, T0 + 100) == (30, 3)
    assert series.counts(T0 + 4, T0 + 2) == (0, 0)
    with pytest.raises(ValueError):
        series.add(T0 + 2, 1, 0)


def test_count_series_revises_seconds_and_counts_down_ones() -> None:
    series = CountSeries(T0)
    series.add(T0, 100, 0, "up")
    series.add(T0 + 1, 0, 0, None)  # not yet known: the requests sent here are still in flight
    series.add(T0 + 2, 100, 0, "up")
    assert series.seconds(T0, T0 + 3) == (2, 0, 200) and series.first_down(T0, T0 + 3) is None
    # they complete: the second is revised (10 held through it, none completed), the sums follow
    series.put(T0 + 1, 0, 0, "stalled", held=10)
    series.put(T0, 100, 5, "errors")
    assert series.counts(T0, T0 + 3) == (200, 5)
    assert series.seconds(T0, T0 + 3) == (3, 1, 210)  # errors burn through requests, not seconds
    assert series.first_down(T0, T0 + 3) == T0 and series.first_down(T0 + 1, T0 + 3) == T0 + 1
    series.put(T0 + 5, 50, 0, "slow")  # a gap of idle seconds, then a slow one
    assert series.end_t == T0 + 6 and series.seconds(T0 + 2, T0 + 6) == (2, 1, 150)
    with pytest.raises(ValueError):
        series.put(T0 - 1, 1, 0)
    with pytest.raises(KeyError):
        series.put(T0, 1, 0, "sideways")


def test_the_series_knows_every_window_state_the_sla_names() -> None:
    from reliability.sla import ERRORS, SLOW, STALLED, UP

    series = CountSeries(T0)
    for i, state in enumerate((UP, ERRORS, STALLED, SLOW, None)):
        series.put(T0 + i, 10, 0, state)
    assert series.seconds(T0, T0 + 5) == (4, 2, 50) and series.first_down(T0, T0 + 5) == T0 + 1


def test_window_burn_is_the_faster_of_requests_and_down_seconds() -> None:
    series = CountSeries(T0)
    for i in range(8):
        series.add(T0 + i, 100, 1, "up")  # 1 % errors: 2x the 0.5 % budget
    assert window_burn(series, T0, T0 + 8, 0.005, 0.001, 10) == (pytest.approx(2.0), "requests")
    series.add(T0 + 8, 0, 0, "stalled", held=10)
    series.add(T0 + 9, 0, 0, "stalled", held=10)
    rate, by = window_burn(series, T0, T0 + 10, 0.005, 0.001, 10)
    assert by == "seconds" and rate == pytest.approx(0.2 / 0.001)  # 2 of 10 seconds down
    assert window_burn(series, T0 + 8, T0 + 10, 0.005, None, 10) == (None, None)  # no requests, no budget
    assert window_burn(series, T0 + 8, T0 + 10, 0.005, 0.001, 21) == (None, None)  # 20 held: too thin
    assert uptime_budget_ratio_for(None, 0.999, 0.005) == pytest.approx(0.001)
    assert uptime_budget_ratio_for(AlertsSpec(uptime_slo_pct=99.0), 0.999, 0.005) == pytest.approx(0.01)
    assert uptime_budget_ratio_for(None, None, 0.005) == 0.005
    assert uptime_budget_ratio_for(None, 1.0, None) is None


def test_a_freeze_pages_and_the_alert_says_when_the_service_went_down() -> None:
    alerts = BurnRateAlerts(scaled_rules(600, min_window_s=5), 0.005, 0.001, started_at=float(T0) + 0.4)
    series = CountSeries(T0)
    events = []
    for i in range(40):
        t = T0 + i
        if 30 <= i < 34:  # frozen: the users' 10 requests are held, none completes
            series.add(t, 0, 0, "stalled", held=10)
        else:
            series.add(t, 100, 0, "up")
        events += alerts.evaluate(series, T0, t + 1, now=t + 1.5)
    assert [(e.kind, e.severity) for e in events] == [("breach", "page")]
    breach = events[0]
    assert breach.t_s == pytest.approx(31.1)  # the first stalled second is graded when it closes
    assert breach.down_since_s == pytest.approx(29.6) and breach.time_to_detect_s == pytest.approx(1.5)
    assert breach.burns[0].short_by == "seconds" and "stalled/slow seconds" in breach.reasons[0]
    assert breach.to_dict()["down_since_s"] == pytest.approx(29.6)
    request_only = BurnRateAlerts(scaled_rules(600, min_window_s=5), 0.005, started_at=float(T0))
    assert request_only.evaluate(series, T0, T0 + 40, now=T0 + 40.0) == []  # what a request SLI alone sees


def test_a_trickle_of_errors_has_no_down_second_to_date_it() -> None:
    run = Run(_alerts())
    run.seconds(5, 100, 2)  # 2 % errors: burns the budget, no second is down (5 % makes one down)
    assert run.kinds == [("breach", "warning")]
    assert run.alerts.events[0].down_since_s is None and run.alerts.events[0].time_to_detect_s is None


# -- the state machine ---------------------------------------------------------------------------------


class Run:
    """Feeds the evaluator one second at a time, as the plugin extension does."""

    def __init__(self, alerts: BurnRateAlerts) -> None:
        self.alerts = alerts
        self.series = CountSeries(T0)
        self.t = T0
        self.kinds: list[tuple[str, str]] = []

    def second(self, requests: int, failures: int, sla_failing: tuple[str, ...] = (),
               sla_inconclusive: tuple[str, ...] = ()) -> None:
        self.series.add(self.t, requests, failures)
        self.t += 1
        for event in self.alerts.evaluate(self.series, T0, self.t, float(self.t), sla_failing, sla_inconclusive):
            self.kinds.append((event.kind, event.severity))

    def seconds(self, n: int, requests: int, failures: int) -> None:
        for _ in range(n):
            self.second(requests, failures)


def _alerts(**kwargs: Any) -> BurnRateAlerts:
    args: dict[str, Any] = {"min_requests": 10, "clear_s": 2.0, "started_at": float(T0), **kwargs}
    return BurnRateAlerts(scaled_rules(20, min_window_s=1), 0.005, **args)


def test_warning_escalates_to_page_then_recovers_in_order() -> None:
    run = Run(_alerts())
    run.seconds(5, 100, 0)
    assert run.kinds == [] and run.alerts.severity is None
    run.seconds(4, 100, 2)  # 2 % errors: 4x burn, only the ticket rule (>= 1x) holds
    assert run.kinds == [("breach", "warning")]
    assert run.alerts.level == "warning"
    run.seconds(3, 100, 100)  # 100 %: 200x, both page rules fire
    assert run.kinds == [("breach", "warning"), ("escalation", "page")]
    run.seconds(3, 100, 100)  # still paging: no second escalation
    assert len(run.kinds) == 2
    run.seconds(40, 100, 0)
    assert run.kinds == [("breach", "warning"), ("escalation", "page"), ("recovery", "page")]
    events = run.alerts.events
    assert [e.incident for e in events] == [1, 1, 1]
    assert events[0].t_s < events[1].t_s < events[2].t_s
    assert any("page" in r for r in events[1].reasons)
    assert run.alerts.severity is None


def test_recovery_waits_for_clear_s_and_a_new_incident_gets_a_new_number() -> None:
    run = Run(_alerts(clear_s=5.0))
    run.seconds(3, 100, 0)
    run.seconds(3, 100, 100)
    assert run.kinds == [("breach", "page")]
    # the page rules' short windows clear at once, the ticket rule's 12 s window holds the warning
    run.seconds(12, 100, 0)
    assert run.kinds == [("breach", "page")]
    run.seconds(6, 100, 0)
    assert run.kinds[-1] == ("recovery", "page")
    run.seconds(100, 100, 0)  # let the ticket rule's whole-run window forget the first incident
    run.seconds(3, 100, 100)
    assert run.kinds[-1] == ("breach", "page")
    assert run.alerts.events[-1].incident == 2


def test_a_failing_sla_is_a_warning_and_too_few_requests_never_fire() -> None:
    run = Run(_alerts())
    run.second(100, 0, sla_failing=("p95_ms 450.0 ms (needs <= 200.0 ms)",))
    assert run.kinds == [("breach", "warning")]
    assert "SLA failing: p95_ms" in run.alerts.events[0].reasons[0]
    quiet = Run(_alerts(sla_breach=False))
    quiet.second(3, 0, sla_failing=("p95_ms 450.0 ms (needs <= 200.0 ms)",))
    quiet.seconds(2, 3, 3)  # 100 % errors, but under min_requests (10) in every window
    assert quiet.kinds == [] and all(b.long is None for b in quiet.alerts.last_burns)
    quiet.second(10, 10)
    assert quiet.kinds == [("breach", "page")]
    no_budget = Run(BurnRateAlerts(scaled_rules(20, 1), None, started_at=float(T0)))
    no_budget.seconds(5, 100, 100)
    assert no_budget.kinds == [] and no_budget.alerts.last_burns == ()


def test_an_inconclusive_sla_is_neither_a_breach_nor_a_recovery() -> None:
    unsure = ("error_ratio 0 %, 95 % CI 0 % .. 0.62 %, n=616 (needs <= 0.5 %)",)
    run = Run(_alerts(clear_s=2.0))
    for _ in range(5):
        run.second(100, 0, sla_inconclusive=unsure)
    assert run.kinds == [] and run.alerts.level is None  # not enough evidence opens nothing
    failing = ("p95_ms 450.0 ms, 95 % CI 420.0 ms .. 480.0 ms, n=500 (needs <= 200.0 ms)",)
    run.second(100, 0, sla_failing=failing)
    assert run.kinds == [("breach", "warning")]
    for _ in range(10):  # far beyond clear_s: still no evidence that it recovered
        run.second(100, 0, sla_inconclusive=unsure)
    assert run.kinds == [("breach", "warning")] and run.alerts.severity == "warning"
    run.second(100, 0)
    run.second(100, 0)
    assert run.kinds == [("breach", "warning")]  # the quiet time starts with the first conclusive pass
    run.second(100, 0)
    assert run.kinds == [("breach", "warning"), ("recovery", "warning")]
    ignored = Run(_alerts(sla_breach=False))  # without sla_breach the rolling verdict plays no part
    ignored.seconds(3, 100, 100)
    for _ in range(30):
        ignored.second(100, 0, sla_inconclusive=unsure)
    assert ignored.kinds[-1][0] == "recovery"


def test_close_sends_run_end_only_with_an_open_incident() -> None:
    run = Run(_alerts())
    assert run.alerts.close(float(T0)) is None
    run.seconds(3, 100, 100)
    event = run.alerts.close(float(run.t), "the test stopped")
    assert event is not None and event.kind == "run_end" and event.resolved and event.severity == "page"
    assert event.reasons == ("the test stopped with the alert open",)
    assert run.alerts.close(float(run.t)) is None


def test_receivers_get_events_at_or_above_their_severity() -> None:
    run = Run(_alerts())
    run.seconds(3, 100, 0)
    run.seconds(4, 100, 2)
    run.seconds(3, 100, 100)
    run.seconds(40, 100, 0)
    pages = [(e.kind, e.severity) for e in run.alerts.events if wants(e, "page")]
    assert pages == [("escalation", "page"), ("recovery", "page")]
    assert len([e for e in run.alerts.events if wants(e, "warning")]) == 3


# -- the scenario section ------------------------------------------------------------------------------


def test_scenario_section_parses_urls_from_env_and_never_shows_them() -> None:
    scenario = parse_scenario({"alerts": {
        "slo_pct": 99.5, "run_length_s": "30m", "min_window_s": "2s", "clear_s": "10s",
        "webhooks": ["http://hooks.example/a?token=${TOKEN}",
                     {"url": "https://hooks.slack.example/services/${TOKEN}", "format": "slack",
                      "min_severity": "page", "timeout_s": "2s"}],
    }}, env={"TOKEN": SECRET})
    alerts = scenario.alerts
    assert alerts is not None
    assert alerts.run_length_s == 1800 and alerts.min_window_s == 2 and alerts.clear_s == 10
    assert [w.format for w in alerts.webhooks] == ["json", "slack"]
    assert alerts.webhooks[1].min_severity == "page" and alerts.webhooks[1].timeout_s == 2
    assert SECRET not in repr(scenario) and SECRET not in str(alerts.model_dump())
    assert all(SECRET in s for s in alerts.secrets())
    assert webhook_label(alerts.webhooks[1].url.get_secret_value()) == "https://hooks.slack.example/***"


@pytest.mark.parametrize(("section", "path"), [
    ({"webhooks": ["ftp://x/y"]}, "alerts.webhooks[0]"),
    ({"webhooks": [{"url": "http://x", "format": "teams"}]}, "alerts.webhooks[0].format"),
    ({"slo_pct": 100}, "alerts.slo_pct"),
    ({"min_window_s": "0.5s"}, "alerts.min_window_s"),
    ({"page_at": 10}, "alerts.page_at"),
])
def test_bad_sections_name_the_field(section: dict[str, Any], path: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"alerts": section}, "s.yaml")
    assert f"s.yaml: {path}" in str(info.value)


# -- payloads ------------------------------------------------------------------------------------------


def test_payloads_json_and_slack() -> None:
    run = Run(_alerts())
    run.seconds(3, 100, 100)
    run.seconds(30, 100, 0)
    breach, recovery = run.alerts.events
    context = {"scenario": "checkout", "tier": "gold", "budget_remaining": 0.25}
    body = json_payload(breach, context)
    assert body["source"] == "locust-reliability"
    assert (body["kind"], body["severity"], body["status"], body["tier"]) == ("breach", "page", "firing", "gold")
    assert body["burn_rates"][0]["rule"] == "page-fast"
    json.dumps(body, allow_nan=False)
    text = slack_payload(breach, context)["text"]
    assert text.startswith("[PAGE] SLA breach: checkout (gold)") and "error budget left: 25.0 %" in text
    assert slack_payload(recovery, context)["text"].startswith("[RESOLVED] SLA recovered: checkout")


# -- delivery against a real HTTP server ---------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    statuses: list[int] = []
    bodies: list[dict[str, Any]] = []
    delay_s = 0.0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        time.sleep(type(self).delay_s)
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.statuses, Receiver.bodies, Receiver.delay_s = [], [], 0.0
    with serve_in_thread(Receiver) as url:
        yield f"{url}/hook?token={SECRET}"


def test_deliver_posts_json(receiver: str) -> None:
    result = deliver(receiver, {"kind": "breach"}, 2.0)
    assert result.ok and result.status == 200 and result.attempts == 1
    assert Receiver.bodies == [{"kind": "breach"}]


def test_deliver_retries_a_5xx_once_but_not_a_4xx(receiver: str) -> None:
    Receiver.statuses = [503, 200]
    assert deliver(receiver, {}, 2.0, sleep=lambda _s: None).attempts == 2
    Receiver.statuses = [404]
    result = deliver(receiver, {}, 2.0)
    assert (result.ok, result.status, result.error, result.attempts) == (False, 404, "HTTP 404", 1)


def test_deliver_is_bounded_and_never_shows_the_url(receiver: str) -> None:
    Receiver.delay_s = 1.0
    started = time.monotonic()
    result = deliver(receiver, {}, 0.2, attempts=1)
    assert time.monotonic() - started < 0.9
    assert not result.ok and result.status is None and SECRET not in str(result.error)
    refused = deliver(f"http://127.0.0.1:1/x?token={SECRET}", {}, 1.0, attempts=1)
    assert not refused.ok and SECRET not in str(refused.error)
