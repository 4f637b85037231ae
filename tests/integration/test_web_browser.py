"""The Locust web UI with the plugin, driven in headless Chromium (Debian's, through Playwright).

One run against the pattern server, with a webhook receiver started by the test:

1. start the test from Locust's form (our tier and window in its custom parameters);
2. the SLA tab shows the rolling verdict, and its numbers move;
3. the test turns on 2 % errors: the tab shows error_ratio FAIL and a *warning* breach arrives;
4. from the Download Data tab's link to the charts page, "Inject fault now" (100 % errors): the
   alert *escalates* to page, the charts shade the fault;
5. "Revert all faults": the receiver gets the *recovery*, in that order, in JSON and Slack format;
6. no secret passed by environment variable appears in any page source, the state JSON or
   ``/metrics``, which parses with prometheus-client's parser; the record has the alerts.

Screenshots go to the test's tmp dir, or to ``$REPORT_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import Served
from tests.support.schemas import assert_valid_record
from tests.support.waits import wait_until
from tests.support.weblocust import Hooks, WebLocust, hook_events, pattern_set, write_scenario

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run "
                                                "installs it)"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "pw-browser-93ab71"
TOKEN = "tok-browser-0c55e8"
STEP_MS = 25_000


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REPORT_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.timeout(180)
def test_browser_run_from_form_tabs_fault_buttons_alerts_and_no_secrets(pattern: Served, hooks: str,
                                                                        tmp_path: Path) -> None:
    alerts = f"""\
health:
  interval_s: 1s
  timeout_s: 500ms
  components:
    api: {{probe: {{type: http, url: "{pattern.url}/health"}}}}
alerts:
  run_length_s: 15s
  min_window_s: 1s
  clear_s: 1s
  webhooks:
    - "{hooks}/json?token=${{WEB_TEST_TOKEN}}"
    - {{url: "{hooks}/slack?token=${{WEB_TEST_TOKEN}}", format: slack, min_severity: page}}
