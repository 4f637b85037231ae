"""Redis probe: ``PING``, then ``INFO``: memory, hit ratio, clients.

* down: no connection or no ``PONG``;
* degraded: ``used_memory`` reaches ``max_memory_ratio`` of ``maxmemory`` (when one is set),
  ``connected_clients`` reaches ``max_clients_ratio`` of ``maxclients``, or the hit ratio since
  the previous check falls below ``min_hit_ratio`` (when set and there were lookups);
* healthy otherwise. The data carries ``used_memory_bytes``, ``maxmemory_bytes``,
  ``memory_ratio``, ``hit_ratio`` (since the previous check, else since the server started),
  ``connected_clients`` and ``maxclients``.

No retries (redis-py retries by default, which would stretch a probe far past its timeout).

Example::

    probe = RedisProbe(RedisProbeSpec(type="redis", url="redis://127.0.0.1:6379/0"), "cache")
    measure(probe, timeout_s=0.8).data["hit_ratio"]
"""

from __future__ import annotations

from collections.abc import Mapping

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from reliability.health.base import Deadline, Finding, Status
from reliability.health.spec import RedisProbeSpec
from reliability.jsontypes import JsonValue

#: ``INFO`` as redis-py parses it: numbers, strings, and a mapping for lines such as ``db0``
RedisInfo = Mapping[str, JsonValue]


def _count(info: RedisInfo, key: str) -> int:
    """An integer field of ``INFO`` (0 when absent); ValueError for one that is not a number."""
    value = info.get(key, 0)
    if isinstance(value, int | float | str):
        return int(value)
    raise ValueError(f"INFO {key}: expected a number, got {type(value).__name__}")


def grade_info(info: RedisInfo, previous: tuple[int, int] | None, spec: RedisProbeSpec) -> Finding:
    """The finding for one ``INFO`` answer; ``previous`` is the last (hits, misses) seen."""
    used = _count(info, "used_memory")
    limit = _count(info, "maxmemory")
    clients = _count(info, "connected_clients")
    max_clients = _count(info, "maxclients")
    hits, misses = _count(info, "keyspace_hits"), _count(info, "keyspace_misses")
    d_hits, d_misses = (hits, misses) if previous is None else (hits - previous[0], misses - previous[1])
    if d_hits < 0 or d_misses < 0:  # the server restarted: counters began again
        d_hits, d_misses = hits, misses
    lookups = d_hits + d_misses
    hit_ratio = d_hits / lookups if lookups else None
    memory_ratio = used / limit if limit else None
    data = {
        "used_memory_bytes": used, "maxmemory_bytes": limit,
        "memory_ratio": None if memory_ratio is None else round(memory_ratio, 4),
        "hit_ratio": None if hit_ratio is None else round(hit_ratio, 4), "lookups": lookups,
        "connected_clients": clients, "maxclients": max_clients,
    }
    detail = (f"memory {used / 1e6:.1f} MB" + (f" of {limit / 1e6:.1f} MB" if limit else "")
              + f", clients {clients}" + (f"/{max_clients}" if max_clients else "")
              + ("" if hit_ratio is None else f", hit ratio {hit_ratio:.0%}"))
    problems = []
    if memory_ratio is not None and memory_ratio >= spec.max_memory_ratio:
        problems.append(f"memory at {memory_ratio:.0%} of maxmemory")
    if max_clients and clients / max_clients >= spec.max_clients_ratio:
        problems.append(f"clients at {clients / max_clients:.0%} of maxclients")
    if spec.min_hit_ratio is not None and hit_ratio is not None and hit_ratio < spec.min_hit_ratio:
        problems.append(f"hit ratio {hit_ratio:.0%} below {spec.min_hit_ratio:.0%}")
    return Finding.graded(problems, detail, data)


class RedisProbe:
    """PING and INFO within the deadline; see the module docstring."""

    kind = "redis"

    def __init__(self, spec: RedisProbeSpec, target: str) -> None:
        self.spec = spec
        self._url = spec.url.get_secret_value()
        self.target = target
        self._previous: tuple[int, int] | None = None

    def check(self, deadline: Deadline) -> Finding:
        timeout_s = deadline.remaining_s()
        client = redis.Redis.from_url(self._url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                      retry=Retry(NoBackoff(), 0), health_check_interval=0)
        try:
            if not client.ping():
                return Finding(Status.DOWN, "PING did not answer PONG")
            deadline.remaining_s()
            info: RedisInfo = client.info()
        finally:
            client.close()
        finding = grade_info(info, self._previous, self.spec)
        self._previous = (_count(info, "keyspace_hits"), _count(info, "keyspace_misses"))
        return finding

    def close(self) -> None:
        self._previous = None
