"""``/metrics``: the Prometheus text parses with prometheus-client's own parser and carries the
live state's numbers, on a registry of its own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from reliability.alerts import BurnRateAlerts, CountSeries, scaled_rules
from reliability.metrics.windows import WindowStore
from reliability.sla import evaluate
from reliability.textsafe import MAX_NAME_CHARS
from reliability.web.metrics import metrics_registry, render
from reliability.web.state import LiveState
from tests.support.fakes import FakeClock
from tests.support.plugin_fakes import (
    PASSWORD,
    T0,
    TOKEN,
    fault_run,
    health_ext,
    plugin_at,
    scenario,
    straddling_plugin,
)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_parse_and_match_the_live_state() -> None:
    now = T0 + 30.2
    schedule = SimpleNamespace(name="schedule", started_at=float(T0), runs=[
        fault_run("db-down", "active", 25, 20, injected_at=T0 + 25.0),
        fault_run("cache-down", "pending", 100, 10),
    ])
    rules = scaled_rules(60, 1)
    alerts = BurnRateAlerts(rules, 0.005, started_at=float(T0))
    series = CountSeries(T0)
    series.add(T0 + 29, 100, 50)
    alerts.evaluate(series, T0, T0 + 30, now)
    ext = SimpleNamespace(name="alerts", alerts=alerts, rules=rules, budget_ratio=0.005, uptime_budget_ratio=0.01,
                          run_length_s=60.0, webhooks=[], entries=[])
    plugin, _ = plugin_at(now, extensions=[schedule, health_ext(T0 + 29.0), ext])
    live = LiveState(plugin, lag_s=1, clock=lambda: now, runner_state=lambda: "running")
    text = render(metrics_registry(live)).decode()
    samples = _samples(text)

    endpoint = (("name", "/api/items"), ("quantile", "0.95"), ("request_type", "GET"))
    assert samples[("reliability_latency_seconds", endpoint)] == pytest.approx(
        live.state()["endpoints"][0]["latency_ms"] / 1000)
    items = (("name", "/api/items"), ("request_type", "GET"))
    assert samples[("reliability_latency_seconds_count", items)] == live.state()["endpoints"][0]["run_count"] > 0
    assert samples[("reliability_latency_seconds_sum", items)] > 0
    assert {k[1][1][1] for k in samples if k[0] == "reliability_latency_seconds" and k[1][0][1] == "/api/items"} \
        == {"0.5", "0.9", "0.95", "0.99"}
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["reliability_latency_seconds"] == "summary"  # not a gauge with a quantile label
    assert samples[("reliability_rolling_error_ratio", (("name", "/api/items"), ("request_type", "GET")))] == \
        pytest.approx(0.1)
    assert samples[("reliability_rolling_requests", (("name", "Aggregated"), ("request_type", "")))] == 1000
    assert samples[("reliability_sla_passed", (("tier", "gold"),))] == 0
    assert {k[1][0][1]: v for k, v in samples.items() if k[0] == "reliability_sla_tier_met"} == {
        "bronze": 0, "silver": 0, "gold": 0, "platinum": 0}
    assert samples[("reliability_sla_criterion_passed", (("criterion", "error_ratio"), ("scope", "total")))] == 0
    assert samples[("reliability_uptime_ratio", ())] == 0  # every second of the window is 10 % errors: down
    assert samples[("reliability_error_budget_remaining_ratio", ())] == pytest.approx(1 - 100 / 15)
    assert samples[("reliability_error_budget_burn_rate", ())] == pytest.approx(20)
    assert samples[("reliability_slo_ratio", ())] == pytest.approx(0.995)
    assert samples[("reliability_alert_severity", ())] == 2
    assert samples[("reliability_fault_active", (("fault", "db-down"), ("type", "tests.fake:fault")))] == 1
    assert samples[("reliability_fault_active", (("fault", "cache-down"), ("type", "tests.fake:fault")))] == 0
    assert samples[("reliability_faults_active", ())] == 1
    assert samples[("reliability_component_health", (("component", "db"),))] == 0
    assert samples[("reliability_component_health", (("component", "api"),))] == 0.5
    assert samples[("reliability_health_score", ())] == 25
    assert samples[("reliability_test_running", ())] == 1
    assert PASSWORD not in text and TOKEN not in text


def test_metrics_before_a_test_and_on_their_own_registry() -> None:
    plugin, _ = plugin_at(T0 + 30.2)
    plugin.live = None
    plugin.started_at = None
    registry = metrics_registry(LiveState(plugin, clock=lambda: T0 + 30.2, runner_state=lambda: "ready"))
    samples = _samples(render(registry).decode())
    assert samples[("reliability_test_running", ())] == 0
    assert samples[("reliability_alert_severity", ())] == 0
    assert not any(name == "reliability_sla_passed" for name, _labels in samples)
    assert REGISTRY.get_sample_value("reliability_test_running") is None  # the global registry is untouched


HOSTILE_NAMES = ("/a\r\nfake_metric 1", "/b\x00nul", "/c\x1b[31mred", "/d\u202etxt.exe", "/e\"q\\", "/f" + "x" * 10_000,
                 "/f" + "x" * 10_000 + "y")


def hostile_metrics() -> str:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    for t in range(30):
        clock.now = T0 + t
        for name in HOSTILE_NAMES:
            store.record("GET", name, 10.0 + t, False, None)
    clock.now = T0 + 30.2
    plugin = SimpleNamespace(store=store, sla=scenario().sla, scenario=scenario(),
                             live=evaluate(store.snapshot(T0 + 20, T0 + 30), scenario().sla), started_at=float(T0),
                             ended_at=None, role="local", extensions=[])
    live = LiveState(plugin, lag_s=1, clock=lambda: T0 + 30.2, runner_state=lambda: "running")
    return render(metrics_registry(live)).decode()


def test_hostile_names_are_neutralized_and_parse() -> None:
    text = hostile_metrics()
    assert not any(ch in text for ch in "\r\x00\x1b\u202e")
    families = list(text_string_to_metric_families(text))  # Python's parser accepts the page
    names = {s.labels["name"] for f in families if f.name == "reliability_latency_seconds" for s in f.samples
             if s.labels.get("name") != "Aggregated"}
    assert len(names) == len(HOSTILE_NAMES)  # two 10 kB names sharing a start stay two series
    assert max(len(n) for n in names) <= MAX_NAME_CHARS and "fake_metric" not in {f.name for f in families}
    assert '/e\\"q\\\\' in text  # quote and backslash escaped per the exposition format


def test_promtool_accepts_the_page(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    done = subprocess.run([promtool, "check", "metrics"], input=hostile_metrics(), capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def test_metrics_tell_an_inconclusive_criterion_from_a_failing_one() -> None:
    now = T0 + 10.2
    samples = _samples(render(metrics_registry(LiveState(straddling_plugin(now), lag_s=1,
                                                         clock=lambda: now))).decode())
    error = (("criterion", "error_ratio"), ("scope", "total"))
    p95 = (("criterion", "p95_ms"), ("scope", "total"))
    assert samples[("reliability_sla_criterion_passed", error)] == 0
    assert samples[("reliability_sla_criterion_inconclusive", error)] == 1
    assert samples[("reliability_sla_criterion_passed", p95)] == 1
    assert samples[("reliability_sla_criterion_inconclusive", p95)] == 0
    assert samples[("reliability_sla_passed", (("tier", "gold"),))] == 0
    assert samples[("reliability_sla_inconclusive", (("tier", "gold"),))] == 1
    # a failure on evidence is a failure: both 0
    failing = render(metrics_registry(LiveState(plugin_at(T0 + 30.2)[0], lag_s=1,
                                                clock=lambda: T0 + 30.2))).decode()
    failed = _samples(failing)
    assert failed[("reliability_sla_criterion_inconclusive", error)] == 0
    assert failed[("reliability_sla_inconclusive", (("tier", "gold"),))] == 0
