"""The item cache: Redis or an embedded dict, behind :class:`ResilientCache`, which never fails a request.

Cache-aside means the cache is an optimisation, so its failures must cost latency at most, never
a 5xx: any cache error turns the lookup into a *bypass* (serve from the database). After an error
the cache is skipped for ``retry_s`` so a hung Redis costs one short timeout per window instead of
one per request; the first call after the window reconnects.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from reliability.exceptions import TargetError
from reliability.masking import mask

log = logging.getLogger(__name__)

T = TypeVar("T")


class CacheUnavailable(TargetError):
    """The cache did not answer in time or at all."""


class CacheOutcome(enum.StrEnum):
    """How a lookup was served; also the ``X-Cache`` response header."""

    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"


class Cache(Protocol):
    """A string key-value cache with per-entry TTL. Every call may raise :class:`CacheUnavailable`."""

    description: str

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl_s: float) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    """The embedded cache: a dict with expiry times from an injected clock.

    Example::

        cache = MemoryCache()
        await cache.set("item:1", "{...}", ttl_s=30)
        await cache.get("item:1")    # "{...}" until 30 s have passed
    """

    description = "embedded in-memory cache"

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        if len(self._entries) >= self._max_entries and key not in self._entries:
            # Bounded like a Redis maxmemory policy; evicting the oldest insertion is good enough.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + ttl_s, value)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Redis with short socket timeouts and no client retries, so an outage surfaces at once.

    Example::

        cache = RedisCache("redis://localhost:6379/0", timeout_s=0.1)
        await cache.set("item:1", "{...}", ttl_s=30)
    """

    def __init__(self, url: str, timeout_s: float = 0.1) -> None:
        self.description = f"redis {mask(url)}"
        self._timeout_s = timeout_s
        # redis-py retries by default; a retry would double the time a dead Redis costs a request.
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    async def _call(self, op: Awaitable[T]) -> T:
        try:
            # The socket timeouts should fire first; this is the backstop for anything they miss.
            async with asyncio.timeout(self._timeout_s * 2):
                return await op
        except (RedisError, OSError, TimeoutError) as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc

    async def get(self, key: str) -> str | None:
        # decode_responses=True makes every reply a str; the client's types cannot express that.
        value = await self._call(self._client.get(key))
        return value if value is None or isinstance(value, str) else value.decode()

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        await self._call(self._client.set(key, value, px=max(1, round(ttl_s * 1000))))

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete(key))

    async def ping(self) -> None:
        await self._call(self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class CacheLookup:
    """A lookup's value (None unless a hit) and how it was served."""

    value: str | None
    outcome: CacheOutcome


class ResilientCache:
    """Wrap a :class:`Cache` so errors become bypasses and a failing cache is skipped for a while.

    Example::

        cache = ResilientCache(RedisCache(url), retry_s=0.5)
        found = await cache.get("item:1")   # CacheLookup(value=None, outcome=CacheOutcome.BYPASS) if Redis is down
    """

    def __init__(self, cache: Cache, retry_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self._retry_s = retry_s
        self._clock = clock
        self._skip_until: float | None = None

    @property
    def description(self) -> str:
        return self.cache.description

    def _usable(self) -> bool:
        return self._skip_until is None or self._clock() >= self._skip_until

    def _failed(self, exc: CacheUnavailable) -> None:
        if self._skip_until is None:
            log.warning("cache unavailable, bypassing it: %s", exc)
        self._skip_until = self._clock() + self._retry_s

    def _recovered(self) -> None:
        if self._skip_until is not None:
            log.info("cache available again")
            self._skip_until = None

    async def _attempt(self, op: Callable[[], Awaitable[T]], always: bool = False) -> tuple[bool, T | None]:
        if not always and not self._usable():
            return False, None
        try:
            result = await op()
        except CacheUnavailable as exc:
            self._failed(exc)
            return False, None
        self._recovered()
        return True, result

    async def get(self, key: str) -> CacheLookup:
        ok, value = await self._attempt(lambda: self.cache.get(key))
        if not ok:
            return CacheLookup(None, CacheOutcome.BYPASS)
        return CacheLookup(value, CacheOutcome.HIT if value is not None else CacheOutcome.MISS)

    async def set(self, key: str, value: str, ttl_s: float) -> bool:
        ok, _ = await self._attempt(lambda: self.cache.set(key, value, ttl_s))
        return ok

    async def delete(self, key: str) -> bool:
        """Invalidate ``key``; if the cache is down the stale entry lives at most its TTL."""
        # Tried even inside the skip window: a skipped invalidation would serve stale data for a
        # whole TTL, which is worse than one short timeout on a write.
        ok, _ = await self._attempt(lambda: self.cache.delete(key), always=True)
        return ok
