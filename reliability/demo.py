"""``reliability demo``: the whole product in one command on a fresh machine.

Starts the reference target (embedded store and cache), runs a headless Locust load test with a
ramp and a scenario whose fault schedule adds latency to the API through the target's admin API
in the middle of the run (reverted, verified, its recovery measured), prints the SLA verdict, the
fault's recovery and the paths of the run record and report, and stops everything it started.
Exit code: 0 when the demo ran end to end (whatever the verdict), 1 when something broke.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from reliability.exceptions import TargetError
from reliability.jsontypes import JsonData
from reliability.schema import RunRecord, parse_record
from reliability.sla import OUTCOMES
from reliability.target.app import READY_PREFIX

TARGET_START_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0, help="load test length in seconds (60)")
    parser.add_argument("--quick", action="store_true", help="a 20 s run, for CI and a first look")
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


def _fault_window(duration_s: float) -> tuple[float, float]:
    """When the demo's fault starts (seconds into the run) and how long it holds."""
    return round(duration_s * 0.45, 1), round(duration_s * 0.2, 1)


def _scenario(url: str, duration_s: float, tier: str, latency_ms: float) -> dict[str, JsonData]:
    """The demo's scenario: grade against ``tier`` and add latency to the API mid-run.

    The fault goes through the target's admin API and carries a dead-man timeout, so the target
    drops it by itself even if this machine loses the process that injected it."""
    inject_at, hold_s = _fault_window(duration_s)
    return {
        "name": "reliability demo",
        "description": f"API latency +{latency_ms:g} ms for {hold_s:g} s under a steady load",
        "sla": {"tier": tier, "status_interval_s": 5},
        # the embedded target answers in ~1 ms, so the default 5 ms band slack would call ordinary
        # scheduling noise "not recovered"; 25 ms still separates it from the 250 ms fault
        "recovery": {"windows": 2, "band_slack_ms": 25},
        "faults": [{
            "name": "api latency",
            "at_s": inject_at,
            "hold_s": hold_s,
            "fault": {"type": "http.latency", "url": url, "latency_ms": latency_ms, "route_prefix": "/api",
                      "dead_man_s": hold_s + 10},
        }],
    }


def _offset(record: RunRecord, at: str | None) -> str:
    if not at or not record.run.started_at:
        return "?"
    started = datetime.fromisoformat(record.run.started_at.replace("Z", "+00:00"))
    return f"{(datetime.fromisoformat(at.replace('Z', '+00:00')) - started).total_seconds():.0f}s"


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.1f} ms" if name.endswith("_ms") else f"{value * 100:.2f} %"


def _terminate(_signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every ``finally`` below reverts the fault and stops the children
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    duration_s = 20.0 if args.quick else float(args.duration)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record_path = Path(args.reports) / f"demo-{stamp}.json"
    print("[demo] starting the reference target (embedded store and cache)", flush=True)
    previous = signal.signal(signal.SIGTERM, _terminate)
    target, url = _start_target()
    code = 1
    try:
        scenario = _scenario(url, duration_s, args.tier, args.fault_latency_ms)
        inject_at, hold_s = _fault_window(duration_s)
        print(f"[demo] target ready at {url}; {duration_s:.0f} s load test, ramp to {args.users} users, "
              f"graded against {args.tier}; at +{inject_at:g} s the API gets {args.fault_latency_ms:g} ms "
              f"slower for {hold_s:g} s", flush=True)
        env = {**os.environ, "RELIABILITY_DEMO_DURATION_S": str(duration_s), "RELIABILITY_DEMO_USERS": str(args.users)}
        locustfile = Path(__file__).with_name("demo_locustfile.py")
        with tempfile.TemporaryDirectory(prefix="reliability-demo-") as tmp:
            scenario_path = Path(tmp) / "demo.yaml"
            scenario_path.write_text(yaml.safe_dump(scenario, sort_keys=False))
            cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", url,
                   "--only-summary", "--scenario", str(scenario_path), "--run-record", str(record_path),
                   "--stop-timeout", "2"]
            locust = subprocess.Popen(cmd, env=env)
            try:
                code = locust.wait(timeout=duration_s + 120)
            except subprocess.TimeoutExpired:
                print("[demo] the load test did not finish in time", file=sys.stderr)
                return 1
            finally:
                _stop(locust)  # a no-op after a normal exit; on timeout, Ctrl-C or SIGTERM it reverts and stops
    finally:
        _stop(target)
        signal.signal(signal.SIGTERM, previous)
    if not record_path.exists():
        print(f"[demo] no run record was written (locust exit {code})", file=sys.stderr)
        return 1
    record = parse_record(json.loads(record_path.read_text()))
    sla = record.sla
    outcome = "?" if sla.exit_code is None else OUTCOMES.get(sla.exit_code, "?")
    print(f"[demo] SLA {sla.tier} ({sla.percentile}): {outcome}; highest tier met: "
          f"{sla.highest_tier_met or 'none'}", flush=True)
    for c in sla.blocked_by:
        print(f"[demo]   {sla.next_tier} blocked by {c.name} = {_value(c.name, c.actual)} "
              f"(needs {c.comparator} {_value(c.name, c.threshold)})")
    for f in record.faults or []:
        recovered = f.time_to_recover_s
        recovery = "not measured" if recovered is None else f"in {recovered:.1f} s"
        print(f"[demo] fault {f.name}: injected +{_offset(record, f.injected_at)}, reverted "
              f"+{_offset(record, f.reverted_at)}, recovered {recovery}, graceful "
              f"{f.graceful}, backend healthy after revert {f.verified_healthy}", flush=True)
    print(f"[demo] run record: {record_path}", flush=True)
    html = record_path.with_suffix(".html")
    if html.exists():
        print(f"[demo] report: {html}", flush=True)
    if code not in (0, 3, 4):
        print(f"[demo] locust exited {code}: something went wrong", file=sys.stderr)
        return 1
    return 0
