"""Login and bearer tokens: the target's "security gateway" in front of ``/api/*``."""

from __future__ import annotations

import enum
import hmac
import secrets
from collections import OrderedDict


class AuthOutcome(enum.Enum):
    """Result of checking an ``Authorization`` header."""

    OK = "ok"
    MISSING = "missing"  # no or malformed header -> 401
    UNKNOWN = "unknown"  # well-formed but not issued here -> 403


class Authenticator:
    """Check passwords and issue random opaque tokens, remembering at most ``max_tokens``.

    Example::

        auth = Authenticator({"demo": "demo"})
        token = auth.login("demo", "demo")          # None on bad credentials
        auth.check(f"Bearer {token}")               # AuthOutcome.OK
    """

    def __init__(self, users: dict[str, str], max_tokens: int = 100_000) -> None:
        self._users = dict(users)
        self._max_tokens = max_tokens
        # Insertion-ordered so the oldest token goes first: a load test that logs in on every
        # user start must not grow the process without bound.
        self._tokens: OrderedDict[str, str] = OrderedDict()

    def login(self, username: str, password: str) -> str | None:
        expected = self._users.get(username)
        # Compare even for unknown users so timing does not reveal which user names exist.
        ok = hmac.compare_digest(password.encode(), (expected or "\0" + password).encode())
        if expected is None or not ok:
            return None
        token = secrets.token_urlsafe(32)
        self._tokens[token] = username
        while len(self._tokens) > self._max_tokens:
            self._tokens.popitem(last=False)
        return token

    def check(self, header: str | None) -> AuthOutcome:
        if not header:
            return AuthOutcome.MISSING
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return AuthOutcome.MISSING
        return AuthOutcome.OK if token in self._tokens else AuthOutcome.UNKNOWN