"""
    scenario = write_scenario(tmp_path, pattern.url, alerts)
    env = {"WEB_TEST_PASSWORD": PASSWORD, "WEB_TEST_TOKEN": TOKEN}
    expect = sync_api.expect
    with WebLocust(tmp_path, "--scenario", str(scenario), "--allow-unsafe-faults", "-H", pattern.url,
                   env=env) as locust, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))

            # 1. start from the form
            page.goto(locust.url + "/")
            # 15 users (~270 req/s): a 5 s window then holds enough evidence for gold's 0.5 % error limit
            page.get_by_label("Number of users").fill("15")
            page.get_by_label("Ramp up").fill("15")
            page.get_by_role("button", name="Custom parameters").click()
            page.locator("input[name=slaTier]").fill("gold")
            page.locator("input[name=slaWindow]").fill("5s")
            page.get_by_role("button", name="Start").click()

            # 2. the SLA tab updates
            page.get_by_role("tab", name="SLA").click()
            verdict = page.get_by_role("row").filter(has_text="verdict for gold (p95, last 5 s)")
            expect(verdict).to_contain_text("PASS", timeout=STEP_MS)
            first = verdict.inner_text()
            expect(verdict).not_to_have_text(first, timeout=STEP_MS)  # the rolling numbers move
            assert re.search(r"\d+ requests, 0 failed", verdict.inner_text())
            page.screenshot(path=_shots(tmp_path) / "web-sla-tab.png", full_page=True)

            # 3. 2 % errors: the tab fails the error criterion and a warning goes out
            pattern_set(pattern, fail_every=50)
            errors = page.get_by_role("row").filter(has_text=re.compile(r"^error_ratio"))
            expect(errors).to_contain_text("FAIL", timeout=STEP_MS)
            wait_until(lambda: hook_events("/json"), 20, interval_s=0.2, what="the warning", detail=locust.tail)
            assert hook_events("/json") == [("breach", "warning")]
            assert hook_events("/slack") == []  # page-only receiver

            # 4. the charts page, linked from the Download Data tab; inject from its button
            page.get_by_role("tab", name="Download Data").click()
            page.get_by_role("link", name=re.compile("Live SLA charts")).click()
            page.wait_for_url(re.compile(r"/reliability/$"))
            expect(page.locator("#fault-select")).to_have_value("errors", timeout=STEP_MS)
            page.get_by_role("button", name="Inject fault now").click()
            expect(page.locator("#control-message")).to_have_text("accepted: errors", timeout=STEP_MS)
            expect(page.locator("#fault-table tbody")).to_contain_text("active", timeout=STEP_MS)
            expect(page.locator("#card-alert")).to_have_text("PAGE", timeout=STEP_MS)
            # the down-seconds budget card reads the same windows as uptime (errors burn the other one)
            expect(page.locator("#card-uptime-detail")).to_contain_text(re.compile(r"\d+ of [1-9]\d* stalled or slow"),
                                                                         timeout=STEP_MS)
            wait_until(lambda: len(hook_events("/json")) >= 2, 20, interval_s=0.2, what="the escalation",
                       detail=locust.tail)
            expect(page.locator("svg rect.band")).not_to_have_count(0, timeout=STEP_MS)
            assert page.locator("figure[data-chart=latency] path.series").count() == 1
            page.screenshot(path=_shots(tmp_path) / "web-live-page.png", full_page=True)

            # 5. revert from the button: recovery, in order, in both formats
            page.get_by_role("button", name="Revert all faults").click()
            expect(page.locator("#fault-table tbody")).to_contain_text("reverted", timeout=STEP_MS)
            wait_until(lambda: len(hook_events("/json")) >= 3 and len(hook_events("/slack")) >= 2, 40, interval_s=0.2,
                       what="the recovery", detail=locust.tail)
            assert hook_events("/json") == [("breach", "warning"), ("escalation", "page"), ("recovery", "page")]
            slack = hook_events("/slack")
            assert [label for label, _ in slack] == ["PAGE", "RESOLVED"]
            assert slack[0][1] == "[PAGE] SLA breach escalated: web ui test (gold)"
            assert all(token == TOKEN for _p, token, _b in Hooks.received)  # sent to the real URL
            expect(page.locator("#alert-table tbody tr")).to_have_count(3, timeout=STEP_MS)
            assert problems == []

            # 6. no secret anywhere a browser or a scraper can read
            sources = [page.content()]
            page.goto(locust.url + "/")
            sources.append(page.content())
            for path in ("/", "/reliability/", "/reliability/state.json", "/metrics", "/stats/requests"):
                sources.append(locust.get(path).decode())
            for text in sources:
                assert PASSWORD not in text and TOKEN not in text
            families = {f.name: f for f in text_string_to_metric_families(locust.get("/metrics").decode())}
            assert families["reliability_fault_active"].samples[0].value == 0
            assert families["reliability_component_health"].samples[0].labels == {"component": "api"}
            assert families["reliability_latency_seconds"].samples
            page.get_by_role("button", name="Stop").click()
            wait_until(lambda: locust.get_json("/reliability/state.json")["runner_state"] == "stopped", 20,
                       interval_s=0.2, what="the stop", detail=locust.tail)
        finally:
            browser.close()
        locust.stop()
    output = locust.output()
    assert PASSWORD not in output and TOKEN not in output
    record = assert_valid_record(locust.record)
    events = record["alerts"]["events"]
    assert [(e["kind"], e["severity"]) for e in events] == [("breach", "warning"), ("escalation", "page"),
                                                          ("recovery", "page")]
    assert all(d["status"] == 204 for e in events for d in e["deliveries"])
    assert [len(e["deliveries"]) for e in events] == [1, 2, 2]
    assert record["alerts"]["webhooks"][0]["target"].endswith("/***")
    assert TOKEN not in json.dumps(record) and PASSWORD not in json.dumps(record)
    assert record["health"]["rounds"] > 5
