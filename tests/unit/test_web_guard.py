"""The web UI guard's rules on a Flask app set up the way Locust sets up its own (``CORS(app)``),
driven with Flask's test client: Host names, origins, the start form's fields, CORS, cookies and
the warning for a non-loopback bind. The real Locust web UI is in
tests/integration/test_web_guard.py."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, session
from flask_cors import CORS

from reliability.origins import is_loopback, own_hostnames, parse_origin
from reliability.web.guard import WebGuard, parse_extra_origins

PORT = 8089


def make_app(host: str = "127.0.0.1", extra: str | None = None, login: bool = False,
             names: set[str] | None = None) -> tuple[Flask, list[str]]:
    app = Flask(__name__)
    CORS(app)  # what Locust's WebUI does
    app.secret_key = "test-only"
    calls: list[str] = []

    @app.route("/swarm", methods=["POST"])
    def swarm() -> dict[str, Any]:
        calls.append("swarm")
        session["started"] = True
        return {"success": True}

    @app.route("/stop", methods=["POST"])
    def stop() -> dict[str, Any]:
        calls.append("stop")
        return {"success": True}

    @app.route("/reliability/state.json")
    def state() -> dict[str, Any]:
        return {"ok": True}

    web_ui = SimpleNamespace(app=app, host=host, port=PORT, web_login=login, tls_cert=None, tls_key=None)
    WebGuard(web_ui, extra_origins=parse_extra_origins(extra), form_fields=lambda: ["sla_tier"],
             names=lambda: names or {"box.example.internal", "10.1.2.3"}).install()
    return app, calls


OWN = f"http://127.0.0.1:{PORT}"
FORM = {"user_count": "1", "spawn_rate": "1", "host": "http://127.0.0.1:9", "sla_tier": "gold"}


def post(app: Flask, path: str = "/swarm", data: dict[str, str] | None = None, host: str = f"127.0.0.1:{PORT}",
         **headers: str) -> Any:
    return app.test_client().post(path, data=data if data is not None else FORM,
                                  headers={"Host": host, **{k.replace("_", "-"): v for k, v in headers.items()}})


def test_same_origin_and_non_browser_clients_start_a_test() -> None:
    app, calls = make_app()
    assert post(app, Origin=OWN, Sec_Fetch_Site="same-origin").status_code == 200
    assert post(app, Referer=f"{OWN}/").status_code == 200
    assert post(app).status_code == 200  # curl: no Origin, no Sec-Fetch-Site
    assert post(app, host=f"localhost:{PORT}", Origin=f"http://localhost:{PORT}").status_code == 200
    assert calls == ["swarm"] * 4


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Referer": "http://evil.example/page"},
    {"Origin": "null"},
    {"Origin": f"http://127.0.0.1:{PORT + 1}"},  # another local app's page
    {"Origin": f"https://127.0.0.1:{PORT}"},
    {"Origin": OWN, "Sec-Fetch-Site": "cross-site"},
])
def test_cross_origin_state_changes_are_refused(headers: dict[str, str]) -> None:
    app, calls = make_app()
    for path in ("/swarm", "/stop"):
        answer = app.test_client().post(path, data=FORM, headers={"Host": f"127.0.0.1:{PORT}", **headers})
        assert answer.status_code == 403, (path, headers)
        assert answer.json is not None and answer.json["success"] is False
        assert answer.json["message"].startswith("refused: ")
    assert calls == []


def test_a_rebinding_host_is_refused_even_with_a_matching_origin() -> None:
    app, calls = make_app()
    evil = f"evil.example:{PORT}"
    answer = post(app, host=evil, Origin=f"http://{evil}", Sec_Fetch_Site="same-origin")
    assert answer.status_code == 403 and "unknown Host 'evil.example:8089'" in answer.json["message"]
    got = app.test_client().get("/reliability/state.json", headers={"Host": evil})
    assert got.status_code == 403 and got.json == {"ok": False, "error": got.json["error"]}
    assert calls == []


def test_the_start_form_cannot_choose_files() -> None:
    app, calls = make_app()
    for field, value in (("scenario", "/tmp/x.yaml"), ("run_record", "/etc/important.conf"),
                         ("html_file", "/tmp/r.html"), ("json_file", "/tmp/x")):
        answer = post(app, data={**FORM, field: value}, Origin=OWN)
        assert answer.status_code == 400, field
        assert f"cannot set {field}:" in answer.json["message"]
    assert calls == []


def test_cors_only_for_the_uis_own_origins() -> None:
    app, _calls = make_app(extra="https://dash.example.com")
    client = app.test_client()
    evil = client.get("/reliability/state.json", headers={"Host": f"127.0.0.1:{PORT}", "Origin": "http://evil.example"})
    assert evil.status_code == 200 and "Access-Control-Allow-Origin" not in evil.headers
    preflight = client.options("/swarm", headers={"Host": f"127.0.0.1:{PORT}", "Origin": "http://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert not [h for h in preflight.headers.keys() if h.startswith("Access-Control")]  # noqa: SIM118
    own = client.get("/reliability/state.json", headers={"Host": f"127.0.0.1:{PORT}", "Origin": OWN})
    assert own.headers["Access-Control-Allow-Origin"] == OWN
    dash = client.get("/reliability/state.json", headers={"Host": "dash.example.com", "Origin":
                                                          "https://dash.example.com"})
    assert dash.status_code == 200 and dash.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert post(app, host="dash.example.com", Origin="https://dash.example.com").status_code == 200


def test_session_cookie_is_samesite_strict() -> None:
    app, _calls = make_app()
    answer = post(app, Origin=OWN)
    cookie = answer.headers["Set-Cookie"]
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie


def test_hostnames_per_bind() -> None:
    names = {"box", "10.1.2.3"}
    assert own_hostnames("127.0.0.1", names=lambda: names) == {"localhost", "127.0.0.1", "::1"}
    assert own_hostnames("", names=lambda: names) == {"localhost", "127.0.0.1", "::1", "box", "10.1.2.3"}
    assert own_hostnames("0.0.0.0", names=lambda: names) == own_hostnames("*", names=lambda: names)
    assert own_hostnames("10.1.2.3", ["LT.example.com."], names=lambda: names) == {"10.1.2.3", "lt.example.com"}
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.9.9.9", "", "0.0.0.0",
                                     "10.0.0.1", "example.com")] == [True] * 5 + [False] * 4
    assert parse_origin("http://LocalHost:80/x") == ("http", "localhost", 80) == parse_origin("http://localhost")
    with pytest.raises(ValueError, match=r"^--web-origin: 'ftp://x' is not an origin"):
        parse_extra_origins(["https://a.example", "ftp://x"])


def test_wildcard_bind_answers_the_machines_names_and_warns_without_login(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "reliability.web"):
        app, calls = make_app(host="", names={"box.example.internal", "10.1.2.3"})
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("the web UI listens on all interfaces (not loopback) "
                                                         "without --web-login")
    assert post(app, host=f"10.1.2.3:{PORT}", Origin=f"http://10.1.2.3:{PORT}").status_code == 200
    assert post(app, host=f"box.example.internal:{PORT}").status_code == 200
    assert post(app, host=f"other.example:{PORT}").status_code == 403
    assert calls == ["swarm", "swarm"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "reliability.web"):
        make_app(host="0.0.0.0", login=True)
        make_app(host="127.0.0.1")
    assert caplog.records == []
