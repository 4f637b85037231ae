"""A constant-pacing FastHttpUser (PACING_S, default 0.1 s: 10 users = 100 requests/s intended).

With SAMPLES_DIR set, each process writes ``<pid>.json`` with Locust's own response times (ms),
the raw numbers a plain Locust run would report.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import FastHttpUser, constant_pacing, events, task
from locust.runners import MasterRunner

import reliability.plugin  # noqa: F401

SAMPLES_DIR = os.environ.get("SAMPLES_DIR")
_samples: list[float] = []


class PacedUser(FastHttpUser):
    wait_time = constant_pacing(float(os.environ.get("PACING_S", "0.1")))

    @task
    def item(self) -> None:
        self.client.get("/item")


if SAMPLES_DIR:

    @events.request.add_listener
    def _keep(response_time: float, **_kw: Any) -> None:
        _samples.append(response_time)

    @events.quitting.add_listener
    def _dump(environment: Any, **_kw: Any) -> None:
        if isinstance(environment.runner, MasterRunner):
            return
        with open(os.path.join(SAMPLES_DIR, f"{os.getpid()}.json"), "w") as fh:
            json.dump({"samples": _samples}, fh)
