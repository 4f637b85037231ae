"""The per-app runtime state and the small helpers every handler shares.

Everything lives on the aiohttp application under :data:`STATE`, never in module globals, so two
targets in one process (tests, embedding) share nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from reliability.jsontypes import JsonValue
from reliability.target.auth import Authenticator
from reliability.target.breaker import CircuitBreaker
from reliability.target.cache import ResilientCache
from reliability.target.config import TargetConfig
from reliability.target.httpfault import FaultState
from reliability.target.metrics import TargetMetrics
from reliability.target.ratelimit import TokenBucket
from reliability.target.store import ItemStore, StoreError
from reliability.target.ws import WsHub

T = TypeVar("T")


@dataclass(frozen=True)
class TargetState:
    """The collaborators of one target app; the references are fixed, their contents live.

    Example::

        state = request.app[STATE]
        items = await state.db(lambda: state.store.list_items(10))
    """

    config: TargetConfig
    store: ItemStore
    cache: ResilientCache
    breaker: CircuitBreaker
    limiter: TokenBucket | None
    faults: FaultState
    auth: Authenticator
    metrics: TargetMetrics
    hub: WsHub
    clock: Callable[[], float] = time.monotonic

    async def db(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one store call through the circuit breaker (raises CircuitOpenError while open)."""
        probe = self.breaker.acquire()
        try:
            result = await call()
        except StoreError:
            self.breaker.record_failure(probe)
            raise
        except BaseException:
            # Cancelled or a bug: says nothing about the database, but must not hold the probe slot.
            self.breaker.release(probe)
            raise
        self.breaker.record_success(probe)
        return result


STATE = web.AppKey("reliability_target_state", TargetState)


class BadRequest(ValueError):
    """Bad client input; the message becomes the one-line ``error`` of a 400 response."""


class NotFound(LookupError):
    """No such resource; becomes a 404 with ``headers`` (e.g. ``X-Cache``) kept."""

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def retry_after(seconds: float) -> dict[str, str]:
    # Retry-After takes whole seconds; round up so a client never comes back too early.
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


async def read_json(request: web.Request) -> JsonValue:
    try:
        body: JsonValue = json.loads(await request.text())
        return body
    except (ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
