"""The fault interface and the small pieces every mechanism shares.

A fault is *injected*, later *reverted* (idempotent, safe after a failed or missing inject), and
then *verified*: is the backend healthy again? Faults whose backend allows it carry a dead-man's
timeout (``dead_man_s``): the backend drops the fault by itself that long after we stop renewing
it, so even a SIGKILLed master leaves nothing broken. While a fault is held, a :class:`Lease`
renews that timeout in the background.

Example::

    fault = build_fault(spec, "redis-outage")   # see reliability.faults
    fault.inject()
    try:
        ...                                     # measure under the fault
    finally:
        fault.revert()
    print(fault.verify())                       # FaultCheck(healthy=True, detail='PING ok', latency_ms=0.4)

This module imports neither locust nor gevent. Blocking I/O is fine in faults: the Locust master
is gevent-patched and the drivers used here cooperate with it; every network call is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reliability.masking import mask, passwords_in

# How often a lease renews relative to the dead-man's timeout: two renewals can fail in a row
# before the backend gives up on the fault.
RENEW_FRACTION = 1.0 / 3.0


@dataclass(frozen=True)
class FaultCheck:
    """The result of :meth:`Fault.verify` (or of a failed revert in :func:`revert_all`).

    ``detail`` is one line with secrets masked; ``latency_ms`` is how long the health probe took.

    Example::

        FaultCheck(healthy=True, detail="PING ok", latency_ms=0.42)
    """

    healthy: bool
    detail: str
    latency_ms: float | None = None


@runtime_checkable
class Fault(Protocol):
    """One injectable fault. Implementations live in this package, one module per mechanism.

    ``name`` is the instance name from the scenario ("redis-outage"), ``kind`` the registry key
    ("redis.pause"), ``dead_man_s`` how long the fault survives on its own if we die without
    reverting (None = it does not expire by itself).
    """

    name: str
    kind: str
    dead_man_s: float | None

    def inject(self) -> None:
        """Start the fault; raise FaultError (one-line message) on failure."""

    def revert(self) -> None:
        """Stop the fault. Idempotent; safe if inject never ran or half-ran."""

    def verify(self) -> FaultCheck:
        """Probe the backend: is it healthy again?"""

    # Optional, found with :func:`hold_check`: ``still_applied() -> str | None`` re-checks a held
    # fault on its data path (None while it is in effect, else one line why not), or
    # ``not_rechecked_because`` says why nothing can.


def one_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The first line of an exception's text (or its class name), with ``secrets`` masked.

    >>> one_line(ValueError("bad\\nmore"))
    'bad'
    """
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return mask(line, secrets)


def secrets_of(*urls: str | None) -> tuple[str, ...]:
    """Passwords inside URLs (``scheme://user:pw@host``) or libpq ``key=value`` DSNs.

    >>> secrets_of("redis://:hunter2@localhost:6379/0", "host=db password=s3cret", None)
    ('hunter2', 's3cret')
    """
    return tuple(dict.fromkeys(pw for url in urls for pw in passwords_in(url)))


def wait_until(
    check: Callable[[], bool],
    timeout_s: float,
    interval_s: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll ``check`` until it returns True or ``timeout_s`` passes; True if it held in time."""
    deadline = clock() + timeout_s
    while True:
        if check():
            return True
        if clock() >= deadline:
            return False
        sleep(interval_s)


def probe(what: str, call: Callable[[], str | None], secrets: Iterable[str] = (),
          clock: Callable[[], float] = time.perf_counter) -> FaultCheck:
    """Run one health probe and time it: healthy unless ``call`` raises.

    ``call`` returns an optional detail; ``what`` names the probe in the detail line.

    >>> probe("noop", lambda: "fine").detail
    'noop: fine'
    """
    started = clock()
    try:
        detail = call()
    except Exception as exc:
        return FaultCheck(False, f"{what}: {one_line(exc, secrets)}", (clock() - started) * 1000.0)
    return FaultCheck(True, f"{what}: {detail or 'ok'}", (clock() - started) * 1000.0)


class Lease:
    """Renews a fault's dead-man's timeout from a daemon thread until stopped.

    ``renew`` is called every ``interval_s``; an exception is kept in ``last_error`` and the
    lease goes on (the backend's timeout is the safety net). Under the gevent-patched Locust
    master the thread is a greenlet, which is what we want there.

    Example::

        lease = Lease(lambda: conn.execute("SELECT 1"), interval_s=10, name="pg-lock")
        lease.start()
        ...
        lease.stop()
    """

    def __init__(self, renew: Callable[[], object], interval_s: float, name: str) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._renew = renew
        self.interval_s = interval_s
        self.name = name
        self.renewals = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._renew()
                self.renewals += 1
            except Exception as exc:  # the backend's own timeout is the safety net
                self.last_error = one_line(exc)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop renewing and wait (bounded) for a renewal in progress to finish. Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)


def hold_check(fault: object) -> tuple[Callable[[], str | None] | None, str | None]:
    """How a held fault is re-verified on its data path: ``(fault.still_applied, None)``, or
    ``(None, why not)`` when the fault says why it cannot be (``not_rechecked_because``: webhook,
    shell, a kill by pid) or has no ``still_applied()`` (a custom fault).

    ``still_applied()`` returns None while the fault is in effect, else one line saying why not.
    """
    why = getattr(fault, "not_rechecked_because", None)
    if why:
        return None, str(why)
    check = getattr(fault, "still_applied", None)
    if not callable(check):
        return None, "the fault has no still_applied() check"
    return check, None


def renew_interval_s(dead_man_s: float) -> float:
    """How often to renew a lease whose backend timeout is ``dead_man_s``."""
    return max(0.05, dead_man_s * RENEW_FRACTION)
