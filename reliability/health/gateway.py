"""Security gateway probe: what the API in front of ``path`` lets through.

Four requests to ``path``: without a token, with a malformed ``Authorization`` header, with a
well-formed token nobody issued, and with a valid token. The first three must be rejected with
401 or 403; the last must not be. The valid token is the configured ``token``, or one obtained by
logging in (kept between checks, fetched again when it stops working).

* down: a request without a valid token got a 2xx/3xx (the gateway fails open), the valid token is
  rejected, the login fails, or the API does not answer;
* degraded: a request without a valid token was refused with another status than 401/403 (a
  429 or 5xx), or the valid request got a 5xx from the API behind the gateway;
* healthy otherwise.

Tokens and passwords never appear in the detail or the data.

Example::

    spec = GatewayProbeSpec(type="gateway", url="http://127.0.0.1:8080", username="demo", password="demo")
    measure(GatewayProbe(spec, "gateway"), timeout_s=0.8)
"""

from __future__ import annotations

import secrets as random_secrets

from reliability.health import _http
from reliability.health.base import Deadline, Finding, Status
from reliability.health.spec import GatewayProbeSpec

REJECTED = (401, 403)
MALFORMED = "Bearer not a token"  # a space inside the token: not a well-formed bearer token


class GatewayProbe:
    """Send the four requests within the deadline; see the module docstring."""

    kind = "gateway"

    def __init__(self, spec: GatewayProbeSpec, target: str) -> None:
        self.url = _http.join(spec.url, spec.path)
        self.login_url = _http.join(spec.url, spec.login_path)
        self.username = spec.username
        self._password = spec.password.get_secret_value() if spec.password is not None else None
        self._fixed_token = spec.token.get_secret_value() if spec.token is not None else None
        self._token = self._fixed_token
        self.target = target

    def _login(self, deadline: Deadline) -> str:
        reply = _http.request("POST", self.login_url, deadline,
                              body={"username": self.username, "password": self._password})
        body = reply.json() if reply.status == 200 else None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PermissionError(f"login as {self.username!r} answered HTTP {reply.status} without a token")
        return token

    def _get(self, deadline: Deadline, authorization: str | None) -> int:
        headers = {"Authorization": authorization} if authorization is not None else {}
        return _http.request("GET", self.url, deadline, headers).status

    def check(self, deadline: Deadline) -> Finding:
        data: dict[str, int] = {
            "no_token": self._get(deadline, None),
            "malformed_token": self._get(deadline, MALFORMED),
            "wrong_token": self._get(deadline, f"Bearer {random_secrets.token_urlsafe(32)}"),
        }
        let_through = [case for case, status in data.items() if status < 400]
        odd = [f"{case} {status}" for case, status in data.items() if status >= 400 and status not in REJECTED]
        if self._token is None:
            self._token = self._login(deadline)
        valid = self._get(deadline, f"Bearer {self._token}")
        if valid in REJECTED and self._fixed_token is None:
            self._token = self._login(deadline)  # expired or the server restarted: one fresh login
            valid = self._get(deadline, f"Bearer {self._token}")
        data["valid_token"] = valid
        summary = ", ".join(f"{case} {status}" for case, status in data.items())
        if let_through:
            return Finding(Status.DOWN, f"fails open: {', '.join(let_through)} not rejected ({summary})", data)
        if valid in REJECTED:
            if self._fixed_token is None:
                self._token = None
            return Finding(Status.DOWN, f"valid token rejected ({summary})", data)
        if odd:
            return Finding(Status.DEGRADED, f"rejections without 401/403: {', '.join(odd)} ({summary})", data)
        if valid >= 500:
            return Finding(Status.DEGRADED, f"gateway ok, API behind it answered {valid} ({summary})", data)
        return Finding(Status.HEALTHY, summary, data)

    def close(self) -> None:
        self._token = self._fixed_token
