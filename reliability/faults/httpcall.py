"""One bounded HTTP call with a JSON body, on the standard library (no extra dependency).

Faults use it for the chaos proxy's API, the reference target's admin API and webhooks. Non-2xx
answers are returned, not raised: the caller knows which statuses it expects.

Example::

    reply = call("POST", "http://127.0.0.1:8474/proxies", {"name": "pg", "upstream": "db:5432"})
    reply.status, reply.json()    # (201, {'name': 'pg', ...})
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

USER_AGENT = "locust-reliability"  # Toxiproxy refuses browser agents ("Mozilla/...")
SCHEMES = ("http", "https")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib's own handler also follows ``ftp://``)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if newurl.split(":", 1)[0].lower() not in SCHEMES:
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-HTTP URL refused: {newurl[:100]}",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)



@dataclass(frozen=True)
class HttpReply:
    """Status and body of an answer."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); ValueError if it is not JSON."""
        return json.loads(self.body) if self.body.strip() else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_text(self) -> str:
        """A short reason: Toxiproxy's ``error`` field, or the body's first line."""
        try:
            data = self.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return f"HTTP {self.status}: {data['error']}"
        text = self.body.decode("utf-8", "replace").strip().splitlines()
        return f"HTTP {self.status}" + (f": {text[0][:200]}" if text else "")


def call(method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None,
         timeout_s: float = 5.0) -> HttpReply:
    """Send one request; ``body`` goes as JSON unless it is ``str``/``bytes``. Raises OSError
    (``urllib.error.URLError`` included) when there is no answer at all."""
    data: bytes | None
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    if body is None:
        data = None
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    if url.split(":", 1)[0].lower() not in SCHEMES:
        raise urllib.error.URLError(f"not an http:// or https:// URL: {url[:100]}")
    request = urllib.request.Request(url, data=data, method=method.upper(), headers=all_headers)
    try:
        with urllib.request.build_opener(_HttpOnlyRedirects).open(request, timeout=timeout_s) as response:
            return HttpReply(response.status, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpReply(exc.code, exc.read())
