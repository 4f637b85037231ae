"""The Locust web UI extension: SLA, Faults and Health tabs, the live charts page with the fault
buttons, its JSON state and ``/metrics``. Runs in the web UI's process, the master or the local
runner (gevent), and is installed by the plugin in ``init`` when ``environment.web_ui`` exists.
It touches no Locust object but the web UI: the plugin hands it the options and the runner state::

    install_web_ui(environment.web_ui, plugin, lag_s=plugin.data_lag_s, base_path="/locust",
                   web_origin=None, runner_state=plugin.runner_state)

Routes, all under Locust's ``--web-base-path``:

* ``/reliability/`` the charts page (its ``live.js`` and ``live.css`` next to it);
* ``/reliability/state.json[?since=EPOCH_S]`` what the page polls;
* ``POST /reliability/faults/inject`` (``{"name": ...}``) and ``POST /reliability/faults/revert``;
* ``/metrics`` in the Prometheus text format.

Everything but ``/metrics`` is behind Locust's web login when ``--web-login`` is on (Prometheus
cannot log in; ``/metrics`` carries numbers and names, never a secret). :class:`~reliability.web.guard.WebGuard`
guards the whole app, Locust's routes included: only the UI's own ``Host`` names, state-changing
requests from its own origin only, no file paths from the start form, CORS and cookies locked to
the UI's origin. The two POST routes also need an ``X-Reliability: 1`` header (a custom header: a
plain cross-site form cannot send it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, MutableMapping
from importlib import resources
from typing import Protocol, runtime_checkable

import gevent
import jinja2
from flask import Blueprint, Response, request

from reliability.jsontypes import JsonObject, JsonValue
from reliability.sla import EXIT_INCONCLUSIVE
from reliability.web.guard import WebGuard, WebServer, flask_app, parse_extra_origins
from reliability.web.metrics import CONTENT_TYPE, metrics_registry, render
from reliability.web.state import LiveSource, LiveState, ScheduleView, find_extension
from reliability.web.tabs import TABLES, TABS, tab_rows

logger = logging.getLogger("reliability.web")

PAGE = "reliability"
PAGE_TITLE = "Live SLA charts and fault controls (locust-reliability)"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
STATIC = {"live.js": "text/javascript; charset=utf-8", "live.css": "text/css; charset=utf-8"}


View = Callable[..., Response]


class LocustWebUI(WebServer, Protocol):
    """What the extension uses of Locust's ``WebUI`` besides what the guard reads."""

    @property
    def template_args(self) -> MutableMapping[str, object]: ...

    def auth_required_if_enabled(self, view_func: View) -> View: ...


@runtime_checkable
class InjectsNow(Protocol):
    """A fault schedule that injects a fault on demand (``ScheduleExtension.inject_now``)."""

    def inject_now(self, name: str) -> object: ...


@runtime_checkable
class RevertsAll(Protocol):
    """A fault schedule that reverts every fault on demand."""

    def revert_all(self, why: str) -> None: ...


def _template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("reliability.web", "templates"),
                              autoescape=jinja2.select_autoescape(default=True, default_for_string=True))


