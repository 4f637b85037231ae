"""Every ``proxy.*`` fault kind against both Toxiproxy APIs: our chaos proxy and the real Toxiproxy
2.9.0 server (skipped, with the reason, where its binary is absent). Each kind is injected, seen by
a Redis client through the proxy's listen port, reverted and verified; ``proxy.http`` is refused
in one line by the real one; a SIGKILLed injector's toxic is removed by the revert guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from reliability.exceptions import FaultError
from reliability.faults import build_fault
from reliability.faults.proxy import ToxiproxyClient
from reliability.faults.spec import parse_fault_spec
from reliability.revert.journal import read_journal
from tests.support.clients import RedisClients
from tests.support.processes import Served
from tests.support.servers import RedisServer, ServerError, ToxiproxyServer, toxiproxy_binary
from tests.support.waits import elapsed_ms, seconds_until

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]
BIG = b"x" * 20_000


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[ToxiproxyServer]:
    if toxiproxy_binary() is None:
        pytest.skip("the real Toxiproxy server is absent: set TOXIPROXY_SERVER, put toxiproxy-server on PATH, "
                    "or build it at ../shared/tools/toxiproxy/toxiproxy-server")
    try:
        server = ToxiproxyServer()
    except ServerError as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture(params=["ours", "toxiproxy"])
def api(request: pytest.FixtureRequest) -> str:
    if request.param == "ours":
        served: Served = request.getfixturevalue("proxy_api")
        return served.url
    server: ToxiproxyServer = request.getfixturevalue("toxiproxy")
    return server.url


@pytest.fixture
def cache(api: str, upstream: RedisServer) -> Iterator[int]:
    """A proxy "cache" in front of Redis (holding a 20 KB value); its listen port."""
    client = ToxiproxyClient(api)
    client.delete_proxy("cache", missing_ok=True)
    proxy = client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
    direct = redis.Redis(port=upstream.port)
    direct.set("big", BIG)
    direct.close()
    yield int(proxy["listen"].rsplit(":", 1)[1])
    client.delete_proxy("cache", missing_ok=True)


def _fault(api: str, kind: str, **settings: Any) -> Any:
    return build_fault(parse_fault_spec({"type": kind, "api_url": api, "proxy": "cache", **settings}), f"p-{kind}")


def _fails(action: Callable[[], object]) -> bool:
    try:
        action()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True
    return False


# kind, settings, what a client through the proxy sees while it is applied
EFFECTS: list[tuple[str, dict[str, Any], str]] = [
    ("proxy.latency", {"latency_ms": 150}, "slow ping"),
    ("proxy.bandwidth", {"rate_kb_s": 40}, "slow big get"),
    ("proxy.timeout", {"timeout_ms": 0}, "ping fails"),
    ("proxy.reset_peer", {"timeout_ms": 0, "stream": "upstream"}, "ping fails"),
    ("proxy.slow_close", {"delay_ms": 200}, "toxic listed"),
    ("proxy.slicer", {"average_size": 100, "size_variation": 10, "delay_us": 2000}, "slow big get"),
    ("proxy.limit_data", {"bytes": 1000}, "big get fails"),
    ("proxy.down", {}, "ping fails"),
]


@pytest.mark.parametrize(("kind", "settings", "effect"), EFFECTS, ids=[e[0] for e in EFFECTS])
def test_each_kind_takes_effect_reverts_and_verifies(api: str, cache: int, connect: RedisClients, kind: str,
                                                     settings: dict[str, Any], effect: str) -> None:
    fault = _fault(api, kind, dead_man_s=5, **settings)
    fault.inject()
    try:
        client = connect(cache, timeout_s=0.4 if effect == "ping fails" else 5.0)
        if effect == "slow ping":
            assert elapsed_ms(client.ping) >= 140.0
        elif effect == "slow big get":
            assert elapsed_ms(lambda: client.get("big")) >= 300.0  # 20 KB: 0.5 s at 40 KB/s, 200 slices x 2 ms
        elif effect == "ping fails":
            assert _fails(client.ping)
        elif effect == "big get fails":
            assert _fails(lambda: client.get("big"))
        else:
            names = [t["name"] for t in ToxiproxyClient(api).toxics("cache")]
            assert names == [f"chaos-p-{kind}"]
    finally:
        fault.revert()
    after = connect(cache)
    assert elapsed_ms(after.ping) < 100.0 and after.get("big") == BIG
    check = fault.verify()
    assert check.healthy and f"port {cache}" in check.detail, check


def test_the_real_toxiproxy_refuses_proxy_http_in_one_line(toxiproxy: ToxiproxyServer, upstream: RedisServer) -> None:
    client = ToxiproxyClient(toxiproxy.url)
    client.delete_proxy("cache", missing_ok=True)
    client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
    fault = _fault(toxiproxy.url, "proxy.http", status=503)
    with pytest.raises(FaultError) as caught:
        fault.inject()
    message = str(caught.value)
    assert "\n" not in message and "is Toxiproxy 2.9.0" in message and "TCP only" in message
    assert client.toxics("cache") == []
    fault.revert()  # nothing was attempted: nothing to undo, no error
    client.delete_proxy("cache")


def test_a_real_toxiproxy_answer_means_no_backend_expiry(toxiproxy: ToxiproxyServer, upstream: RedisServer) -> None:
    client = ToxiproxyClient(toxiproxy.url)
    client.delete_proxy("cache", missing_ok=True)
    client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
    fault = _fault(toxiproxy.url, "proxy.latency", latency_ms=10, dead_man_s=3)
    fault.inject()
    try:
        assert fault.dead_man_s is None  # it ignores ttl_s: the revert guard is the dead-man there
    finally:
        fault.revert()
    client.delete_proxy("cache")


@pytest.mark.parametrize("kind", ["proxy.latency", "proxy.down"])
def test_sigkill_mid_fault_the_guard_undoes_it_on_the_real_toxiproxy(toxiproxy: ToxiproxyServer,
                                                                    upstream: RedisServer, tmp_path: Path,
                                                                    kind: str) -> None:
    client = ToxiproxyClient(toxiproxy.url)
    client.delete_proxy("cache", missing_ok=True)
    client.create_proxy("cache", f"127.0.0.1:{upstream.port}")
    settings = {"latency_ms": 500} if kind == "proxy.latency" else {}
    spec = {"type": kind, "api_url": toxiproxy.url, "proxy": "cache", "dead_man_s": 2, **settings}
    journal = tmp_path / "run.jsonl"

    def clean() -> bool:
        state = client.proxy("cache")
        return bool(state["enabled"]) and not state["toxics"]

    proc = subprocess.Popen([sys.executable, "-m", "tests.support.revert_driver", json.dumps(spec), str(journal)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "INJECTED"
        time.sleep(0.3)
        assert not clean()
        proc.send_signal(signal.SIGKILL)
        took = seconds_until(clean, 2 + 2)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert took is not None, "the guard did not undo the fault on the real Toxiproxy"
    assert seconds_until(lambda: read_journal(journal).faults["held"].reverted_by == "guard", 2) is not None
    client.delete_proxy("cache")
