"""Network faults through a Toxiproxy API: our chaos proxy (``reliability proxy``) or a real
Toxiproxy (the docker-compose stack), driven by one client.

Example::

    client = ToxiproxyClient("http://127.0.0.1:8474")
    client.create_proxy("redis", upstream="127.0.0.1:6379", listen="127.0.0.1:16379")
    client.add_toxic("redis", "latency", {"latency": 100}, ttl_s=30)

Dead-man: toxics are created with our ``ttl_s`` extension and renewed while held, and
``proxy.down`` disables the proxy with ``ttl_s``, so our proxy undoes them by itself if the
driver dies. A real Toxiproxy ignores the field: the answer then lacks ``ttl_s`` and the fault
records ``dead_man_s = None`` (it stays until reverted or ``POST /reset``).
"""

from __future__ import annotations

import enum
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

from pydantic import TypeAdapter, ValidationError

from reliability.chaosproxy.wire import PopulateJson, ProxyCreate, ProxyJson, ToxicAttributes, ToxicJson
from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, Lease, one_line, probe, renew_interval_s, secrets_of
from reliability.faults.httpcall import HttpReply, call
from reliability.faults.spec import (
    ProxyBandwidthSpec,
    ProxyDownSpec,
    ProxyHttpSpec,
    ProxyLatencySpec,
    ProxyLimitDataSpec,
    ProxyResetPeerSpec,
    ProxySlicerSpec,
    ProxySlowCloseSpec,
    ProxyTimeoutSpec,
)
from reliability.jsontypes import JsonObject, JsonValue
from reliability.masking import mask
from reliability.revert.journal import Action, Undo, http_action, reference_secrets

TIMEOUT_S = 5.0
LOOPBACK = ("127.", "localhost", "[::1]", "::1")


_T = TypeVar("_T")
_PROXY: TypeAdapter[ProxyJson] = TypeAdapter(ProxyJson)
_PROXIES: TypeAdapter[dict[str, ProxyJson]] = TypeAdapter(dict[str, ProxyJson])
_TOXIC: TypeAdapter[ToxicJson] = TypeAdapter(ToxicJson)
_TOXICS: TypeAdapter[list[ToxicJson]] = TypeAdapter(list[ToxicJson])
_POPULATED: TypeAdapter[PopulateJson] = TypeAdapter(PopulateJson)


class _Unset(enum.Enum):
    UNSET = enum.auto()


def _proxy_body(name: str, upstream: str, listen: str | None = None, enabled: bool | None = None,
                protocol: str | None = None) -> JsonObject:
    """A proxy definition as sent: the fields given, in Toxiproxy's names."""
    body: JsonObject = {"name": name, "upstream": upstream}
    for key, value in (("listen", listen), ("enabled", enabled), ("protocol", protocol)):
        if value is not None:
            body[key] = value
    return body


