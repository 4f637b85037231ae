"""Abstract Locust users for real targets: PostgreSQL, Redis, WebSocket and a token-auth HTTP API.

Subclass one in your locustfile::

    from reliability.users import PostgresUser, RedisUser, WebSocketUser, ApiUser

Each user fires Locust request events (so the SLA plugin, the web UI and ``--json`` see them) and
records a refused connection or a dropped server as a failed sample, then reconnects with a bounded
backoff. The names resolve lazily: importing this package imports neither locust nor a driver, only
asking for a user class does (importing locust monkey-patches the process with gevent).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reliability.users.http import ApiUser, TokenAuthMixin
    from reliability.users.postgres import PostgresUser
    from reliability.users.redis import RedisUser
    from reliability.users.websocket import WebSocketUser

_HOMES = {
    "ApiUser": "reliability.users.http",
    "TokenAuthMixin": "reliability.users.http",
    "PostgresUser": "reliability.users.postgres",
    "RedisUser": "reliability.users.redis",
    "WebSocketUser": "reliability.users.websocket",
}

__all__ = ["ApiUser", "PostgresUser", "RedisUser", "TokenAuthMixin", "WebSocketUser"]


def __getattr__(name: str) -> type:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    found = getattr(importlib.import_module(home), name)
    if not isinstance(found, type):  # every lazy name is a class
        raise AttributeError(f"module {__name__!r}: {name!r} is not a class")
    return found
