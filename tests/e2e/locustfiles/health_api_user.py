"""API users against the reference target, for the health-monitor end-to-end run."""

from __future__ import annotations

from locust import constant, task

import reliability.plugin  # noqa: F401
from reliability.users.http import ApiUser


class Browser(ApiUser):
    wait_time = constant(0.05)

    @task
    def items(self) -> None:
        self.call("GET", "/api/items?limit=5", name="/api/items")
