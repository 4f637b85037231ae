"""`reliability demo --quick` runs end to end, exits 0 and leaves no process behind."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.processes import ROOT
from tests.support.schemas import assert_valid_record
from tests.support.servers import port_accepts
from tests.support.waits import seconds_until

pytestmark = pytest.mark.slow


def _run_watching_children(proc: subprocess.Popen[str], stop_at: str | None = None) -> tuple[str, set[int]]:
    """Read the demo's output, noting its child processes while they run; optionally SIGTERM it
    when ``stop_at`` appears."""
    assert proc.stdout is not None
    lines: list[str] = []
    children: set[int] = set()
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        lines.append(line)
        with contextlib.suppress(psutil.NoSuchProcess):
            children |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        if stop_at is not None and stop_at in line:
            proc.send_signal(signal.SIGTERM)
            stop_at = None
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(60)
    proc.stdout.close()
    return "".join(lines), children


def _alive(pids: set[int]) -> list[int]:
    def alive() -> list[int]:
        return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    seconds_until(lambda: not alive(), 10, 0.2)
    return alive()


def _demo(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reliability.cli", "demo", "--quick", "--reports",
                             str(tmp_path), *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_quick_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = _demo(tmp_path)
    out, children = _run_watching_children(proc)
    assert proc.returncode == 0, out[-3000:]
    url = re.search(r"target ready at (\S+);", out)
    assert url is not None
    assert "fault api latency: injected at" in out and "fault api latency: reverted at" in out
    verdict = re.search(r"\[demo\] SLA gold \(p95\): (MET|NOT MET|INCONCLUSIVE); highest tier met: (\w+)", out)
    assert verdict is not None, out[-2000:]
    path = Path(re.search(r"\[demo\] run record: (\S+)", out).group(1))  # type: ignore[union-attr]
    record = assert_valid_record(path)
    assert record["totals"]["requests"] > 500
    assert record["totals"]["max_ms"] >= 250  # the injected latency is in the data
    (fault,) = record["faults"]
    assert fault["verified_healthy"] is True and fault["time_to_recover_s"] is not None
    assert re.search(r"\[demo\] fault api latency: injected \+\d+s, reverted \+\d+s, recovered in", out)
    assert path.with_suffix(".html").exists()
    assert record["sla"]["highest_tier_met"] == verdict.group(2) or verdict.group(2) == "none"
    assert len(children) >= 2  # the target and locust
    assert not _alive(children)
    assert not port_accepts(int(url.group(1).rsplit(":", 1)[1]))


def test_sigterm_mid_run_stops_everything(tmp_path: Path) -> None:
    proc = _demo(tmp_path)
    out, children = _run_watching_children(proc, stop_at="fault api latency: injected at")
    assert "fault api latency: reverted at" in out  # SIGTERM reverts the active fault before anything stops
    assert len(children) >= 2
    assert not _alive(children)
