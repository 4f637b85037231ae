"""Intended start times: how a scheduler tells the plugin when a task *should* have started.

A closed-model user waits on a stalled request and sends nothing else, so the stall hides its own
evidence (coordinated omission). A scheduler that knows when the next task is due marks it on the
user's greenlet; the plugin's request listener then measures the task's first request from that
intended start (the start lag included) and, for a user with a fixed interval, back-fills the
requests a stall prevented (see ``WindowStore.record_request``). The measured latency is kept too.

The API for schedulers (an arrival-rate shape, a custom wait time)::

    from reliability.pacing import intended_start_api, mark_intended_start

    mark_intended_start(due_epoch_s)                   # open model: latency counts from due_epoch_s
    mark_intended_start(due_epoch_s, interval_s=0.1)   # paced user: also back-fill a stall

    intended_start = intended_start_api(environment)   # tells the plugin to look for marks
    with intended_start(due_epoch_s):                  # in the user's greenlet, around one task
        task(user)

Call it in the greenlet that will run the task (or pass ``greenlet=``), before the task starts.
The mark holds until the next request of that greenlet consumes its start; the interval stays
until replaced. Nothing is recorded differently unless the plugin was told to look for marks:
:func:`pace_user_classes` does that for Locust's own schedules, a scheduler of its own calls
``plugin.expect_intended_starts()`` once (generators only: local runner or worker).

Locust's ``constant_pacing``, ``constant_throughput`` and ``poisson`` wait times are recognised on
user classes and wrapped (:func:`pace_user_classes`): the intended start of the next task is when
the wait returns, the interval is the pacing (poisson: the mean gap ``1/rate``, as HdrHistogram's
expected interval). ``between`` and ``constant`` are think times, not schedules: their users are
reported as measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from gevent import getcurrent
from greenlet import GreenletExit
from greenlet import greenlet as RawGreenlet

if TYPE_CHECKING:
    from locust import User
    from locust.env import Environment

MARK_ATTR = "reliability_intended"
_WAIT_MODULE = "locust.user.wait_time"


class IntendedStart:
    """The mark a scheduler leaves on a greenlet: ``start_s`` (epoch s, consumed by the next
    request), ``interval_s`` (the user's schedule interval, None for an open-model arrival) and
    ``lag_from_s`` (where the generator's own start lag counts from; None: ``start_s``)."""

    __slots__ = ("start_s", "interval_ms", "lag_from_s")

    def __init__(self, start_s: float | None, interval_s: float | None, lag_from_s: float | None = None) -> None:
        self.start_s = start_s
        self.interval_ms = None if interval_s is None else interval_s * 1000.0
        self.lag_from_s = lag_from_s


def mark_intended_start(start_s: float, interval_s: float | None = None, greenlet: RawGreenlet | None = None,
                        lag_from_s: float | None = None) -> None:
    """Say that the next task of ``greenlet`` (default: the current one) was due at ``start_s``
    (epoch seconds, ``time.time()``); ``interval_s`` > 0 for a user that repeats every interval.

    Latency always counts from ``start_s``. ``lag_from_s`` moves the origin of the *generator's*
    start lag (the trust signal) later: an open-model arrival that waited for a free user waited on
    the target's slowness, which is latency, not the generator failing its schedule."""
    if interval_s is not None and not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    target = getcurrent() if greenlet is None else greenlet
    mark = target.__dict__.get(MARK_ATTR)
    if mark is None:
        setattr(target, MARK_ATTR, IntendedStart(start_s, interval_s, lag_from_s))
    else:
        mark.start_s = start_s
        mark.interval_ms = None if interval_s is None else interval_s * 1000.0
        mark.lag_from_s = lag_from_s


@contextmanager
def intended_start(start_s: float, lag_from_s: float | None = None) -> Iterator[None]:
    """Mark the current greenlet's next task as due at ``start_s`` (epoch s) for the block; the mark
    is cleared after it, so a task that made no request leaves nothing for the next one.
    ``lag_from_s``: see :func:`mark_intended_start`."""
    mark_intended_start(start_s, lag_from_s=lag_from_s)
    try:
        yield
    except GreenletExit:  # killed mid-task at the stop: the mark stays for held_at_stop
        raise
    except BaseException:
        _clear_mark()
        raise
    else:
        _clear_mark()


def _clear_mark() -> None:
    mark = getcurrent().__dict__.get(MARK_ATTR)
    if mark is not None:
        mark.start_s = None


def pending_marks(greenlets: Iterable[object], now_s: float) -> list[tuple[IntendedStart, float]]:
    """The marks of ``greenlets`` whose task was due before ``now_s`` and whose first request has
    not completed (the mark is not consumed): ``(mark, start_s)``. Taken when the test is stopping,
    before Locust kills the users; :func:`still_pending` then keeps those the kill cut short."""
    found: list[tuple[IntendedStart, float]] = []
    for g in greenlets:
        mark = getattr(g, "__dict__", {}).get(MARK_ATTR)
        if mark is not None and mark.start_s is not None and mark.start_s < now_s:
            found.append((mark, mark.start_s))
    return found


def still_pending(marks: Iterable[tuple[IntendedStart, float]]) -> list[float]:
    """The intended starts of ``marks`` still unconsumed once the users stopped: those tasks' first
    requests never completed (a task that finished meanwhile consumed or replaced its mark)."""
    return [start for mark, start in marks if mark.start_s == start]


def intended_start_api(environment: Environment) -> Callable[[float, float | None], AbstractContextManager[None]]:
    """:func:`intended_start`, after telling ``environment``'s plugin (if installed) to read marks.
    For open-model schedulers on a load generator: no interval, so nothing is back-filled."""
    plugin = getattr(environment, "reliability", None)
    expect = getattr(plugin, "expect_intended_starts", None)
    if expect is not None:
        expect()
    return intended_start


def locust_pacing_s(wait_time: object) -> float | None:
    """The schedule interval (s) of one of Locust's scheduling wait times, else None (``wait_time``:
    whatever a user class holds there)."""
    code = getattr(wait_time, "__code__", None)
    if getattr(wait_time, "__module__", None) != _WAIT_MODULE or code is None:
        return None
    closure = getattr(wait_time, "__closure__", None) or ()
    cells = dict(zip(code.co_freevars, (c.cell_contents for c in closure), strict=True))
    qualname = getattr(wait_time, "__qualname__", "")
    if qualname.startswith("constant_pacing.") and isinstance(cells.get("wait_time"), int | float):
        value = float(cells["wait_time"])
        return value if value > 0 else None
    if qualname.startswith("poisson.") and isinstance(cells.get("rate"), int | float) and cells["rate"] > 0:
        return 1.0 / float(cells["rate"])
    return None


def paced(wait_time: Callable[[User], float], interval_s: float) -> Callable[[User], float]:
    """Wrap a user's scheduling wait time so each wait marks the next task's intended start."""

    def wait(user: User) -> float:
        wait_s = wait_time(user)
        mark_intended_start(time.time() + wait_s, interval_s)
        return wait_s

    wait.reliability_pacing_s = interval_s  # type: ignore[attr-defined]
    wait.reliability_original = wait_time  # type: ignore[attr-defined]
    return wait


def pace_user_classes(user_classes: Iterable[type]) -> dict[str, float]:
    """Wrap the scheduling wait times of ``user_classes`` (idempotent); returns the paced classes
    and their intervals. Classes with think times (``between``, ``constant``) are left alone."""
    found: dict[str, float] = {}
    for cls in user_classes:
        current = cls.__dict__.get("wait_time", getattr(cls, "wait_time", None))
        interval = getattr(current, "reliability_pacing_s", None)
        if interval is None:
            interval = locust_pacing_s(current)
            if interval is None:
                continue
            cls.wait_time = paced(current, interval)  # type: ignore[attr-defined]
        found[cls.__name__] = float(interval)
    return found
