"""BREAKING_POINT across two local worker processes vs HIGH_LOAD from one process, side by side.

Two `reliability run` invocations against the reference target in its own process, every user
reading ``GET /api/items/{id}`` with a 1-2 s think time (``between(1, 2)``):

* **single**: ``--workers 0`` (one local runner process) at HIGH_LOAD, 1000 users: a load one
  process holds;
* **distributed**: ``--workers 2`` (a master and two worker processes) at BREAKING_POINT: 2000
  users, then 250 more at each of its five steps (3000 at the top).

Both are shortened by ``--time-scale`` (0.4: HIGH_LOAD 48 s, BREAKING_POINT 120 s in 24 s steps)
and start users at ``--spawn-rate`` (200/s). Each process logs in once and its users share the
token, so the p95 is the reads' (thousands of logins would fill the ramp). Every ``/api``
request gets the same service time from the target's admin API (``--service-ms``, default 20 ms),
so latency has a known floor. While each run lasts, an independent client in this process reads
the same endpoint 10 times a second: the p95 Locust reports minus that probe's p95 is what the load
generators themselves (and the target's queueing) added. Generator CPU is the plugin's
per-process samples from the run record (every 3 s); the target's CPU is sampled here each second.
On a small machine every process shares the same CPUs: read the target's CPU next to the p95.

Run by hand; not part of the tests::

    python bench/distributed_scale.py                    # about 3 minutes
    python bench/distributed_scale.py --time-scale 1     # the full level durations

Prints both runs side by side and a result line starting with ``distributed_scale:``. This file is
also the locustfile of the runs (Locust imports it; then it only defines the user class).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
TARGET_READY = "reliability-target listening on "
SCENARIO = """name: {name}
sla: {{tier: gold}}
shape: {{type: levels, levels: [{level}], time_scale: {time_scale}, spawn_rate: {spawn_rate}}}
"""


def p95(values: Sequence[float]) -> float | None:
    """Rank floor(0.95 * (n - 1)) of the sorted values, as the README defines percentiles."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


class LatencyProbe(threading.Thread):
    """One keep-alive client reading ``GET /api/items/1`` every 0.1 s: ``(epoch, ms)`` samples;
    also the target process's CPU once a second (``(epoch, percent)``)."""

    def __init__(self, url: str, target_pid: int) -> None:
        super().__init__(daemon=True)
        self.address = urlsplit(url)
        self.samples: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float]] = []
        self.target = psutil.Process(target_pid)
        self.done = threading.Event()

    def _connection(self) -> tuple[http.client.HTTPConnection, dict[str, str]]:
        conn = http.client.HTTPConnection(self.address.hostname or "127.0.0.1", self.address.port or 80, timeout=10)
        body = json.dumps({"username": "demo", "password": "demo"})
        conn.request("POST", "/auth/login", body, {"Content-Type": "application/json"})
        token = json.loads(conn.getresponse().read())["token"]
        return conn, {"Authorization": f"Bearer {token}"}

    def run(self) -> None:
        conn, headers = self._connection()
        self.target.cpu_percent(None)
        try:
            for tick in itertools.count(1):
                if self.done.wait(0.1):
                    break
                if tick % 10 == 0:
                    self.cpu.append((time.time(), self.target.cpu_percent(None)))
                began = time.perf_counter()
                conn.request("GET", "/api/items/1", headers=headers)
                conn.getresponse().read()
                self.samples.append((time.time(), (time.perf_counter() - began) * 1000.0))
        finally:
            conn.close()

    def p95_between(self, start: float, end: float) -> float | None:
        return p95([ms for at, ms in self.samples if start <= at < end])

    def cpu_between(self, start: float, end: float) -> str:
        values = [pct for at, pct in self.cpu if start <= at < end]
        return f"{max(values):.0f}/{statistics.fmean(values):.0f} %" if values else "n/a"


def start_target(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "reliability.target", "--port", "0"]
    cmd += ["--dsn", args.dsn] if args.dsn else []
    cmd += ["--redis-url", args.redis_url] if args.redis_url else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(TARGET_READY):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
            return proc, line[len(TARGET_READY):].strip()
    raise SystemExit(f"the reference target did not start (exit {proc.wait()})")


