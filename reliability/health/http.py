"""HTTP API probe: ``GET /health``, graded by status code and body.

Every non-2xx answer is *down*. A 2xx JSON body with a ``status`` field refines it: ``healthy``,
``ok``, ``up``, ``pass`` are healthy; ``degraded``, ``warn``, ``partial`` are degraded; ``down``,
``unhealthy``, ``fail``, ``error`` are down. A body's own ``components`` (the reference target
reports ``db`` and ``cache``) are copied into the result's data.

Example::

    probe = HttpProbe(HttpProbeSpec(type="http", url="http://127.0.0.1:8080/health"), "api")
    measure(probe, timeout_s=0.8)
"""

from __future__ import annotations

from reliability.health import _http
from reliability.health.base import Deadline, Finding, Status
from reliability.health.spec import HttpProbeSpec
from reliability.jsontypes import JsonData, JsonObject, JsonValue

BODY_STATUS = {
    "healthy": Status.HEALTHY, "ok": Status.HEALTHY, "up": Status.HEALTHY, "pass": Status.HEALTHY,
    "degraded": Status.DEGRADED, "warn": Status.DEGRADED, "partial": Status.DEGRADED,
    "down": Status.DOWN, "unhealthy": Status.DOWN, "fail": Status.DOWN, "error": Status.DOWN,
}


def _body_components(body: JsonObject) -> dict[str, str]:
    found = body.get("components")
    if not isinstance(found, dict):
        return {}
    out = {}
    for name, value in found.items():
        status = value.get("status") if isinstance(value, dict) else value
        if isinstance(status, str):
            out[str(name)] = status
    return out


def grade_health_reply(status_code: int, body: JsonValue) -> Finding:
    """The finding for a ``/health`` answer (pure, for unit tests)."""
    data: dict[str, JsonData] = {"http_status": status_code}
    said = body.get("status") if isinstance(body, dict) else None
    components = _body_components(body) if isinstance(body, dict) else {}
    if isinstance(body, dict):
        data["components"] = components
    if isinstance(said, str):
        data["body_status"] = said
    parts = [f"HTTP {status_code}"] + [f"{k} {v}" for k, v in components.items()]
    if not 200 <= status_code < 300:
        return Finding(Status.DOWN, ", ".join(parts), data)
    status = BODY_STATUS.get(said.lower(), Status.DEGRADED) if isinstance(said, str) else Status.HEALTHY
    if isinstance(said, str):
        parts.insert(1, f"status {said}")
    return Finding(status, ", ".join(parts), data)


class HttpProbe:
    """``GET`` the health URL within the deadline; see the module docstring."""

    kind = "http"

    def __init__(self, spec: HttpProbeSpec, target: str) -> None:
        self.url = spec.url
        self.target = target

    def check(self, deadline: Deadline) -> Finding:
        reply = _http.request("GET", self.url, deadline, {"Accept": "application/json"})
        return grade_health_reply(reply.status, reply.json())

    def close(self) -> None:
        pass
