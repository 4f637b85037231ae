"""`-t` lasts as long as asked even when the locustfile takes seconds to import.

gevent's loop clock is cached from when the hub was made; Locust schedules the `-t` stop from it.
A locustfile (and the plugin's imports) that take longer than `-t` to load on a busy machine would
otherwise end the run before any user sent a request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import locust_cmd, run, serve

pytestmark = pytest.mark.slow

SLOW_IMPORT = '''
import time

import gevent  # the hub exists from here on, its clock is now cached

import reliability.plugin  # noqa: F401
from locust import HttpUser, constant, task

# a slow import (heavy dependencies, a loaded CI machine): CPU-bound, so gevent's loop does not run
_until = time.perf_counter() + 2.5
while time.perf_counter() < _until:
    pass


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def read(self) -> None:
        self.client.get("/")
'''


def test_run_time_counts_from_the_start_not_from_a_slow_import(tmp_path: Path) -> None:
    locustfile = tmp_path / "slow_import.py"
    locustfile.write_text(SLOW_IMPORT)
    record = tmp_path / "run.json"
    with serve(["tests/support/pattern_server.py"]) as served:
        done = run(locust_cmd("-f", str(locustfile), "--headless", "-u", "2", "-r", "2", "-t", "2s",
                              "--host", served.url, "--only-summary", "--run-record", str(record)),
                   timeout_s=90)
    assert record.exists(), done.stdout[-3000:]
    data = json.loads(record.read_text())
    assert data["run"]["duration_s"] >= 1.8, (data["run"], done.stdout[-2000:])
    assert data["totals"]["requests"] > 10, data["totals"]
