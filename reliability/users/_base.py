"""Plumbing shared by the custom users: settings, reconnect backoff and the request event.

This module imports neither locust nor gevent, so its pieces can be tested in a plain interpreter.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from reliability.jsontypes import JsonData


class _RequestHook(Protocol):
    def fire(self, *, reverse: bool = False, **kwargs: object) -> None: ...


class _Events(Protocol):
    @property
    def request(self) -> _RequestHook: ...


class _Environment(Protocol):
    @property
    def events(self) -> _Events: ...


class ReportingUser(Protocol):
    """What :func:`fire_request` needs from a Locust user."""

    @property
    def environment(self) -> _Environment: ...

    def context(self) -> dict[str, JsonData]: ...


def setting(value: str | None, env_var: str, owner: str, attr: str,
            environ: Mapping[str, str] = os.environ) -> str:
    """The class attribute if set, else the environment variable; fails loudly if neither.

    The message names both places but never the value (DSNs carry passwords).
    """
    if value:
        return value
    from_env = environ.get(env_var, "")
    if from_env:
        return from_env
    raise ValueError(f"{owner}: set the class attribute `{attr}` or the environment variable {env_var}")


def user_setting(value: str | None, env_var: str, owner: str, attr: str) -> str:
    """:func:`setting` for a user's ``__init__``: a missing value stops the test with the message,
    as Locust's own ``FastHttpUser`` does without a host."""
    try:
        return setting(value, env_var, owner, attr)
    except ValueError as exc:
        from locust.exception import StopTest  # here: this module must not import locust

        raise StopTest(str(exc)) from None


class ComponentContext:
    """Adds ``{"component": <component>}`` to every sample's context (the SLA plugin groups by it)."""

    component: str = "other"

    def context(self) -> dict[str, JsonData]:
        return {"component": self.component}


class Backoff:
    """Bounded, jittered exponential delay before reconnecting after a failure.

    No delay while healthy; after the n-th consecutive failure the delay is
    ``min(max_s, initial_s * factor**(n-1))`` scaled by a random factor in
    ``[1 - jitter_ratio, 1 + jitter_ratio]`` and capped at ``max_s``, so a down server is probed
    a few times a second at most, never in a tight loop, and users do not reconnect in lockstep.

    Example::

        backoff = Backoff(initial_s=0.1, max_s=2.0)
        backoff.failed()
        backoff.delay_s()   # about 0.1
        backoff.failed()
        backoff.delay_s()   # about 0.2
        backoff.succeeded()
        backoff.delay_s()   # 0.0
    """

    def __init__(self, initial_s: float = 0.1, max_s: float = 2.0, factor: float = 2.0,
                 jitter_ratio: float = 0.25, rand: Callable[[], float] = random.random) -> None:
        if not 0 < initial_s <= max_s or factor < 1 or not 0 <= jitter_ratio < 1:
            raise ValueError("Backoff needs 0 < initial_s <= max_s, factor >= 1, 0 <= jitter_ratio < 1")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter_ratio = jitter_ratio
        self._rand = rand
        self.failures = 0

    def failed(self) -> None:
        self.failures += 1

    def succeeded(self) -> None:
        self.failures = 0

    def delay_s(self) -> float:
        if self.failures == 0:
            return 0.0
        base = min(self.max_s, self.initial_s * self.factor ** min(self.failures - 1, 64))
        jitter = 1.0 + self.jitter_ratio * (2.0 * self._rand() - 1.0)
        return min(self.max_s, base * jitter)

    def pause(self, sleep: Callable[[float], object] = time.sleep) -> None:
        """Sleep for :meth:`delay_s` (nothing while healthy)."""
        delay = self.delay_s()
        if delay > 0:
            sleep(delay)


def fire_request(user: ReportingUser, request_type: str, name: str, start_time: float, start_perf: float,
                 *, response_length: int = 0, exception: BaseException | None = None,
                 context: Mapping[str, JsonData] | None = None, url: str | None = None,
                 end_perf: float | None = None) -> float:
    """Fire Locust's request event for a sample that began at ``start_perf`` (perf_counter).

    ``response_time`` is float milliseconds up to ``end_perf`` (default: now). The user's own
    ``context()`` is merged under ``context``. Returns the response time in ms.
    """
    response_time_ms = ((time.perf_counter() if end_perf is None else end_perf) - start_perf) * 1000.0
    merged = user.context()
    if context:
        merged = {**merged, **context}
    user.environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=response_time_ms,
        response_length=response_length,
        response=None,
        context=merged,
        exception=exception,
        start_time=start_time,
        url=url,
    )
    return response_time_ms