def set_service_time(url: str, service_ms: float) -> None:
    address = urlsplit(url)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port or 80, timeout=10)
    body = json.dumps({"latency_ms": service_ms, "route_prefix": "/api", "ttl_s": 3600})
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("RELIABILITY_ADMIN_TOKEN")
    if token:
        headers["X-Admin-Token"] = token
    conn.request("POST", "/admin/faults", body, headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status >= 300:
        raise SystemExit(f"could not set the service time: HTTP {response.status}")


def run_level(folder: Path, name: str, level: str, workers: int, url: str, args: argparse.Namespace,
              target_pid: int) -> tuple[dict[str, Any], LatencyProbe, float]:
    """One `reliability run`; returns its record, the probe that ran alongside, and its wall time."""
    scenario = folder / f"{name}.yaml"
    scenario.write_text(SCENARIO.format(name=name, level=level, time_scale=args.time_scale,
                                        spawn_rate=args.spawn_rate))
    timeout_s = 600 * args.time_scale + 300
    record = folder / f"{name}.json"
    cmd = [sys.executable, "-m", "reliability.cli", "run", str(scenario), "--workers", str(workers),
           "-f", str(Path(__file__).resolve()), "--host", url, "--run-record", str(record)]
    probe = LatencyProbe(url, target_pid)
    probe.start()
    began = time.monotonic()
    with (folder / f"{name}.log").open("w") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, timeout=timeout_s).returncode
    wall = time.monotonic() - began
    probe.done.set()
    probe.join(15)
    if not record.exists():
        raise SystemExit(f"{name}: no run record (exit {code}); see {folder / (name + '.log')}")
    data: dict[str, Any] = json.loads(record.read_text())
    return data, probe, wall


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def stage_rows(record: Mapping[str, Any], probe: LatencyProbe) -> list[dict[str, Any]]:
    """Per stage: users, req/s, the p95 Locust reported and the probe's over the same seconds."""
    started = _epoch(record["run"]["started_at"])
    rows = []
    for stage in record.get("stages") or []:
        start = started + stage["started_at_s"]
        end = start + stage["duration_s"]
        rows.append({"name": stage["name"], "users": stage["users"], "rps": stage.get("rps"),
                     "p95_ms": stage.get("p95_ms"), "probe_p95_ms": probe.p95_between(start, end),
                     "target_cpu": probe.cpu_between(start, end), "passed": stage.get("passed")})
    return rows


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _generators(record: Mapping[str, Any]) -> str:
    parts = []
    for g in record.get("generators") or []:
        label = "master" if g["role"] == "master" else ("local" if g["role"] == "local" else f"worker {g['id'][-6:]}")
        parts.append(f"{label} {g['cpu_max_pct']:.0f}/{g['cpu_mean_pct']:.0f} %")
    return ", ".join(parts)


