"""Proxies: a listener that forwards every accepted connection to its upstream through a
:class:`~reliability.chaosproxy.link.Link`, and the collection the HTTP API manages.

Disabling a proxy (``enabled: false``) closes its listener, so new connections are refused, and
closes the open ones, as Toxiproxy does. Our extension ``ttl_s`` on that update re-enables the
proxy by itself after that many seconds, and a toxic's ``ttl_s`` removes it: a driver that dies
mid-fault leaves nothing behind for longer than the ttl. :meth:`ProxyCollection.sweep` enforces
both, a few times a second.

Example::

    proxies = ProxyCollection()
    pg = await proxies.add({"name": "pg", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"})
    pg.add_toxic(parse_toxic({"type": "latency", "attributes": {"latency": 50}}, now=proxies.now()))
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from reliability.chaosproxy.link import Link
from reliability.chaosproxy.toxics import ApiError, Toxic, parse_ttl
from reliability.chaosproxy.wire import ProxyJson
from reliability.jsontypes import JsonValue
from reliability.origins import is_loopback

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
PROTOCOLS = ("tcp", "http")


def split_address(address: str) -> tuple[str | None, int]:
    """``host:port`` (``[v6]:port``, ``:port`` = all interfaces) as (host, port).

    >>> split_address("[::1]:8474"), split_address(":0")
    (('::1', 8474), (None, 0))
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ApiError(400, f"bad request body: address {address!r} is not host:port")
    host = host.strip("[]")
    return (host or None), int(port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Proxy:
    """One named proxy: listen address, upstream, toxics and the live connections."""

    def __init__(self, name: str, listen: str, upstream: str, protocol: str = "tcp",
                 clock: Callable[[], float] | None = None, rng: random.Random | None = None) -> None:
        split_address(listen)
        split_address(upstream)
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.protocol = protocol
        self.enabled = False
        self.toxics: list[Toxic] = []
        self.links: set[Link] = set()
        self.reenable_at: float | None = None
        self._clock = clock or asyncio.get_running_loop().time
        self._rng = rng or random.Random()
        self._server: asyncio.Server | None = None

    def to_json(self, now: float) -> ProxyJson:
        out: ProxyJson = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "protocol": self.protocol,
            "toxics": [t.to_json(now) for t in self.toxics],
        }
        if self.reenable_at is not None:
            out["reenable_in_s"] = round(max(0.0, self.reenable_at - now), 3)
        return out

    # ------------------------------------------------------------------------------ listener
    async def start(self) -> None:
        """Listen (no-op if enabled); the listen address then names the real port."""
        self.reenable_at = None
        if self.enabled:
            return
        host, port = split_address(self.listen)
        try:
            self._server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
        except OSError as exc:
            raise ApiError(500, f"listen tcp {self.listen}: {exc.strerror or exc}") from None
        sockname = self._server.sockets[0].getsockname()
        self.listen = join_address(host if host is not None else sockname[0], sockname[1])
        self.enabled = True

    async def stop(self, reenable_after_s: float | None = None) -> None:
        """Stop listening and close every connection (no-op if disabled)."""
        self.reenable_at = None if reenable_after_s is None else self._clock() + reenable_after_s
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self.links):
            link.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = split_address(self.upstream)
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            log.warning("proxy %s: cannot reach upstream %s: %s", self.name, self.upstream, exc)
            writer.close()
            return
        if not self.enabled:  # disabled while we were connecting
            upstream[1].close()
            writer.close()
            return
        link = Link((reader, writer), upstream, self._clock, self._rng, toxics=lambda: self.toxics,
                    http=self.protocol == "http", on_close=self.links.discard)
        self.links.add(link)
        await link.run()

    # ------------------------------------------------------------------------------ toxics
    def toxic(self, name: str) -> Toxic:
        for toxic in self.toxics:
            if toxic.name == name:
                return toxic
        raise ApiError(404, "toxic not found")

    def add_toxic(self, toxic: Toxic) -> None:
        if any(t.name == toxic.name for t in self.toxics):
            raise ApiError(409, "toxic already exists")
        self.toxics.append(toxic)
        self._changed()

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxic(name)
        self.toxics.remove(toxic)
        self._changed((toxic,))

    def reset_toxics(self) -> None:
        removed, self.toxics = tuple(self.toxics), []
        self._changed(removed)

    def toxic_updated(self) -> None:
        self._changed()

    def _changed(self, removed: tuple[Toxic, ...] = ()) -> None:
        for link in list(self.links):
            link.toxics_changed(removed)

    def expire(self, now: float) -> list[str]:
        """Remove toxics whose ttl ran out; the names removed."""
        gone = [t for t in self.toxics if t.expires_at is not None and t.expires_at <= now]
        for toxic in gone:
            self.remove_toxic(toxic.name)
        return [t.name for t in gone]


