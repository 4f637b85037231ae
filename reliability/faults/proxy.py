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

import socket
import urllib.parse
from collections.abc import Mapping
from typing import Any

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
from reliability.masking import mask
from reliability.revert.journal import Action, Undo, http_action, reference_secrets

TIMEOUT_S = 5.0
_UNSET: Any = object()
LOOPBACK = ("127.", "localhost", "[::1]", "::1")


class ProxyApiError(FaultError):
    """The proxy API answered with an error status (``status``) or not at all (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


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

    def _call(self, method: str, path: str, body: Any = None, missing_ok: bool = False) -> Any:
        try:
            reply: HttpReply = call(method, self.api_url + path, body, timeout_s=self.timeout_s)
        except OSError as exc:
            raise ProxyApiError(f"{method} {self.api_url}{path}: {one_line(exc)}") from None
        if reply.status == 404 and missing_ok:
            return None
        if not reply.ok:
            raise ProxyApiError(f"{method} {self.api_url}{path}: {reply.error_text()}", reply.status)
        try:
            return reply.json()
        except ValueError:
            return reply.body.decode("utf-8", "replace").strip()  # old Toxiproxy: /version is text

    @staticmethod
    def _quote(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def version(self) -> str:
        data = self._call("GET", "/version")
        return str(data.get("version")) if isinstance(data, dict) else str(data)

    def proxies(self) -> dict[str, dict[str, Any]]:
        data: dict[str, dict[str, Any]] = self._call("GET", "/proxies")
        return data

    def proxy(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", f"/proxies/{self._quote(name)}")
        return data

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True,
                     protocol: str | None = None) -> dict[str, Any]:
        """Create a proxy; ``protocol="http"`` (our extension) enables HTTP-mode toxics."""
        body: dict[str, Any] = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        if protocol is not None:
            body["protocol"] = protocol
        data: dict[str, Any] = self._call("POST", "/proxies", body)
        return data

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        data = self._call("POST", "/populate", proxies)
        return list(data.get("proxies") or []) if isinstance(data, dict) else []

    def update_proxy(self, name: str, *, enabled: bool | None = None, listen: str | None = None,
                     upstream: str | None = None, ttl_s: float | None = None) -> dict[str, Any]:
        """Update fields of a proxy. With ``enabled=False``, ``ttl_s`` brings it back up after
        that many seconds (our extension)."""
        body = {k: v for k, v in {"enabled": enabled, "listen": listen, "upstream": upstream,
                                  "ttl_s": ttl_s}.items() if v is not None}
        data: dict[str, Any] = self._call("POST", f"/proxies/{self._quote(name)}", body)
        return data

    def delete_proxy(self, name: str, missing_ok: bool = False) -> None:
        self._call("DELETE", f"/proxies/{self._quote(name)}", missing_ok=missing_ok)

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call("GET", f"/proxies/{self._quote(proxy)}/toxics")
        return data

    def toxic(self, proxy: str, name: str) -> dict[str, Any] | None:
        """One toxic, or None if there is none of that name."""
        data: dict[str, Any] | None = self._call(
            "GET", f"/proxies/{self._quote(proxy)}/toxics/{self._quote(name)}", missing_ok=True)
        return data

    def add_toxic(self, proxy: str, type: str, attributes: dict[str, Any], *, name: str | None = None,
                  stream: str = "downstream", toxicity: float = 1.0, ttl_s: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        if name is not None:
            body["name"] = name
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        data: dict[str, Any] = self._call("POST", f"/proxies/{self._quote(proxy)}/toxics", body)
        return data

    def update_toxic(self, proxy: str, name: str, *, attributes: dict[str, Any] | None = None,
                     toxicity: float | None = None, ttl_s: float | None = _UNSET) -> dict[str, Any]:
        """Update a toxic; ``ttl_s`` restarts its expiry clock (None removes the expiry)."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        if ttl_s is not _UNSET:
            body["ttl_s"] = ttl_s
        data: dict[str, Any] = self._call(
            "POST", f"/proxies/{self._quote(proxy)}/toxics/{self._quote(name)}", body)
        return data

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

    def _hold(self, renew: Any) -> None:
        if self.dead_man_s is not None:
            self._lease = Lease(renew, renew_interval_s(self.dead_man_s), self.name)
            self._lease.start()

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()

    def _accepts(self, state: dict[str, Any]) -> bool | None:
        """Whether the proxy's listen port takes a connection now (None: not on loopback here)."""
        port = _loopback_port(str(state.get("listen", "")))
        if port is None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            return False

    def _healthy(self) -> str:
        state = self.client.proxy(self.proxy)
        if not state.get("enabled"):
            raise FaultError(f"proxy {self.proxy} is disabled")
        toxics = [str(t.get("name")) for t in state.get("toxics") or []]
        if f"chaos-{self.name}" in toxics:
            raise FaultError(f"proxy {self.proxy} still has toxic chaos-{self.name}")
        detail = "enabled, our toxic gone" + (f" (other toxics: {', '.join(toxics)})" if toxics else "")
        port = _loopback_port(str(state.get("listen", "")))
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
                 toxic_type: str, attributes: dict[str, Any], stream: str = "downstream",
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
        attributes: dict[str, Any]
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
        if self.toxic_name not in [str(t.get("name")) for t in state.get("toxics") or []]:
            return f"toxic {self.toxic_name} is gone from proxy {self.proxy}"
        if self._accepts(state) is False:
            return f"proxy {self.proxy} does not accept connections on {state.get('listen')}"
        return None

    def _add(self) -> dict[str, Any]:
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
        if state.get("enabled"):
            return f"proxy {self.proxy} is enabled again"
        if self._accepts(state):
            return f"proxy {self.proxy} accepts connections on {state.get('listen')} again"
        return None

    def _disable(self) -> dict[str, Any]:
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
