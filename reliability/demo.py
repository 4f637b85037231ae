"""``reliability demo``: the whole product in one command on a fresh machine.

Starts the reference target (embedded store and cache), runs a headless Locust load test with a
ramp, injects an HTTP latency fault through the target's admin API in the middle of the run and
reverts it, prints the SLA verdict and the run record's path, and stops everything it started.
Exit code: 0 when the demo ran end to end (whatever the verdict), 1 when something broke.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reliability.exceptions import TargetError

READY_PREFIX = "reliability-target listening on "
TARGET_START_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0, help="load test length in seconds (60)")
    parser.add_argument("--quick", action="store_true", help="a 15 s run, for CI and a first look")
    parser.add_argument("--users", type=int, default=30, help="peak users (30)")
    parser.add_argument("--tier", default="gold", help="SLA tier to grade against (gold)")
    parser.add_argument("--fault-latency-ms", type=float, default=250.0, help="latency the fault adds (250)")
    parser.add_argument("--reports", default="reports", help="directory for the run record (reports)")


def _start_target() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reliability.target", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + TARGET_START_TIMEOUT_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(READY_PREFIX):
            url = line[len(READY_PREFIX):].strip()
            # keep draining its output so the pipe never fills and blocks the target
            threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
            return proc, url
    _stop(proc)
    raise TargetError("the reference target did not start: " + " | ".join(s.strip() for s in seen[-5:]))


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


def _admin(url: str, method: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/admin/faults", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    token = os.environ.get("RELIABILITY_ADMIN_TOKEN")
    if token:
        request.add_header("X-Admin-Token", token)
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def _fault_schedule(url: str, duration_s: float, latency_ms: float, stop: threading.Event,
                    log: list[str]) -> None:
    inject_at, hold_s = duration_s * 0.45, duration_s * 0.2
    if stop.wait(inject_at):
        return
    try:
        # ttl_s is a dead-man switch: the target drops the fault by itself if we die before reverting
        _admin(url, "POST", {"latency_ms": latency_ms, "route_prefix": "/api", "ttl_s": hold_s + 5})
        log.append(f"+{inject_at:.0f}s injected {latency_ms:g} ms latency on /api")
        print(f"[demo] fault injected: +{latency_ms:g} ms on /api for {hold_s:.0f} s", flush=True)
        stop.wait(hold_s)
    except OSError as exc:
        print(f"[demo] could not inject the fault: {exc}", file=sys.stderr, flush=True)
    finally:
        try:
            _admin(url, "DELETE")
            log.append(f"+{inject_at + hold_s:.0f}s reverted")
            print("[demo] fault reverted", flush=True)
        except OSError as exc:
            print(f"[demo] revert failed ({exc}); the fault expires by itself within {hold_s + 5:.0f} s",
                  file=sys.stderr, flush=True)


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.1f} ms" if name.endswith("_ms") else f"{value * 100:.2f} %"


def _terminate(_signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every ``finally`` below reverts the fault and stops the children
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    duration_s = 15.0 if args.quick else float(args.duration)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record_path = Path(args.reports) / f"demo-{stamp}.json"
    print("[demo] starting the reference target (embedded store and cache)", flush=True)
    previous = signal.signal(signal.SIGTERM, _terminate)
    target, url = _start_target()
    stop = threading.Event()
    fault_log: list[str] = []
    faults = threading.Thread(target=_fault_schedule, args=(url, duration_s, args.fault_latency_ms, stop, fault_log),
                              daemon=True)
    try:
        print(f"[demo] target ready at {url}; {duration_s:.0f} s load test, ramp to {args.users} users, "
              f"graded against {args.tier}", flush=True)
        env = {**os.environ, "RELIABILITY_DEMO_DURATION_S": str(duration_s), "RELIABILITY_DEMO_USERS": str(args.users)}
        locustfile = Path(__file__).with_name("demo_locustfile.py")
        cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", url,
               "--only-summary", "--sla-tier", args.tier, "--sla-status-interval", "5",
               "--run-record", str(record_path), "--stop-timeout", "2"]
        faults.start()
        locust = subprocess.Popen(cmd, env=env)
        try:
            code = locust.wait(timeout=duration_s + 120)
        except subprocess.TimeoutExpired:
            print("[demo] the load test did not finish in time", file=sys.stderr)
            return 1
        finally:
            _stop(locust)  # a no-op after a normal exit; stops it on timeout, Ctrl-C or SIGTERM
    finally:
        stop.set()
        if faults.is_alive():
            faults.join(timeout=10)
        _stop(target)
        signal.signal(signal.SIGTERM, previous)
    if not record_path.exists():
        print(f"[demo] no run record was written (locust exit {code})", file=sys.stderr)
        return 1
    record = json.loads(record_path.read_text())
    sla = record["sla"]
    outcome = {0: "MET", 3: "NOT MET", 4: "INCONCLUSIVE"}.get(sla["exit_code"], "?")
    print(f"[demo] SLA {sla['tier']} ({sla['percentile']}): {outcome}; highest tier met: "
          f"{sla['highest_tier_met'] or 'none'}", flush=True)
    for c in sla["blocked_by"]:
        print(f"[demo]   {sla['next_tier']} blocked by {c['name']} = {_value(c['name'], c['actual'])} "
              f"(needs {c['comparator']} {_value(c['name'], c['threshold'])})")
    print(f"[demo] faults: {'; '.join(fault_log) or 'none'}", flush=True)
    print(f"[demo] run record: {record_path}", flush=True)
    html = record_path.with_suffix(".html")
    if html.exists():
        print(f"[demo] report: {html}", flush=True)
    if code not in (0, 3, 4):
        print(f"[demo] locust exited {code}: something went wrong", file=sys.stderr)
        return 1
    return 0
