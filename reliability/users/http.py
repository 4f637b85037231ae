"""HTTP helpers: bearer-token login for the reference target's API (and APIs shaped like it)."""

from __future__ import annotations

import os
from typing import Any, Generic, TypeVar

import gevent
from locust import FastHttpUser
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession

from reliability.users._base import Backoff, ComponentContext

USER_ENV = "RELIABILITY_API_USER"
PASSWORD_ENV = "RELIABILITY_API_PASSWORD"
DEFAULT_CREDENTIAL = "demo"


SessionT = TypeVar("SessionT", bound=FastHttpSession | HttpSession)  # the user class's client


class TokenAuthMixin(Generic[SessionT]):
    """Log in once per user and send ``Authorization: Bearer <token>`` on every request.

    ``POST {login_path}`` with ``{"username", "password"}`` must answer ``{"token": "..."}``.
    Credentials come from the ``username`` / ``password`` class attributes, else the
    ``RELIABILITY_API_USER`` / ``RELIABILITY_API_PASSWORD`` environment variables, else
    ``demo`` / ``demo``; they are never logged (the login sample is named ``login``).

    :meth:`call` logs in again when there is no token (the login failed, or the server answered
    one of ``relogin_statuses``: 401, and 403 because the reference target answers 403 to a
    token it did not issue, e.g. after a restart), after a jittered backoff (0.1 s doubling to
    2 s), so a target that is down or rejecting tokens is not hammered with logins. Likewise,
    after a request got no HTTP answer at all (refused, reset, timed out) the next :meth:`call`
    waits its own backoff first: a dead target yields a few failures per second per user, not a
    tight loop. Works with ``FastHttpUser`` and ``HttpUser`` clients; :class:`ApiUser` is the
    ready-made FastHttpUser.
    """

    client: SessionT
    login_path: str = "/auth/login"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    relogin_statuses: tuple[int, ...] = (401, 403)
    _login_backoff: Backoff | None = None
    _link_backoff: Backoff | None = None

    def _credentials(self) -> tuple[str, str]:
        user = self.username or os.environ.get(USER_ENV) or DEFAULT_CREDENTIAL
        password = self.password or os.environ.get(PASSWORD_ENV) or DEFAULT_CREDENTIAL
        return user, password

    def _set_token(self, token: str | None) -> None:
        self.token = token
        header = f"Bearer {token}" if token else None
        client: FastHttpSession | HttpSession = self.client
        if isinstance(client, FastHttpSession):
            client.auth_header = header
        elif header:  # requests-based HttpSession
            client.headers["Authorization"] = header
        else:
            client.headers.pop("Authorization", None)

    def login(self) -> bool:
        """One ``login`` sample; True if a token was obtained (and is now sent on every request)."""
        if self._login_backoff is None:
            self._login_backoff = Backoff()
        user, password = self._credentials()
        token: str | None = None
        with self.client.post(self.login_path, json={"username": user, "password": password},
                              name="login", catch_response=True) as response:
            if response.status_code == 200:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                token = body.get("token") if isinstance(body, dict) else None
                if not isinstance(token, str) or not token:
                    token = None
                    response.failure("login answered without a token")
            elif not response.request_meta.get("exception"):
                response.failure(f"login answered HTTP {response.status_code}")
        self._set_token(token)
        if token is None:
            self._login_backoff.failed()
        else:
            self._login_backoff.succeeded()
        return token is not None

    def ensure_login(self) -> bool:
        """Log in if there is no token, after the backoff delay if the last login failed."""
        if self.token is not None:
            return True
        if self._login_backoff is not None:
            self._login_backoff.pause(gevent.sleep)
        return self.login()

    def call(self, method: str, path: str, name: str | None = None, **kwargs: Any) -> Any:
        """``self.client.request(...)`` after :meth:`ensure_login`; a 401/403 drops the token.

        The request is sent even if the login failed, so each endpoint records the outage.
        Returns what the client returns (a response, or a context manager with
        ``catch_response=True``).
        """
        if self._link_backoff is None:
            self._link_backoff = Backoff()
        self._link_backoff.pause(gevent.sleep)
        self.ensure_login()
        response = self.client.request(method, path, name=name, **kwargs)
        status = getattr(response, "status_code", None)
        if status:  # any HTTP answer means the target is reachable
            self._link_backoff.succeeded()
        else:  # 0 / None: no answer
            self._link_backoff.failed()
        if status in self.relogin_statuses:
            self._set_token(None)
        return response


class ApiUser(ComponentContext, TokenAuthMixin[FastHttpSession], FastHttpUser):
    """Abstract FastHttpUser that logs in to the target in ``on_start`` (component ``api``).

    Example::

        from locust import between, task
        from reliability.users.http import ApiUser

        class Shopper(ApiUser):
            wait_time = between(0.1, 0.5)

            @task
            def browse(self) -> None:
                self.call("GET", "/api/items?limit=20", name="/api/items")
    """

    abstract = True
    component: str = "api"

    def on_start(self) -> None:
        self.login()
