"""Subprocesses for tests: servers that print a ready line, bounded command and Locust runs, the
chaos proxy and the reference target as processes, and an injector a test can kill.

The reference target always runs as its own process, never in the pytest process: other test
modules import locust, which monkey-patches this interpreter with gevent.

Example::

    with chaos_proxy() as proxy, TargetProcess("--rate-limit-rps", "5") as target:
        ...
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository
READY_URL = re.compile(r"listening on (\S+)")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])


def _stop(proc: subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


@contextmanager
def serve(args: Sequence[str], timeout_s: float = 20.0, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Start ``args`` (a Python script or module invocation) and wait for its 'listening on URL' line."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + timeout_s
    url = None
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = READY_URL.search(line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise RuntimeError(f"{args} did not become ready: {''.join(lines)[-2000:]}")
        yield Served(proc, url)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def locust_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", *args]


def run(cmd: Sequence[str], timeout_s: float = 120.0, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded); stdout and stderr are merged for assertions."""
    return subprocess.run(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s,
        cwd=cwd or ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def assert_imports_without(modules: Sequence[str], forbidden: Sequence[str] = ("locust", "gevent")) -> None:
    """Import ``modules`` in a fresh interpreter and fail if that loaded a ``forbidden`` package
    (importing locust monkey-patches the whole process with gevent)."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {tuple(forbidden)!r})\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@contextmanager
def chaos_proxy(*extra: str) -> Iterator[Served]:
    """``python -m reliability.chaosproxy --port 0`` until the block ends (SIGTERM)."""
    with serve(["-m", "reliability.chaosproxy", "--port", "0", "--seed", "7", *extra]) as served:
        yield served


@contextmanager
def reference_target(*extra: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``python -m reliability.target --port 0`` (embedded store) until the block ends."""
    with serve(["-m", "reliability.target", "--port", "0", *extra], env=env) as served:
        yield served


# Builds the fault from the JSON spec on stdin, injects it, says so, and waits to be killed.
INJECTOR = """
import json, sys, time
from reliability.faults import build_fault
from reliability.faults.spec import parse_fault_spec
fault = build_fault(parse_fault_spec(json.loads(sys.stdin.readline())), sys.argv[1])
fault.inject()
print("injected", flush=True)
time.sleep(600)
"""


class Injector:
    """A child process that injects one fault and then idles, to be killed without reverting."""

    def __init__(self, spec: dict[str, Any], name: str = "dead-man") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", INJECTOR, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != "injected":
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"injector failed: {line}{err[-2000:]}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


TARGET_READY_PREFIX = "reliability-target listening on "
TARGET_START_TIMEOUT_S = 20.0
TARGET_STOP_TIMEOUT_S = 10.0


class TargetProcess:
    """``python -m reliability.target --port 0 ARGS`` with its stderr in a temporary log file.

    Example::

        with TargetProcess("--rate-limit-rps", "5") as target:
            Http(target.port).get("/health")
    """

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.args = ["--port", "0", *args]
        # A clean environment: a RELIABILITY_* variable of the developer's shell must not leak in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABILITY_")}
        self.env.update(env or {})
        self.log_path = Path(tempfile.mkstemp(prefix="reliability-target-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""
        self.port = 0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> TargetProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reliability.target", *self.args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + TARGET_START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop(check=False)
                raise AssertionError(f"target did not start (rc={self.proc.returncode}); log:\n{self.log}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                line += chunk
                if not chunk:
                    continue
        self.ready_line = line.decode().strip()
        assert self.ready_line.startswith(TARGET_READY_PREFIX), self.ready_line
        self.port = int(self.ready_line.rsplit(":", 1)[1])
        return self

    def stop(self, check: bool = True) -> int | None:
        """SIGTERM and wait; with ``check``, require exit 0 and no traceback in the log."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=TARGET_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=TARGET_STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()
        log = self.log
        self.log_path.unlink(missing_ok=True)
        if check:
            assert proc.returncode == 0, f"target exited {proc.returncode}; log:\n{log}"
            assert "Traceback" not in log, log
        return proc.returncode

    def __enter__(self) -> TargetProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop(check=_exc[0] is None)
