"""The web UI extension in a real Locust web UI process (no browser): tabs, options in the start
form, the state and ``/metrics`` routes under ``--web-base-path``, the fault controls and their
guards, and ``--web-login``.

Locust runs as a subprocess (``locust -f ... --web-host 127.0.0.1 --web-port P``) against the
pattern server, and the test talks to it over HTTP the way the React app does: form-encoded
``POST /swarm``, ``GET /stats/requests``. :class:`WebLocust` is shared with the browser test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ROOT, Served, serve
from tests.support.schemas import assert_valid_record
from tests.support.servers import free_port

LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/web_user.py")
START_TIMEOUT_S = 30.0
PASSWORD = "pw-webui-5d2c"

pytestmark = pytest.mark.slow


class WebLocust:
    """``locust`` with the web UI in a subprocess, its output in ``log``; stopped with SIGTERM."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.record = tmp_path / "run.json"
        self.log = tmp_path / "locust.log"
        self.args = ["-f", LOCUSTFILE, "--web-host", "127.0.0.1", "--web-port", str(self.port),
                     "--run-record", str(self.record), *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.base = ""
        if "--web-base-path" in args:
            self.base = args[args.index("--web-base-path") + 1]
        self.url = f"http://127.0.0.1:{self.port}{self.base}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WebLocust:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "locust", *self.args], stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.log.parent, env=self.env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"locust exited {self.proc.returncode}: {self.output()[-3000:]}")
            try:
                self.request("GET", "/", timeout_s=1.0)  # any answer (a login redirect too): it is up
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the web UI did not answer: {self.output()[-3000:]}")

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (Locust quits: the record is written) and the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """Any answer, including 3xx/4xx/5xx (redirects are not followed)."""

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with opener.open(req, timeout=timeout_s) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def get(self, path: str, timeout_s: float = 10.0) -> bytes:
        status, _headers, body = self.request("GET", path, timeout_s=timeout_s)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body[:500]!r}")
        return body

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def swarm(self, **form: str) -> dict[str, Any]:
        body = urllib.parse.urlencode(form).encode()
        status, _h, answer = self.request("POST", "/swarm", body,
                                          {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, answer
        result: dict[str, Any] = json.loads(answer)
        assert result["success"], result
        return result

    def control(self, path: str, data: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        sent = {"Content-Type": "application/json", "X-Reliability": "1", **(headers or {})}
        status, _h, answer = self.request("POST", f"/reliability/faults/{path}", json.dumps(data or {}).encode(),
                                          sent)
        return status, json.loads(answer)

    def tab(self, key: str) -> list[dict[str, str]]:
        stats = self.get_json("/stats/requests")
        rows: list[dict[str, str]] = next(e["data"] for e in stats["extended_stats"] if e["key"] == key)
        return rows


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, log: WebLocust | None = None) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{log.output()[-3000:]}" if log else ""))
        time.sleep(0.2)


def write_scenario(tmp_path: Path, pattern_url: str, extra: str = "") -> Path:
    """A scenario whose fault flips the pattern server to 100 % errors (and back)."""
    path = tmp_path / "scenario.yaml"
    path.write_text(f"""\
name: web ui test
target: {{dsn: "postgresql://app:${{WEB_TEST_PASSWORD}}@127.0.0.1:1/shop"}}
sla: {{rolling_window_s: 5s}}
faults:
  - name: errors
    at_s: 1h
    hold_s: 10m
    fault:
      type: webhook
      inject: {{method: POST, url: "{pattern_url}/pattern", body: {{fail_every: 1}}}}
      revert: {{method: POST, url: "{pattern_url}/pattern", body: {{fail_every: 0}}}}
  - name: blip
    at_s: 2h
    hold_s: 2s
    fault: {{type: webhook, inject: {{method: POST, url: "{pattern_url}/pattern", body: {{delay_ms: 6}}}},
            revert: {{method: POST, url: "{pattern_url}/pattern", body: {{delay_ms: 5}}}}}}
{extra}""")
    return path


def pattern_set(pattern: Served, **change: Any) -> None:
    req = urllib.request.Request(f"{pattern.url}/pattern", data=json.dumps(change).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200


def serve_pattern() -> contextlib.AbstractContextManager[Served]:
    """The pattern server, 5 ms per answer, no errors until told (``pattern_set``)."""
    return serve(["tests/support/pattern_server.py", "--delay-ms", "5"])


@pytest.fixture
def pattern() -> Iterator[Served]:
    with serve_pattern() as served:
        yield served


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

        rows = wait_for(sla_rows, 20, "a passing SLA row", locust)
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
        wait_for(lambda: locust.tab("reliability-faults")[1]["state"] == "reverted", 10, "the blip's revert", locust)
        assert locust.control("inject", {"name": "errors"},
                              {"Origin": f"http://127.0.0.1:{locust.port}"}) == (202, {"ok": True,
                                                                                     "accepted": "errors"})
        status, answer = locust.control("inject", {"name": "errors"})
        assert status == 409 and "not pending" in answer["error"]

        def active() -> bool:
            return bool(locust.get_json("/reliability/state.json")["faults"]["active"])

        wait_for(active, 10, "the fault to be active", locust)
        failing = wait_for(lambda: _metrics(locust)[("reliability_rolling_error_ratio",
                                                     (("name", "/item"), ("request_type", "GET")))] > 0.5,
                           15, "errors in the rolling window", locust)
        assert failing
        assert locust.tab("reliability-faults")[0]["state"] == "active"
        assert locust.control("revert")[0] == 202
        wait_for(lambda: locust.tab("reliability-faults")[0]["state"] == "reverted", 10, "the revert", locust)
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
