"""A FastHttpUser on the pattern server with the extras the verdict tests switch on by env var.

* ``EXIT_RECIPE=1``: Locust's documented exit-code recipe (a ``quitting`` listener setting
  ``environment.process_exit_code`` from the stats), registered at import like users write it;
  ``RECIPE_FAIL_RATIO`` is its failure-ratio limit (default 0.01).
* ``RAISE_ONCE=1``: the task raises once (user code error), then behaves.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from locust import FastHttpUser, constant, events, task

import reliability.plugin  # noqa: F401

_raised = [False]


class VerdictUser(FastHttpUser):
    wait_time = constant(float(os.environ.get("PATTERN_WAIT_S", "0.01")))

    @task
    def item(self) -> None:
        self.client.get("/item")
        if os.environ.get("RAISE_ONCE") and not _raised[0]:
            _raised[0] = True
            raise RuntimeError("user code raised once")


if os.environ.get("EXIT_RECIPE"):
    limit = float(os.environ.get("RECIPE_FAIL_RATIO", "0.01"))

    @events.quitting.add_listener
    def _(environment: Any, **kw: Any) -> None:
        if environment.stats.total.fail_ratio > limit:
            logging.error("Test failed due to failure ratio > %g", limit)
            environment.process_exit_code = 1
        else:
            environment.process_exit_code = 0
