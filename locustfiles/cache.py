import reliability.plugin  # noqa: F401

# isort: split
# Template: Redis as a cache-aside store (copy and edit).
#   RELIABILITY_REDIS_URL=redis://127.0.0.1:6379/0 locust -f locustfiles/cache.py --headless -u 50 -t 2m
# RELIABILITY_CACHE_KEYS sets the key space (smaller = more hits), RELIABILITY_CACHE_TTL_S the TTL.
import logging
import os
import random
from typing import Any

from locust import between, events, task

from reliability.users.redis import RedisUser

KEYS = int(os.environ.get("RELIABILITY_CACHE_KEYS", "1000"))
TTL_S = int(os.environ.get("RELIABILITY_CACHE_TTL_S", "30"))
PAYLOAD = "x" * 256


class CacheUser(RedisUser):
    """Reads through the cache (a miss fills it), bumps counters and appends to a capped list."""

    wait_time = between(0.01, 0.1)

    @task(8)
    def read_through(self) -> None:
        key = f"item:{random.randrange(KEYS)}"
        if self.get(key) is None:
            self.command("SET", "SET", key, PAYLOAD, "EX", TTL_S)

    @task(1)
    def count(self) -> None:
        self.command("INCR", "INCR", f"counter:{random.randrange(10)}")

    @task(1)
    def append(self) -> None:
        self.command("LPUSH", "LPUSH", "events", PAYLOAD)
        self.command("LTRIM", "LTRIM", "events", 0, 999)


def log_hit_ratio(**_kwargs: Any) -> None:
    ratio = CacheUser.hit_ratio()
    if ratio is not None:
        logging.getLogger("cache").info("cache hit ratio (this process): %.1f %%", ratio * 100)


events.test_stop.add_listener(log_hit_ratio)
