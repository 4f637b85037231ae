"""Throwaway PostgreSQL, Redis, reference-target, Toxiproxy and Prometheus servers for tests.

Each server runs from a fresh temporary directory on a free loopback port and is removed by
``close()``. Tests may stop, restart, kill or pause them freely; that is what they are for.

PostgreSQL refuses to run as root, and tests usually do: as root, ``initdb`` and ``pg_ctl`` run
as the ``postgres`` user through ``runuser`` in a directory that user owns. Otherwise they run
directly as the current user.

Example::

    pg = PostgresServer()
    pg.start()
    try:
        psycopg.connect(pg.dsn)
        pg.restart()
    finally:
        pg.close()

``PrometheusServer`` (Debian's ``prometheus`` binary) scrapes the given ``host:port`` targets
every second, so ``up`` follows a target within about a second; it skips the calling test when
the binary is not installed::

    with PrometheusServer(["127.0.0.1:8080"]) as prom:
        urllib.request.urlopen(f"{prom.url}/api/v1/query?query=up")

This module imports neither locust nor any database driver, so unit tests stay light.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest

from tests.support.processes import ROOT
from tests.support.waits import wait_until

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
PG_SYSTEM_USER = "postgres"


class ServerError(RuntimeError):
    """A test server failed to start or stop in time; the message includes its log tail."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, timeout_s: float = 0.2) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextmanager
