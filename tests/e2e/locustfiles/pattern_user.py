"""A FastHttpUser hitting the pattern server; optionally dumps every sample for exact checks.

With SAMPLES_DIR set, each load-generating process writes ``<pid>.id`` (its worker id) at test
start and ``<pid>.json`` (every response time in ms, and the failure count) when it quits.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.runners import MasterRunner

import reliability.plugin  # noqa: F401

SAMPLES_DIR = os.environ.get("SAMPLES_DIR")
WAIT_S = float(os.environ.get("PATTERN_WAIT_S", "0.01"))
_samples: list[float] = []
_failures = [0]


class PatternUser(FastHttpUser):
    wait_time = constant(WAIT_S)

    @task
    def item(self) -> None:
        self.client.get("/item")


if SAMPLES_DIR:

    @events.request.add_listener
    def _keep(response_time: float, exception: Any = None, **_kw: Any) -> None:
        _samples.append(response_time)
        _failures[0] += exception is not None

    @events.test_start.add_listener
    def _who(environment: Any, **_kw: Any) -> None:
        if not isinstance(environment.runner, MasterRunner):
            with open(os.path.join(SAMPLES_DIR, f"{os.getpid()}.id"), "w") as fh:
                fh.write(getattr(environment.runner, "client_id", "local"))

    @events.quitting.add_listener
    def _dump(environment: Any, **_kw: Any) -> None:
        if not isinstance(environment.runner, MasterRunner):
            with open(os.path.join(SAMPLES_DIR, f"{os.getpid()}.json"), "w") as fh:
                json.dump({"samples": _samples, "failures": _failures[0]}, fh)