class ProxyApiError(FaultError):
    """The proxy API answered with an error status (``status``) or not at all (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _checked(shape: TypeAdapter[_T], data: JsonValue, what: str) -> _T:
    """``data`` as ``shape``, or a ProxyApiError naming the first field that does not fit."""
    try:
        return shape.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        raise ProxyApiError(f"{what}: unexpected answer: {where}: {first['msg']}") from None


class ToxiproxyClient:
    """A small synchronous client for the Toxiproxy HTTP API (ours or the real one).

    Every call is bounded by ``timeout_s``; failures raise :class:`ProxyApiError` with a
    one-line message. ``ttl_s`` arguments are our extension (a real Toxiproxy ignores them).

    Example::

        client = ToxiproxyClient("http://127.0.0.1:8474")
        client.add_toxic("pg", "latency", {"latency": 200, "jitter": 20}, name="slow-db", ttl_s=30)
        client.remove_toxic("pg", "slow-db")
    """

    def __init__(self, api_url: str = "http://127.0.0.1:8474", timeout_s: float = TIMEOUT_S) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: JsonValue = None, missing_ok: bool = False) -> JsonValue:
        """The answer's JSON (its text if it is not JSON; None for a 404 with ``missing_ok``)."""
        try:
            reply: HttpReply = call(method, self.api_url + path, body, timeout_s=self.timeout_s)
        except OSError as exc:
            raise ProxyApiError(f"{method} {self.api_url}{path}: {one_line(exc)}") from None
        if reply.status == 404 and missing_ok:
            return None
        if not reply.ok:
            raise ProxyApiError(f"{method} {self.api_url}{path}: {reply.error_text()}", reply.status)
        try:
            data: JsonValue = reply.json()
        except ValueError:
            return reply.body.decode("utf-8", "replace").strip()  # old Toxiproxy: /version is text
        return data

    def _read(self, shape: TypeAdapter[_T], method: str, path: str, body: JsonValue = None) -> _T:
        """``_call``, its answer checked against ``shape``."""
        return _checked(shape, self._call(method, path, body), f"{method} {self.api_url}{path}")

    @staticmethod
    def _quote(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def version(self) -> str:
        data = self._call("GET", "/version")
        return str(data.get("version")) if isinstance(data, dict) else str(data)

    def proxies(self) -> dict[str, ProxyJson]:
        return self._read(_PROXIES, "GET", "/proxies")

    def proxy(self, name: str) -> ProxyJson:
        return self._read(_PROXY, "GET", f"/proxies/{self._quote(name)}")

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True,
                     protocol: str | None = None) -> ProxyJson:
        """Create a proxy; ``protocol="http"`` (our extension) enables HTTP-mode toxics."""
        return self._read(_PROXY, "POST", "/proxies", _proxy_body(name, upstream, listen, enabled, protocol))

    def populate(self, proxies: list[ProxyCreate]) -> list[ProxyJson]:
        data = self._call("POST", "/populate", [_proxy_body(**proxy) for proxy in proxies])
        if not isinstance(data, dict):
            return []
        return _checked(_POPULATED, {"proxies": data.get("proxies") or []}, f"POST {self.api_url}/populate")["proxies"]

    def update_proxy(self, name: str, *, enabled: bool | None = None, listen: str | None = None,
                     upstream: str | None = None, ttl_s: float | None = None) -> ProxyJson:
        """Update fields of a proxy. With ``enabled=False``, ``ttl_s`` brings it back up after
        that many seconds (our extension)."""
        fields: JsonObject = {"enabled": enabled, "listen": listen, "upstream": upstream, "ttl_s": ttl_s}
        body: JsonObject = {k: v for k, v in fields.items() if v is not None}
        return self._read(_PROXY, "POST", f"/proxies/{self._quote(name)}", body)

    def delete_proxy(self, name: str, missing_ok: bool = False) -> None:
        self._call("DELETE", f"/proxies/{self._quote(name)}", missing_ok=missing_ok)

    def toxics(self, proxy: str) -> list[ToxicJson]:
        return self._read(_TOXICS, "GET", f"/proxies/{self._quote(proxy)}/toxics")

    def toxic(self, proxy: str, name: str) -> ToxicJson | None:
        """One toxic, or None if there is none of that name."""
        path = f"/proxies/{self._quote(proxy)}/toxics/{self._quote(name)}"
        try:
            return self._read(_TOXIC, "GET", path)
        except ProxyApiError as exc:
            if exc.status == 404:
                return None
            raise

    def add_toxic(self, proxy: str, type: str, attributes: ToxicAttributes, *, name: str | None = None,
                  stream: str = "downstream", toxicity: float = 1.0, ttl_s: float | None = None) -> ToxicJson:
        body: JsonObject = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": {**attributes}}
        if name is not None:
            body["name"] = name
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self._read(_TOXIC, "POST", f"/proxies/{self._quote(proxy)}/toxics", body)

    def update_toxic(self, proxy: str, name: str, *, attributes: ToxicAttributes | None = None,
                     toxicity: float | None = None,
                     ttl_s: float | None | Literal[_Unset.UNSET] = _Unset.UNSET) -> ToxicJson:
        """Update a toxic; ``ttl_s`` restarts its expiry clock (None removes the expiry)."""
        body: JsonObject = {}
        if attributes is not None:
            body["attributes"] = {**attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if ttl_s is not _Unset.UNSET:
            body["ttl_s"] = ttl_s
        return self._read(_TOXIC, "POST", f"/proxies/{self._quote(proxy)}/toxics/{self._quote(name)}", body)

    def remove_toxic(self, proxy: str, name: str, missing_ok: bool = False) -> None:
        self._call("DELETE", f"/proxies/{self._quote(proxy)}/toxics/{self._quote(name)}", missing_ok=missing_ok)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")


def _loopback_port(listen: str) -> int | None:
    """The port of a proxy listening on loopback, which we can probe from here. (One on all
    interfaces may be inside a container whose ports are not published: not probed.)"""
    host, _, port = listen.rpartition(":")
    if port.isdigit() and host.startswith(LOOPBACK):
        return int(port)
    return None


class _ProxyFault:
    kind = ""

    def __init__(self, api_url: str, proxy: str, name: str, dead_man_s: float | None) -> None:
        self.name = name
        self.proxy = proxy
        self.dead_man_s = dead_man_s
        self.client = ToxiproxyClient(api_url)
        self.backend = f"toxiproxy {mask(self.client.api_url)} proxy {proxy}"
        self._lease: Lease | None = None

    def _undo(self, action: Action, environ: Mapping[str, str]) -> Undo:
        referenced: Action = reference_secrets(action, secrets_of(self.client.api_url), environ, self.name)
        return Undo(self.backend, (referenced,))

    def _fail(self, action: str, exc: BaseException) -> FaultError:
        return FaultError(f"{self.name} ({self.kind}) {action}: {one_line(exc)}")

    def _hold(self, renew: Callable[[], object]) -> None:
        if self.dead_man_s is not None:
            self._lease = Lease(renew, renew_interval_s(self.dead_man_s), self.name)
            self._lease.start()

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()

    def _accepts(self, state: ProxyJson) -> bool | None:
        """Whether the proxy's listen port takes a connection now (None: not on loopback here)."""
        port = _loopback_port(state["listen"])
        if port is None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            return False

    def _healthy(self) -> str:
        state = self.client.proxy(self.proxy)
        if not state["enabled"]:
            raise FaultError(f"proxy {self.proxy} is disabled")
        toxics = [t["name"] for t in state["toxics"] or []]
        if f"chaos-{self.name}" in toxics:
            raise FaultError(f"proxy {self.proxy} still has toxic chaos-{self.name}")
        detail = "enabled, our toxic gone" + (f" (other toxics: {', '.join(toxics)})" if toxics else "")
        port = _loopback_port(state["listen"])
        if port is not None:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0):
                pass
            detail += f", accepts connections on port {port}"
        return detail

    def verify(self) -> FaultCheck:
        return probe(f"proxy {self.proxy} at {self.client.api_url}", self._healthy)


