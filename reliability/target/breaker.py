"""A consecutive-failure circuit breaker around the database.

::

    closed --N consecutive failures--> open --cooldown elapsed--> half_open
      ^                                  ^                            |
      +------------- probe succeeds -----|------ probe fails ---------+

While open, calls fail fast (no database call) with the seconds left until the probe, which the
HTTP layer sends as ``Retry-After``. Half-open lets exactly one probe through; the rest fail fast
so a recovering database is not hit by the whole backlog at once.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from reliability.exceptions import TargetError

log = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    """Breaker states; the values are what /health and /metrics show."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


BREAKER_STATE_CODE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitOpenError(TargetError):
    """Raised instead of calling the database while the breaker is open."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"database circuit open; retry in {retry_after_s:.1f} s")


class CircuitBreaker:
    """Count consecutive failures; open after ``failure_threshold``, probe after ``cooldown_s``.

    Example::

        breaker = CircuitBreaker(failure_threshold=5, cooldown_s=5.0)
        probe = breaker.acquire()          # raises CircuitOpenError while open
        try:
            rows = await query()
        except StoreError:
            breaker.record_failure(probe)
            raise
        breaker.record_success(probe)
    """

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s > 0")
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._open = False
        self._opened_at = 0.0
        self._failures = 0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if not self._open:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def acquire(self) -> bool:
        """Admit a call or raise :class:`CircuitOpenError`; return True if the call is the probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.OPEN:
            raise CircuitOpenError(self._cooldown_s - (self._clock() - self._opened_at))
        if self._probe_in_flight:
            # Another request is probing; answer soon rather than pile onto a sick database.
            raise CircuitOpenError(1.0)
        self._probe_in_flight = True
        log.info("database breaker half-open: sending one probe")
        return True

    def record_success(self, probe: bool) -> None:
        if probe or not self._open:
            if self._open:
                log.info("database breaker closed: probe succeeded")
            self._open = False
            self._failures = 0
            self._probe_in_flight = False
        # A success from a call admitted before the breaker opened proves little: keep waiting for
        # the probe.

    def record_failure(self, probe: bool) -> None:
        if probe:
            self._trip()
        elif not self._open:
            self._failures += 1
            if self._failures >= self._threshold:
                self._trip()

    def release(self, probe: bool) -> None:
        """The admitted call neither succeeded nor failed (cancelled): free the probe slot."""
        if probe:
            self._probe_in_flight = False

    def _trip(self) -> None:
        # Only called on a real transition: closed -> open, or a failed half-open probe -> open.
        log.warning("database breaker open; probing again in %.1f s", self._cooldown_s)
        self._open = True
        self._opened_at = self._clock()
        self._probe_in_flight = False
