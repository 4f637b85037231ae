"""Helpers for the reference-target tests: the target as a subprocess, and small sync clients.

The target always runs as its own process (``python -m reliability.target --port 0``), never in
the pytest process: other test modules import locust, which monkey-patches this interpreter with
gevent. The clients here are stdlib ``http.client`` and ``websocket-client``, both fine either way.
This module holds no tests.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websocket

READY_PREFIX = "reliability-target listening on "
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class TargetProcess:
    """``python -m reliability.target --port 0 ARGS`` with its stderr in a temporary log file.

    Example::

        with TargetProcess("--rate-limit-rps", "5") as target:
            Http(target.port).get("/health")
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.args = ["--port", "0", *args]
        # A clean environment: a RELIABILITY_* variable of the developer's shell must not leak in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABILITY_")}
        self.env.update(env or {})
        self.log_path = Path(tempfile.mkstemp(prefix="reliability-target-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""
        self.port = 0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> TargetProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reliability.target", *self.args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop(check=False)
                raise AssertionError(f"target did not start (rc={self.proc.returncode}); log:\n{self.log}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                line += chunk
                if not chunk:
                    continue
        self.ready_line = line.decode().strip()
        assert self.ready_line.startswith(READY_PREFIX), self.ready_line
        self.port = int(self.ready_line.rsplit(":", 1)[1])
        return self

    def stop(self, check: bool = True) -> int | None:
        """SIGTERM and wait; with ``check``, require exit 0 and no traceback in the log."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()
        log = self.log
        self.log_path.unlink(missing_ok=True)
        if check:
            assert proc.returncode == 0, f"target exited {proc.returncode}; log:\n{log}"
            assert "Traceback" not in log, log
        return proc.returncode

    def __enter__(self) -> TargetProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop(check=_exc[0] is None)


@dataclass(frozen=True)
class Reply:
    """One HTTP response, read in full."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body)


class Http:
    """A keep-alive HTTP/1.1 client for one target, with an optional bearer token.

    Example::

        client = Http(port)
        client.login()
        client.get("/api/items/1").json()
    """

    def __init__(self, port: int, timeout_s: float = 5.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.token: str | None = None
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def close(self) -> None:
        self._conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        raw: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if auth and self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        started = time.perf_counter()
        try:
            self._conn.request(method, path, body=payload, headers=sent)
            response = self._conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server may close an idle keep-alive connection; one fresh try is honest.
            self._conn.close()
            self._conn.request(method, path, body=payload, headers=sent)
            response = self._conn.getresponse()
        data = response.read()
        return Reply(response.status, response.headers, data, time.perf_counter() - started)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def login(self, username: str = "demo", password: str = "demo") -> str:
        reply = self.request("POST", "/auth/login", {"username": username, "password": password})
        assert reply.status == 200, reply
        token = reply.json()["token"]
        assert isinstance(token, str)
        self.token = token
        return token


def logged_in(target: TargetProcess) -> Iterator[Http]:
    """A logged-in client for a fixture to ``yield from``; removes any injected fault afterwards."""
    http = Http(target.port)
    http.login()
    try:
        yield http
    finally:
        http.request("DELETE", "/admin/faults")
        http.close()


def ws_connect(port: int, timeout_s: float = 5.0) -> websocket.WebSocket:
    return websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=timeout_s)


def ws_json(conn: websocket.WebSocket) -> Any:
    return json.loads(conn.recv())


def wait_for(check: Any, timeout_s: float, interval_s: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {result!r})")
        time.sleep(interval_s)
