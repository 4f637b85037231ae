"""A user that never sends a request: the run has no data and must be inconclusive."""

from locust import User, constant, task

import reliability.plugin  # noqa: F401


class IdleUser(User):
    wait_time = constant(1)

    @task
    def nothing(self) -> None:
        pass