def summary(record: Mapping[str, Any], probe: LatencyProbe, wall_s: float) -> dict[str, str]:
    rows = stage_rows(record, probe)
    top = rows[-1] if rows else {}
    sla = record["sla"]
    reported, probed = top.get("p95_ms"), top.get("probe_p95_ms")
    saturated = [g["id"] for g in record.get("generators") or [] if g.get("saturated")]
    return {
        "processes": f"{record['run']['mode']}" + (f" + {record['run']['workers']} workers"
                                                   if record["run"]["mode"] == "master" else ""),
        "peak users": f"{top.get('users', 0):,}",
        "requests": f"{record['totals']['requests']:,}",
        "req/s, top stage": f"{top.get('rps') or 0:,.0f}",
        "req/s per user, top stage": f"{(top.get('rps') or 0) / max(1, top.get('users') or 1):.3f}",
        "p95 reported, top stage": _ms(reported),
        "p95 probe, top stage": _ms(probed),
        "reported - probe": _ms(None if reported is None or probed is None else reported - probed),
        "p95 reported, whole run": _ms(record["totals"]["p95_ms"]),
        "generator CPU max/mean": _generators(record),
        "target CPU max/mean, top stage": top.get("target_cpu", "n/a"),
        "saturated generators": ", ".join(saturated) or "none",
        "verdict (gold)": {0: "MET", 3: "NOT MET", 4: "INCONCLUSIVE"}.get(sla["exit_code"], "?")
        + f" (highest: {sla['highest_tier_met'] or 'none'})",
        "wall time": f"{wall_s:.0f} s",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--time-scale", type=float, default=0.4, help="shortens both levels (0.4)")
    parser.add_argument("--spawn-rate", type=float, default=200.0, help="users started per second (200)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the distributed run (2)")
    parser.add_argument("--single-level", default="HIGH_LOAD", help="level of the single-process run (HIGH_LOAD)")
    parser.add_argument("--service-ms", type=float, default=20.0, help="fixed service time on /api (20)")
    parser.add_argument("--dsn", default=None, help="PostgreSQL DSN for the target (default: embedded store)")
    parser.add_argument("--redis-url", default=None, help="Redis URL for the target (default: embedded cache)")
    parser.add_argument("--keep", action="store_true", help="keep the records and logs (printed path)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="distributed-scale-"))
    target, url = start_target(args)
    try:
        if args.service_ms > 0:
            set_service_time(url, args.service_ms)
        backend = "PostgreSQL + Redis" if args.dsn else "embedded store"
        print(f"distributed_scale: {os.cpu_count()} CPUs; target {url} ({backend}), {args.service_ms:g} ms on /api; "
              f"think time 1-2 s; time scale {args.time_scale:g}", flush=True)
        results = []
        for name, level, workers in (("single", args.single_level, 0),
                                     ("distributed", "BREAKING_POINT", args.workers)):
            print(f"running {name}: {level} on {'one process' if workers == 0 else f'{workers} workers'} ...",
                  flush=True)
            results.append(run_level(folder, name, level, workers, url, args, target.pid))
    finally:
        target.terminate()
        target.wait(10)
    (single, single_probe, single_wall), (dist, dist_probe, dist_wall) = results
    left, right = summary(single, single_probe, single_wall), summary(dist, dist_probe, dist_wall)
    width = max(len(k) for k in left) + 2
    print(f"\n{'':{width}}{'single process (' + args.single_level + ')':<34}{args.workers} workers (BREAKING_POINT)")
    for key in left:
        print(f"{key:<{width}}{left[key]:<34}{right[key]}")
    print("\nBREAKING_POINT stages (distributed): users, req/s, p95 reported, p95 probe, target CPU max/mean, gold")
    for row in stage_rows(dist, dist_probe):
        held = {True: "held", False: "not met", None: "n/a"}[row["passed"]]
        print(f"  {row['users']:>5,}  {row['rps'] or 0:>7,.0f}/s  {_ms(row['p95_ms']):>10}  "
              f"{_ms(row['probe_p95_ms']):>10}  {row['target_cpu']:>9}  {held}")
    cpu = [g["cpu_mean_pct"] for g in dist.get("generators") or [] if g["role"] == "worker"]
    print(f"\ndistributed_scale: single {left['peak users']} users p95 {left['p95 reported, top stage']} "
          f"(probe {left['p95 probe, top stage']}), CPU {left['generator CPU max/mean']}; "
          f"{args.workers} workers {right['peak users']} users p95 {right['p95 reported, top stage']} "
          f"(probe {right['p95 probe, top stage']}), worker CPU mean "
          f"{statistics.fmean(cpu) if cpu else 0:.0f} %")
    if args.keep:
        print(f"records and logs: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported by Locust as the locustfile of the runs
    import random

    from locust import between, task

    import reliability.plugin  # noqa: F401  (SLA grading, run record)
    from reliability.users.http import ApiUser

    class Reader(ApiUser):
        """Logs in once per process and shares the token: thousands of logins while the users
        start would otherwise fill the first stage's p95 with login latency."""

        wait_time = between(1, 2)
        shared_token: str | None = None

        def on_start(self) -> None:
            if Reader.shared_token is None:
                self.login()
                Reader.shared_token = self.token
            else:
                self._set_token(Reader.shared_token)

        @task
        def read(self) -> None:
            self.call("GET", f"/api/items/{random.randint(1, 200)}", name="/api/items/{id}")
