"""One bounded HTTP request for the HTTP-based probes (:mod:`reliability.httpclient`, no keep-alive).

A fresh connection per request: a probe a second costs nothing measurable, and a stale pooled
connection can never make a healthy service look down. Every socket operation is bounded by the
probe's deadline; the body is read up to ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from reliability.health.base import Deadline
from reliability.httpclient import send
from reliability.jsontypes import JsonData, JsonValue

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> JsonValue:
        """The body as JSON, or None when it is not JSON."""
        try:
            body: JsonValue = json.loads(self.body)
            return body
        except ValueError:
            return None


def request(method: str, url: str, deadline: Deadline, headers: Mapping[str, str] | None = None,
            body: JsonData = None) -> Reply:
    """Send one request and read the reply (no redirects: a probe checks what it was pointed at);
    raises OSError (secrets masked) / ProbeTimeout."""
    sent = {"User-Agent": "locust-reliability-health", **(headers or {})}
    reply = send(method, url, body, sent, timeout_s=deadline.remaining_s(), redirects=0, max_body=MAX_BODY_BYTES)
    return Reply(reply.status, reply.body)


def join(base: str, path: str) -> str:
    """``base`` URL + ``path`` with exactly one slash between them."""
    return base.rstrip("/") + "/" + path.lstrip("/")
