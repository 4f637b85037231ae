"""WebSocket probe: connect, send one text frame, time the echo round trip.

The frame is a unique plain-text token (``health-probe <n>``); any echo server returns it as sent
(the reference target echoes non-JSON text verbatim). Other frames that arrive meanwhile, such as
broadcasts to every client, are skipped until the echo comes back or the deadline passes.

Example::

    probe = WebSocketProbe(WebSocketProbeSpec(type="websocket", url="ws://127.0.0.1:8080/ws"), "ws")
    measure(probe, timeout_s=0.8).data["rtt_ms"]
"""

from __future__ import annotations

import itertools
import time

import websocket

from reliability.health.base import Deadline, Finding, Status
from reliability.health.spec import WebSocketProbeSpec


class WebSocketProbe:
    """Connect and echo within the deadline; see the module docstring."""

    kind = "websocket"

    def __init__(self, spec: WebSocketProbeSpec, target: str) -> None:
        self.url = spec.url
        self.target = target
        self._seq = itertools.count(1)

    def check(self, deadline: Deadline) -> Finding:
        started = time.perf_counter()
        conn = websocket.create_connection(self.url, timeout=deadline.remaining_s())
        try:
            connect_ms = (time.perf_counter() - started) * 1000.0
            token = f"health-probe {next(self._seq)} {time.time_ns()}"
            sent = time.perf_counter()
            conn.send(token)
            while True:
                conn.settimeout(deadline.remaining_s())
                if conn.recv() == token:
                    break
            rtt_ms = (time.perf_counter() - sent) * 1000.0
        finally:
            conn.close(timeout=0.05)
        data = {"connect_ms": round(connect_ms, 3), "rtt_ms": round(rtt_ms, 3)}
        return Finding(Status.HEALTHY, f"echo in {rtt_ms:.1f} ms (connect {connect_ms:.1f} ms)", data)

    def close(self) -> None:
        pass
