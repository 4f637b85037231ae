"""RedisUser against a real redis-server, run by Locust in a subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.harness import assert_outage_handled, run_harness, run_with_outage
from tests.support.servers import RedisServer

pytestmark = pytest.mark.timeout(90)


def _env(server: RedisServer) -> dict[str, str]:
    return {"RELIABILITY_REDIS_URL": server.url}


def test_commands_and_cache_hits_become_samples(tmp_path: Path, redis_server: RedisServer) -> None:
    result = run_harness(tmp_path, """
        import itertools
        from locust import constant, task
        from reliability.users.redis import RedisUser

        class Cache(RedisUser):
            wait_time = constant(0.01)
            keys = itertools.cycle(["a", "b", "c", "d"])

            def on_start(self):
                self.command("seed", "SET", "a", "12345")
                self.command("seed", "SET", "text", "not a number")

            @task
            def read(self):
                self.get(next(self.keys))  # a hits, b, c and d miss
                assert self.command("incr", "INCR", "counter") > 0
                assert self.command("bad incr", "INCR", "text") is None

        def harness_report(env):
            counts = Cache.cache_counts()
            return {"hits": counts.hits, "misses": counts.misses, "ratio": Cache.hit_ratio()}
    """, users=2, run_time_s=2.0, env={**_env(redis_server)})
    result.assert_clean()
    gets = result.named("GET")
    assert len(gets) > 50 and all(s.ok and s.request_type == "redis" for s in gets)
    assert {s.context["cache"] for s in gets} == {"hit", "miss"}
    assert all(s.context["component"] == "cache" for s in gets)
    hits = [s for s in gets if s.context["cache"] == "hit"]
    assert all(0 < s.response_time_ms < 100 for s in hits)
    extra = result.extra
    assert extra["hits"] > 0 and extra["misses"] > 0
    assert extra["ratio"] == pytest.approx(extra["hits"] / (extra["hits"] + extra["misses"]))
    assert 0.15 < extra["ratio"] < 0.35  # one key of four hits
    assert result.stats["redis incr"]["failures"] == 0
    bad = result.named("bad incr")
    assert bad and all(not s.ok for s in bad)


def test_error_reply_is_a_failure_not_a_crash(tmp_path: Path, redis_server: RedisServer) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.redis import RedisUser

        class Wrong(RedisUser):
            wait_time = constant(0.05)

            @task
            def read(self):
                self.command("set", "SET", "s", "text")
                self.command("lpush", "LPUSH", "s", "x")  # WRONGTYPE
    """, users=1, run_time_s=1.0, env=_env(redis_server))
    result.assert_clean()
    assert {s.error for s in result.named("lpush")} == {"ResponseError"}
    assert all(s.ok for s in result.named("set"))


def test_fifty_blocking_pops_overlap(tmp_path: Path, redis_server: RedisServer) -> None:
    """redis-py cooperates with gevent: 50 x BLPOP(0.2 s) overlap instead of taking 10 s."""
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.redis import RedisUser

        class Waiter(RedisUser):
            wait_time = constant(60)

            @task
            def pop(self):
                self.command("blpop", "BLPOP", "empty-list", "0.2")
    """, users=50, run_time_s=2.0, env=_env(redis_server))
    result.assert_clean()
    pops = result.named("blpop")
    assert len(pops) == 50 and all(s.ok for s in pops)
    assert all(s.response_time_ms >= 199 for s in pops)
    wall_s = max(s.end_time for s in pops) - min(s.start_time for s in pops)
    assert wall_s < 0.8, f"50 concurrent BLPOP 0.2 took {wall_s:.2f}s of wall time"


def test_refused_connection_fails_fast_without_hidden_retries(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.redis import RedisUser

        class Nowhere(RedisUser):
            wait_time = constant(0)

            @task
            def read(self):
                self.get("k")
    """, users=2, run_time_s=3.0, env={"RELIABILITY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    result.assert_clean()
    gets = result.named("GET")
    assert gets and all(s.error == "ConnectionError" for s in gets)
    # one attempt per sample (redis-py's default would retry 10 times with backoff)
    assert all(s.response_time_ms < 100 for s in gets)
    # backoff 0.1 s doubling to 2 s: a handful of attempts per user, not a spin of thousands
    assert 2 * 3 <= len(gets) <= 2 * 12
    assert "cache" not in gets[0].context


def test_server_stop_gives_failures_then_recovery(tmp_path: Path, redis_server: RedisServer) -> None:
    run = run_with_outage(tmp_path, """
        from locust import constant, task
        from reliability.users.redis import RedisUser

        class Cache(RedisUser):
            wait_time = constant(0.02)

            @task
            def read(self):
                self.command("set", "SET", "k", "v")
                self.get("k")
    """, redis_server, users=4, env=_env(redis_server))
    assert_outage_handled(run, users=4)
    assert {s.error for s in run.during() if not s.ok} <= {"ConnectionError", "TimeoutError"}
