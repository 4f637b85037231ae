"""WebSocketUser: connect, echo round trips and server-push latency over one JSON WebSocket."""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import itertools
import json
import sys
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

import locust  # noqa: F401  (before any driver: it patches the process for gevent)

# isort: split
import gevent
from gevent.event import AsyncResult
from locust import User
from locust.env import Environment

from reliability.jsontypes import JsonData, JsonValue
from reliability.users._base import Backoff, ComponentContext, fire_request, user_setting


def _websocket_client() -> ModuleType:
    """The websocket-client package, even when a locustfile named ``websocket.py`` shadows it.

    Locust imports ``-f websocket.py`` as the module ``websocket`` with its folder first on
    ``sys.path``, so a plain ``import websocket`` would return (or import) that locustfile. The
    package is therefore looked up by hand: the first ``websocket`` *package* on ``sys.path``,
    registered under its own name.
    """
    loaded = sys.modules.get("websocket")
    if loaded is not None and hasattr(loaded, "create_connection"):
        return loaded
    for entry in sys.path:
        spec = importlib.machinery.PathFinder.find_spec("websocket", [entry])
        if spec is None or spec.loader is None or not spec.submodule_search_locations:
            continue  # absent here, or a plain websocket.py (a locustfile)
        module = importlib.util.module_from_spec(spec)
        sys.modules["websocket"] = module  # its submodules import relative to this name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["websocket"]
            raise
        return module
    raise ImportError("websocket-client is not installed (pip install websocket-client)")


if TYPE_CHECKING:
    import websocket
else:
    websocket = _websocket_client()

REQUEST_TYPE = "ws"
URL_ENV = "RELIABILITY_WS_URL"
CLOSE_ERRORS = (websocket.WebSocketException, OSError)


class EchoTimeout(Exception):
    """No echo reply within ``WebSocketUser.echo_timeout_s``."""


class ConnectionLost(Exception):
    """The WebSocket closed while a reply was pending, or closed unexpectedly."""