class ProxyCollection:
    """All proxies of one chaos proxy process, keyed by name (what the HTTP API manages)."""

    def __init__(self, clock: Callable[[], float] | None = None, rng: random.Random | None = None,
                 allow_remote: bool = False) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._clock = clock
        self._rng = rng or random.Random()
        self.allow_remote = allow_remote  # else listen and upstream must be loopback addresses

    def _check_local(self, listen: str, upstream: str) -> None:
        """Without ``--allow-remote`` a proxy neither listens beyond this machine nor forwards to
        another one: a stray API call must not open a relay into (or out of) the network."""
        for field, address in (("listen", listen), ("upstream", upstream)):
            host, _port = split_address(address)
            if not self.allow_remote and not is_loopback(host):
                raise ApiError(403, f"{field} {address!r} is not a loopback address; start the proxy with "
                                    "--allow-remote to listen on or forward to other hosts")

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ApiError(404, "proxy not found") from None

    @staticmethod
    def _fields(body: JsonValue) -> tuple[str, str, str, bool, str]:
        if not isinstance(body, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        name, upstream = body.get("name"), body.get("upstream")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "missing required field: name")
        if not isinstance(upstream, str) or not upstream:
            raise ApiError(400, "missing required field: upstream")
        listen = body.get("listen") or "127.0.0.1:0"
        enabled = body.get("enabled", True)
        protocol = body.get("protocol", "tcp")
        if not isinstance(listen, str) or not isinstance(enabled, bool) or protocol not in PROTOCOLS:
            raise ApiError(400, "bad request body: listen must be a string, enabled a boolean, protocol tcp|http")
        return name, str(listen), upstream, enabled, str(protocol)

    def _checked_fields(self, body: JsonValue) -> tuple[str, str, str, bool, str]:
        fields = self._fields(body)
        self._check_local(fields[1], fields[2])
        return fields

    async def add(self, body: JsonValue) -> Proxy:
        """``POST /proxies``: create (and by default start) a proxy; 409 if the name is taken."""
        name, listen, upstream, enabled, protocol = self._fields(body)
        if name in self.proxies:
            raise ApiError(409, "proxy already exists")
        self._check_local(listen, upstream)
        proxy = Proxy(name, listen, upstream, protocol, self.now, self._rng)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def populate(self, body: JsonValue) -> list[Proxy]:
        """``POST /populate``: create or replace several; one with the same addresses is kept."""
        if not isinstance(body, list):
            raise ApiError(400, "bad request body: expected a JSON array of proxies")
        checked = [self._checked_fields(item) for item in body]
        names = [c[0] for c in checked]
        if len(set(names)) != len(names):
            raise ApiError(400, "duplicate proxy name in populate request")
        out = []
        for item, (name, listen, upstream, enabled, protocol) in zip(body, checked, strict=True):
            old = self.proxies.get(name)
            if old is not None and (old.upstream, old.protocol) == (upstream, protocol) and \
                    split_address(listen)[1] in (0, split_address(old.listen)[1]):
                await (old.start() if enabled else old.stop())
                out.append(old)
                continue
            if old is not None:
                await self.remove(name)
            out.append(await self.add(item))
        return out

    async def update(self, name: str, body: JsonValue) -> Proxy:
        """``POST/PATCH /proxies/{name}``: listen, upstream, enabled, and our ``ttl_s`` (with
        ``enabled: false``: come back up by itself after that many seconds)."""
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        listen = body.get("listen", proxy.listen)
        upstream = body.get("upstream", proxy.upstream)
        enabled = body.get("enabled", proxy.enabled)
        if not isinstance(listen, str) or not isinstance(upstream, str) or not isinstance(enabled, bool):
            raise ApiError(400, "bad request body: listen and upstream must be strings, enabled a boolean")
        ttl_s = parse_ttl(body)
        self._check_local(listen, upstream)
        if (listen, upstream) != (proxy.listen, proxy.upstream):
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled:
            await proxy.start()
        else:
            await proxy.stop(ttl_s)
        return proxy

    async def remove(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def reset(self) -> None:
        """``POST /reset``: every proxy enabled, every toxic removed."""
        for proxy in self.proxies.values():
            proxy.reset_toxics()
            await proxy.start()

    async def sweep(self) -> None:
        """Enforce the ttl extension: expired toxics go, proxies whose down-time ran out come back."""
        now = self.now()
        for proxy in list(self.proxies.values()):
            for toxic in proxy.expire(now):
                log.info("proxy %s: toxic %s expired", proxy.name, toxic)
            if not proxy.enabled and proxy.reenable_at is not None and proxy.reenable_at <= now:
                log.info("proxy %s: down-time expired, enabling", proxy.name)
                try:
                    await proxy.start()
                except ApiError as exc:
                    proxy.reenable_at = now + 1.0  # the port may be busy for a moment; try again
                    log.warning("proxy %s: %s", proxy.name, exc.message)

    async def sweep_forever(self, interval_s: float = 0.1) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep()
            except Exception:  # one bad sweep must not end the expiry of every later toxic
                log.exception("sweep failed")

    async def close(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()
