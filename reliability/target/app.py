"""Assemble and serve the reference target: :func:`build_app`, :func:`add_arguments`, :func:`run`.

Request path, outermost first::

    observe   metrics (count, latency, in-flight) and exceptions -> JSON errors
    gateway   rate limit (429) -> injected faults -> admin token (403) -> bearer token (401/403)
    handler   api.* (items, report, login), ops.* (health, metrics, admin), ws (/ws)

Two middlewares rather than one per concern: every middleware layer is a coroutine call on the
hot path, and the throughput of this process is what a load test measures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry

from reliability.exceptions import TargetError
from reliability.target import api, ops
from reliability.target.auth import Authenticator, AuthOutcome
from reliability.target.breaker import CircuitBreaker, CircuitOpenError
from reliability.target.cache import Cache, MemoryCache, RedisCache, ResilientCache
from reliability.target.config import TargetConfig, add_options, config_from_namespace
from reliability.target.httpfault import PROTECTED_PREFIXES, FaultState
from reliability.target.metrics import TargetMetrics
from reliability.target.pgstore import PostgresStore
from reliability.target.ratelimit import TokenBucket
from reliability.target.state import STATE, BadRequest, NotFound, TargetState, json_error, retry_after
from reliability.target.store import ItemStore, MemoryStore, StoreError, StoreTimeout
from reliability.target.ws import WsHub

log = logging.getLogger("reliability.target")

READY_PREFIX = "reliability-target listening on "
SHUTDOWN_TIMEOUT_S = 5.0


def _route_label(request: web.Request) -> str:
    # The route template, never the raw path: ids and junk URLs must not create new series.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# First path segments of the operator routes (never limited or faulted) and of the user API.
OPERATOR_SEGMENTS = frozenset(prefix.strip("/") for prefix in PROTECTED_PREFIXES)
ADMIN_SEGMENT = "admin"
API_SEGMENT = "api"


def _first_segment(path: str) -> str:
    # One split per request instead of a prefix test per route family.
    return path.split("/", 2)[1] if path.startswith("/") else ""


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    metrics = state.metrics
    started = time.perf_counter()
    metrics.in_flight.inc()
    status = 500
    try:
        response = await _answer(request, handler, state)
        status = response.status
        return response
    finally:
        metrics.in_flight.dec()
        metrics.observe_request(_route_label(request), request.method, status, time.perf_counter() - started)


async def _answer(request: web.Request, handler: Handler, state: TargetState) -> web.StreamResponse:
    """Run the handler and turn every expected exception into a one-line JSON error."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return json_error(400, str(exc))
    except NotFound as exc:
        return json_error(404, str(exc), exc.headers)
    except CircuitOpenError as exc:
        return json_error(503, "database circuit open", retry_after(exc.retry_after_s))
    except StoreTimeout as exc:
        return json_error(504, str(exc))
    except StoreError as exc:
        log.debug("store error: %s", exc)
        return json_error(503, "database unavailable")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, exc.reason, {k: v for k, v in exc.headers.items() if k == "Allow"})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")


@web.middleware
async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    path = request.path
    segment = _first_segment(path)
    if state.limiter is not None and segment not in OPERATOR_SEGMENTS:
        wait_s = state.limiter.take()
        if wait_s > 0:
            return json_error(429, "rate limit exceeded", retry_after(wait_s))
    action = state.faults.action_for(path)
    if action is not None:
        if action.delay_s > 0:
            await asyncio.sleep(action.delay_s)
        if action.status is not None:
            headers = retry_after(1.0) if action.status in (429, 503) else None
            return json_error(action.status, "injected fault", headers)
    if segment == ADMIN_SEGMENT:
        denied = ops.admin_denied(request)
        if denied is not None:
            return denied
    elif segment == API_SEGMENT:
        outcome = state.auth.check(request.headers.get("Authorization"))
        if outcome is AuthOutcome.MISSING:
            return json_error(401, "missing or malformed bearer token", {"WWW-Authenticate": "Bearer"})
        if outcome is AuthOutcome.UNKNOWN:
            return json_error(403, "unknown token")
    return await handler(request)


def _store_for(config: TargetConfig) -> ItemStore:
    if config.dsn is None:
        return MemoryStore(config.seed_items)
    return PostgresStore(
        config.dsn,
        timeout_s=config.db_timeout_ms / 1000.0,
        seed_items=config.seed_items,
        min_size=config.db_pool_min,
        max_size=config.db_pool_max,
        secrets=config.secrets,
    )


def _cache_for(config: TargetConfig, clock: Callable[[], float]) -> Cache:
    if config.redis_url is None:
        return MemoryCache(clock)
    return RedisCache(config.redis_url, timeout_s=config.cache_timeout_ms / 1000.0)


def build_app(
    config: TargetConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """Build the target as an aiohttp application; stores and pools open on app startup.

    Example::

        app = build_app(TargetConfig(port=0))
        web.run_app(app, port=8080)
    """
    store = _store_for(config)
    breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s, clock)
    state = TargetState(
        config=config,
        store=store,
        cache=ResilientCache(_cache_for(config, clock), config.cache_retry_s, clock),
        breaker=breaker,
        limiter=TokenBucket(config.rate_limit_rps, clock=clock) if config.rate_limit_rps > 0 else None,
        faults=FaultState(clock, rng),
        auth=Authenticator(dict(config.users), config.max_tokens),
        metrics=TargetMetrics(lambda: breaker.state, store.pool_usage, registry),
        hub=WsHub(wall_clock),
        clock=clock,
    )
    app = web.Application(middlewares=[observe, gateway])
    app[STATE] = state
    app[ops.ADMIN_POLICY] = ops.admin_policy(config)
    app.add_routes(api.routes)
    app.add_routes(ops.routes)
    app.router.add_get("/ws", state.hub.handle)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_websockets)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    await state.store.open()
    log.info("store: %s; cache: %s", state.store.description, state.cache.description)
    try:
        yield
    finally:
        await state.cache.cache.close()
        await state.store.close()


async def _close_websockets(app: web.Application) -> None:
    # Open sockets would otherwise hold shutdown for the whole shutdown timeout.
    await app[STATE].hub.close_all()


def format_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(config: TargetConfig, announce: Callable[[str], None] | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then close connections and pools; return the exit code."""
    runner = web.AppRunner(build_app(config), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        line = READY_PREFIX + format_url(config.host, port)
        if announce is None:
            print(line, flush=True)
        else:
            announce(line)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the target's flags to ``parser`` (each also read from a RELIABILITY_TARGET_* variable)."""
    add_options(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``reliability target``: serve until SIGINT/SIGTERM; 0 on a clean stop."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        config = config_from_namespace(args, os.environ)
        return asyncio.run(serve(config))
    except TargetError as exc:
        print(f"reliability target: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # most often the port is taken
        print(f"reliability target: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 130
