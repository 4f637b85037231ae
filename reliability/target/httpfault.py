"""HTTP-level faults the admin API switches on: added latency and injected error statuses.

One fault is active at a time (a new POST replaces it), which keeps inject / verify / revert for a
fault driver to one call each. ``ttl_s`` is a dead-man switch: if the driver dies before it
reverts, the fault removes itself.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from reliability.jsontypes import JsonObject, JsonValue

# Operator routes stay truthful under any fault, or nobody could observe or remove it.
PROTECTED_PREFIXES = ("/health", "/metrics", "/admin")
FIELDS = ("latency_ms", "error_ratio", "status", "route_prefix", "ttl_s")
MAX_LATENCY_MS = 600_000.0


@dataclass(frozen=True)
class HttpFaultSpec:
    """What to do to matching requests.

    Example::

        spec = parse_fault({"latency_ms": 200, "error_ratio": 0.1, "status": 503, "ttl_s": 60})
        spec.matches("/api/items/3")   # True: the default route_prefix is "/api"
    """

    latency_ms: float = 0.0
    error_ratio: float = 0.0
    status: int = 500
    route_prefix: str = "/api"
    ttl_s: float | None = None

    def matches(self, path: str) -> bool:
        if any(_under(path, prefix) for prefix in PROTECTED_PREFIXES):
            return False
        return _under(path, self.route_prefix)


def _under(path: str, prefix: str) -> bool:
    # Segment-aware, so "/api" covers "/api/items" but not "/apiary".
    stem = prefix.rstrip("/")
    return path == stem or path.startswith(stem + "/")


def _number(payload: JsonObject, name: str, default: float) -> float:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return float(value)


def parse_fault(payload: JsonValue) -> HttpFaultSpec:
    """Validate an admin POST body; raise ValueError with a one-line reason on bad input."""
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(map(str, unknown))}")
    latency_ms = _number(payload, "latency_ms", 0.0)
    if not 0.0 <= latency_ms <= MAX_LATENCY_MS:
        raise ValueError(f"latency_ms must be 0..{MAX_LATENCY_MS:.0f}")
    error_ratio = _number(payload, "error_ratio", 0.0)
    if not 0.0 <= error_ratio <= 1.0:
        raise ValueError("error_ratio must be 0..1")
    status = payload.get("status", 500)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError("status must be an integer 400..599")
    route_prefix = payload.get("route_prefix", "/api")
    if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
        raise ValueError("route_prefix must be a string starting with '/'")
    ttl_s: float | None = None
    if payload.get("ttl_s") is not None:
        ttl_s = _number(payload, "ttl_s", 0.0)
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
    return HttpFaultSpec(latency_ms, error_ratio, status, route_prefix, ttl_s)


class HttpFaultJson(TypedDict):
    """The active fault as ``GET /admin/faults`` shows it."""

    latency_ms: float
    error_ratio: float
    status: int
    route_prefix: str
    ttl_s: float | None
    expires_in_s: float | None


@dataclass(frozen=True)
class FaultAction:
    """What the middleware does to one request: sleep, then maybe answer ``status``."""

    delay_s: float
    status: int | None


class FaultState:
    """The active fault (if any) with its expiry, consulted once per request.

    Example::

        faults = FaultState()
        faults.set(parse_fault({"error_ratio": 1.0, "status": 503}))
        faults.action_for("/api/items")   # FaultAction(delay_s=0.0, status=503)
        faults.clear()
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._spec: HttpFaultSpec | None = None
        self._expires_at: float | None = None

    def set(self, spec: HttpFaultSpec) -> None:
        self._spec = spec
        self._expires_at = None if spec.ttl_s is None else self._clock() + spec.ttl_s

    def clear(self) -> None:
        self._spec = None
        self._expires_at = None

    def current(self) -> HttpFaultSpec | None:
        if self._expires_at is not None and self._clock() >= self._expires_at:
            self.clear()
        return self._spec

    def describe(self) -> HttpFaultJson | None:
        """The active fault as JSON, with the seconds left before it removes itself."""
        spec = self.current()
        if spec is None:
            return None
        return {"latency_ms": spec.latency_ms, "error_ratio": spec.error_ratio, "status": spec.status,
                "route_prefix": spec.route_prefix, "ttl_s": spec.ttl_s,
                "expires_in_s": None if self._expires_at is None else self._expires_at - self._clock()}

    def action_for(self, path: str) -> FaultAction | None:
        spec = self.current()
        if spec is None or not spec.matches(path):
            return None
        fail = spec.error_ratio > 0 and self._rng.random() < spec.error_ratio
        return FaultAction(spec.latency_ms / 1000.0, spec.status if fail else None)
