"""Users for the open-model (arrival-rate) tests: a long think time that the arrival schedule must
replace (the schedule paces the users, not ``wait_time``), one request per task."""

from __future__ import annotations

from locust import FastHttpUser, between, task

import reliability.plugin  # noqa: F401


class ArrivalUser(FastHttpUser):
    wait_time = between(5, 10)

    @task
    def item(self) -> None:
        self.client.get("/item")
