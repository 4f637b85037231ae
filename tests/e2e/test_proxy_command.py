"""`reliability proxy` serves the Toxiproxy API and proxies TCP until SIGTERM."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from tests.support.processes import serve
from tests.support.servers import RedisServer, free_port

pytestmark = pytest.mark.slow


def _api(url: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_proxy_command_proxies_redis(redis_server: RedisServer) -> None:
    listen = free_port()
    with serve(["-m", "reliability.cli", "proxy", "--port", "0"]) as proxy:
        assert _api(proxy.url, "GET", "/version")
        _api(proxy.url, "POST", "/proxies", {"name": "redis", "listen": f"127.0.0.1:{listen}",
                                              "upstream": f"127.0.0.1:{redis_server.port}"})
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(64) == b"+PONG\r\n"
