"""Operator routes: deep ``/health``, Prometheus ``/metrics`` and the ``/admin/faults`` API.

None of these is rate limited, authenticated as a user, or touched by injected faults: they are
how a load test observes and steers the target, so they must stay truthful while it suffers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Literal, TypedDict

from aiohttp import web

from reliability.masking import mask
from reliability.origins import OriginPolicy, is_json_content_type
from reliability.target.breaker import BreakerState
from reliability.target.cache import CacheUnavailable
from reliability.target.config import TargetConfig
from reliability.target.httpfault import parse_fault
from reliability.target.metrics import CONTENT_TYPE
from reliability.target.state import STATE, BadRequest, TargetState, json_error, read_json
from reliability.target.store import StoreError

log = logging.getLogger(__name__)

ADMIN_HEADER = "X-Admin-Token"
ADMIN_POLICY: web.AppKey[OriginPolicy] = web.AppKey("admin_policy", OriginPolicy)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


routes = web.RouteTableDef()


class ComponentJson(TypedDict):
    """One dependency in ``GET /health``."""

    status: Literal["up", "down"]
    latency_ms: float
    detail: str


def _component(up: bool, started: float, detail: str) -> ComponentJson:
    return {
        "status": "up" if up else "down",
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "detail": detail,
    }


async def _check_db(state: TargetState, timeout_s: float) -> ComponentJson:
    started = time.perf_counter()
    try:
        await state.store.ping(timeout_s)
    except StoreError as exc:
        return _component(False, started, mask(str(exc), state.config.secrets))
    return _component(True, started, state.store.description)


async def _check_cache(state: TargetState, timeout_s: float) -> ComponentJson:
    started = time.perf_counter()
    try:
        # The raw cache, not the resilient wrapper: health must report the truth, not the bypass.
        async with asyncio.timeout(timeout_s):
            await state.cache.cache.ping()
    except (CacheUnavailable, TimeoutError) as exc:
        detail = str(exc) or f"no answer within {timeout_s * 1000:.0f} ms"
        return _component(False, started, mask(detail, state.config.secrets))
    return _component(True, started, state.cache.description)


def overall_status(db_up: bool, cache_up: bool, breaker: BreakerState) -> str:
    """healthy = all up; degraded = cache down or breaker half-open; down = db down or breaker open."""
    if not db_up or breaker is BreakerState.OPEN:
        return "down"
    if not cache_up or breaker is BreakerState.HALF_OPEN:
        return "degraded"
    return "healthy"


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    timeout_s = state.config.health_timeout_ms / 1000.0
    db, cache = await asyncio.gather(_check_db(state, timeout_s), _check_cache(state, timeout_s))
    breaker = state.breaker.state
    status = overall_status(db["status"] == "up", cache["status"] == "up", breaker)
    body = {"status": status, "components": {"db": db, "cache": cache}, "breaker": breaker.value}
    return web.json_response(body, status=503 if status == "down" else 200)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def admin_policy(config: TargetConfig) -> OriginPolicy:
    """Who may call the admin API: its own Host names (plus ``allowed_hosts``), its own origin."""
    return OriginPolicy(config.host, extra_hosts=config.allowed_hosts)


def admin_denied(request: web.Request) -> web.Response | None:
    """Checked by the gateway before every admin route: the Host must name this target (DNS
    rebinding), a state change must not come from another origin's page and must be
    ``application/json``, and the admin token must match when one is set (a non-loopback target
    always has one)."""
    state = request.app[STATE]
    policy = request.app[ADMIN_POLICY]
    headers = request.headers
    problem = policy.host_problem(headers.get("Host"))
    if problem is None and request.method not in SAFE_METHODS:
        problem = policy.origin_problem(headers.get("Origin"), headers.get("Referer"), headers.get("Sec-Fetch-Site"),
                                        headers.get("Host"))
    if problem is not None:
        log.warning("admin API: refused %s %s: %s", request.method, request.path[:200], problem)
        return json_error(403, problem)
    if request.method in ("POST", "PUT", "PATCH") and not is_json_content_type(headers.get("Content-Type")):
        return json_error(415, "Content-Type must be application/json")
    expected = state.config.admin_token
    if expected is None:
        return None
    given = request.headers.get(ADMIN_HEADER, "")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return json_error(403, f"missing or wrong {ADMIN_HEADER}")


@routes.get("/admin/faults")
async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"fault": request.app[STATE].faults.describe()})


@routes.post("/admin/faults")
async def set_faults(request: web.Request) -> web.Response:
    try:
        spec = parse_fault(await read_json(request))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    state = request.app[STATE]
    state.faults.set(spec)
    log.info("http fault set: %s", spec)
    return web.json_response({"fault": state.faults.describe()})


@routes.delete("/admin/faults")
async def clear_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.faults.current() is not None:
        log.info("http fault cleared")
    state.faults.clear()
    return web.json_response({"fault": None})
