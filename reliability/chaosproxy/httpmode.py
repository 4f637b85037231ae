"""HTTP mode: find request boundaries in a client's byte stream, so a proxy can answer single
requests with an injected status (the ``http_error`` toxic) and forward the rest untouched.

Only requests are parsed (HTTP/1.0 and 1.1, ``Content-Length`` and chunked bodies); responses
pass as raw bytes. Clients must not pipeline (none of the common ones do): an injected answer is
queued behind the previous response. After a forwarded ``Upgrade`` (WebSocket) or ``CONNECT``,
or on anything that does not parse as HTTP, the connection falls back to plain TCP.

Example::

    framer = RequestFramer()
    framer.feed(b"GET /api/items HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    # [RequestStart(method='GET', path='/api/items', head=b'GET /api...', keep_alive=True,
    #               upgrade=False), RequestEnd()]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 65536
MAX_CHUNK_LINE_BYTES = 4096


@dataclass(frozen=True)
class RequestStart:
    """A request head, complete. ``head`` holds its bytes, to forward or drop."""

    method: str
    path: str
    head: bytes
    keep_alive: bool
    upgrade: bool


@dataclass(frozen=True)
class RequestEnd:
    """The request's body (if any) is complete."""


Event = RequestStart | RequestEnd | bytes


def _parse_head(head: bytes) -> tuple[RequestStart, int | None, bool] | None:
    """(start, content length, chunked) of a request head, or None if it is not HTTP/1.x."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except (UnicodeDecodeError, ValueError):
        return None
    if not version.startswith("HTTP/1.") or not method.isalpha():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return None
        headers[key.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
    upgrade = method == "CONNECT" or "upgrade" in connection
    chunked = headers.get("transfer-encoding", "").lower().endswith("chunked")
    length: int | None = None
    if not chunked and "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            return None
        if length < 0:
            return None
    path = target.split("?", 1)[0]
    if "://" in path:  # absolute form: keep the path only
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return RequestStart(method, path, head, keep_alive, upgrade), length, chunked


class RequestFramer:
    """Turns bytes from a client into request events; see the module docstring."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "head"  # head | body | chunk-size | chunk-data | trailer | raw
        self._remaining = 0

    @property
    def passthrough(self) -> bool:
        return self._state == "raw"

    def feed(self, data: bytes) -> list[Event]:
        if self._state == "raw":
            return [data] if data else []
        self._buf += data
        out: list[Event] = []
        while self._step(out):
            pass
        return out

    def _raw(self, out: list[Event]) -> bool:
        self._state = "raw"
        if self._buf:
            out.append(bytes(self._buf))
            self._buf.clear()
        return False

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _step(self, out: list[Event]) -> bool:
        if self._state == "head":
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return self._raw(out) if len(self._buf) > MAX_HEAD_BYTES else False
            parsed = _parse_head(bytes(self._buf[: end + 4]))
            if parsed is None:
                return self._raw(out)
            start, length, chunked = parsed
            del self._buf[: end + 4]
            out.append(start)
            if start.upgrade:
                out.append(RequestEnd())
                return self._raw(out)
            if chunked:
                self._state = "chunk-size"
            elif length:
                self._state, self._remaining = "body", length
            else:
                out.append(RequestEnd())
            return True
        if self._state in ("body", "chunk-data"):
            if not self._buf:
                return False
            piece = bytes(self._buf[: self._remaining])
            del self._buf[: len(piece)]
            self._remaining -= len(piece)
            out.append(piece)
            if self._remaining:
                return False
            if self._state == "body":
                self._state = "head"
                out.append(RequestEnd())
            else:
                self._state = "chunk-size"
            return True
        if self._state == "chunk-size":
            line = self._line()
            if line is None:
                return self._raw(out) if len(self._buf) > MAX_CHUNK_LINE_BYTES else False
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return self._raw(out)
            out.append(line + b"\r\n")
            if size:
                self._state, self._remaining = "chunk-data", size + 2  # data and its CRLF
            else:
                self._state = "trailer"
            return True
        # trailer: header lines until an empty one
        line = self._line()
        if line is None:
            return self._raw(out) if len(self._buf) > MAX_HEAD_BYTES else False
        out.append(line + b"\r\n")
        if not line:
            self._state = "head"
            out.append(RequestEnd())
        return True


def error_response(status: int, keep_alive: bool) -> bytes:
    """The bytes of an injected error answer, marked with ``X-Chaos-Proxy: injected``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Injected"
    body = json.dumps({"error": "injected by reliability-proxy", "status": status}).encode()
    headers = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "X-Chaos-Proxy: injected",
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    if status in (429, 503):
        headers.append("Retry-After: 1")
    return ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body
