"""CPU and memory of the local target process, sampled with each probe round.

The process is found by PID or by the TCP port it listens on; when it goes away (a restart) the
port is looked up again on the next sample. ``cpu_pct`` is the process's CPU use since the
previous sample (100 = one core), ``rss_mb`` its resident memory. A process that cannot be found
gives ``None`` values and a reason, never an exception.

Example::

    sampler = ResourceSampler(port=8080)
    sampler.sample()   # {"pid": 4242, "cpu_pct": 37.5, "rss_mb": 61.2}
"""

from __future__ import annotations

from typing import TypedDict

import psutil


class ResourceSample(TypedDict):
    """One sample of the target process (values None when it is not there)."""

    pid: int | None
    cpu_pct: float | None
    rss_mb: float | None


def pid_listening_on(port: int) -> int | None:
    """The PID of the process listening on TCP ``port`` (any local address), if visible."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


class ResourceSampler:
    """Samples one process; see the module docstring. Give exactly one of ``pid`` and ``port``."""

    def __init__(self, pid: int | None = None, port: int | None = None) -> None:
        if (pid is None) == (port is None):
            raise ValueError("give exactly one of pid and port")
        self.pid = pid
        self.port = port
        self._process: psutil.Process | None = None
        self.problem: str | None = None

    def _find(self) -> psutil.Process | None:
        if self._process is not None and self._process.is_running():
            return self._process
        pid = self.pid if self.pid is not None else pid_listening_on(self.port or 0)
        if pid is None:
            self.problem = f"no process listens on port {self.port}"
            return None
        try:
            process = psutil.Process(pid)
            process.cpu_percent(None)  # the first reading is always 0: start the interval now
        except psutil.Error as exc:
            self.problem = f"process {pid}: {type(exc).__name__}"
            return None
        self._process = process
        return process

    def sample(self) -> ResourceSample:
        """``{"pid", "cpu_pct", "rss_mb"}`` now; values are None when the process is not there."""
        process = self._find()
        if process is None:
            return {"pid": None, "cpu_pct": None, "rss_mb": None}
        try:
            with process.oneshot():
                cpu = process.cpu_percent(None)
                rss = process.memory_info().rss
        except psutil.Error as exc:
            self.problem = f"process {process.pid}: {type(exc).__name__}"
            self._process = None
            return {"pid": None, "cpu_pct": None, "rss_mb": None}
        self.problem = None
        return {"pid": process.pid, "cpu_pct": round(cpu, 1), "rss_mb": round(rss / 1e6, 1)}
