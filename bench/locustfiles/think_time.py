"""Shoppers with 1-2 s think time against the reference target (for bench/target_p95.py)."""

from __future__ import annotations

import random

from locust import between, task

import reliability.plugin  # noqa: F401
from reliability.users.http import ApiUser


class ThinkingShopper(ApiUser):
    wait_time = between(1.0, 2.0)

    @task(4)
    def view_item(self) -> None:
        self.call("GET", f"/api/items/{random.randint(1, 200)}", name="/api/items/[id]")

    @task(1)
    def list_items(self) -> None:
        self.call("GET", "/api/items?limit=20", name="/api/items")