def serve_in_thread(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port from a daemon thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def redis_answers(port: int, timeout_s: float = 0.3) -> bool:
    """PING on 127.0.0.1:port answered within ``timeout_s`` (a paused Redis holds the command back)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (killed, not yet reaped) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(stat).read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found.append(int(stat.split("/")[2]))
    return found


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _terminate(proc: subprocess.Popen[bytes] | None, timeout_s: float, sig: int = signal.SIGTERM) -> None:
    """Signal a child server and reap it; SIGKILL if it outlives ``timeout_s``. No-op if gone."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (``pg_config --bindir`` or a search)."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise ServerError("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql")


class _Server:
    """Lifecycle shared by the servers: restart, liveness, cleanup, ``with`` support."""

    port: int
    base: Path

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        raise NotImplementedError

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        raise NotImplementedError

    def kill(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        raise NotImplementedError

    def restart(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start(timeout_s)

    def is_running(self) -> bool:
        return self.pid is not None and port_accepts(self.port)

    def close(self) -> None:
        """Stop the server (SIGKILL if a clean stop fails) and delete its directory."""
        try:
            self.stop()
        except (ServerError, subprocess.SubprocessError):
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PostgresServer(_Server):
    """A private PostgreSQL cluster on 127.0.0.1 with trust auth and fsync off.

    ``start()`` creates the cluster on first use; ``stop()`` uses fast shutdown (open
    sessions are terminated, as in a real outage); ``restart()`` keeps the same port and data.
    """

    def __init__(self, port: int | None = None, bindir: Path | None = None) -> None:
        self.port = port or free_port()
        self.bindir = bindir or postgres_bindir()
        self.as_root = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        self.datadir = self.base / "data"
        self.logfile = self.base / "server.log"
        self._initialized = False
        if self.as_root:
            shutil.chown(self.base, user=PG_SYSTEM_USER, group=PG_SYSTEM_USER)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, or None when it is not running."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        pid = int(first)
        return pid if _pid_alive(pid) else None

    def _run(self, tool: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd]
        try:
            return subprocess.run(
                cmd, cwd=self.base, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            tail = _log_tail(self.logfile)
            raise ServerError(f"{tool} timed out after {timeout_s:.0f}s; log:\n{tail}") from exc

    def _init_cluster(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8", "--locale=C", timeout_s=120,
        )
        if done.returncode != 0:
            raise ServerError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "32MB",
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._initialized = True

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start (creating the cluster first if needed) and wait until it accepts connections."""
        if not self._initialized:
            self._init_cluster()
        done = self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", str(int(timeout_s)),
            "start", timeout_s=timeout_s + 5,
        )
        if done.returncode != 0:
            raise ServerError(
                f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()}\n{_log_tail(self.logfile)}"
            )
        wait_until(self._ready, timeout_s, what=f"PostgreSQL on port {self.port}", error=ServerError,
                   detail=lambda: f"log tail:\n{_log_tail(self.logfile)}")

    def _ready(self) -> bool:
        port = str(self.port)
        done = self._run("pg_isready", "-h", "127.0.0.1", "-p", port, "-U", "postgres", timeout_s=10)
        return done.returncode == 0

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Fast shutdown: roll back open transactions, drop sessions, exit. No-op if stopped."""
        if self.pid is None:
            return
        done = self._run(
            "pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", str(int(timeout_s)),
            "stop", timeout_s=timeout_s + 5,
        )
        if done.returncode != 0 and self.pid is not None:
            raise ServerError(f"pg_ctl stop failed ({done.returncode}): {done.stderr.strip()}")

    def kill(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGKILL the postmaster and its backends (a crash), then clear the stale lock file
        so that ``start()`` works again (it runs crash recovery)."""
        pid = self.pid
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not any(_pid_alive(v) for v in victims), timeout_s, error=ServerError,
                   what=f"death of PostgreSQL processes {victims}",
                   detail=lambda: f"log tail:\n{_log_tail(self.logfile)}")
        # The lock files name a pid that is a zombie until reaped, which a new postmaster would
        # take for a live rival.
        for stale in (self.datadir / "postmaster.pid", *self.base.glob(f".s.PGSQL.{self.port}*")):
            stale.unlink(missing_ok=True)



class _ChildServer(_Server):
    """A server that is a direct child process: started from ``_command()``, ready when ``_ready()``."""

    name = "server"

    def __init__(self, port: int | None, prefix: str) -> None:
        self.port = port or free_port()
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        self.logfile = self.base / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server (no-op if running) and wait until it is ready."""
        if self.pid is not None:
            return
        cmd, env = self._command()
        with self.logfile.open("ab") as log:
            self._proc = subprocess.Popen(cmd, cwd=self.base, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log)
        try:
            wait_until(self._checked_ready, timeout_s, what=f"{self.name} on port {self.port}", error=ServerError,
                       detail=lambda: f"log tail:\n{_log_tail(self.logfile)}")
        except ServerError:
            self.kill()
            raise

    def _checked_ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise ServerError(f"{self.name} exited with {self._proc.returncode}:\n{_log_tail(self.logfile)}")
        return self._ready()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. No-op if stopped."""
        _terminate(self._proc, timeout_s)

    def kill(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGKILL the server (a crash)."""
        _terminate(self._proc, timeout_s, sig=signal.SIGKILL)


class RedisServer(_ChildServer):
    """A private ``redis-server`` on 127.0.0.1 without persistence.

    ``restart()`` keeps the port (data is lost, as persistence is off).
    """

    name = "redis-server"

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if not found:
            raise ServerError("redis-server not found; install redis-server")
        self.binary = found
        super().__init__(port, "reliability-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        return [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.base), "--daemonize", "no", "--logfile", str(self.logfile),
        ], None

    def _ready(self) -> bool:
        return redis_answers(self.port, timeout_s=0.5)


class TargetServer(_ChildServer):
    """The reference target (``python -m reliability.target``) in its own process.

    It serves the HTTP API and ``/ws`` from the embedded in-memory store unless ``extra_args``
    point it at PostgreSQL/Redis. ``restart()`` keeps the port.
    """

    name = "reference target"

    def __init__(self, port: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args
        super().__init__(port, "reliability-target-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "reliability.target", "--host", "127.0.0.1", "--port", str(self.port),
               *self.extra_args]
        return cmd, env

    def _ready(self) -> bool:
        return port_accepts(self.port)


TOXIPROXY_ENV = "TOXIPROXY_SERVER"


def toxiproxy_binary() -> str | None:
    """The real Toxiproxy server: ``$TOXIPROXY_SERVER``, ``toxiproxy-server`` on PATH, or the build
    kept next to the repository (``../shared/tools/toxiproxy/toxiproxy-server``)."""
    given = os.environ.get(TOXIPROXY_ENV)
    if given:
        return given if os.access(given, os.X_OK) else None
    found = shutil.which("toxiproxy-server")
    if found:
        return found
    beside = ROOT.parent / "shared" / "tools" / "toxiproxy" / "toxiproxy-server"
    return str(beside) if os.access(beside, os.X_OK) else None


class ToxiproxyServer(_ChildServer):
    """Shopify's Toxiproxy server (the real one, as in docker-compose) on 127.0.0.1."""

    name = "toxiproxy-server"

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        found = binary or toxiproxy_binary()
        if not found:
            raise ServerError(f"toxiproxy-server not found (set {TOXIPROXY_ENV} or put it on PATH)")
        self.binary = found
        super().__init__(port, "reliability-toxiproxy-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        return [self.binary, "-host", "127.0.0.1", "-port", str(self.port)], None

    def _ready(self) -> bool:
        return port_accepts(self.port)


SCRAPE_INTERVAL_S = 1


class PrometheusServer(_ChildServer):
    """``prometheus`` scraping ``targets`` (job ``target``) every second; see the module docstring."""

    name = "prometheus"

    def __init__(self, targets: Sequence[str], port: int | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("prometheus is not installed (apt-get install prometheus)")
        self.binary = binary
        self.targets = list(targets)
        super().__init__(port, "reliability-prometheus-")
        self.config = self.base / "prometheus.yml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        quoted = ", ".join(f'"{t}"' for t in self.targets)
        self.config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL_S * 500}ms\n"
            "scrape_configs:\n"
            "  - job_name: target\n"
            f"    static_configs: [{{targets: [{quoted}]}}]\n"
        )
        return [
            self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.base / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ], None

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_until_scraped(self, timeout_s: float = 20.0) -> None:
        """Wait until ``up`` has a series for every target (Prometheus syncs new targets only
        after about 5 s)."""
        wait_until(self._scraped_all, timeout_s, interval_s=0.2, what=f"prometheus to scrape {self.targets}")

    def _scraped_all(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?query=up", timeout=1) as response:
                return len(json.load(response)["data"]["result"]) >= len(self.targets)
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return False
