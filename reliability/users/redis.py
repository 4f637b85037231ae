"""RedisUser: timed Redis commands with cache hit/miss accounting and no hidden retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeAlias
from urllib.parse import urlsplit

import locust  # noqa: F401  (before any driver: it patches the process for gevent)

# isort: split
import gevent
import redis
from locust import User
from locust.env import Environment
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT

from reliability.users._base import Backoff, ComponentContext, fire_request, user_setting

REQUEST_TYPE = "redis"
URL_ENV = "RELIABILITY_REDIS_URL"

#: a reply as redis-py returns it: bulk strings as bytes (str with ``decode_responses``), integers,
#: nil, arrays, and RESP3's doubles, booleans, maps and sets
RedisScalar: TypeAlias = bytes | str | int | float | None
RedisReply: TypeAlias = RedisScalar | list["RedisReply"] | dict[RedisScalar, "RedisReply"] | set[RedisScalar]


@dataclass
class CacheCounts:
    """Hits and misses seen by :meth:`RedisUser.get` for one user class in this process."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


def _length(value: RedisReply) -> int:
    if isinstance(value, bytes | str | list | tuple | dict | set):
        return len(value)
    return 0


class RedisUser(ComponentContext, User):
    """Abstract base for users that send Redis commands; each command is a Locust sample.

    Samples have request type ``redis``, the name you give, ``response_time`` in float ms
    (``perf_counter``), ``response_length`` = bytes of a string reply or items of a list reply,
    and ``context`` = ``{"component": "cache"}`` plus ``"cache": "hit" | "miss"`` for
    :meth:`get`.

    **No hidden retries**: redis-py retries failed commands with backoff by default (one failed
    call took 15 s), which would fold outages into slow successes. Here every client has
    ``retry=Retry(NoBackoff(), 0)`` and short socket timeouts, so one sample is one attempt.

    **Connections**: each user owns one client with one connection (``single_connection_client``,
    opened by the first command), like one application instance talking to Redis: there is no
    shared pool to wait for (and no per-command pool checkout), so command timings are Redis's
    alone. Use ``socket_timeout_s`` longer than any blocking
    command's own timeout (``BLPOP key 0.2``).

    **Failures**: a refused or dropped connection, a timeout or an error reply is a failed sample
    and the helper returns ``None``; the user keeps running. After a connection-level failure the
    next command first waits a jittered backoff (0.1 s doubling to 2 s), so a down server is not
    hammered in a tight loop; the first success resets it.

    **Cache accounting**: :meth:`get` counts hits and misses per user class;
    ``YourUser.cache_counts()`` and ``YourUser.hit_ratio()`` read them (this process only).

    **URL**: the ``url`` class attribute, else ``RELIABILITY_REDIS_URL``.

    Example::

        from locust import constant, task
        from reliability.users.redis import RedisUser

        class Reader(RedisUser):
            wait_time = constant(0.01)

            @task
            def read(self) -> None:
                if self.get("item:42") is None:
                    self.command("SET", "SET", "item:42", "value", "EX", 60)
    """

    abstract = True
    url: str | None = None
    socket_timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    component: str = "cache"

    _cache_counts: ClassVar[CacheCounts] = CacheCounts()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._cache_counts = CacheCounts()  # one tally per class, not one shared by all

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        url = user_setting(self.url, URL_ENV, type(self).__name__, "url")
        self._full_url = url
        parts = urlsplit(url)
        # scheme://host:port/db only: the URL may carry a password
        self._url = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or 6379}{parts.path or '/0'}"
        self._client: redis.Redis | None = None
        self._backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)

    @property
    def client(self) -> redis.Redis:
        """This user's client, connected on first use (raises ``redis.ConnectionError`` if down)."""
        if self._client is None:
            # single_connection_client connects in the constructor; that is why it is made here,
            # inside a timed command, and not in __init__ (a down Redis must not crash the user).
            self._client = redis.Redis.from_url(
                self._full_url,
                retry=Retry(NoBackoff(), 0),
                socket_timeout=self.socket_timeout_s,
                socket_connect_timeout=self.connect_timeout_s,
                health_check_interval=0,
                single_connection_client=True,
            )
        return self._client

    def on_stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @classmethod
    def cache_counts(cls) -> CacheCounts:
        return cls._cache_counts

    @classmethod
    def hit_ratio(cls) -> float | None:
        """Hits / (hits + misses) of :meth:`get` for this class in this process; None before any."""
        return cls._cache_counts.hit_ratio

    def command(self, name: str, *args: EncodableT) -> RedisReply:
        """Send ``args`` (e.g. ``"SET", "k", "v"``) as one sample named ``name``.

        Returns the reply, or ``None`` if the command failed (a nil reply is also ``None``).
        """
        reply, _ok = self._send(name, args, None)
        return reply

    def get(self, key: str, name: str = "GET") -> RedisReply:
        """``GET key`` as a sample whose context says ``cache: hit`` or ``miss``; counts both."""
        reply, ok = self._send(name, ("GET", key), self._record_hit)
        return reply if ok else None

    def _record_hit(self, reply: RedisReply) -> dict[str, str]:
        if reply is None:
            self._cache_counts.misses += 1
            return {"cache": "miss"}
        self._cache_counts.hits += 1
        return {"cache": "hit"}

    def _send(self, name: str, args: tuple[EncodableT, ...],
              classify: Callable[[RedisReply], dict[str, str]] | None) -> tuple[RedisReply, bool]:
        self._backoff.pause(gevent.sleep)
        start_time = time.time()
        start = time.perf_counter()
        try:
            reply: RedisReply = self.client.execute_command(*args)  # type: ignore[no-untyped-call]  # redis-py: untyped
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._backoff.failed()
            fire_request(self, REQUEST_TYPE, name, start_time, start, exception=exc, url=self._url)
            return None, False
        except redis.RedisError as exc:  # an error reply: the server is up
            self._backoff.succeeded()
            fire_request(self, REQUEST_TYPE, name, start_time, start, exception=exc, url=self._url)
            return None, False
        end = time.perf_counter()
        self._backoff.succeeded()
        context = classify(reply) if classify is not None else None
        fire_request(self, REQUEST_TYPE, name, start_time, start, response_length=_length(reply),
                     context=context, url=self._url, end_perf=end)
        return reply, True