class ReliabilityWeb:
    """The routes and hooks of the extension; see the module docstring.

    Example::

        web = ReliabilityWeb(environment.web_ui, plugin, lag_s=1, base_path="/locust")
        web.live.state()["sla"]["passed"]

    ``source`` is what the state reads of the plugin; ``lag_s`` its data lag (see
    ``reliability.extension.complete_until``); ``base_path`` Locust's ``--web-base-path``;
    ``web_origin`` the ``--web-origin`` values; ``runner_state`` returns Locust's runner state.
    """

    def __init__(self, web_ui: LocustWebUI, source: LiveSource, *, lag_s: int, base_path: str = "",
                 web_origin: Iterable[str] | str | None = None,
                 runner_state: Callable[[], str | None] = lambda: None,
                 templates: jinja2.Environment | None = None) -> None:
        self.web_ui = web_ui
        self.source = source
        self.base = base_path.rstrip("/")
        self.page_path = f"{self.base}/{PAGE}/"
        self.templates = templates or _template_env()
        self.live = LiveState(
            source, lag_s=lag_s, runner_state=runner_state,
            links={"page": self.page_path, "state": f"{self.page_path}state.json", "metrics": f"{self.base}/metrics",
                   "locust": f"{self.base}/"})
        self.registry = metrics_registry(self.live)
        self.guard = WebGuard(web_ui, base_path=self.base, extra_origins=parse_extra_origins(web_origin))

    # -- installation ------------------------------------------------------------------------------

    def install(self) -> None:
        web_ui = self.web_ui
        self.guard.install()
        auth = web_ui.auth_required_if_enabled
        blueprint = Blueprint("reliability", __name__, url_prefix=self.base or None)
        blueprint.add_url_rule(f"/{PAGE}/", "page", auth(self.page))
        blueprint.add_url_rule(f"/{PAGE}/<any(live.js, live.css):name>", "static", auth(self.static))
        blueprint.add_url_rule(f"/{PAGE}/state.json", "state", auth(self.state))
        blueprint.add_url_rule(f"/{PAGE}/faults/inject", "inject", auth(self.inject), methods=["POST"])
        blueprint.add_url_rule(f"/{PAGE}/faults/revert", "revert", auth(self.revert), methods=["POST"])
        blueprint.add_url_rule("/metrics", "metrics", self.metrics)
        app = flask_app(web_ui)
        app.register_blueprint(blueprint)
        app.after_request(self.extend_stats)
        web_ui.template_args["extended_tabs"] = TABS
        web_ui.template_args["extended_tables"] = TABLES
        web_ui.template_args["extended_csv_files"] = [
            {"href": f"./{PAGE}/", "title": PAGE_TITLE},
            {"href": "./metrics", "title": "Prometheus metrics (locust-reliability)"},
        ]

    # -- views -------------------------------------------------------------------------------------

    def page(self) -> Response:
        html = self.templates.get_template("live.html").render(base=self.base, page=self.page_path,
                                                               title=PAGE_TITLE)
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
        return response

    def static(self, name: str) -> Response:
        text = resources.files("reliability.web").joinpath("templates", name).read_text(encoding="utf-8")
        return Response(text, content_type=STATIC[name])

    def state(self) -> Response:
        since = request.args.get("since", type=int)
        response = Response(self.live.json(since=since), mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    def metrics(self) -> Response:
        return Response(render(self.registry), content_type=CONTENT_TYPE)

    def extend_stats(self, response: Response) -> Response:
        if (request.path != f"{self.base}/stats/requests" or response.status_code != 200
                or response.mimetype != "application/json"):
            return response
        try:
            data = json.loads(response.get_data())
            data["extended_stats"] = tab_rows(self.live.state(), self.page_path)
            response.set_data(json.dumps(data))
        except Exception:  # the tabs must never break Locust's own statistics
            logger.exception("could not add the reliability tabs to /stats/requests")
        return response

    # -- fault controls (master / local runner only: this process) ---------------------------------

    def _refused(self) -> Response | None:
        """The custom header (the guard has checked Host and Origin already; see the module docstring)."""
        if request.headers.get("X-Reliability") != "1":
            return _json({"ok": False, "error": "missing X-Reliability header"}, 403)
        return None

    def inject(self) -> Response:
        refused = self._refused()
        if refused is not None:
            return refused
        body: JsonValue = request.get_json(silent=True) or {}
        name = body.get("name") if isinstance(body, dict) else None
        schedule = find_extension(self.source, "schedule")
        if not isinstance(schedule, ScheduleView) or not schedule.runs:
            return _json({"ok": False, "error": "this run has no fault schedule (start a test whose scenario has "
                                                "faults:)"}, 409)
        if not isinstance(schedule, InjectsNow):
            return _json({"ok": False, "error": "this fault schedule cannot inject on demand"}, 501)
        try:
            schedule.inject_now(str(name))  # claims the fault and injects it from a greenlet
        except ValueError as exc:
            return _json({"ok": False, "error": str(exc)}, 409)
        logger.info("web UI: injecting fault %s now", name)
        self.live.invalidate()  # the next poll shows the new state
        return _json({"ok": True, "accepted": name}, 202)

    def revert(self) -> Response:
        refused = self._refused()
        if refused is not None:
            return refused
        schedule = find_extension(self.source, "schedule")
        if not isinstance(schedule, RevertsAll):
            return _json({"ok": False, "error": "this run has no fault schedule"}, 409)
        logger.info("web UI: reverting all faults")
        gevent.spawn(self._call, schedule.revert_all, "reverted from the web UI")
        self.live.invalidate()
        return _json({"ok": True, "accepted": "revert all"}, 202)

    @staticmethod
    def _call(fn: Callable[[str], None], why: str) -> None:
        try:
            fn(why)
        except Exception:  # logged; the page shows the fault's state and error
            logger.exception("web UI fault control failed")


def _json(data: JsonObject, status: int) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def install_web_ui(web_ui: LocustWebUI, source: LiveSource, *, lag_s: int, base_path: str = "",
                   web_origin: Iterable[str] | str | None = None,
                   runner_state: Callable[[], str | None] = lambda: None) -> ReliabilityWeb:
    """Add the tabs, the page, the fault controls and ``/metrics`` to Locust's web UI (a bad
    ``--web-origin`` is one line and exit 4, before the UI serves anything); the arguments are
    :class:`ReliabilityWeb`'s."""
    try:
        web = ReliabilityWeb(web_ui, source, lag_s=lag_s, base_path=base_path, web_origin=web_origin,
                             runner_state=runner_state)
    except ValueError as exc:
        logger.error("%s", exc)
        raise SystemExit(EXIT_INCONCLUSIVE) from None
    web.install()
    return web
