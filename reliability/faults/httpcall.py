"""One bounded HTTP call with a JSON body for faults (the chaos proxy's API, the reference
target's admin API, webhooks): :func:`reliability.httpclient.send` with the faults' defaults.
Non-2xx answers are returned, not raised: the caller knows which statuses it expects.

Example::

    reply = call("POST", "http://127.0.0.1:8474/proxies", {"name": "pg", "upstream": "db:5432"})
    reply.status, reply.json()    # (201, {'name': 'pg', ...})
"""

from __future__ import annotations

from collections.abc import Mapping

from reliability.httpclient import SCHEMES as SCHEMES
from reliability.httpclient import USER_AGENT as USER_AGENT
from reliability.httpclient import Reply, send
from reliability.jsontypes import JsonValue

HttpReply = Reply  # the faults' name for it


def call(method: str, url: str, body: JsonValue | bytes = None, headers: Mapping[str, str] | None = None,
         timeout_s: float = 5.0) -> HttpReply:
    """Send one request; ``body`` goes as JSON unless it is ``str``/``bytes``. Raises OSError
    when there is no answer at all."""
    return send(method, url, body, headers, timeout_s=timeout_s)
