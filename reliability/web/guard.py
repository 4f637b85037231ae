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

import json
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from flask import Flask, Response, request

from reliability.origins import Origin, OriginPolicy, is_loopback, machine_names, parse_origin, parse_origins

logger = logging.getLogger("reliability.web")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# what Locust's React start form posts besides the options marked include_in_web_ui
LOCUST_FORM_FIELDS = frozenset({"user_count", "spawn_rate", "host", "run_time", "profile", "user_classes",
                                "shape_class"})


class WebServer(Protocol):
    """What the guard reads of Locust's ``WebUI`` (``locust.web``): its Flask app and how it listens."""

    @property
    def app(self) -> Flask | None: ...  # set by WebUI.__init__

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def web_login(self) -> bool: ...

    @property
    def tls_cert(self) -> str | None: ...

    @property
    def tls_key(self) -> str | None: ...


def flask_app(web_ui: WebServer) -> Flask:
    """The web UI's Flask app (Locust's ``WebUI`` creates it in its constructor)."""
    if web_ui.app is None:
        raise RuntimeError("the Locust web UI has no Flask app yet")
    return web_ui.app


def parse_extra_origins(values: Iterable[str] | str | None) -> list[Origin]:
    """``--web-origin`` values (comma-separated, repeatable); a bad one is an error naming it."""
    return parse_origins(values, "--web-origin")


class WebGuard:
    """The origin, host, form and cookie rules of the module docstring, on one Locust web UI.

    ``form_fields`` returns the names of the custom options Locust's form shows (default: Locust's
    own ``ui_extra_args_dict``); ``names`` lists this machine's names (default: the real ones).
    """

    def __init__(self, web_ui: WebServer, *, base_path: str = "", extra_origins: Iterable[Origin] = (),
                 form_fields: Callable[[], Iterable[str]] | None = None,
                 names: Callable[[], set[str]] = machine_names) -> None:
        self.web_ui = web_ui
        self.base = base_path.rstrip("/")
        self.scheme = "https" if web_ui.tls_cert and web_ui.tls_key else "http"
        self.policy = OriginPolicy(str(web_ui.host or ""), extra_origins=extra_origins,
                                   scheme=self.scheme, names=names)
        self.hostnames = self.policy.hostnames
        self._form_fields = form_fields or _locust_form_options
        self._allowed_fields: frozenset[str] | None = None
        self._refused_hosts: set[str] = set()

    def install(self) -> None:
        app = flask_app(self.web_ui)
        _drop_flask_cors(app)
        app.config.update(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=True,
                          REMEMBER_COOKIE_SAMESITE="Strict", REMEMBER_COOKIE_HTTPONLY=True)
        if self.scheme == "https":
            app.config.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
        app.before_request_funcs.setdefault(None, []).insert(0, self.before_request)
        app.after_request(self.after_request)
        host = str(self.web_ui.host or "")
        if not is_loopback(host) and not self.web_ui.web_login:
            logger.warning("the web UI listens on %s (not loopback) without --web-login: anyone who can reach "
                           "port %s can start and stop tests; use --web-host 127.0.0.1 or --web-login",
                           host or "all interfaces", self.web_ui.port)

    # -- checks ------------------------------------------------------------------------------------

    def host_problem(self) -> str | None:
        problem = self.policy.host_problem(request.headers.get("Host"))
        return None if problem is None else f"{problem}; add others with --web-origin"

    def origin_problem(self) -> str | None:
        headers = request.headers
        return self.policy.origin_problem(headers.get("Origin"), headers.get("Referer"), headers.get("Sec-Fetch-Site"),
                                          headers.get("Host"))

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
        if self.policy.is_own(origin, request.headers.get("Host")):
            response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, POST"
                response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Reliability"
        return response

    def _refuse(self, problem: str, status: int) -> Response:
        message = f"refused: {problem}"
        if request.path.startswith(f"{self.base}/reliability/"):
            body: dict[str, str | bool] = {"ok": False, "error": message}
        else:
            body = {"success": False, "message": message}
        return Response(json.dumps(body), status=status, mimetype="application/json")


def _locust_form_options() -> list[str]:
    from locust.argument_parser import ui_extra_args_dict

    return list(ui_extra_args_dict())


def _drop_flask_cors(app: Flask) -> None:
    """Undo Locust's ``CORS(app)`` (it answers any origin): its after-request hook and the
    exception-handler wrappers it installs on the app instance."""
    hooks = app.after_request_funcs.get(None, [])
    hooks[:] = [f for f in hooks if not getattr(f, "__module__", "").startswith("flask_cors")]
    for name in ("handle_exception", "handle_user_exception"):
        wrapped = vars(app).get(name)
        if wrapped is not None and "flask_cors" in getattr(wrapped, "__qualname__", "") + getattr(
                wrapped, "__module__", ""):
            del vars(app)[name]
