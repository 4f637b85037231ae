"""Handlers of ``/auth/login`` and the protected ``/api/*`` routes (items CRUD and the report).

``GET /api/items/{id}`` is cache-aside: look in the cache, else read the store and fill the cache;
writes update the store first, then invalidate. ``X-Cache`` says which path a read took.
"""

from __future__ import annotations

import math

from aiohttp import web

from reliability.jsontypes import JsonValue
from reliability.target.cache import CacheOutcome
from reliability.target.state import STATE, BadRequest, NotFound, json_error, read_json
from reliability.target.store import MAX_ITEM_ID

ITEM_FIELDS = frozenset({"name", "value"})
MAX_NAME_CHARS = 200
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


routes = web.RouteTableDef()


def cache_key(item_id: int) -> str:
    return f"item:{item_id}"


def parse_item(payload: JsonValue) -> tuple[str, float]:
    """Validate an item body ``{"name": str, "value": number}``; raise BadRequest naming the field."""
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    missing = sorted(ITEM_FIELDS - set(payload))
    if missing:
        raise BadRequest(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(payload) - ITEM_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    name, value = payload["name"], payload["value"]
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise BadRequest(f"field 'name' must be a string of 1..{MAX_NAME_CHARS} characters")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest("field 'value' must be a finite number")
    return name, float(value)


def _item_id(request: web.Request) -> int:
    """The path id; an id no item can have is a 404 without a query (and is not echoed back)."""
    raw = request.match_info["id"]
    item_id = int(raw) if raw.isdigit() and len(raw) <= 10 else 0
    if not 1 <= item_id <= MAX_ITEM_ID:
        raise NotFound("item not found")
    return item_id


def _missing(item_id: int, headers: dict[str, str] | None = None) -> NotFound:
    return NotFound(f"item {item_id} not found", headers)


@routes.post("/auth/login")
async def login(request: web.Request) -> web.Response:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    username, password = payload.get("username"), payload.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("fields 'username' and 'password' must be strings")
    token = request.app[STATE].auth.login(username, password)
    if token is None:
        return json_error(401, "invalid credentials")
    return web.json_response({"token": token})


@routes.get("/api/items")
async def list_items(request: web.Request) -> web.Response:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer 1..{MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer 1..{MAX_LIMIT}")
    state = request.app[STATE]
    items = await state.db(lambda: state.store.list_items(limit))
    return web.json_response({"items": [item.to_dict() for item in items]})


@routes.post("/api/items")
async def create_item(request: web.Request) -> web.Response:
    name, value = parse_item(await read_json(request))
    state = request.app[STATE]
    item = await state.db(lambda: state.store.create_item(name, value))
    return web.json_response(item.to_dict(), status=201, headers={"Location": f"/api/items/{item.id}"})


@routes.get("/api/items/{id}")
async def get_item(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item_id = _item_id(request)
    key = cache_key(item_id)
    found = await state.cache.get(key)
    state.metrics.observe_cache(found.outcome)
    headers = {"X-Cache": found.outcome.value}
    if found.value is not None:
        # The cached text is already the response body: no decode / encode on the hot path.
        return web.Response(text=found.value, content_type="application/json", headers=headers)
    item = await state.db(lambda: state.store.get_item(item_id))
    if item is None:
        raise _missing(item_id, headers)
    body = item.to_json()
    if found.outcome is CacheOutcome.MISS:
        await state.cache.set(key, body, state.config.cache_ttl_s)
    return web.Response(text=body, content_type="application/json", headers=headers)


@routes.put("/api/items/{id}")
async def update_item(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name, value = parse_item(await read_json(request))
    item_id = _item_id(request)
    item = await state.db(lambda: state.store.update_item(item_id, name, value))
    if item is None:
        raise _missing(item_id)
    await state.cache.delete(cache_key(item_id))
    return web.json_response(item.to_dict())


@routes.delete("/api/items/{id}")
async def delete_item(request: web.Request) -> web.Response:
    state = request.app[STATE]
    item_id = _item_id(request)
    if not await state.db(lambda: state.store.delete_item(item_id)):
        raise _missing(item_id)
    await state.cache.delete(cache_key(item_id))
    return web.json_response({"deleted": item_id})


@routes.get("/api/report")
async def report(request: web.Request) -> web.Response:
    state = request.app[STATE]
    result = await state.db(state.store.report)
    return web.json_response(result.to_dict())
