"""The web UI guard in a real Locust web UI process (``locust -f ... --web-host 127.0.0.1``):
a cross-site start form with a shell-fault scenario and a run-record path runs nothing and writes
nothing, a DNS-rebinding Host is refused, ``state.json`` is not readable cross-origin, the
session cookie is ``SameSite=Strict``, and a same-origin start still runs and grades the test.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import pytest

from reliability.config import load_scenario
from tests.support.locust_runs import shell_scenario
from tests.support.processes import Served
from tests.support.waits import wait_until
from tests.support.weblocust import WebLocust

EVIL = "http://evil.example"
pytestmark = pytest.mark.slow


def test_cross_site_start_runs_nothing_writes_nothing_and_same_origin_still_works(pattern: Served,
                                                                                  tmp_path: Path) -> None:
    marker = tmp_path / "owned.txt"
    hostile = shell_scenario(tmp_path, marker)
    # the file is valid and would run its shell fault if a run used it
    assert load_scenario(str(hostile)).faults[0].fault.type == "shell"
    important = tmp_path / "important.conf"
    important.write_text("keep me\n")
    with WebLocust(tmp_path, "--allow-unsafe-faults", "-H", pattern.url) as locust:  # even with the opt-in
        own = f"http://127.0.0.1:{locust.port}"
        form = urllib.parse.urlencode({"user_count": "2", "spawn_rate": "2", "host": pattern.url,
                                       "scenario": str(hostile), "run_record": str(important)}).encode()
        plain = {"Content-Type": "application/x-www-form-urlencoded"}
        attempts = [
            ({"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}, 403),
            ({"Sec-Fetch-Site": "cross-site"}, 403),
            ({"Referer": f"{EVIL}/form.html"}, 403),
            ({"Host": f"evil.example:{locust.port}", "Origin": f"http://evil.example:{locust.port}",
              "Sec-Fetch-Site": "same-origin"}, 403),  # DNS rebinding: the browser thinks it is same-origin
            ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, 400),  # our own page may not pick files either
            ({}, 400),  # nor may a script
        ]
        for headers, status in attempts:
            code, _h, body = locust.request("POST", "/swarm", form, {**plain, **headers})
            assert code == status, (headers, code, body)
            assert json.loads(body)["success"] is False
        code, _h, body = locust.request("POST", "/swarm", form, plain)
        assert "cannot set run_record, scenario:" in json.loads(body)["message"]
        for field, value in (("html_file", str(important)), ("allow_unsafe_faults", "true")):
            other = urllib.parse.urlencode({"user_count": "1", "spawn_rate": "1", field: value}).encode()
            assert locust.request("POST", "/swarm", other, plain)[0] == 400, field
        for path in ("/stop", "/stats/reset", "/reliability/faults/revert"):
            code, _h, _b = locust.request("POST", path, b"{}", {"Origin": EVIL, "X-Reliability": "1",
                                                                "Content-Type": "application/json"})
            assert code == 403, path

        # a rebinding page cannot read anything either, and no other origin gets CORS
        for path in ("/", "/reliability/state.json", "/stats/requests", "/metrics"):
            assert locust.request("GET", path, headers={"Host": f"evil.example:{locust.port}"})[0] == 403, path
        code, headers, _b = locust.request("GET", "/reliability/state.json", headers={"Origin": EVIL})
        assert code == 200 and "Access-Control-Allow-Origin" not in headers
        code, headers, _b = locust.request("OPTIONS", "/swarm", headers={"Origin": EVIL,
                                                                          "Access-Control-Request-Method": "POST"})
        assert not [h for h in headers if h.lower().startswith("access-control")]
        assert locust.request("GET", "/reliability/state.json", headers={"Origin": own})[1][
            "Access-Control-Allow-Origin"] == own

        time.sleep(2)  # a fault at_s 0 would have run by now
        assert locust.get_json("/stats/requests")["state"] == "ready"
        assert not marker.exists()

        # the UI's own start: runs and grades, the record goes where the command line said
        locust.swarm(user_count="2", spawn_rate="2", host=pattern.url, sla_tier="bronze")
        wait_until(lambda: locust.get_json("/stats/requests")["total_rps"] > 0, 20, interval_s=0.2, what="requests",
                   detail=locust.tail)
        code, _h, body = locust.request("POST", "/stop", b"", {"Origin": own, "Sec-Fetch-Site": "same-origin"})
        assert code == 200, body
        exit_code = locust.stop()
    assert exit_code in (0, 3, 4), locust.output()[-3000:]
    assert important.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("important")) == ["important.conf"]
    assert not marker.exists()
    record = json.loads(locust.record.read_text())
    assert record["run"]["scenario"] is None and record["sla"]["tier"] == "bronze"
    output = locust.output()
    assert "web UI: refused POST /swarm: cross-origin request from 'http://evil.example'" in output
    assert "not loopback" not in output  # bound to 127.0.0.1: no warning


def test_web_login_session_cookie_is_samesite_strict(pattern: Served, tmp_path: Path) -> None:
    with WebLocust(tmp_path, "--web-login", "-H", pattern.url, env={"WEB_LOGIN_STUB": "1"}) as locust:
        status, headers, _body = locust.request("GET", "/")
        assert status == 302
        cookie = headers["Set-Cookie"]
        assert "SameSite=Strict" in cookie and "HttpOnly" in cookie, cookie
        assert locust.request("POST", "/swarm", b"user_count=1&spawn_rate=1",
                              {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"})[0] == 403


def test_web_origin_lets_a_named_origin_in_and_a_bad_one_is_one_line(pattern: Served, tmp_path: Path) -> None:
    with WebLocust(tmp_path, "--web-origin", "http://lt.example.com:8443", "-H", pattern.url) as locust:
        named = {"Host": "lt.example.com:8443", "Origin": "http://lt.example.com:8443"}
        code, headers, _b = locust.request("GET", "/reliability/state.json", headers=named)
        assert code == 200 and headers["Access-Control-Allow-Origin"] == "http://lt.example.com:8443"
        assert locust.request("POST", "/stats/reset", b"", named)[0] == 200
        assert locust.request("GET", "/", headers={"Host": "other.example.com"})[0] == 403
    (tmp_path / "bad").mkdir()
    bad = WebLocust(tmp_path / "bad", "--web-origin", "ftp://x", "-H", pattern.url)
    try:
        bad.__enter__()
    except RuntimeError as exc:
        assert "locust exited 4" in str(exc)
    else:
        bad.stop()
        raise AssertionError("a bad --web-origin started the web UI")
    lines = [line for line in bad.output().splitlines() if "--web-origin" in line]
    assert len(lines) == 1 and "'ftp://x' is not an origin" in lines[0]
    assert "Traceback" not in bad.output()
