"""WebSocketUser against the reference target's ``/ws``, run by Locust in a subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.harness import assert_outage_handled, run_harness, run_with_outage
from tests.support.servers import TargetServer

pytestmark = pytest.mark.timeout(90)


def _env(server: TargetServer) -> dict[str, str]:
    return {"RELIABILITY_WS_URL": server.ws_url}


def test_connect_echo_push_and_broadcast_samples(tmp_path: Path, target_server: TargetServer) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.websocket import WebSocketUser

        class Chat(WebSocketUser):
            wait_time = constant(0.05)

            def on_start(self):
                super().on_start()
                self.subscribe(interval_ms=50)

            @task
            def talk(self):
                assert self.echo({"n": 1, "s": "x"}) == {"n": 1, "s": "x"}
                self.broadcast("hello")
    """, users=3, run_time_s=2.0, env=_env(target_server))
    result.assert_clean()
    by_name = {name: result.named(name) for name in ("connect", "echo", "push", "broadcast")}
    assert len(by_name["connect"]) == 3
    assert len(by_name["echo"]) > 30
    assert len(by_name["push"]) > 3 * 20  # 3 users, one push per 50 ms
    assert len(by_name["broadcast"]) > len(by_name["echo"])  # each broadcast reaches all 3 users
    for name, samples in by_name.items():
        assert all(s.ok and s.request_type == "ws" for s in samples), name
        assert all(s.context == {"component": "ws"} for s in samples), name
        assert all(0 <= s.response_time_ms < 500 for s in samples), name
    assert "disconnect" not in {s.name for s in result.samples}


def test_fifty_slow_echoes_overlap(tmp_path: Path, target_server: TargetServer) -> None:
    """websocket-client cooperates with gevent: 50 echoes delayed 200 ms overlap."""
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.websocket import WebSocketUser

        class Slow(WebSocketUser):
            wait_time = constant(60)

            @task
            def talk(self):
                self.echo("late", delay_ms=200)
    """, users=50, run_time_s=2.5, env=_env(target_server))
    result.assert_clean()
    echoes = result.named("echo")
    assert len(echoes) == 50 and all(s.ok for s in echoes)
    assert all(s.response_time_ms >= 199 for s in echoes)
    wall_s = max(s.end_time for s in echoes) - min(s.start_time for s in echoes)
    assert wall_s < 0.8, f"50 concurrent 200 ms echoes took {wall_s:.2f}s of wall time"


def test_echo_timeout_is_a_failure_and_the_user_goes_on(tmp_path: Path, target_server: TargetServer) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.websocket import WebSocketUser

        class Impatient(WebSocketUser):
            wait_time = constant(0.05)
            echo_timeout_s = 0.2

            @task
            def talk(self):
                self.echo("slow", delay_ms=1000, name="slow echo")
                self.echo("fast")
    """, users=1, run_time_s=2.0, env=_env(target_server))
    result.assert_clean()
    slow = result.named("slow echo")
    assert slow and {s.error for s in slow} == {"EchoTimeout"}
    assert all(s.response_time_ms < 500 for s in slow)
    fast = result.named("echo")
    assert fast and all(s.ok for s in fast)  # late replies to timed-out echoes are ignored


def test_refused_connection_is_a_failed_connect_with_backoff(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.websocket import WebSocketUser

        class Nowhere(WebSocketUser):
            wait_time = constant(0)

            @task
            def talk(self):
                assert self.echo("x") is None
    """, users=2, run_time_s=3.0, env={"RELIABILITY_WS_URL": f"ws://127.0.0.1:{free_port()}/ws"})
    result.assert_clean()
    connects = result.named("connect")
    assert connects and all(not s.ok for s in connects)
    assert 2 * 3 <= len(connects) <= 2 * 12  # backoff 0.1 s doubling to 2 s, no spin
    assert result.named("echo") == []


def test_server_stop_gives_failures_then_recovery(tmp_path: Path, target_server: TargetServer) -> None:
    run = run_with_outage(tmp_path, """
        from locust import constant, task
        from reliability.users.websocket import WebSocketUser

        class Chat(WebSocketUser):
            wait_time = constant(0.05)

            def on_start(self):
                super().on_start()
                self.subscribe(interval_ms=100)

            @task
            def talk(self):
                self.echo("x")
    """, target_server, users=3, env=_env(target_server))
    assert_outage_handled(run, users=3)
    failed = {s.name for s in run.during() if not s.ok}
    assert "disconnect" in failed and "connect" in failed
    after = run.after(0)
    assert {"connect", "echo", "push"} <= {s.name for s in after if s.ok}  # reconnected, re-subscribed
