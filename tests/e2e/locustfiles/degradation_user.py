"""Users of the reference target for the degradation, kill and capacity tests. No shape here:
the scenario's ``shape:`` section drives the load (the plugin runs it), which is the pattern
these tests check.

Environment: ``DEGRADATION_TASK`` = ``list`` (every request reads the database), ``get`` (reads
through the cache) or ``mixed`` (default); ``DEGRADATION_WAIT_S`` = constant think time (default
0.1); ``DEGRADATION_RATE`` = requests per second per user instead (``constant_throughput``).
"""

from __future__ import annotations

import os
import random

from locust import constant, constant_throughput, task

import reliability.plugin  # noqa: F401
from reliability.users.http import ApiUser

TASK = os.environ.get("DEGRADATION_TASK", "mixed")
RATE = os.environ.get("DEGRADATION_RATE")
WAIT_S = float(os.environ.get("DEGRADATION_WAIT_S", "0.1"))


class TargetUser(ApiUser):
    wait_time = constant_throughput(float(RATE)) if RATE else constant(WAIT_S)

    @task
    def work(self) -> None:
        kind = TASK if TASK != "mixed" else random.choice(("list", "get", "get"))
        if kind == "list":
            self.call("GET", "/api/items?limit=20", name="/api/items")
        else:
            self.call("GET", f"/api/items/{random.randint(1, 50)}", name="/api/items/[id]")
