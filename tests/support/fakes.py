"""Fakes at our own seams. :class:`FakeClock` is what a ``clock=`` parameter takes in a test:
time stands still until the test sets or advances it, so windows, shapes and deadlines are
stepped instead of slept through.

Example::

    clock = FakeClock(1_000.0)
    store = WindowStore(clock=clock)
    clock.advance(0.5)
    assert clock() == 1_000.5
"""

from __future__ import annotations


class FakeClock:
    """A clock that reads ``now`` (seconds); ``advance`` (or ``sleep``, for a ``sleep=`` parameter)
    moves it on."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance
