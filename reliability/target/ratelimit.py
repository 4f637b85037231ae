"""A global token bucket: ``rate_per_s`` tokens a second, holding at most one second's worth."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """Admit requests at ``rate_per_s`` on average with bursts up to ``burst`` requests.

    Example::

        bucket = TokenBucket(rate_per_s=100.0)      # burst defaults to 1 s worth = 100
        wait_s = bucket.take()
        if wait_s > 0:
            ...  # answer 429 with Retry-After: ceil(wait_s)
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self._rate = rate_per_s
        # At least one whole token, else a rate under 1/s could never admit anything.
        self._capacity = max(1.0, rate_per_s if burst is None else burst)
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def take(self) -> float:
        """Take one token: return 0.0 if admitted, else the seconds until a token is due."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate
