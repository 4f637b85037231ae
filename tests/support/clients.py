"""Small synchronous clients for tests: HTTP/1.1 and WebSocket to the reference target, Redis
clients that make one attempt per command.

``http.client`` and ``websocket-client`` are fine in a process that locust has patched with
gevent, and in one it has not.

Example::

    client = Http(target.port)
    client.login()
    client.get("/api/items/1").json()
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
import websocket
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from tests.support.processes import TargetProcess


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


def faults_now(url: str) -> Any:
    """The fault the reference target at ``url`` has injected now (its admin API)."""
    with urllib.request.urlopen(f"{url}/admin/faults", timeout=5) as response:
        return json.load(response)["fault"]


def redis_client(port: int, timeout_s: float = 5.0) -> redis.Redis:
    """One attempt per command, no hidden retries."""
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                       retry=Retry(NoBackoff(), 0))


class RedisClients:
    """Redis clients made during one test, all closed at its end."""

    def __init__(self) -> None:
        self._made: list[redis.Redis] = []

    def __call__(self, port: int, timeout_s: float = 5.0) -> redis.Redis:
        client = redis_client(port, timeout_s)
        self._made.append(client)
        return client

    def close(self) -> None:
        for client in self._made:
            client.close()
