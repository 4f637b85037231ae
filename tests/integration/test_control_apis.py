"""The reference target's admin API and the chaos proxy's API refuse what a hostile web page
could send: a cross-site ``text/plain`` POST (no preflight), any request from another origin, a
DNS-rebinding ``Host``; the proxy refuses non-loopback listen and upstream addresses without
``--allow-remote`` and answers a deeply nested JSON body with a 400; neither starts on a
non-loopback address unprotected. Real processes on loopback: the target via tests/servers.py,
the proxy as ``python -m reliability.chaosproxy``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, run
from tests.support.servers import TargetServer
from tests.support.waits import wait_until

EVIL = "http://evil.example"
NESTED = b"[" * 100_000 + b"]" * 100_000


def send(url: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    return status, json.loads(text) if text else None


@pytest.fixture
def target() -> Iterator[TargetServer]:
    server = TargetServer(extra_args=("--allowed-hosts", "target,lt.example.com"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _fault(target: TargetServer) -> Any:
    return send(f"{target.url}/admin/faults")[1]["fault"]


def test_target_admin_api_refuses_cross_site_and_rebinding_requests(target: TargetServer) -> None:
    url = f"{target.url}/admin/faults"
    body = json.dumps({"error_ratio": 1.0, "status": 503}).encode()
    port = target.port
    refused = [
        ({"Content-Type": "text/plain"}, 415),  # a cross-site form/fetch without preflight
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "application/json", "Origin": EVIL}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Content-Type": "application/json", "Referer": f"{EVIL}/x"}, 403),
        ({"Content-Type": "application/json", "Host": f"evil.example:{port}",
          "Origin": f"http://evil.example:{port}", "Sec-Fetch-Site": "same-origin"}, 403),  # DNS rebinding
    ]
    for headers, status in refused:
        code, answer = send(url, "POST", body, headers)
        assert code == status, (headers, code, answer)
        assert _fault(target) is None
    assert send(url, "DELETE", headers={"Origin": EVIL})[0] == 403
    assert send(url, headers={"Host": f"evil.example:{port}"})[0] == 403  # cannot even read it
    assert send(f"{target.url}/health", headers={"Host": f"evil.example:{port}"})[0] == 200  # not admin: any Host

    # the fault driver's way (JSON, no browser headers), the own origin, an allowed host
    assert send(url, "POST", body, {"Content-Type": "application/json; charset=utf-8"})[0] == 200
    assert _fault(target)["error_ratio"] == 1.0
    assert send(url, "DELETE", headers={"Origin": f"http://127.0.0.1:{port}"})[0] == 200
    assert send(url, headers={"Host": f"target:{port}"})[0] == 200
    assert send(url, "DELETE", headers={"Host": "LT.example.com"})[0] == 200
    assert _fault(target) is None
    log = target.logfile.read_text()
    assert "admin API: refused POST /admin/faults: cross-origin request from 'http://evil.example'" in log


def test_target_refuses_a_non_loopback_address_without_an_admin_token() -> None:
    # refused before it binds anything: nothing listens beyond loopback here
    result = run([sys.executable, "-m", "reliability.target", "--host", "0.0.0.0", "--port", "0"],
                 timeout_s=60, env={"RELIABILITY_ADMIN_TOKEN": ""})
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert lines == ["reliability target: target option host: 0.0.0.0 is not a loopback address: set "
                     "RELIABILITY_ADMIN_TOKEN, or anyone on the network can inject faults through the admin API"]


class Proxy:
    """``python -m reliability.chaosproxy`` with its output in a file (to check for tracebacks)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.log = tmp_path / "proxy.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "reliability.chaosproxy", "--port", "0", *args],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

        def started() -> re.Match[str] | None:
            found = re.search(r"listening on (\S+)", self.log.read_text())
            assert found or self.proc.poll() is None, self.log.read_text()
            return found

        self.url = wait_until(started, 20, what="the proxy to start", detail=self.log.read_text).group(1)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        return self.log.read_text()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    started = Proxy(tmp_path)
    try:
        yield started
    finally:
        if started.proc.poll() is None:
            started.stop()


def _create(proxy: Proxy, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return send(f"{proxy.url}/proxies", "POST", json.dumps(body).encode(),
                {"Content-Type": "application/json", **(headers or {})})


def test_proxy_api_refuses_remote_addresses_cross_site_requests_and_deep_json(proxy: Proxy) -> None:
    for body in ({"name": "out", "upstream": "10.20.30.40:5432"}, {"name": "wide", "upstream": "127.0.0.1:9",
                                                                  "listen": "0.0.0.0:0"},
                 {"name": "any", "upstream": "127.0.0.1:9", "listen": ":0"},
                 {"name": "dns", "upstream": "db.example.com:5432"}):
        status, answer = _create(proxy, body)
        assert status == 403 and "is not a loopback address" in answer["error"], (body, answer)
    assert send(f"{proxy.url}/populate", "POST", json.dumps([{"name": "p", "upstream": "10.0.0.1:1"}]).encode(),
                {"Content-Type": "application/json"})[0] == 403
    status, made = _create(proxy, {"name": "local", "upstream": "localhost:9", "listen": "127.0.0.1:0"})
    assert status == 201
    assert send(f"{proxy.url}/proxies/local", "POST", json.dumps({"upstream": "10.0.0.1:9"}).encode(),
                {"Content-Type": "application/json"})[0] == 403

    toxic = json.dumps({"type": "latency", "attributes": {"latency": 1000}}).encode()
    for headers, status in (({"Content-Type": "text/plain"}, 415), ({}, 415),
                            ({"Content-Type": "application/json", "Origin": EVIL}, 403),
                            ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
                            ({"Content-Type": "application/json", "Host": "evil.example:8474"}, 403)):
        code, answer = send(f"{proxy.url}/proxies/local/toxics", "POST", toxic, headers)
        assert code == status, (headers, code, answer)
    assert send(f"{proxy.url}/reset", "POST", headers={"Origin": EVIL})[0] == 403
    assert send(f"{proxy.url}/proxies", headers={"Host": "evil.example:8474"})[0] == 403
    assert send(f"{proxy.url}/proxies/local/toxics")[1] == []

    status, answer = send(f"{proxy.url}/proxies", "POST", NESTED, {"Content-Type": "application/json"})
    assert (status, answer) == (400, {"error": "bad request body: JSON nested too deeply", "status": 400})
    assert send(f"{proxy.url}/version")[0] == 200
    log = proxy.stop()
    assert "Traceback" not in log and "refused POST /proxies/local/toxics: cross-origin request" in log
    assert made["upstream"] == "localhost:9"


def test_proxy_allow_remote_and_the_api_address(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "reliability.chaosproxy", "--host", "0.0.0.0", "--port", "0"], timeout_s=60)
    assert result.returncode == 2
    assert result.stdout.strip().splitlines() == [
        "reliability proxy: --host 0.0.0.0 is not a loopback address and the API has no authentication; pass "
        "--allow-remote to listen there"]
    relay = Proxy(tmp_path, "--allow-remote", "--allowed-host", "chaos")
    try:
        status, answer = _create(relay, {"name": "db", "upstream": "10.20.30.40:5432"})  # listens on loopback
        assert status == 201 and answer["upstream"] == "10.20.30.40:5432"
        assert send(f"{relay.url}/proxies", headers={"Host": "chaos:8474"})[0] == 200
    finally:
        relay.stop()
