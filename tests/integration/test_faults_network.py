"""Network and HTTP faults: toxics and down-time on the chaos proxy (a subprocess), HTTP faults
through the reference target's admin API and the proxy's HTTP mode, and the load faults."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import redis

from reliability.exceptions import FaultError
from reliability.faults import build_fault
from reliability.faults.httpcall import call
from reliability.faults.proxy import ToxiproxyClient
from reliability.faults.spec import parse_fault_spec
from tests.support.clients import RedisClients
from tests.support.processes import Served, reference_target
from tests.support.servers import RedisServer
from tests.support.waits import elapsed_ms, seconds_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def target() -> Iterator[Served]:
    with reference_target() as served:
        yield served


@pytest.fixture
def cache(proxy_api: Served, upstream: RedisServer) -> Iterator[int]:
    """A fresh proxy "cache" in front of Redis; its port."""
    client = ToxiproxyClient(proxy_api.url)
    proxy = client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
    yield int(proxy["listen"].rsplit(":", 1)[1])
    client.delete_proxy("cache")


def _fault(proxy_api: Served, kind: str, **settings: Any) -> Any:
    spec = parse_fault_spec({"type": kind, "api_url": proxy_api.url, "proxy": "cache", **settings})
    return build_fault(spec, f"net-{kind}")


def test_proxy_latency_is_seen_by_a_client_then_reverted(proxy_api: Served, cache: int,
                                                         connect: RedisClients) -> None:
    fault = _fault(proxy_api, "proxy.latency", latency_ms=120, dead_man_s=0.6)
    fault.revert()  # before inject
    conn = connect(cache)
    fault.inject()
    try:
        assert elapsed_ms(conn.ping) >= 115.0
        time.sleep(1.0)  # beyond the toxic's ttl: the lease has renewed it
        assert elapsed_ms(conn.ping) >= 115.0
        assert fault.dead_man_s == 0.6  # our proxy honours the ttl
    finally:
        fault.revert()
    assert elapsed_ms(conn.ping) < 50.0
    fault.revert()
    check = fault.verify()
    assert check.healthy and f"port {cache}" in check.detail, check


@pytest.mark.parametrize(("kind", "settings", "toxic"), [
    ("proxy.bandwidth", {"rate_kb_s": 50}, {"type": "bandwidth", "attributes": {"rate": 50}}),
    ("proxy.timeout", {"timeout_ms": "2s", "stream": "upstream"},
     {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 2000}}),
    ("proxy.reset_peer", {"timeout_ms": 10, "toxicity": 0.5},
     {"type": "reset_peer", "toxicity": 0.5, "attributes": {"timeout": 10}}),
    ("proxy.slow_close", {"delay_ms": 300}, {"type": "slow_close", "attributes": {"delay": 300}}),
])
def test_each_toxic_kind_sets_its_toxic_and_removes_it(proxy_api: Served, cache: int, kind: str,
                                                       settings: dict[str, Any], toxic: dict[str, Any]) -> None:
    client = ToxiproxyClient(proxy_api.url)
    fault = _fault(proxy_api, kind, **settings)
    fault.inject()
    try:
        [seen] = client.toxics("cache")
        assert seen["name"] == f"chaos-net-{kind}" and seen["ttl_s"] == 30.0
        assert {key: seen[key] for key in toxic} == toxic
    finally:
        fault.revert()
    assert client.toxics("cache") == []
    assert fault.verify().healthy


def test_proxy_down_refuses_connections_until_reverted(proxy_api: Served, cache: int,
                                                       connect: RedisClients) -> None:
    fault = _fault(proxy_api, "proxy.down", dead_man_s=5)
    fault.inject()
    try:
        with pytest.raises(redis.ConnectionError, match="refused"):
            connect(cache).ping()
        assert not fault.verify().healthy
    finally:
        fault.revert()
    assert connect(cache).ping()
    fault.revert()
    assert fault.verify().healthy


def test_a_toxic_left_by_a_dead_run_is_replaced(proxy_api: Served, cache: int) -> None:
    client = ToxiproxyClient(proxy_api.url)
    client.add_toxic("cache", "latency", {"latency": 999}, name="chaos-net-proxy.latency")
    fault = _fault(proxy_api, "proxy.latency", latency_ms=10)
    fault.inject()
    try:
        assert client.toxic("cache", "chaos-net-proxy.latency")["attributes"]["latency"] == 10  # type: ignore[index]
    finally:
        fault.revert()


def test_proxy_api_errors_are_one_line_fault_errors(proxy_api: Served) -> None:
    fault = build_fault(parse_fault_spec({"type": "proxy.latency", "api_url": proxy_api.url, "proxy": "missing",
                                          "latency_ms": 5}), "lost")
    with pytest.raises(FaultError, match=r"^lost \(proxy.latency\) inject: POST .*: HTTP 404: proxy not found$"):
        fault.inject()
    fault.revert()  # the proxy is missing: nothing to remove, and no error
    down = build_fault(parse_fault_spec({"type": "proxy.down", "api_url": "http://127.0.0.1:9", "proxy": "x"}), "d")
    with pytest.raises(FaultError, match="refused"):
        down.inject()


def test_proxy_http_mode_answers_with_the_status(proxy_api: Served, target: Served) -> None:
    client = ToxiproxyClient(proxy_api.url)
    port = int(client.create_proxy("api", target.url.removeprefix("http://"), protocol="http")["listen"]
               .rsplit(":", 1)[1])
    try:
        fault = build_fault(parse_fault_spec({"type": "proxy.http", "api_url": proxy_api.url, "proxy": "api",
                                              "status": 429, "path_prefix": "/health"}), "throttled")
        url = f"http://127.0.0.1:{port}/health"
        fault.inject()
        try:
            assert call("GET", url).status == 429
        finally:
            fault.revert()
        assert call("GET", url).status == 200
        assert fault.verify().healthy
    finally:
        client.delete_proxy("api")


def test_target_http_error_and_latency_through_the_admin_api(target: Served) -> None:
    errors = build_fault(parse_fault_spec({"type": "http.error", "url": target.url, "status": 503,
                                           "error_ratio": 1.0}), "api-errors")
    errors.revert()
    errors.inject()
    try:
        assert call("GET", f"{target.url}/api/items").status == 503
        assert call("GET", f"{target.url}/health").status == 200  # operator routes are never faulted
    finally:
        errors.revert()
    assert call("GET", f"{target.url}/api/items").status == 401  # back to normal: no token, no items
    errors.revert()
    assert errors.verify().healthy

    latency = build_fault(parse_fault_spec({"type": "http.latency", "url": target.url, "latency_ms": 200}), "slow")
    latency.inject()
    try:
        assert elapsed_ms(lambda: call("GET", f"{target.url}/api/items")) >= 195.0
        assert call("GET", f"{target.url}/admin/faults").json()["fault"]["ttl_s"] == 30.0
    finally:
        latency.revert()
    assert elapsed_ms(lambda: call("GET", f"{target.url}/api/items")) < 100.0
    check = latency.verify()
    assert check.healthy and "no fault active, /health 200" in check.detail, check


def test_target_admin_token_comes_from_the_environment() -> None:
    with reference_target(env={"RELIABILITY_ADMIN_TOKEN": "t0ken"}) as guarded:
        spec = parse_fault_spec({"type": "http.error", "url": guarded.url})
        denied = build_fault(spec, "no-token", environ={})
        with pytest.raises(FaultError, match="HTTP 403"):
            denied.inject()
        allowed = build_fault(spec, "token", environ={"RELIABILITY_ADMIN_TOKEN": "t0ken"})
        allowed.inject()
        try:
            assert call("GET", f"{guarded.url}/api/items").status == 503
        finally:
            allowed.revert()
        assert allowed.verify().healthy


def _requests_served(target: Served) -> float:
    text = call("GET", f"{target.url}/metrics").body.decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("reliability_target_requests_total{") and 'route="/health"' in line)


def test_load_spike_adds_requests_from_another_process(target: Served) -> None:
    fault = build_fault(parse_fault_spec({"type": "load.spike", "url": f"{target.url}/health", "concurrency": 8}),
                        "spike")
    fault.revert()
    before = _requests_served(target)
    fault.inject()
    try:
        time.sleep(0.8)
    finally:
        fault.revert()
    added = _requests_served(target) - before
    summary = fault.summary  # type: ignore[attr-defined]
    assert summary is not None and summary["requests"] >= 50 and added >= summary["requests"] - 8
    settled = _requests_served(target)
    time.sleep(0.3)
    assert _requests_served(target) - settled <= 2  # the spike stopped (our own /metrics reads only)
    check = fault.verify()
    assert check.healthy and "answers 200" in check.detail, check


def test_websocket_storm_holds_connections_until_reverted(target: Served) -> None:
    server = psutil.Process(target.proc.pid)

    def established() -> int:
        return sum(1 for c in server.net_connections("tcp")
                   if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == target.port)

    baseline = established()
    fault = build_fault(parse_fault_spec({"type": "load.ws_storm", "url": target.url.replace("http", "ws") + "/ws",
                                          "connections": 60, "rate_per_s": 400}), "storm")
    fault.inject()
    try:
        seconds_until(lambda: established() >= baseline + 60, 5, 0.05)
        assert established() >= baseline + 60
    finally:
        fault.revert()
    assert fault.summary == {"requests": 0, "errors": 0, "opened": 60,  # type: ignore[attr-defined]
                             "peak_open": 60, "last_error": None}
    seconds_until(lambda: established() <= baseline, 5, 0.05)
    assert established() <= baseline
    assert fault.verify().healthy


def test_http_connection_through_the_proxy_keeps_working_without_faults(proxy_api: Served, target: Served) -> None:
    client = ToxiproxyClient(proxy_api.url)
    port = int(client.create_proxy("plain", target.url.removeprefix("http://"), protocol="http")["listen"]
               .rsplit(":", 1)[1])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for _ in range(20):
            conn.request("GET", "/health")
            response = conn.getresponse()
            assert response.status == 200 and response.read()
        conn.close()
    finally:
        client.delete_proxy("plain")
