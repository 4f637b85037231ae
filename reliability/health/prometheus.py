"""Prometheus probe: ``GET /-/healthy``, then an instant query (``up`` by default) via the HTTP API.

Down when Prometheus is not healthy or the query fails; degraded when the query returns no series
or a series whose value is 0 (with ``up``: a scrape target is down), named in the detail.

Example::

    probe = PrometheusProbe(PrometheusProbeSpec(type="prometheus", url="http://127.0.0.1:9090"), "prom")
    measure(probe, timeout_s=0.8).detail   # "healthy; up: 1/1 series non-zero"
"""

from __future__ import annotations

from urllib.parse import urlencode

from reliability.health import _http
from reliability.health.base import Deadline, Finding, Status
from reliability.health.spec import PrometheusProbeSpec
from reliability.jsontypes import JsonData, JsonValue


def _label(metric: JsonValue) -> str:
    if not isinstance(metric, dict):
        return "{}"
    job, instance = metric.get("job"), metric.get("instance")
    if job or instance:
        return "/".join(str(x) for x in (job, instance) if x)
    return ",".join(f"{k}={v}" for k, v in sorted(metric.items())) or "{}"


def _nonzero(sample: JsonValue) -> bool:
    """A series' ``[time, "value"]`` pair holds a number other than 0."""
    value = sample[1] if isinstance(sample, list) else "0"
    if not isinstance(value, int | float | str):
        return False
    try:
        return float(value) != 0.0
    except ValueError:
        return False


def grade_query(query: str, body: JsonValue) -> Finding:
    """The finding for a ``/api/v1/query`` answer (pure, for unit tests)."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return Finding(Status.DOWN, f"query {query!r} failed: {error or 'unreadable answer'}")
    found = body.get("data", {})
    result = found.get("result", []) if isinstance(found, dict) else []
    if not isinstance(result, list):
        result = []
    zero = []
    for series in result:
        if not _nonzero(series.get("value", [None, "0"]) if isinstance(series, dict) else None):
            zero.append(_label(series.get("metric", {}) if isinstance(series, dict) else {}))
    data: dict[str, JsonData] = {"series": len(result), "zero_series": zero}
    if not result:
        return Finding(Status.DEGRADED, f"healthy; {query}: no series", data)
    detail = f"healthy; {query}: {len(result) - len(zero)}/{len(result)} series non-zero"
    if zero:
        return Finding(Status.DEGRADED, f"{detail}; zero: {', '.join(zero)}", data)
    return Finding(Status.HEALTHY, detail, data)


class PrometheusProbe:
    """Health endpoint and one instant query within the deadline; see the module docstring."""

    kind = "prometheus"

    def __init__(self, spec: PrometheusProbeSpec, target: str) -> None:
        self.url = spec.url
        self.query = spec.query
        self.target = target

    def check(self, deadline: Deadline) -> Finding:
        healthy = _http.request("GET", _http.join(self.url, "/-/healthy"), deadline)
        if healthy.status != 200:
            return Finding(Status.DOWN, f"/-/healthy answered HTTP {healthy.status}")
        url = _http.join(self.url, "/api/v1/query") + "?" + urlencode({"query": self.query})
        return grade_query(self.query, _http.request("GET", url, deadline).json())

    def close(self) -> None:
        pass
