"""Who may drive the web UI: the UI's own origin only, and never its files.

Locust's web UI takes any request from anywhere: ``POST /swarm`` copies every form field onto the
parsed options (so a form posted from another site could pick ``scenario`` and ``run_record``, or
Locust's own ``html_file``), Flask-CORS answers every origin, and no check looks at ``Host``.
:class:`WebGuard` hooks into the Flask app (installed by :mod:`reliability.web.ui`) and:

* answers only requests whose ``Host`` names this UI: the address it binds (loopback names for a
  loopback bind; this machine's names and interface addresses for a wildcard bind) or a host of
  ``--web-origin``. A DNS-rebinding page sends its own domain as ``Host`` and gets a 403;
* refuses every state-changing request (any method but GET/HEAD/OPTIONS: Locust's ``/swarm``,
  ``/stop``, ``/stats/reset``, ``/user`` and our fault controls) unless ``Origin`` (or, without
  it, ``Referer``) is the UI's own origin or one of ``--web-origin``, and ``Sec-Fetch-Site`` (when
  the browser sends it) says ``same-origin``. Clients that send neither (curl, scripts) are not
  browsers and cannot be driven by another site, so they pass;
* lets ``/swarm`` set only the fields Locust's own form sends (users, spawn rate, host, run time,
  profile, user classes, shape) and the custom options shown in the form: ``scenario``,
  ``run_record`` and every other file path come from the command line or config only;
* sends CORS headers only to the UI's own origins (a cross-origin page cannot read
  ``state.json``), and marks the session and remember-me cookies ``SameSite=Strict``.

Example::

    guard = WebGuard(web_ui, extra_origins=["https://locust.example.com"])
    guard.install()
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, request

logger = logging.getLogger("reliability.web")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# what Locust's React start form posts besides the options marked include_in_web_ui
LOCUST_FORM_FIELDS = frozenset({"user_count", "spawn_rate", "host", "run_time", "profile", "user_classes",
                                "shape_class"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"", "*", "0.0.0.0", "::"})
Origin = tuple[str, str, int]  # scheme, host (lower case, no brackets), port


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; False for a wildcard bind or any other name."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_origin(value: str | None) -> Origin | None:
    """``scheme://host[:port]`` (a Referer's path is ignored) as a comparable tuple, or None."""
    if not value or value == "null":
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


def split_host(header: str) -> tuple[str, int | None] | None:
    """A ``Host`` header as (name, port or None); None when it does not parse."""
    try:
        parts = urlsplit(f"//{header.strip()}")
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return None


def machine_names() -> set[str]:
    """This machine's host names and interface addresses (what a wildcard bind answers on)."""
    import psutil

    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.add(address.address.split("%", 1)[0].lower())
    return names


def own_hostnames(bind: str, extra: Iterable[Origin] = (),
                  names: Callable[[], set[str]] = machine_names) -> frozenset[str]:
    """The names a browser may use to reach a UI bound to ``bind``."""
    bind = bind.strip("[]").lower()
    if bind in WILDCARD_BINDS:
        found = {*LOOPBACK_NAMES, *names()}
    elif is_loopback(bind):
        found = {*LOOPBACK_NAMES, bind}
    else:
        found = {bind}
    return frozenset(found | {o[1] for o in extra})


