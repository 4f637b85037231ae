"""Load faults: a spike of extra HTTP load, a WebSocket connection storm.

Both run in a separate process (``python -m reliability.faults.loadgen``), never in the Locust
master or a worker, whose timings would suffer. The process exits when its stdin closes, which
happens on revert and also when the process that injected the fault dies, however it dies; a
hung injector stops renewing and the process exits ``dead_man_s`` later.

Example::

    fault = LoadFault(LoadSpikeSpec(type="load.spike", url="http://127.0.0.1:8080/api/items",
                                    concurrency=100), "spike")
    fault.inject()
    fault.revert()
    fault.summary    # {'requests': 5210, 'errors': 3, ...}
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, Lease, one_line, probe, renew_interval_s
from reliability.faults.httpcall import call
from reliability.faults.spec import LoadSpikeSpec, LoadWsStormSpec
from reliability.jsontypes import JsonObject
from reliability.revert.journal import Undo

if TYPE_CHECKING:  # the load process's module imports aiohttp: not for this process
    from reliability.faults.loadgen import LoadSettings

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def _readline(stream: IO[bytes], timeout_s: float) -> bytes:
    """One line from a child's stdout, or b"" if none comes within ``timeout_s``."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return b""
    return stream.readline()


class LoadFault:
    """``load.spike`` and ``load.ws_storm``: extra load from a child process while injected."""

    def __init__(self, spec: LoadSpikeSpec | LoadWsStormSpec, name: str) -> None:
        self.name = name
        self.kind: str = spec.type
        self.url = spec.url
        self.dead_man_s: float | None = spec.dead_man_s
        self.settings: LoadSettings
        if isinstance(spec, LoadSpikeSpec):
            self.settings = {"url": spec.url, "headers": spec.headers, "ttl_s": spec.dead_man_s, "mode": "spike",
                             "concurrency": spec.concurrency, "method": spec.method,
                             "request_timeout_s": spec.request_timeout_s}
        else:
            self.settings = {"url": spec.url, "headers": spec.headers, "ttl_s": spec.dead_man_s, "mode": "ws_storm",
                             "connections": spec.connections, "rate_per_s": spec.rate_per_s}
        self.summary: JsonObject | None = None  # the process's last line: its counts
        self._proc: subprocess.Popen[bytes] | None = None
        self._lease: Lease | None = None
        self._io = threading.Lock()

    def _fail(self, action: str, reason: str) -> FaultError:
        return FaultError(f"{self.name} ({self.kind}) {action}: {reason}")

    @property
    def backend(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"load {parts.scheme}://{parts.hostname}:{parts.port or ''}"

    def undo(self, _environ: Mapping[str, str]) -> Undo:
        """Nothing to call: the load process exits when we die, or ``dead_man_s`` unrenewed."""
        return Undo(self.backend, (), expires_s=self.dead_man_s)

    def inject(self) -> None:
        if self._proc is not None:
            return
        try:
            proc = subprocess.Popen([sys.executable, "-m", "reliability.faults.loadgen"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise self._fail("inject", one_line(exc)) from None
        self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(self.settings).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            self.revert()
            raise self._fail("inject", one_line(exc)) from None
        if _readline(proc.stdout, START_TIMEOUT_S).strip() != b"ready":
            self.revert()
            raise self._fail("inject", f"the load process did not start within {START_TIMEOUT_S:.0f}s")
        if self.dead_man_s is not None:
            self._lease = Lease(self._renew, renew_interval_s(self.dead_man_s), self.name)
            self._lease.start()

    def still_applied(self) -> str | None:
        """None while the load process is still running (the OS's word), else how it ended. What
        the load does to the target is not checked here: that is the run's own measurement."""
        proc = self._proc
        if proc is None:
            return "no load process"
        code = proc.poll()
        return None if code is None else f"the load process exited with {code}"

    def _renew(self) -> None:
        with self._io:
            if self._proc is not None and self._proc.stdin is not None:
                self._proc.stdin.write(b"renew\n")
                self._proc.stdin.flush()

    def revert(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()
        with self._io:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()  # the child's signal to stop
        line = _readline(proc.stdout, STOP_TIMEOUT_S)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
        proc.stdout.close()
        try:
            counts = json.loads(line) if line.strip() else None
            self.summary = counts if isinstance(counts, dict) else None
        except ValueError:
            self.summary = None

    def _healthy(self) -> str:
        if self._proc is not None:
            raise FaultError("the load process is still running")
        counts = f" (sent {self.summary})" if self.summary else ""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme in ("ws", "wss"):
            port = parts.port or (443 if parts.scheme == "wss" else 80)
            with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=3.0):
                pass
            return "load stopped, the endpoint accepts connections" + counts
        reply = call(str(self.settings.get("method", "GET")), self.url, headers=self.settings["headers"],
                     timeout_s=5.0)
        if reply.status >= 500:
            raise FaultError(f"load stopped, but {reply.error_text()}")
        return f"load stopped, the endpoint answers {reply.status}" + counts

    def verify(self) -> FaultCheck:
        return probe(f"{self.kind} {self.url}", self._healthy)