class ProxyToxicFault(_ProxyFault):
    """One toxic on one proxy, named ``chaos-<fault name>``; removed on revert.

    Example::

        fault = ProxyToxicFault.from_spec(ProxyLatencySpec(type="proxy.latency", proxy="pg", latency_ms=200), "db-lag")
    """

    def __init__(self, kind: str, api_url: str, proxy: str, name: str, dead_man_s: float | None,
                 toxic_type: str, attributes: ToxicAttributes, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(api_url, proxy, name, dead_man_s)
        self.kind = kind
        self.toxic_type = toxic_type
        self.attributes = attributes
        self.stream = stream
        self.toxicity = toxicity
        self.toxic_name = f"chaos-{name}"
        self.attempted = False  # an inject was tried: from then on a revert removes the toxic

    @classmethod
    def from_spec(cls, spec: ProxyLatencySpec | ProxyBandwidthSpec | ProxyTimeoutSpec | ProxyResetPeerSpec
                  | ProxySlowCloseSpec | ProxySlicerSpec | ProxyLimitDataSpec | ProxyHttpSpec,
                  name: str) -> ProxyToxicFault:
        """The fault for a ``proxy.*`` toxic spec."""
        attributes: ToxicAttributes
        stream, toxicity = "downstream", 1.0
        if isinstance(spec, ProxyHttpSpec):
            toxic_type = "http_error"
            attributes = {"status": spec.status, "path_prefix": spec.path_prefix}
            toxicity = spec.error_ratio
        else:
            stream, toxicity = spec.stream, spec.toxicity
            if isinstance(spec, ProxyLatencySpec):
                toxic_type, attributes = "latency", {"latency": round(spec.latency_ms), "jitter": round(spec.jitter_ms)}
            elif isinstance(spec, ProxyBandwidthSpec):
                toxic_type, attributes = "bandwidth", {"rate": spec.rate_kb_s}
            elif isinstance(spec, ProxyTimeoutSpec):
                toxic_type, attributes = "timeout", {"timeout": round(spec.timeout_ms)}
            elif isinstance(spec, ProxyResetPeerSpec):
                toxic_type, attributes = "reset_peer", {"timeout": round(spec.timeout_ms)}
            elif isinstance(spec, ProxySlicerSpec):
                toxic_type, attributes = "slicer", {"average_size": spec.average_size,
                                                    "size_variation": spec.size_variation, "delay": spec.delay_us}
            elif isinstance(spec, ProxyLimitDataSpec):
                toxic_type, attributes = "limit_data", {"bytes": spec.bytes}
            else:
                toxic_type, attributes = "slow_close", {"delay": round(spec.delay_ms)}
        return cls(spec.type, spec.api_url, spec.proxy, name, spec.dead_man_s, toxic_type, attributes, stream,
                   toxicity)

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """Remove the toxic (a 404 means it is gone already)."""
        path = f"/proxies/{self.client._quote(self.proxy)}/toxics/{self.client._quote(self.toxic_name)}"
        return self._undo(http_action("DELETE", self.client.api_url + path), environ)

    def still_applied(self) -> str | None:
        """None while the toxic is on the proxy and the proxy listens (a connection through its listen
        port), else why not (a restarted proxy has lost it)."""
        state = self.client.proxy(self.proxy)
        if self.toxic_name not in [t["name"] for t in state["toxics"] or []]:
            return f"toxic {self.toxic_name} is gone from proxy {self.proxy}"
        if self._accepts(state) is False:
            return f"proxy {self.proxy} does not accept connections on {state['listen']}"
        return None

    def _add(self) -> ToxicJson:
        return self.client.add_toxic(self.proxy, self.toxic_type, self.attributes, name=self.toxic_name,
                                     stream=self.stream, toxicity=self.toxicity, ttl_s=self.dead_man_s)

    def _check_http_support(self) -> None:
        """``http_error`` is our proxy's extension: refuse it, in one line, on a real Toxiproxy."""
        if self.toxic_type != "http_error":
            return
        version = self.client.version()
        if not version.startswith("reliability-proxy"):
            raise FaultError(f"{self.name} ({self.kind}): {self.client.api_url} is Toxiproxy {version}, which "
                             "proxies TCP only and has no HTTP-level errors; use `reliability proxy` with "
                             '"protocol": "http" for the proxy, or http.error on the target')

    def inject(self) -> None:
        if self._lease is not None:
            return
        try:
            self._check_http_support()
        except ProxyApiError as exc:
            raise self._fail("inject", exc) from None
        self.attempted = True
        try:
            try:
                created = self._add()
            except ProxyApiError as exc:
                if exc.status != 409:
                    raise
                # Left by a run that died before its ttl ran out (or on a real Toxiproxy): replace it.
                self.client.remove_toxic(self.proxy, self.toxic_name, missing_ok=True)
                created = self._add()
        except ProxyApiError as exc:
            raise self._fail("inject", exc) from None
        if "ttl_s" not in created:
            self.dead_man_s = None  # a real Toxiproxy: no expiry, it stays until reverted
        self._hold(lambda: self.client.update_toxic(self.proxy, self.toxic_name, ttl_s=self.dead_man_s))

    def revert(self) -> None:
        self._release()
        if not self.attempted:
            return
        try:
            self.client.remove_toxic(self.proxy, self.toxic_name, missing_ok=True)
        except ProxyApiError as exc:
            raise self._fail("revert", exc) from None
        self.attempted = False


class ProxyDownFault(_ProxyFault):
    """The proxy disabled: new connections refused, open ones closed; enabled again on revert.

    With our proxy the down-time carries ``ttl_s`` = ``dead_man_s`` (renewed while held).
    """

    kind = "proxy.down"

    def __init__(self, spec: ProxyDownSpec, name: str) -> None:
        super().__init__(spec.api_url, spec.proxy, name, spec.dead_man_s)
        self.injected = False

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """Enable the proxy again."""
        path = f"/proxies/{self.client._quote(self.proxy)}"
        return self._undo(http_action("POST", self.client.api_url + path, {"enabled": True}), environ)

    def still_applied(self) -> str | None:
        """None while the proxy is disabled and its listen port refuses connections, else why not."""
        state = self.client.proxy(self.proxy)
        if state["enabled"]:
            return f"proxy {self.proxy} is enabled again"
        if self._accepts(state):
            return f"proxy {self.proxy} accepts connections on {state['listen']} again"
        return None

    def _disable(self) -> ProxyJson:
        return self.client.update_proxy(self.proxy, enabled=False, ttl_s=self.dead_man_s)

    def inject(self) -> None:
        if self._lease is not None:
            return
        self.injected = True  # before the call: a revert must undo a call that timed out but landed
        try:
            state = self._disable()
        except ProxyApiError as exc:
            raise self._fail("inject", exc) from None
        if "reenable_in_s" not in state:
            self.dead_man_s = None
        self._hold(self._disable)

    def revert(self) -> None:
        self._release()
        if not self.injected:
            return
        try:
            self.client.update_proxy(self.proxy, enabled=True)
        except ProxyApiError as exc:
            raise self._fail("revert", exc) from None
        self.injected = False
