"""Locust's ``EventHook`` as this package uses it: Locust leaves its methods unannotated, so calls
go through this protocol (Locust's hooks fit it structurally) and stay type-checked.

Example::

    listen(environment.events.test_stop, on_test_stop)
    hook: Hook = environment.events.request
    hook.fire(request_type="ARRIVAL", name="dropped", response_time=1.0, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Hook(Protocol):
    """A Locust ``EventHook``: listeners are called with the event's keyword arguments."""

    def add_listener(self, handler: Callable[..., None]) -> object: ...

    def fire(self, **kwargs: object) -> None: ...


def listen(hook: Hook, handler: Callable[..., None]) -> None:
    """Add ``handler`` to Locust's ``hook``."""
    hook.add_listener(handler)
