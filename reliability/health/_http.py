"""One bounded HTTP request for the HTTP-based probes (stdlib ``http.client``, no keep-alive).

A fresh connection per request: a probe a second costs nothing measurable, and a stale pooled
connection can never make a healthy service look down. Every socket operation is bounded by the
probe's deadline; the body is read up to ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reliability.health.base import Deadline

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(method: str, url: str, deadline: Deadline, headers: Mapping[str, str] | None = None,
            body: Any = None) -> Reply:
    """Send one request and read the reply; raises OSError / HTTPException / ProbeTimeout."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=deadline.remaining_s())
    sent = {"Connection": "close", "User-Agent": "locust-reliability-health", **(headers or {})}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=payload, headers=sent)
        if conn.sock is not None:
            conn.sock.settimeout(deadline.remaining_s())
        response = conn.getresponse()
        data = response.read(MAX_BODY_BYTES)
        return Reply(response.status, data)
    finally:
        conn.close()


def join(base: str, path: str) -> str:
    """``base`` URL + ``path`` with exactly one slash between them."""
    return base.rstrip("/") + "/" + path.lstrip("/")
