"""Subprocess helpers for tests: servers that print a ready line, and bounded Locust runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
