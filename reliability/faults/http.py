"""HTTP-level faults through the reference target's admin API (``/admin/faults``): a share of
requests answered with an error status (5xx, 429), added latency, or both.

Example::

    fault = TargetHttpFault(HttpErrorSpec(type="http.error", url="http://127.0.0.1:8080", status=503,
                                          error_ratio=0.2), "api-errors")
    fault.inject()    # one request in five under /api now gets 503
    fault.revert()    # DELETE /admin/faults

The target keeps one fault at a time (a new one replaces it), so two HTTP faults on one target
must not overlap. The fault is posted with ``ttl_s`` = ``dead_man_s`` and re-posted every third
of it while held: the target drops it by itself if we die. For any HTTP service, not only the
reference target, put the chaos proxy in HTTP mode in front of it and use ``proxy.http``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, Lease, one_line, probe, renew_interval_s, secrets_of
from reliability.faults.httpcall import call
from reliability.faults.spec import HttpErrorSpec, HttpLatencySpec
from reliability.jsontypes import JsonObject, JsonValue
from reliability.masking import mask
from reliability.revert.journal import Undo, http_action, reference_secrets
from reliability.target.config import ADMIN_TOKEN_ENV

ADMIN_HEADER = "X-Admin-Token"
TIMEOUT_S = 5.0


class TargetHttpFault:
    """``http.error`` / ``http.latency``: a fault set through the target's admin API.

    The admin token is ``admin_token`` from the spec, else ``RELIABILITY_ADMIN_TOKEN`` from the
    environment (the same variable the target reads).
    """

    def __init__(self, spec: HttpErrorSpec | HttpLatencySpec, name: str,
                 environ: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.kind: str = spec.type
        self.url = spec.url.rstrip("/")
        self.dead_man_s: float | None = spec.dead_man_s
        env = os.environ if environ is None else environ
        token = spec.admin_token or env.get(ADMIN_TOKEN_ENV) or None
        self._headers = {ADMIN_HEADER: token} if token else {}
        self._secrets = (token,) if token else ()
        self.body: JsonObject = {"latency_ms": spec.latency_ms, "route_prefix": spec.route_prefix}
        if isinstance(spec, HttpErrorSpec):
            self.body.update(error_ratio=spec.error_ratio, status=spec.status)
        if self.dead_man_s is not None:
            self.body["ttl_s"] = self.dead_man_s
        self._lease: Lease | None = None
        self.injected = False
        self.backend = f"target {mask(self.url)}"

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """``DELETE /admin/faults`` (the token by reference to its environment variable)."""
        action = http_action("DELETE", f"{self.url}/admin/faults", headers=self._headers, ok_also=())
        action = reference_secrets(action, self._secrets + secrets_of(self.url), environ, self.name)
        return Undo(self.backend, (action,), expires_s=self.dead_man_s)

    def _admin(self, method: str, body: JsonValue = None) -> JsonValue:
        """One call to the target's ``/admin/faults``: the answer's JSON."""
        try:
            reply = call(method, f"{self.url}/admin/faults", body, self._headers, TIMEOUT_S)
        except OSError as exc:
            raise FaultError(f"{method} {self.url}/admin/faults: {one_line(exc, self._secrets)}") from None
        if not reply.ok:
            raise FaultError(f"{method} {self.url}/admin/faults: {reply.error_text()}")
        answer: JsonValue = reply.json()
        return answer

    def _post(self) -> None:
        self._admin("POST", self.body)

    def inject(self) -> None:
        if self._lease is not None:
            return
        self.injected = True
        try:
            self._post()
        except FaultError as exc:
            raise FaultError(f"{self.name} ({self.kind}) inject: {exc}") from None
        if self.dead_man_s is not None:
            self._lease = Lease(self._post, renew_interval_s(self.dead_man_s), self.name)
            self._lease.start()

    def revert(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()
        if not self.injected:
            return
        try:
            self._admin("DELETE")
        except FaultError as exc:
            raise FaultError(f"{self.name} ({self.kind}) revert: {exc}") from None
        self.injected = False

    def still_applied(self) -> str | None:
        """None while the target reports our fault (``GET /admin/faults``), else why not."""
        state = self._admin("GET")
        if isinstance(state, dict) and state.get("fault") is not None:
            return None
        return "the target reports no fault (restarted, or its ttl ran out)"

    def _healthy(self) -> str:
        state = self._admin("GET")
        if isinstance(state, dict) and state.get("fault") is not None:
            raise FaultError(f"a fault is still active: {state['fault']}")
        try:
            reply = call("GET", f"{self.url}/health", timeout_s=TIMEOUT_S)
        except OSError as exc:
            raise FaultError(f"GET /health: {one_line(exc)}") from None
        if reply.status >= 500:
            raise FaultError(f"GET /health: {reply.error_text()}")
        data: JsonValue
        try:
            data = reply.json()
        except ValueError:
            data = None
        status = data.get("status") if isinstance(data, dict) else None
        return f"no fault active, /health {reply.status}" + (f" {status}" if status else "")

    def verify(self) -> FaultCheck:
        return probe(f"target {self.url}", self._healthy, self._secrets)
