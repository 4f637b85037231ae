"""The chaos proxy as a subprocess: its Toxiproxy API, each toxic's effect seen by a client,
our ttl extension, HTTP mode, and a clean stop."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest
import redis

from reliability.faults.httpcall import call
from reliability.faults.proxy import ProxyApiError, ToxiproxyClient
from tests.support.clients import RedisClients
from tests.support.processes import Served, chaos_proxy, reference_target
from tests.support.servers import RedisServer
from tests.support.waits import elapsed_ms, seconds_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(proxy_api: Served) -> Iterator[ToxiproxyClient]:
    client = ToxiproxyClient(proxy_api.url)
    yield client
    for name in client.proxies():
        client.delete_proxy(name)


def _port(proxy: dict[str, object]) -> int:
    return int(str(proxy["listen"]).rsplit(":", 1)[1])


@pytest.fixture
def cache(client: ToxiproxyClient, upstream: RedisServer) -> int:
    """A proxy named "cache" in front of Redis; its port."""
    return _port(client.create_proxy("cache", f"127.0.0.1:{upstream.port}"))


def test_api_answers_like_toxiproxy(proxy_api: Served, client: ToxiproxyClient, upstream: RedisServer) -> None:
    assert client.version().startswith("reliability-proxy ")
    created = call("POST", proxy_api.url + "/proxies", {"name": "db", "upstream": f"127.0.0.1:{upstream.port}"})
    assert created.status == 201
    body = created.json()
    assert {k: body[k] for k in ("name", "enabled", "toxics")} == {"name": "db", "enabled": True, "toxics": []}
    assert call("POST", proxy_api.url + "/proxies", {"name": "db", "upstream": "x:1"}).json() == \
        {"error": "proxy already exists", "status": 409}
    assert call("GET", proxy_api.url + "/proxies/nope").status == 404
    assert call("POST", proxy_api.url + "/proxies", {"name": "x"}).json()["error"] == \
        "missing required field: upstream"
    toxic = client.add_toxic("db", "latency", {"latency": 5}, stream="upstream")
    assert toxic == {"name": "latency_upstream", "type": "latency", "stream": "upstream", "toxicity": 1.0,
                     "attributes": {"latency": 5, "jitter": 0}}
    assert client.toxic("db", "latency_upstream") == toxic
    assert client.toxic("db", "missing") is None
    assert client.update_toxic("db", "latency_upstream", attributes={"latency": 9})["attributes"]["latency"] == 9
    assert set(client.proxies()) == {"db"}
    populated = client.populate([{"name": "db", "listen": body["listen"], "upstream": f"127.0.0.1:{upstream.port}"},
                                 {"name": "db2", "upstream": f"127.0.0.1:{upstream.port}"}])
    assert [p["name"] for p in populated] == ["db", "db2"]
    assert populated[0]["toxics"], "an unchanged proxy keeps its toxics on populate"
    assert call("PATCH", proxy_api.url + "/proxies/db2", {"enabled": False}).json()["enabled"] is False
    client.reset()
    assert all(p["enabled"] and not p["toxics"] for p in client.proxies().values())
    client.delete_proxy("db2")
    with pytest.raises(ProxyApiError, match="proxy not found") as caught:
        client.delete_proxy("db2")
    assert caught.value.status == 404
    client.delete_proxy("db2", missing_ok=True)


def test_no_toxics_passes_bytes_unchanged(cache: int, connect: RedisClients) -> None:
    client = connect(cache)
    payload = bytes(range(256)) * 1000
    client.set("blob", payload)
    assert client.get("blob") == payload


def test_latency_and_jitter_are_added_then_removed(client: ToxiproxyClient, cache: int, connect: RedisClients) -> None:
    conn = connect(cache)
    assert max(elapsed_ms(conn.ping) for _ in range(5)) < 50.0
    client.add_toxic("cache", "latency", {"latency": 150, "jitter": 50}, name="lag")
    samples = [elapsed_ms(conn.ping) for _ in range(8)]
    assert all(95.0 <= s < 260.0 for s in samples), samples
    assert max(samples) - min(samples) > 5.0  # jitter
    client.remove_toxic("cache", "lag")
    assert max(elapsed_ms(conn.ping) for _ in range(5)) < 50.0


def test_removing_latency_releases_data_already_held(
    client: ToxiproxyClient, cache: int, connect: RedisClients,
) -> None:
    conn = connect(cache)
    client.add_toxic("cache", "latency", {"latency": 5000}, name="huge")
    sock = socket.create_connection(("127.0.0.1", cache))
    sock.sendall(b"PING\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    client.remove_toxic("cache", "huge")
    sock.settimeout(2.0)
    assert sock.recv(64) == b"+PONG\r\n"
    assert time.monotonic() - started < 1.0
    sock.close()
    assert conn.ping()


def test_bandwidth_limits_throughput(client: ToxiproxyClient, cache: int, connect: RedisClients) -> None:
    conn = connect(cache)
    conn.set("big", b"x" * 200_000)
    client.add_toxic("cache", "bandwidth", {"rate": 200})  # 200 KB/s
    took = elapsed_ms(lambda: conn.get("big"))
    assert 800.0 <= took < 2000.0, took


def test_timeout_drops_data_and_closes_after_its_timeout(
    client: ToxiproxyClient, cache: int, connect: RedisClients,
) -> None:
    conn = connect(cache)
    conn.ping()
    client.add_toxic("cache", "timeout", {"timeout": 300}, name="blackhole")
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        conn.ping()
    assert 0.25 < time.monotonic() - started < 1.5
    client.remove_toxic("cache", "blackhole")
    assert connect(cache).ping()


def test_timeout_zero_holds_until_removed_then_closes(
    client: ToxiproxyClient, cache: int, connect: RedisClients,
) -> None:
    conn = connect(cache, timeout_s=0.5)
    client.add_toxic("cache", "timeout", {"timeout": 0}, name="hold")
    with pytest.raises(redis.TimeoutError):
        conn.ping()
    with socket.create_connection(("127.0.0.1", cache), timeout=2.0) as sock:
        sock.sendall(b"PING\r\n")  # dropped
        time.sleep(0.2)
        client.remove_toxic("cache", "hold")
        assert sock.recv(16) == b""  # connections the toxic held are closed when it goes
    assert connect(cache).ping()


def test_reset_peer_resets_the_connection(client: ToxiproxyClient, cache: int, connect: RedisClients) -> None:
    conn = connect(cache)
    client.add_toxic("cache", "reset_peer", {"timeout": 100}, stream="upstream")
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match="reset by peer"):
        conn.ping()
    assert time.monotonic() - started >= 0.09


def test_slow_close_delays_the_close(client: ToxiproxyClient, cache: int) -> None:
    client.add_toxic("cache", "slow_close", {"delay": 300})
    sock = socket.create_connection(("127.0.0.1", cache), timeout=3)
    sock.sendall(b"QUIT\r\n")
    assert sock.recv(16) == b"+OK\r\n"
    took = elapsed_ms(lambda: sock.recv(16))
    sock.close()
    assert 250.0 <= took < 1500.0


def test_toxicity_zero_spares_connections(client: ToxiproxyClient, cache: int, connect: RedisClients) -> None:
    client.add_toxic("cache", "latency", {"latency": 500}, toxicity=0.0)
    assert max(elapsed_ms(connect(cache).ping) for _ in range(3)) < 100.0


def test_disabled_proxy_refuses_and_comes_back_after_its_ttl(
    client: ToxiproxyClient, cache: int, connect: RedisClients,
) -> None:
    conn = connect(cache)
    conn.ping()
    state = client.update_proxy("cache", enabled=False, ttl_s=0.6)
    assert state["enabled"] is False and 0 < state["reenable_in_s"] <= 0.6
    with pytest.raises(redis.ConnectionError):
        conn.ping()
    with pytest.raises(redis.ConnectionError, match="refused"):
        connect(cache).ping()
    back = seconds_until(lambda: client.proxy("cache")["enabled"], 3.0)
    assert back is not None and back < 1.5
    assert connect(cache).ping()


def test_toxic_ttl_expires_and_an_update_renews_it(client: ToxiproxyClient, cache: int, connect: RedisClients) -> None:
    client.add_toxic("cache", "latency", {"latency": 100}, name="leased", ttl_s=0.5)
    time.sleep(0.3)
    assert client.update_toxic("cache", "leased", ttl_s=0.5)["expires_in_s"] > 0.4
    time.sleep(0.3)
    assert client.toxic("cache", "leased") is not None  # renewed: still there at 0.6 s
    gone = seconds_until(lambda: client.toxic("cache", "leased") is None, 2.0)
    assert gone is not None
    assert elapsed_ms(connect(cache).ping) < 50.0


def test_http_mode_answers_requests_with_an_injected_status(client: ToxiproxyClient) -> None:
    with reference_target() as target:
        proxy = client.create_proxy("api", target.url.removeprefix("http://"), protocol="http")
        conn = http.client.HTTPConnection("127.0.0.1", _port(proxy), timeout=5)

        def get(path: str) -> tuple[int, str | None]:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("X-Chaos-Proxy")

        assert get("/health") == (200, None)
        client.add_toxic("api", "http_error", {"status": 503, "path_prefix": "/health"}, name="errors")
        assert [get("/health") for _ in range(3)] == [(503, "injected")] * 3  # one keep-alive connection
        assert get("/metrics")[0] == 200  # outside path_prefix
        conn.request("POST", "/health", body=b"x" * 70_000)  # a body to swallow, not forward
        dropped = conn.getresponse()
        dropped.read()
        assert dropped.status == 503
        client.update_toxic("api", "errors", toxicity=0.5)
        statuses = [get("/health")[0] for _ in range(40)]
        assert 5 <= statuses.count(503) <= 35 and statuses.count(200) + statuses.count(503) == 40
        client.remove_toxic("api", "errors")
        assert get("/health") == (200, None)
        chunked = http.client.HTTPConnection("127.0.0.1", _port(proxy), timeout=5)
        chunked.request("POST", "/auth/login", body=iter([b'{"username": "demo", ', b'"password": "demo"}']),
                        headers={"Content-Type": "application/json"}, encode_chunked=True)
        reply = chunked.getresponse()
        assert reply.status == 200 and "token" in json.loads(reply.read())
        chunked.close()
        conn.close()


def test_stops_cleanly_on_sigterm(upstream: RedisServer, connect: RedisClients) -> None:
    with chaos_proxy() as served:
        client = ToxiproxyClient(served.url)
        port = _port(client.create_proxy("cache", f"127.0.0.1:{upstream.port}"))
        assert connect(port).ping()
        proc = served.proc
    assert proc.returncode == 0
    with pytest.raises(redis.ConnectionError):
        connect(port).ping()
