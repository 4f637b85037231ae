"""Toxics: what a proxy does to the bytes of its connections, in Toxiproxy's JSON shapes.

Types (attributes in brackets, all numbers, times in ms):

- ``latency`` [latency, jitter]: every chunk is held ``latency`` +/- ``jitter`` ms;
- ``bandwidth`` [rate]: at most ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy);
- ``timeout`` [timeout]: data is dropped; the connection closes after ``timeout`` ms (0: held
  until the toxic goes; removing it closes the connections it held, as Toxiproxy does);
- ``reset_peer`` [timeout]: on data, the connection is reset (TCP RST) after ``timeout`` ms;
- ``slow_close`` [delay]: closing is delayed by ``delay`` ms;
- ``slicer`` [average_size, size_variation, delay]: data is cut into pieces of ``average_size``
  +/- ``size_variation`` bytes, ``delay`` *microseconds* apart (Toxiproxy's unit for this one);
- ``limit_data`` [bytes]: the connection is closed once ``bytes`` bytes have passed (counted per
  connection from when the toxic first applies to it);
- ``http_error`` [status, path_prefix] (our extension, proxies with ``"protocol": "http"``
  only): requests under ``path_prefix`` are answered with ``status`` instead of being forwarded;
  ``toxicity`` is the share of *requests* hit, not of connections.

Every toxic has ``name`` (default ``<type>_<stream>``), ``stream`` (``upstream`` = client to
server, ``downstream`` = server to client, the default) and ``toxicity`` (0-1, the chance a
connection is affected). Our extension ``ttl_s``: the toxic removes itself that many seconds
after it was created or last updated, so a toxic outlives a crashed driver by at most ``ttl_s``.
Attribute names a type does not have are ignored, as Toxiproxy does; values must be numbers in
range (Toxiproxy takes any integer, negative ones too).

Example::

    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 100}, "ttl_s": 30}, now=0.0)
    toxic.to_json(now=10.0)
    # {'name': 'latency_downstream', 'type': 'latency', 'stream': 'downstream', 'toxicity': 1.0,
    #  'attributes': {'latency': 100, 'jitter': 0}, 'ttl_s': 30, 'expires_in_s': 20.0}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reliability.chaosproxy.wire import ToxicAttributes, ToxicJson
from reliability.jsontypes import JsonObject, JsonValue

STREAMS = ("upstream", "downstream")
# Attribute names and defaults per type; Toxiproxy's names, so its clients work unchanged.
ATTRIBUTES: dict[str, ToxicAttributes] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slow_close": {"delay": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "http_error": {"status": 503, "path_prefix": "/"},
}
HTTP_TYPES = frozenset({"http_error"})


class ApiError(Exception):
    """A request the API refuses, with Toxiproxy's status code and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class Toxic:
    """One toxic on one proxy. Compared by identity: a toxic re-created under the same name is
    a new toxic, and each connection rolls its toxicity again."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: ToxicAttributes
    ttl_s: float | None = None
    expires_at: float | None = None

    def to_json(self, now: float) -> ToxicJson:
        out: ToxicJson = {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }
        if self.ttl_s is not None:
            out["ttl_s"] = self.ttl_s
            out["expires_in_s"] = None if self.expires_at is None else round(max(0.0, self.expires_at - now), 3)
        return out

    def number(self, key: str) -> float:
        return float(self.attributes[key])


def _number(value: object, what: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"bad request body: {what} must be a number")
    if not low <= value <= high:
        raise ApiError(400, f"bad request body: {what} must be between {low:g} and {high:g}")
    return float(value)


def parse_attributes(kind: str, given: JsonValue, base: ToxicAttributes | None = None) -> ToxicAttributes:
    """Validated attributes for a toxic of ``kind``, on top of ``base`` (or the defaults)."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ApiError(400, "bad request body: attributes must be an object")
    out = dict(base if base is not None else ATTRIBUTES[kind])
    for key, value in given.items():
        if key not in out:
            continue  # as Toxiproxy: attributes a toxic type does not have are ignored
        if key == "path_prefix":
            if not isinstance(value, str) or not value.startswith("/"):
                raise ApiError(400, "bad request body: path_prefix must start with '/'")
            out[key] = value
        elif key == "status":
            out[key] = int(_number(value, "status", 100, 599))
        else:
            number = _number(value, key)
            out[key] = int(number) if number.is_integer() else number
    return out


def parse_ttl(body: JsonObject) -> float | None:
    value = body.get("ttl_s")
    return None if value is None else _number(value, "ttl_s", 0.001)


def parse_toxic(body: JsonValue, now: float, http_proxy: bool = False) -> Toxic:
    """A new toxic from a ``POST /proxies/{p}/toxics`` body; raises ApiError(400) if invalid."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: expected a JSON object")
    kind = body.get("type")
    if kind not in ATTRIBUTES:
        raise ApiError(400, "invalid toxic type")
    if kind in HTTP_TYPES and not http_proxy:
        raise ApiError(400, f"a {kind} toxic needs a proxy created with \"protocol\": \"http\"")
    stream = body.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ApiError(400, "stream was invalid, can be either upstream or downstream")
    toxicity = _number(body.get("toxicity", 1.0), "toxicity", 0.0, 1.0)
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise ApiError(400, "bad request body: name must be a string")
    ttl_s = parse_ttl(body)
    return Toxic(name, str(kind), stream, toxicity, parse_attributes(str(kind), body.get("attributes")), ttl_s,
                 None if ttl_s is None else now + ttl_s)


def update_toxic(toxic: Toxic, body: JsonValue, now: float) -> None:
    """Apply a ``POST/PATCH /proxies/{p}/toxics/{t}`` body: attributes, toxicity, ``ttl_s``.

    ``ttl_s`` restarts the expiry clock (a lease renewal); ``"ttl_s": null`` removes it; leaving
    it out keeps the current expiry.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: expected a JSON object")
    attributes = parse_attributes(toxic.type, body.get("attributes"), toxic.attributes)
    toxicity = _number(body.get("toxicity", toxic.toxicity), "toxicity", 0.0, 1.0)
    if "ttl_s" in body:
        toxic.ttl_s = parse_ttl(body)
        toxic.expires_at = None if toxic.ttl_s is None else now + toxic.ttl_s
    toxic.attributes = attributes
    toxic.toxicity = toxicity
