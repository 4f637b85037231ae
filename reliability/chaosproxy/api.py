"""The HTTP API: the subset of Toxiproxy's that fault drivers use, with its JSON shapes, status
codes and error bodies (``{"error": "...", "status": 404}``), so Toxiproxy clients work unchanged.

=========================================  ===================================================
``GET /version``                           ``{"version": "..."}``
``GET /proxies``                           every proxy by name, with its toxics
``POST /proxies``                          create: name, listen, upstream, enabled (201; 409)
``POST /populate``                         create or replace a list (201, ``{"proxies": [...]}``)
``GET /proxies/{p}``                       one proxy
``POST|PATCH /proxies/{p}``                update listen, upstream, enabled (``false`` = down)
``DELETE /proxies/{p}``                    delete (204)
``GET /proxies/{p}/toxics``                its toxics
``POST /proxies/{p}/toxics``               add a toxic (200; 409 if the name is taken)
``GET /proxies/{p}/toxics/{t}``            one toxic
``POST|PATCH /proxies/{p}/toxics/{t}``     update attributes, toxicity
``DELETE /proxies/{p}/toxics/{t}``         remove (204)
``POST /reset``                            enable every proxy, remove every toxic (204)
=========================================  ===================================================

Our extensions, ignored by a real Toxiproxy: ``ttl_s`` on a toxic (it removes itself that long
after its last create/update) and on a proxy update with ``enabled: false`` (it comes back up by
itself); ``"protocol": "http"`` on a proxy and the ``http_error`` toxic type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from reliability import __version__
from reliability.chaosproxy.proxy import ProxyCollection
from reliability.chaosproxy.toxics import ApiError, parse_toxic, update_toxic
from reliability.chaosproxy.wire import ErrorJson, PopulateJson, ProxyJson, ToxicJson, VersionJson
from reliability.jsontypes import JsonValue
from reliability.origins import OriginPolicy, is_json_content_type

PROXIES: web.AppKey[ProxyCollection] = web.AppKey("proxies", ProxyCollection)
POLICY: web.AppKey[OriginPolicy] = web.AppKey("origin_policy", OriginPolicy)
log = logging.getLogger("reliability.chaosproxy")
VERSION = f"reliability-proxy {__version__}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = VersionJson | ErrorJson | ProxyJson | dict[str, ProxyJson] | PopulateJson | ToxicJson | list[ToxicJson]
"""What the API answers with, by route (see the table above)."""


def _json(data: Answer, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError and unknown routes become Toxiproxy-style JSON errors."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _json({"error": exc.message, "status": exc.status}, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"error": exc.reason, "status": exc.status}, exc.status)


async def _body(request: web.Request) -> JsonValue:
    raw = await request.read()
    if raw and not is_json_content_type(request.headers.get("Content-Type")):
        raise ApiError(415, "bad request body: Content-Type must be application/json")
    try:
        body: JsonValue = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"bad request body: {exc}") from None
    except RecursionError:
        raise ApiError(400, "bad request body: JSON nested too deeply") from None
    return body


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The API's own Host names only (DNS rebinding), and no state change from another origin's
    page (a cross-site form could otherwise create proxies and toxics); see reliability.origins."""
    policy = request.app.get(POLICY)
    if policy is not None:
        headers = request.headers
        problem = policy.host_problem(headers.get("Host"))
        if problem is None and request.method not in ("GET", "HEAD", "OPTIONS"):
            problem = policy.origin_problem(headers.get("Origin"), headers.get("Referer"),
                                            headers.get("Sec-Fetch-Site"), headers.get("Host"))
        if problem is not None:
            log.warning("refused %s %s: %s", request.method, request.path[:200], problem)
            return _json({"error": problem, "status": 403}, 403)
    return await handler(request)


routes = web.RouteTableDef()


@routes.get("/version")
async def version(_request: web.Request) -> web.Response:
    return _json({"version": VERSION})


@routes.get("/proxies")
async def proxy_index(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    now = proxies.now()
    return _json({name: proxy.to_json(now) for name, proxy in proxies.proxies.items()})


@routes.post("/proxies")
async def proxy_create(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    proxy = await proxies.add(await _body(request))
    return _json(proxy.to_json(proxies.now()), 201)


@routes.post("/populate")
async def populate(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    done = await proxies.populate(await _body(request))
    now = proxies.now()
    return _json({"proxies": [proxy.to_json(now) for proxy in done]}, 201)


@routes.get("/proxies/{proxy}")
async def proxy_show(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    return _json(proxies.get(request.match_info["proxy"]).to_json(proxies.now()))


async def proxy_update(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    proxy = await proxies.update(request.match_info["proxy"], await _body(request))
    return _json(proxy.to_json(proxies.now()))


@routes.delete("/proxies/{proxy}")
async def proxy_delete(request: web.Request) -> web.Response:
    await request.app[PROXIES].remove(request.match_info["proxy"])
    return web.Response(status=204)


@routes.get("/proxies/{proxy}/toxics")
async def toxic_index(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    now = proxies.now()
    return _json([t.to_json(now) for t in proxies.get(request.match_info["proxy"]).toxics])


@routes.post("/proxies/{proxy}/toxics")
async def toxic_create(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    proxy = proxies.get(request.match_info["proxy"])
    now = proxies.now()
    toxic = parse_toxic(await _body(request), now, http_proxy=proxy.protocol == "http")
    proxy.add_toxic(toxic)
    return _json(toxic.to_json(now))


@routes.get("/proxies/{proxy}/toxics/{toxic}")
async def toxic_show(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    proxy = proxies.get(request.match_info["proxy"])
    return _json(proxy.toxic(request.match_info["toxic"]).to_json(proxies.now()))


async def toxic_update(request: web.Request) -> web.Response:
    proxies = request.app[PROXIES]
    proxy = proxies.get(request.match_info["proxy"])
    toxic = proxy.toxic(request.match_info["toxic"])
    now = proxies.now()
    update_toxic(toxic, await _body(request), now)
    proxy.toxic_updated()
    return _json(toxic.to_json(now))


@routes.delete("/proxies/{proxy}/toxics/{toxic}")
async def toxic_delete(request: web.Request) -> web.Response:
    request.app[PROXIES].get(request.match_info["proxy"]).remove_toxic(request.match_info["toxic"])
    return web.Response(status=204)


@routes.post("/reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[PROXIES].reset()
    return web.Response(status=204)


def build_api(proxies: ProxyCollection, policy: OriginPolicy | None = None) -> web.Application:
    """The API application over ``proxies``; ``policy`` (default: a loopback API's) says which
    Host names and origins it answers."""
    app = web.Application(middlewares=[same_origin, api_errors])
    app[PROXIES] = proxies
    app[POLICY] = policy if policy is not None else OriginPolicy("127.0.0.1")
    app.add_routes(routes)
    for method in ("POST", "PATCH"):
        app.router.add_route(method, "/proxies/{proxy}", proxy_update)
        app.router.add_route(method, "/proxies/{proxy}/toxics/{toxic}", toxic_update)
    return app
