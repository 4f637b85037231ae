"""The one HTTP client: health probes, webhook/admin faults (and their reverts) send through it.

On urllib3 (installed with Locust): a bounded timeout for connect and read, redirects followed to
http(s) only and at most ``redirects`` times, the body read up to ``max_body`` bytes, no retries
(the caller decides), and every failure raised as ``OSError`` whose text has the URL's secrets
(userinfo, token parameters, ``secrets``) masked by :func:`reliability.masking.mask`.

Example::

    reply = send("POST", "http://127.0.0.1:8474/proxies", {"name": "pg", "upstream": "db:5432"})
    reply.status, reply.json()    # (201, {'name': 'pg', ...})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from reliability.jsontypes import JsonData, JsonValue
from reliability.masking import mask

USER_AGENT = "locust-reliability"  # Toxiproxy refuses browser agents ("Mozilla/...")
SCHEMES = ("http", "https")
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """Status and body of an answer (any status: the caller knows which it expects)."""

    status: int
    body: bytes

    def json(self) -> JsonValue:
        """The body parsed as JSON (None when empty); ValueError if it is not JSON."""
        return json.loads(self.body) if self.body.strip() else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_text(self) -> str:
        """A short reason: a JSON ``error`` field (Toxiproxy's), or the body's first line."""
        try:
            data = self.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return f"HTTP {self.status}: {data['error']}"
        text = self.body.decode("utf-8", "replace").strip().splitlines()
        return f"HTTP {self.status}" + (f": {text[0][:200]}" if text else "")


def _encode(body: JsonData | bytes, headers: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode()


def send(method: str, url: str, body: JsonData | bytes = None, headers: Mapping[str, str] | None = None, *,
         timeout_s: float = 5.0, redirects: int = 3, max_body: int = MAX_BODY_BYTES,
         secrets: Iterable[str] = (), keep_alive: bool = False) -> Reply:
    """Send one request; ``body`` goes as JSON unless it is ``str``/``bytes``. Raises OSError
    (masked) when there is no answer at all."""
    if urlsplit(url).scheme.lower() not in SCHEMES or not urlsplit(url).hostname:
        raise OSError(mask(f"not an http:// or https:// URL: {url[:100]}", secrets))
    sent = {"User-Agent": USER_AGENT, **({} if keep_alive else {"Connection": "close"}), **(headers or {})}
    data = _encode(body, sent)
    retries = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=max(redirects, 0),
                            raise_on_redirect=False, allowed_methods=None)
    pool = urllib3.PoolManager(num_pools=1, maxsize=1)
    try:
        response = pool.request(method.upper(), url, body=data, headers=sent, redirect=redirects > 0,
                                retries=retries, timeout=urllib3.Timeout(total=max(timeout_s, 0.001)),
                                preload_content=False)
        try:
            return Reply(response.status, response.read(max_body))
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        text = mask(f"{type(reason).__name__}: {reason}", (url, *secrets))
        refused = isinstance(reason, urllib3.exceptions.NewConnectionError)  # a ConnectTimeoutError subclass
        if not refused and isinstance(reason, urllib3.exceptions.TimeoutError | TimeoutError):
            raise TimeoutError(text) from None  # still an OSError; probes report the bound they hit
        raise OSError(text) from None
    finally:
        pool.clear()
