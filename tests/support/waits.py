"""Waiting in tests, on the product's one polling loop (``reliability.faults.base.wait_until``,
which takes an injected clock and sleep).

* :func:`wait_until` returns the first truthy value of ``check`` and raises (``AssertionError``
  unless told otherwise) naming what it waited for when time runs out;
* :func:`seconds_until` is for tests that measure a recovery: how long it took, or None.

Example::

    row = wait_until(lambda: find_row(), 10, what="the SLA row", detail=lambda: log.read_text())
    took = seconds_until(lambda: redis_answers(port), 5.0)
    assert took is not None and took < 2.0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from reliability.faults.base import wait_until as poll

T = TypeVar("T")


def wait_until(check: Callable[[], T | None], timeout_s: float, *, interval_s: float = 0.05,
               what: str = "the condition", detail: Callable[[], str] | None = None,
               error: Callable[[str], Exception] = AssertionError) -> T:
    """Call ``check`` every ``interval_s`` until it returns something truthy, and return that.

    After ``timeout_s`` raise ``error`` with a message naming ``what``, the last value and
    ``detail()`` (a log tail, say).
    """
    last: list[T | None] = []

    def held() -> bool:
        last[:] = [check()]
        return bool(last[0])

    if poll(held, timeout_s, interval_s):
        value = last[0]
        assert value is not None  # it was truthy
        return value
    message = f"timed out after {timeout_s:g} s waiting for {what} (last: {last[0]!r})"
    if detail is not None:
        message += f"\n{detail()}"
    raise error(message)


def seconds_until(check: Callable[[], object], timeout_s: float, interval_s: float = 0.02) -> float | None:
    """Seconds until ``check()`` held, or None if it did not within ``timeout_s``."""
    started = time.monotonic()
    if poll(lambda: bool(check()), timeout_s, interval_s):
        return time.monotonic() - started
    return None


def elapsed_ms(action: Callable[[], object]) -> float:
    """How long ``action()`` took, in milliseconds."""
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000.0
