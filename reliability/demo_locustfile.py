"""Locustfile for ``reliability demo``: shoppers against the reference target, with a ramp.

The demo passes its settings in environment variables (RELIABILITY_DEMO_*), so this file also
runs by hand: ``locust -f reliability/demo_locustfile.py --host http://127.0.0.1:8080``.
"""

from __future__ import annotations

import os
import random

from locust import LoadTestShape, between, task

import reliability.plugin  # noqa: F401  (SLA grading, run record, exit codes)
from reliability.users.http import ApiUser

DURATION_S = float(os.environ.get("RELIABILITY_DEMO_DURATION_S", "60"))
USERS = int(os.environ.get("RELIABILITY_DEMO_USERS", "30"))


class Shopper(ApiUser):
    wait_time = between(0.05, 0.2)

    @task(8)
    def view_item(self) -> None:
        self.call("GET", f"/api/items/{random.randint(1, 200)}", name="/api/items/[id]")

    @task(3)
    def list_items(self) -> None:
        self.call("GET", "/api/items?limit=20", name="/api/items")

    @task(1)
    def add_item(self) -> None:
        self.call("POST", "/api/items", name="/api/items", json={"name": "demo", "value": random.random()})

    @task(1)
    def report(self) -> None:
        self.call("GET", "/api/report", name="/api/report")


class DemoRamp(LoadTestShape):
    """Ramp to USERS over the first 20 % of the run, hold, then stop."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()  # type: ignore[no-untyped-call]  # Locust's LoadTestShape is untyped
        if elapsed >= DURATION_S:
            return None
        ramp_s = max(DURATION_S * 0.2, 1.0)
        users = max(1, round(USERS * min(1.0, (elapsed + 1) / ramp_s)))
        return users, max(USERS / ramp_s, 1.0)