class WebSocketUser(ComponentContext, User):
    """Abstract base for users that hold one WebSocket to a JSON echo/broadcast/push server.

    The protocol is the reference target's ``/ws`` (JSON text frames): ``echo`` (``id``, ``data``,
    optional ``delay_ms``) is answered with the same ``id``; ``broadcast`` reaches every client
    with a ``sent_at`` epoch; ``subscribe`` (``interval_ms``) starts periodic ``push`` frames with
    ``seq`` and ``sent_at``; ``unsubscribe`` stops them.

    Samples (request type ``ws``, context ``{"component": "ws"}``) have separate names:

    - ``connect``: the opening handshake.
    - ``echo``: the round trip of :meth:`echo`, from send to the reply being read.
    - ``push`` and ``broadcast``: delivery latency of a server-initiated frame, receive
      ``time.time()`` minus the server's ``sent_at`` (clocks must agree; on one machine they do).
      Negative values from clock skew are reported as 0.
    - ``disconnect``: a failure recorded when the server closes or drops the connection.

    A background greenlet per user reads frames as they arrive, so push latency is measured on
    arrival even while the user sleeps or waits for an echo.

    **Failures**: a refused connection, a dropped server or an echo without reply within
    ``echo_timeout_s`` is a failed sample; the user keeps running. The next call reconnects
    after a jittered backoff (0.1 s doubling to 2 s, reset by a successful connect) and renews
    a subscription that was active. The URL is the ``url`` class attribute, else
    ``RELIABILITY_WS_URL``.

    Example::

        from locust import between, task
        from reliability.users.websocket import WebSocketUser

        class Chatter(WebSocketUser):
            wait_time = between(0.5, 1.0)

            def on_start(self) -> None:
                super().on_start()
                self.subscribe(interval_ms=500)

            @task
            def ping(self) -> None:
                self.echo({"hello": "world"})
    """

    abstract = True
    url: str | None = None
    connect_timeout_s: float = 5.0
    echo_timeout_s: float = 10.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    component: str = "ws"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._url = user_setting(self.url, URL_ENV, type(self).__name__, "url")
        self._ws: websocket.WebSocket | None = None
        self._reader: gevent.Greenlet | None = None
        self._pending: dict[int, AsyncResult] = {}
        self._ids = itertools.count(1)
        self._subscription_ms: float | None = None
        self._backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # -- lifecycle ----------------------------------------------------------------------------
    def on_start(self) -> None:
        self.connect()

    def on_stop(self) -> None:
        self.close()

    def connect(self) -> bool:
        """Open the connection (one ``connect`` sample); True on success. No-op if connected."""
        if self._ws is not None:
            return True
        self._backoff.pause(gevent.sleep)
        start_time = time.time()
        start = time.perf_counter()
        try:
            ws = websocket.create_connection(self._url, timeout=self.connect_timeout_s,
                                             enable_multithread=True)
        except CLOSE_ERRORS as exc:
            self._backoff.failed()
            fire_request(self, REQUEST_TYPE, "connect", start_time, start, exception=exc, url=self._url)
            return False
        fire_request(self, REQUEST_TYPE, "connect", start_time, start, url=self._url)
        self._backoff.succeeded()
        ws.settimeout(None)  # the reader blocks until a frame comes; replies have their own timeout
        self._ws = ws
        self._reader = gevent.spawn(self._read_loop, ws)
        if self._subscription_ms is not None:
            self._send({"op": "subscribe", "interval_ms": self._subscription_ms}, "subscribe")
        return True

    def close(self) -> None:
        """Close the connection without recording a failure (the user chose to)."""
        ws, self._ws = self._ws, None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.kill(block=True, timeout=1.0)
        if ws is not None:
            with contextlib.suppress(*CLOSE_ERRORS):
                ws.close(timeout=1.0)
        self._fail_pending(ConnectionLost("connection closed by the user"))

    # -- operations ---------------------------------------------------------------------------
    def echo(self, data: JsonData = None, delay_ms: float | None = None, name: str = "echo") -> JsonValue:
        """Send an echo and wait for its reply: one sample ``name``; returns the echoed data or None."""
        if not self.connect():
            return None
        message_id = next(self._ids)
        message: dict[str, JsonData] = {"op": "echo", "id": message_id, "data": data}
        if delay_ms is not None:
            message["delay_ms"] = delay_ms
        waiter = AsyncResult()
        self._pending[message_id] = waiter
        start_time = time.time()
        start = time.perf_counter()
        try:
            self._ws_send(message)
            end, reply = waiter.get(timeout=self.echo_timeout_s)
        except gevent.Timeout:
            exc: BaseException = EchoTimeout(f"no echo reply within {self.echo_timeout_s} s")
            fire_request(self, REQUEST_TYPE, name, start_time, start, exception=exc, url=self._url)
            return None
        except (*CLOSE_ERRORS, ConnectionLost) as exc:
            self._lost(exc)
            fire_request(self, REQUEST_TYPE, name, start_time, start, exception=exc, url=self._url)
            return None
        finally:
            self._pending.pop(message_id, None)
        fire_request(self, REQUEST_TYPE, name, start_time, start, response_length=len(reply),
                     url=self._url, end_perf=end)
        body: JsonValue = json.loads(reply)
        return body.get("data") if isinstance(body, dict) else None

    def broadcast(self, data: JsonData = None) -> bool:
        """Ask the server to send ``data`` to every client (they record ``broadcast`` samples)."""
        return self.connect() and self._send({"op": "broadcast", "data": data}, "broadcast")

    def subscribe(self, interval_ms: float) -> bool:
        """Start server pushes every ``interval_ms``; renewed after each reconnect."""
        self._subscription_ms = interval_ms
        if self._ws is None:
            return self.connect()  # connect() sends the subscription
        return self._send({"op": "subscribe", "interval_ms": interval_ms}, "subscribe")

    def unsubscribe(self) -> bool:
        self._subscription_ms = None
        return self._ws is not None and self._send({"op": "unsubscribe"}, "unsubscribe")

    # -- internals ----------------------------------------------------------------------------
    def _ws_send(self, message: Mapping[str, JsonData]) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected")
        ws.send(json.dumps(message))

    def _send(self, message: Mapping[str, JsonData], name: str) -> bool:
        """Send a message that has no reply; only a failure to send is recorded (as ``name``)."""
        start_time = time.time()
        start = time.perf_counter()
        try:
            self._ws_send(message)
        except (*CLOSE_ERRORS, ConnectionLost) as exc:
            self._lost(exc)
            fire_request(self, REQUEST_TYPE, name, start_time, start, exception=exc, url=self._url)
            return False
        return True

    def _lost(self, exc: BaseException) -> None:
        """Forget a broken connection (the next call reconnects after the backoff)."""
        ws, self._ws = self._ws, None
        reader, self._reader = self._reader, None
        if reader is not None and reader is not gevent.getcurrent():
            reader.kill(block=False)
        if ws is not None:
            with contextlib.suppress(*CLOSE_ERRORS):
                ws.shutdown()  # type: ignore[no-untyped-call]  # websocket-client is untyped
            self._backoff.failed()
        self._fail_pending(exc)

    def _fail_pending(self, exc: BaseException) -> None:
        for waiter in self._pending.values():
            waiter.set_exception(exc)
        self._pending.clear()

    def _read_loop(self, ws: websocket.WebSocket) -> None:
        while True:
            try:
                frame = ws.recv()
            except CLOSE_ERRORS as exc:
                frame, reason = None, f"{type(exc).__name__}: {exc}"
            else:
                reason = "close frame"
            if not frame:  # an error, or the server's close frame ("")
                if self._ws is ws:  # not closed by us: the server closed or dropped it
                    error = ConnectionLost(f"server closed the connection ({reason})")
                    # a zero-length sample at the moment the loss was seen
                    fire_request(self, REQUEST_TYPE, "disconnect", time.time(), time.perf_counter(),
                                 exception=error, url=self._url)
                    self._lost(error)
                return
            self._on_frame(frame)

    def _on_frame(self, frame: str | bytes) -> None:
        received_at = time.time()
        received = time.perf_counter()
        try:
            message = json.loads(frame)
            op = message.get("op")
        except (ValueError, AttributeError):
            return  # not ours
        if op == "echo":
            waiter = self._pending.get(message.get("id"))
            if waiter is not None:
                waiter.set((received, frame))
        elif op in ("push", "broadcast"):
            sent_at = message.get("sent_at")
            if isinstance(sent_at, int | float):
                latency_ms = max(0.0, (received_at - sent_at) * 1000.0)
                self.environment.events.request.fire(
                    request_type=REQUEST_TYPE, name=op, response_time=latency_ms,
                    response_length=len(frame), response=None, context=self.context(), exception=None,
                    start_time=float(sent_at), url=self._url,
                )
        elif op == "error":
            error = RuntimeError(f"server error: {message.get('error')}")
            fire_request(self, REQUEST_TYPE, "error", received_at, received, exception=error, url=self._url)
