"""The ``/ws`` WebSocket endpoint: echo (optionally delayed), broadcast and periodic pushes.

Each connection has one outbound queue drained by one writer task, so echoes, broadcasts and
pushes produced by different tasks never interleave on the socket, and a client that stops
reading is closed (1013, try again later) once its queue is full instead of growing the server.
Client payloads are only ever parsed as JSON and serialised back: never evaluated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine

from aiohttp import WSCloseCode, WSMsgType, web

from reliability.jsontypes import JsonObject, JsonValue

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20
MAX_DELAY_MS = 60_000.0
MAX_INTERVAL_MS = 3_600_000.0


class WsHub:
    """Every open connection, for broadcast and for closing them all at shutdown.

    Example::

        hub = WsHub()
        app.router.add_get("/ws", hub.handle)
        app.on_shutdown.append(lambda _app: hub.close_all())
    """

    def __init__(self, wall_clock: Callable[[], float] = time.time, queue_limit: int = 1000) -> None:
        self._wall_clock = wall_clock
        self._queue_limit = queue_limit
        self._connections: set[WsConnection] = set()

    def __len__(self) -> int:
        return len(self._connections)

    def broadcast(self, data: JsonValue) -> None:
        # One timestamp and one serialisation for all receivers: they all got "the same" message.
        text = json.dumps({"op": "broadcast", "data": data, "sent_at": self._wall_clock()})
        for conn in list(self._connections):
            conn.send(text)

    async def close_all(self) -> None:
        await asyncio.gather(
            *(conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for conn in self._connections),
            return_exceptions=True,
        )

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # No per-message compression: it costs CPU per frame that a load test would measure as
        # server latency, and clients that asked for it simply fall back.
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        conn = WsConnection(ws, self._wall_clock, self._queue_limit)
        self._connections.add(conn)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    conn.send(msg.data)
        finally:
            self._connections.discard(conn)
            await conn.stop()
        return ws

    def _on_text(self, conn: WsConnection, text: str) -> None:
        msg: JsonValue
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            conn.send(text)  # not JSON: echoed back verbatim
            return
        if not isinstance(msg, dict):
            conn.send(text)
            return
        try:
            self._dispatch(conn, msg)
        except ValueError as exc:
            conn.send(json.dumps({"op": "error", "error": str(exc)}))

    def _dispatch(self, conn: WsConnection, msg: JsonObject) -> None:
        op = msg.get("op")
        if op == "echo":
            reply = json.dumps({"op": "echo", "id": msg.get("id"), "data": msg.get("data")})
            delay_ms = _bounded(msg, "delay_ms", 0.0, MAX_DELAY_MS, default=0.0)
            if delay_ms > 0:
                conn.send_later(reply, delay_ms / 1000.0)
            else:
                conn.send(reply)
        elif op == "broadcast":
            self.broadcast(msg.get("data"))
        elif op == "subscribe":
            conn.subscribe(_bounded(msg, "interval_ms", 1.0, MAX_INTERVAL_MS) / 1000.0)
        elif op == "unsubscribe":
            conn.unsubscribe()
        else:
            raise ValueError("unknown op; expected echo, broadcast, subscribe or unsubscribe")


def _bounded(msg: JsonObject, name: str, low: float, high: float, default: float | None = None) -> float:
    value = msg.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low:g}..{high:g}")
    return float(value)


class WsConnection:
    """One client: its outbound queue, writer task, delayed echoes and push subscription."""

    def __init__(self, ws: web.WebSocketResponse, wall_clock: Callable[[], float], queue_limit: int) -> None:
        self.ws = ws
        self._wall_clock = wall_clock
        self._queue_limit = queue_limit
        # Unbounded on purpose: the limit is checked in send(), and the close sentinel must always fit.
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._overflowed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: asyncio.Task[None] | None = None
        self._writer = asyncio.create_task(self._write_loop())

    def send(self, message: str | bytes) -> None:
        if self._overflowed or self.ws.closed:
            return
        if self._queue.qsize() >= self._queue_limit:
            self._overflowed = True
            log.warning("closing a websocket client that is not reading (queue of %d)", self._queue_limit)
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(message)

    def send_later(self, message: str, delay_s: float) -> None:
        self._spawn(self._delayed(message, delay_s))

    def subscribe(self, interval_s: float) -> None:
        self.unsubscribe()
        self._subscription = self._spawn(self._push_loop(interval_s))

    def unsubscribe(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    async def stop(self) -> None:
        tasks = [*self._tasks, self._writer]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        # Keep a reference: the event loop holds tasks only weakly.
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _delayed(self, message: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self.send(message)

    async def _push_loop(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        seq = 0
        while True:
            seq += 1
            # Scheduled against the start time so the period does not drift by the send cost.
            await asyncio.sleep(max(0.0, start + seq * interval_s - loop.time()))
            self.send(json.dumps({"op": "push", "seq": seq, "sent_at": self._wall_clock()}))

    async def _write_loop(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                message = await self._queue.get()
                if message is None:
                    await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow consumer")
                    return
                if isinstance(message, bytes):
                    await self.ws.send_bytes(message)
                else:
                    await self.ws.send_str(message)
