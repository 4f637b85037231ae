"""Run by test_worker_reports.py in a subprocess of its own (it imports locust).

The plugin on a real Locust master: a worker's bad report (overflow, negative counts, wrong
types) is rejected whole and named, the run is graded inconclusive, the good worker's data still
counts, and nothing raises out of Locust's event hook."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import locust.log
import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.stats import RequestStats

from reliability.metrics.windows import WindowStore
from reliability.plugin import PAYLOAD_KEY, ReliabilityPlugin, install
from tests.support.servers import free_port


class Idle(User):
    wait_time = constant(1)

    @task
    def nothing(self) -> None:
        pass


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[Environment, ReliabilityPlugin]]:
    env = Environment(user_classes=[Idle])
    env.parsed_options = argparse.Namespace(scenario=None, run_record=str(tmp_path / "run.json"))
    runner = env.create_master_runner("127.0.0.1", free_port())
    plugin = install(env)
    try:
        yield env, plugin
    finally:
        runner.quit()


def worker_data(requests: int, start: float) -> dict[str, Any]:
    store = WindowStore(clock=lambda: start)
    for i in range(requests):
        store.record("GET", "/items", 10.0 + i, False, None)
    stats = RequestStats()  # Locust's own part of a worker report, as a worker builds it
    return {"stats": stats.serialize_stats(), "stats_total": stats.total.get_stripped_report(),
            "errors": stats.serialize_errors(), "user_count": 0, "user_classes_count": {},
            PAYLOAD_KEY: {"windows": store.drain(final=True), "usage": [start, 5.0, 50.0], "cache": []}}


def test_a_bad_worker_report_is_rejected_named_and_makes_the_run_inconclusive(
        master: tuple[Environment, ReliabilityPlugin], tmp_path: Path) -> None:
    env, plugin = master
    locust.log.unhandled_greenlet_exception = False
    env.events.test_start.fire(environment=env)
    now = time.time()
    env.events.worker_report.fire(client_id="good-worker", data=worker_data(20, now - 2))
    for spoil in (
        lambda d: d[PAYLOAD_KEY]["windows"]["w"][0]["e"][0].update(r=2**80),  # overflow
        lambda d: d[PAYLOAD_KEY]["windows"]["w"][0]["e"][0].update(r=-3, f=-5),  # negative counts
        lambda d: d[PAYLOAD_KEY].update(cache=[["GET", "/x", "many", None]]),  # wrong types
        lambda d: d[PAYLOAD_KEY].update(usage=["soon", 1, 2]),
    ):
        data = worker_data(7, now - 2)
        spoil(data)
        env.events.worker_report.fire(client_id="bad-worker", data=data)
    env.events.test_stop.fire(environment=env)
    verdict = plugin.finalize()
    assert plugin.store.snapshot().total.requests == 20  # the good worker's, none of the bad one's
    reasons = [r for r in verdict.inconclusive if "bad-worker" in r]
    assert len(reasons) == 1 and "4 report(s) rejected" in reasons[0], verdict.inconclusive
    assert "windows.w[0].e[0].r" in reasons[0]
    assert verdict.exit_code == 4
    assert not any("good-worker" in r for r in verdict.inconclusive)
    assert (tmp_path / "run.json").is_file()
    assert locust.log.unhandled_greenlet_exception is False  # no listener raised
