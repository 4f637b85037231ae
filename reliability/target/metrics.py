"""Prometheus metrics of the target, on a registry of its own (never the process-global default).

A registry per app lets tests and embedders run several targets in one process without
"Duplicated timeseries" errors, and keeps /metrics to exactly what this target measures.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from reliability.target.breaker import BREAKER_STATE_CODE, BreakerState
from reliability.target.cache import CacheOutcome
from reliability.target.store import PoolUsage

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class TargetMetrics:
    """The target's counters and gauges; gauges read live state through callbacks at scrape time.

    Example::

        metrics = TargetMetrics(lambda: breaker.state, store.pool_usage)
        metrics.observe_request("/api/items/{id}", "GET", 200, 0.003)
        text = metrics.render()
    """

    def __init__(
        self,
        breaker_state: Callable[[], BreakerState],
        pool_usage: Callable[[], PoolUsage],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "reliability_target_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "reliability_target_request_duration_seconds",
            "HTTP request handling time, by route template and status.",
            ("route", "status"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.cache = Counter(
            "reliability_target_cache_lookups",
            "Item cache lookups, by outcome (hit, miss, bypass).",
            ("outcome",),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "reliability_target_in_flight_requests",
            "HTTP requests being handled right now.",
            registry=self.registry,
        )
        breaker = Gauge(
            "reliability_target_breaker_state",
            "Database circuit breaker: 0 closed, 1 half_open, 2 open.",
            registry=self.registry,
        )
        breaker.set_function(lambda: BREAKER_STATE_CODE[breaker_state()])
        in_use = Gauge(
            "reliability_target_db_pool_in_use",
            "Database connections checked out of the pool.",
            registry=self.registry,
        )
        in_use.set_function(lambda: pool_usage().in_use)
        size = Gauge(
            "reliability_target_db_pool_size",
            "Database connections open in the pool.",
            registry=self.registry,
        )
        size.set_function(lambda: pool_usage().size)
        # Pre-created so every outcome's rate starts at 0 instead of appearing on first use.
        self._cache_children = {outcome: self.cache.labels(outcome.value) for outcome in CacheOutcome}
        # labels() takes a lock and builds a key on every call; on the request path a dict lookup
        # of the children is measurably cheaper. Bounded: routes are templates, statuses few.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, duration_s: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            code = str(status)
            children = (self.requests.labels(route, method, code), self.latency.labels(route, code))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(duration_s)

    def observe_cache(self, outcome: CacheOutcome) -> None:
        self._cache_children[outcome].inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