def parse_extra_origins(values: Iterable[str] | str | None) -> list[Origin]:
    """``--web-origin`` values (comma-separated, repeatable); a bad one is an error naming it."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    origins = []
    for value in (v.strip() for item in values for v in item.split(",")):
        if not value:
            continue
        origin = parse_origin(value)
        if origin is None:
            raise ValueError(f"--web-origin: {value!r} is not an origin like https://locust.example.com:8443")
        origins.append(origin)
    return origins


class WebGuard:
    """The origin, host, form and cookie rules of the module docstring, on one Locust web UI.

    ``form_fields`` returns the names of the custom options Locust's form shows (default: Locust's
    own ``ui_extra_args_dict``); ``names`` lists this machine's names (default: the real ones).
    """

    def __init__(self, web_ui: Any, *, base_path: str = "", extra_origins: Iterable[Origin] = (),
                 form_fields: Callable[[], Iterable[str]] | None = None,
                 names: Callable[[], set[str]] = machine_names) -> None:
        self.web_ui = web_ui
        self.base = base_path.rstrip("/")
        self.extra = frozenset(extra_origins)
        self.scheme = "https" if getattr(web_ui, "tls_cert", None) and getattr(web_ui, "tls_key", None) else "http"
        self.hostnames = own_hostnames(str(getattr(web_ui, "host", "") or ""), self.extra, names)
        self._form_fields = form_fields or _locust_form_options
        self._allowed_fields: frozenset[str] | None = None
        self._refused_hosts: set[str] = set()

    def install(self) -> None:
        app = self.web_ui.app
        _drop_flask_cors(app)
        app.config.update(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=True,
                          REMEMBER_COOKIE_SAMESITE="Strict", REMEMBER_COOKIE_HTTPONLY=True)
        if self.scheme == "https":
            app.config.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
        app.before_request_funcs.setdefault(None, []).insert(0, self.before_request)
        app.after_request(self.after_request)
        host = str(getattr(self.web_ui, "host", "") or "")
        if not is_loopback(host) and not getattr(self.web_ui, "web_login", False):
            logger.warning("the web UI listens on %s (not loopback) without --web-login: anyone who can reach "
                           "port %s can start and stop tests; use --web-host 127.0.0.1 or --web-login",
                           host or "all interfaces", getattr(self.web_ui, "port", "?"))

    # -- checks ------------------------------------------------------------------------------------

    def own_origin(self) -> Origin | None:
        """This request's own origin: the scheme we serve and its (already checked) Host."""
        host = split_host(request.host)
        if host is None:
            return None
        name, port = host
        return self.scheme, name.lower(), port or (443 if self.scheme == "https" else 80)

    def host_problem(self) -> str | None:
        header = request.headers.get("Host")
        if header is None:
            return None  # HTTP/1.0 without Host: not a browser
        host = split_host(header)
        if host is None or host[0].lower() not in self.hostnames:
            return f"unknown Host {header[:100]!r} (this UI answers {', '.join(sorted(self.hostnames)[:6])}; " \
                   "add others with --web-origin)"
        return None

    def origin_problem(self) -> str | None:
        fetch_site = request.headers.get("Sec-Fetch-Site")
        raw = request.headers.get("Origin")
        if raw is None:
            raw = request.headers.get("Referer")
        if raw is None:
            if fetch_site in (None, "same-origin"):
                return None  # not sent by a browser on another site's behalf
            return f"Sec-Fetch-Site {fetch_site!r} without Origin"
        origin = parse_origin(raw)
        if origin is not None and origin in self.extra:
            return None
        if origin is None or origin != self.own_origin():
            return f"cross-origin request from {raw[:100]!r}"
        if fetch_site not in (None, "same-origin"):
            return f"Sec-Fetch-Site {fetch_site!r}"
        return None

    def form_problem(self) -> str | None:
        if request.path != f"{self.base}/swarm":
            return None
        if self._allowed_fields is None:
            self._allowed_fields = LOCUST_FORM_FIELDS | frozenset(self._form_fields())
        refused = sorted(set(request.form) - self._allowed_fields)
        if refused:
            return (f"the start form cannot set {', '.join(refused)[:200]}: scenario, run record and other "
                    "files come from the command line or config")
        return None

    # -- hooks -------------------------------------------------------------------------------------

    def before_request(self) -> Response | None:
        problem = self.host_problem()
        if problem is not None:
            header = request.headers.get("Host", "")
            if header not in self._refused_hosts and len(self._refused_hosts) < 100:
                self._refused_hosts.add(header)
                logger.warning("web UI: refused %s %s: %s", request.method, request.path[:200], problem)
            return self._refuse(problem, 403)
        if request.method in SAFE_METHODS:
            return None
        problem = self.origin_problem()
        status = 403
        if problem is None:
            problem, status = self.form_problem(), 400
        if problem is None:
            return None
        logger.warning("web UI: refused %s %s: %s", request.method, request.path[:200], problem)
        return self._refuse(problem, status)

    def after_request(self, response: Response) -> Response:
        """CORS for the UI's own origins only (same-origin pages need none; ``--web-origin`` ones do)."""
        origin = parse_origin(request.headers.get("Origin"))
        for header in {k for k, _v in response.headers.items() if k.lower().startswith("access-control-")}:
            del response.headers[header]
        response.vary.add("Origin")
        if origin is not None and (origin in self.extra or origin == self.own_origin()):
            response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST"
                response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Reliability"
        return response

    def _refuse(self, problem: str, status: int) -> Response:
        message = f"refused: {problem}"
        if request.path.startswith(f"{self.base}/reliability/"):
            body: dict[str, Any] = {"ok": False, "error": message}
        else:
            body = {"success": False, "message": message}
        return Response(json.dumps(body), status=status, mimetype="application/json")


def _locust_form_options() -> list[str]:
    from locust.argument_parser import ui_extra_args_dict

    return list(ui_extra_args_dict())


def _drop_flask_cors(app: Any) -> None:
    """Undo Locust's ``CORS(app)`` (it answers any origin): its after-request hook and the
    exception-handler wrappers it installs on the app instance."""
    hooks = app.after_request_funcs.get(None, [])
    hooks[:] = [f for f in hooks if not getattr(f, "__module__", "").startswith("flask_cors")]
    for name in ("handle_exception", "handle_user_exception"):
        wrapped = vars(app).get(name)
        if wrapped is not None and "flask_cors" in getattr(wrapped, "__qualname__", "") + getattr(
                wrapped, "__module__", ""):
            del vars(app)[name]
