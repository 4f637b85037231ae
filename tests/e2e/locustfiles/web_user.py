"""A FastHttpUser for the web UI tests: ``GET /item`` on the pattern server every 50 ms.

With ``WEB_LOGIN_STUB=1`` it also gives Locust's ``--web-login`` a login manager that knows no
user, so every page behind the login answers with a redirect to it.
"""

from __future__ import annotations

import os
from typing import Any

from locust import FastHttpUser, constant, events, task

import reliability.plugin  # noqa: F401


class WebUser(FastHttpUser):
    wait_time = constant(float(os.environ.get("WEB_WAIT_S", "0.05")))

    @task
    def item(self) -> None:
        self.client.get("/item")


if os.environ.get("WEB_LOGIN_STUB") == "1":

    @events.init.add_listener
    def _login(environment: Any, **_kwargs: Any) -> None:
        if environment.web_ui is not None:
            environment.web_ui.app.secret_key = os.urandom(16)
            environment.web_ui.login_manager.user_loader(lambda _user_id: None)
