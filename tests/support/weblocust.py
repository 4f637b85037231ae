"""Locust's web UI in a subprocess, the pattern server it loads, and an alert receiver.

:class:`WebLocust` runs ``locust -f ... --web-host 127.0.0.1 --web-port P`` against the pattern
server, and a test talks to it over HTTP the way the React app does: form-encoded ``POST /swarm``,
``GET /stats/requests``. :class:`Hooks` records the alert webhooks a run posts.

Example::

    with serve_pattern() as pattern, WebLocust(tmp_path, "-H", pattern.url) as locust:
        locust.swarm(user_count="2", spawn_rate="2", host=pattern.url)
        wait_until(lambda: locust.get_json("/stats/requests")["total_rps"] > 0, 20, detail=locust.tail)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support.processes import ROOT, Served, serve
from tests.support.servers import free_port
from tests.support.waits import wait_until

WEB_LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/web_user.py")
WEB_START_TIMEOUT_S = 30.0


class WebLocust:
    """``locust`` with the web UI in a subprocess, its output in ``log``; stopped with SIGTERM."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.record = tmp_path / "run.json"
        self.log = tmp_path / "locust.log"
        self.args = ["-f", WEB_LOCUSTFILE, "--web-host", "127.0.0.1", "--web-port", str(self.port),
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
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"locust exited {proc.returncode}: {self.output()[-3000:]}")
            try:
                self.request("GET", "/", timeout_s=1.0)  # any answer (a login redirect too): it is up
                return True
            except OSError:
                return False

        wait_until(answers, WEB_START_TIMEOUT_S, interval_s=0.1, what="the web UI to answer", detail=self.tail,
                   error=RuntimeError)
        return self

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

    def tail(self) -> str:
        """The end of the output, for a failure message."""
        return self.output()[-3000:]

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


class Hooks(BaseHTTPRequestHandler):
    """Records every alert POST in arrival order: (path without query, token, body).

    The ``hooks`` fixture serves it on a free port and empties ``received`` first.
    """

    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path, _, query = self.path.partition("?")
        type(self).received.append((path, query.removeprefix("token="), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def hook_events(path: str) -> list[tuple[str, str]]:
    """The alerts posted to ``path`` so far: ``(kind, severity)`` for ``/json``, the Slack text's
    tag and first line otherwise."""
    out = []
    for p, _token, body in Hooks.received:
        if p != path:
            continue
        if path == "/json":
            out.append((body["kind"], body["severity"]))
        else:
            out.append((body["text"].split("]", 1)[0].lstrip("["), body["text"].split("\n", 1)[0]))
    return out
