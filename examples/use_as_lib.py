"""Grade a load test run from your own Python code (Locust's "use as a library").

    python examples/use_as_lib.py http://127.0.0.1:8089 reports/lib-run.json

Builds its own ``Environment``, so Locust's ``quitting`` never fires: ``install`` attaches the
plugin before the run, ``conclude`` grades it, writes the record and reports and returns the exit
code (0 met, 3 not met, 4 inconclusive).
"""

from __future__ import annotations

import argparse
import sys

import gevent
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.log import setup_logging

import reliability.plugin


class Browse(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def item(self) -> None:
        self.client.get("/item")


def main(host: str, record: str, seconds: float = 5.0) -> int:
    setup_logging("INFO")
    options = argparse.Namespace(sla_tier="bronze", run_record=record)  # the same names as the CLI options
    env = Environment(user_classes=[Browse], events=events, host=host, parsed_options=options)
    env.create_local_runner()
    reliability.plugin.install(env)
    assert env.runner is not None
    env.runner.start(5, spawn_rate=5)
    gevent.sleep(seconds)
    env.runner.quit()  # stops the users and fires test_stop
    return reliability.plugin.conclude(env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
