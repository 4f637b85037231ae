"""Toxiproxy's JSON objects, as our proxy answers them and :class:`~reliability.faults.proxy.ToxiproxyClient`
reads them (from ours or a real Toxiproxy).

Keys marked "ours" are extensions a real Toxiproxy leaves out. The classes come from
``typing_extensions`` because pydantic validates them and needs that ``TypedDict`` on Python 3.11.

Example::

    toxic: ToxicJson = {"name": "lag", "type": "latency", "stream": "downstream", "toxicity": 1.0,
                        "attributes": {"latency": 100, "jitter": 0}}
"""

from __future__ import annotations

from typing import NotRequired, Required

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

ToxicAttributes = dict[str, int | float | str]
"""A toxic's attributes: numbers, and the ``http_error`` toxic's ``path_prefix``."""

# Answers keep keys we do not know (a newer Toxiproxy's): the client hands them on unchanged.
_KEEP_EXTRA = ConfigDict(extra="allow")


@with_config(_KEEP_EXTRA)
class ToxicJson(TypedDict):
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: ToxicAttributes
    ttl_s: NotRequired[float]  # ours: removes itself that long after its last create/update
    expires_in_s: NotRequired[float | None]  # ours


@with_config(_KEEP_EXTRA)
class ProxyJson(TypedDict):
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicJson] | None  # a real Toxiproxy may send null for none
    protocol: NotRequired[str]  # ours: "tcp" or "http"
    reenable_in_s: NotRequired[float]  # ours: a disabled proxy with ttl_s comes back up this much later


class ProxyCreate(TypedDict, total=False):
    """A proxy to create (``POST /populate`` takes a list); left out, the server's defaults apply."""

    name: Required[str]
    upstream: Required[str]
    listen: str
    enabled: bool
    protocol: str  # ours


class PopulateJson(TypedDict):
    proxies: list[ProxyJson]


class ErrorJson(TypedDict):
    error: str
    status: int


class VersionJson(TypedDict):
    version: str
