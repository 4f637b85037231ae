"""The web UI extension in a real Locust web UI process (no browser): tabs, options in the start
form, the state and ``/metrics`` routes under ``--web-base-path``, the fault controls and their
guards, and ``--web-login``.

Locust runs as a subprocess (``locust -f ... --web-host 127.0.0.1 --web-port P``) against the
pattern server, and the test talks to it over HTTP the way the React app does: form-encoded
``POST /swarm``, ``GET /stats/requests``. :class:`WebLocust` lives in ``tests/support/weblocust.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import Served
from tests.support.schemas import assert_valid_record
from tests.support.waits import wait_until
from tests.support.weblocust import WebLocust, write_scenario

PASSWORD = "pw-webui-5d2c"

pytestmark = pytest.mark.slow


def _metrics(locust: WebLocust) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = locust.get("/metrics").decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_tabs_form_options_state_metrics_and_fault_controls(pattern: Served, tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, pattern.url)
    env = {"WEB_TEST_PASSWORD": PASSWORD}
    with WebLocust(tmp_path, "--web-base-path", "/lt", "--scenario", str(scenario), "--allow-unsafe-faults",
                   "-H", pattern.url, env=env) as locust:
        index = locust.get("/").decode()
        args = json.loads(re.search(r"window\.templateArgs = (\{.*?\})\s*</script>", index, re.S)
                          .group(1))  # type: ignore[union-attr]
        assert [t["title"] for t in args["extended_tabs"]] == ["SLA", "Faults", "Health"]
        assert {"sla_tier", "sla_percentile", "sla_window", "sla_abort"} <= set(args["extra_options"])
        assert not ({"scenario", "run_record", "sla_status_interval", "web_origin", "allow_unsafe_faults"}
                    & set(args["extra_options"]))
        assert any(f["href"] == "./reliability/" for f in args["extended_csv_files"])
        assert PASSWORD not in index

        locust.swarm(user_count="5", spawn_rate="5", host=pattern.url, sla_tier="silver", sla_window="5s")

        def sla_rows() -> list[dict[str, str]] | None:
            rows = locust.tab("reliability-sla")
            return rows if rows[0]["item"].startswith("verdict") and rows[0]["status"] == "PASS" else None

        rows = wait_until(sla_rows, 20, interval_s=0.2, what="a passing SLA row", detail=locust.tail)
        assert rows[0]["item"] == "verdict for silver (p95, last 5 s)"  # the form's tier and window
        assert rows[-1]["value"] == "/lt/reliability/"
        faults = locust.tab("reliability-faults")
        assert [(f["item"], f["state"]) for f in faults] == [("errors", "pending"), ("blip", "pending")]

        state = locust.get_json("/reliability/state.json")
        assert state["sla"]["tier"] == "silver" and state["faults"]["can_inject"]
        assert state["links"]["metrics"] == "/lt/metrics"
        since = state["series"]["rows"][-1][0]
        newer = locust.get_json(f"/reliability/state.json?since={since}")
        assert [r[0] for r in newer["series"]["rows"]][0] == since

        status, headers, page = locust.request("GET", "/reliability/")
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
        assert b'src="/lt/reliability/live.js"' in page
        status, headers, script = locust.request("GET", "/reliability/live.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"textContent" in script
        assert locust.request("GET", "/reliability/other.js")[0] == 404

        metrics = _metrics(locust)
        assert metrics[("reliability_sla_passed", (("tier", "silver"),))] == 1
        assert metrics[("reliability_fault_active", (("fault", "errors"), ("type", "webhook")))] == 0
        assert metrics[("reliability_test_running", ())] == 1

        # the fault controls: same-origin, with the header, a configured name, one at a time
        assert locust.control("inject", {"name": "errors"}, {"X-Reliability": "0"})[0] == 403
        assert locust.control("inject", {"name": "errors"}, {"Origin": "http://evil.example"})[0] == 403
        assert locust.control("inject", {"name": "errors"}, {"Sec-Fetch-Site": "cross-site"})[0] == 403
        status, answer = locust.control("inject", {"name": "nope"})
        assert status == 409 and "unknown fault 'nope'" in answer["error"]
        assert locust.control("inject", {"name": "blip"})[0] == 202  # held its 2 s, then reverted by the schedule
        wait_until(lambda: locust.tab("reliability-faults")[1]["state"] == "reverted", 10, interval_s=0.2,
                   what="the blip's revert", detail=locust.tail)
        assert locust.control("inject", {"name": "errors"},
                              {"Origin": f"http://127.0.0.1:{locust.port}"}) == (202, {"ok": True,
                                                                                     "accepted": "errors"})
        status, answer = locust.control("inject", {"name": "errors"})
        assert status == 409 and "not pending" in answer["error"]

        def active() -> bool:
            return bool(locust.get_json("/reliability/state.json")["faults"]["active"])

        wait_until(active, 10, interval_s=0.2, what="the fault to be active", detail=locust.tail)
        failing = wait_until(lambda: _metrics(locust)[("reliability_rolling_error_ratio",
                                                       (("name", "/item"), ("request_type", "GET")))] > 0.5,
                             15, interval_s=0.2, what="errors in the rolling window", detail=locust.tail)
        assert failing
        assert locust.tab("reliability-faults")[0]["state"] == "active"
        assert locust.control("revert")[0] == 202
        wait_until(lambda: locust.tab("reliability-faults")[0]["state"] == "reverted", 10, interval_s=0.2,
                   what="the revert", detail=locust.tail)
        assert _metrics(locust)[("reliability_fault_active", (("fault", "errors"), ("type", "webhook")))] == 0

        for path in ("/", "/reliability/", "/reliability/state.json", "/metrics", "/stats/requests"):
            assert PASSWORD.encode() not in locust.get(path), path
        assert locust.request("POST", "/stop")[0] == 200
        code = locust.stop()
    record = assert_valid_record(locust.record)
    errors, blip = record["faults"]
    assert errors["on_demand"] is True and errors["reverted_because"] == "reverted from the web UI"
    assert blip["on_demand"] is True and blip["reverted_because"] == "its hold time is over"
    assert not any(reason.startswith("fault blip was reverted early") for reason in record["sla"]["inconclusive"])
    assert code in (3, 4), locust.output()[-3000:]
    assert PASSWORD not in locust.output()


def test_web_login_guards_the_page_state_and_controls_but_not_metrics(pattern: Served, tmp_path: Path) -> None:
    with WebLocust(tmp_path, "--web-login", "-H", pattern.url, env={"WEB_LOGIN_STUB": "1"}) as locust:
        for method, path in (("GET", "/reliability/"), ("GET", "/reliability/state.json"),
                             ("GET", "/reliability/live.js"), ("POST", "/reliability/faults/inject"),
                             ("POST", "/reliability/faults/revert")):
            status, headers, _body = locust.request(method, path, b"{}" if method == "POST" else None,
                                                    {"X-Reliability": "1", "Content-Type": "application/json"})
            assert status in (302, 401), (path, status)
            if status == 302:
                assert "/login" in headers["Location"]
        status, _headers, body = locust.request("GET", "/metrics")
        assert status == 200 and b"reliability_test_running 0.0" in body
