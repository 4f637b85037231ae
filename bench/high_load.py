"""HIGH_LOAD from one load generator: its CPU, and how much latency it adds to what it reports.

Two headless Locust runs (local runner: one generator process, the plugin loaded) against the
reference target in its own process, each user reading ``GET /api/items/{id}`` with a 1-2 s think
time (``between(1, 2)``):

* ``100 users`` (BASELINE's load), then
* ``1000 users`` (HIGH_LOAD), ramped in 10 % of the run as the level shape does.

Every ``/api`` request gets the same fixed service time from the target's admin API (``--service-ms``,
default 50 ms, a typical API call). The target and the generator are pinned to different CPUs when
``taskset`` exists. Two comparisons:

* **raw**: the p95 Locust reports at 1000 users vs at 100 users. Its growth also holds the target's
  own queueing at 10x the request rate;
* **probe-corrected**: during each hold, an independent client in this process reads the same
  endpoint 10 times a second; the p95 Locust reports minus the probe's p95 is what the generator
  added itself (its event loop busy with more users), relative to the probe's p95.

The p95 is over the hold stage only (the ``stages`` section of the run record); the CPU is the
plugin's per-process samples (every 3 s). Run by hand; not part of the tests::

    python bench/high_load.py                        # 30 s hold at 100 users, 60 s at 1000
    python bench/high_load.py --hold-s 120           # the full HIGH_LOAD duration

Prints one line per run and a result line starting with ``high_load:``. This file is also the
locustfile of the runs (Locust imports it; then it only defines the user class).

Measured on a 2-core VM with nothing else running (``--hold-s 120``, the full HIGH_LOAD hold):

=========  =======  ===========  ==========  ==================  =====
users      req/s    p95 (Locust) p95 (probe) generator CPU       RSS
=========  =======  ===========  ==========  ==================  =====
100        64       53.1 ms      52.7 ms     6 % mean, 7 % max   70 MB
1000       644      52.7 ms      52.5 ms     29 % mean, 34 % max 93 MB
=========  =======  ===========  ==========  ==================  =====

Raw: -0.8 % from 100 to 1000 users; generator-added at 1000 users: +0.4 % over the probe (a 60 s
hold gave -1.6 % and +0.1 %). On a machine busy with other work the generator's share grows (+10 %
was seen with two other load tests running): run it alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import pinned

ROOT = Path(__file__).resolve().parent.parent
READY_PREFIX = "reliability-target listening on "


class Probe(threading.Thread):
    """Reads ``GET /api/items/1`` every 0.1 s over one keep-alive connection; (epoch, ms) samples."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        conn.request("POST", "/auth/login", json.dumps({"username": "demo", "password": "demo"}),
                     {"Content-Type": "application/json"})
        token = json.loads(conn.getresponse().read())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        while not self.stop.wait(0.1):
            started = time.perf_counter()
            conn.request("GET", "/api/items/1", headers=headers)
            conn.getresponse().read()
            self.samples.append((time.time(), (time.perf_counter() - started) * 1000.0))
        conn.close()

    def p95_ms(self, start: float, end: float) -> float:
        values = sorted(ms for t, ms in self.samples if start <= t < end)
        return values[int(0.95 * (len(values) - 1))]


def start_target() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(pinned(0, [sys.executable, "-m", "reliability.target", "--port", "0"]), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(READY_PREFIX):
            url = line[len(READY_PREFIX):].strip()
            threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
            return proc, url
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the reference target did not start")


def set_service_time(url: str, latency_ms: float) -> None:
    body = json.dumps({"latency_ms": latency_ms, "route_prefix": "/api"}).encode()
    request = urllib.request.Request(f"{url}/admin/faults", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def run_load(url: str, users: int, hold_s: float, workdir: Path) -> dict[str, Any]:
    ramp_s = max(2.0, hold_s * 0.1)
    scenario = workdir / f"u{users}.yaml"
    scenario.write_text(
        "sla: {tier: gold}\n"
        "shape:\n  type: stages\n  stages:\n"
        f"    - {{name: ramp, duration_s: {ramp_s}, users: {users}, spawn_rate: {users / ramp_s:.3f}}}\n"
        f"    - {{name: hold, duration_s: {hold_s}, users: {users}, spawn_rate: {users / ramp_s:.3f}}}\n")
    record_path = workdir / f"u{users}.json"
    cmd = pinned(1, [sys.executable, "-m", "locust", "-f", str(Path(__file__).resolve()), "--headless",
                     "--host", url, "--scenario", str(scenario), "--run-record", str(record_path), "--only-summary",
                     "-t", f"{int(ramp_s + hold_s + 30)}s"])
    probe = Probe(url)
    probe.start()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
                              text=True, timeout=ramp_s + hold_s + 120)
    finally:
        probe.stop.set()
        probe.join(15)
    if not record_path.exists():
        raise SystemExit(f"no run record for {users} users (exit {done.returncode}):\n{done.stdout[-3000:]}")
    record: dict[str, Any] = json.loads(record_path.read_text())
    hold = next(s for s in record["stages"] if s["name"] == "hold")
    local = next(g for g in record["generators"] if g["role"] == "local")
    started = datetime.fromisoformat(record["run"]["started_at"].replace("Z", "+00:00")).timestamp()
    hold_start = started + hold["started_at_s"]
    hold_end = hold_start + hold["duration_s"]
    cpu = [c for t, c, _ in local["samples"] if hold_start <= t <= hold_end]
    return {
        "users": users,
        "rps": hold["rps"],
        "p95_ms": hold["p95_ms"],
        "probe_p95_ms": probe.p95_ms(hold_start + 1, hold_end - 1),
        "error_ratio": hold["error_ratio"],
        "cpu_mean_pct": sum(cpu) / len(cpu) if cpu else None,
        "cpu_max_pct": max(cpu) if cpu else None,
        "rss_max_mb": local["rss_max_mb"],
        "saturated": local["saturated"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service-ms", type=float, default=50.0, help="fixed service time per /api request")
    parser.add_argument("--hold-s", type=float, default=60.0, help="hold at 1000 users (HIGH_LOAD: 120)")
    parser.add_argument("--baseline-hold-s", type=float, default=30.0, help="hold at 100 users (BASELINE: 30)")
    args = parser.parse_args()
    target, url = start_target()
    try:
        set_service_time(url, args.service_ms)
        with tempfile.TemporaryDirectory(prefix="high-load-") as tmp:
            low = run_load(url, 100, args.baseline_hold_s, Path(tmp))
            high = run_load(url, 1000, args.hold_s, Path(tmp))
    finally:
        target.terminate()
        target.wait(10)
    for r in (low, high):
        print(f"{r['users']:>5} users: {r['rps']:.0f} req/s, p95 {r['p95_ms']:.1f} ms "
              f"(probe {r['probe_p95_ms']:.1f} ms), errors {(r['error_ratio'] or 0) * 100:.2f} %, "
              f"generator CPU mean {r['cpu_mean_pct']:.0f} % max {r['cpu_max_pct']:.0f} %, "
              f"RSS {r['rss_max_mb']:.0f} MB, saturated {r['saturated']}")
    raw = (high["p95_ms"] - low["p95_ms"]) / low["p95_ms"] * 100
    corrected = (high["p95_ms"] - high["probe_p95_ms"]) / high["probe_p95_ms"] * 100
    print(f"high_load: service {args.service_ms:g} ms; p95 {low['p95_ms']:.1f} ms at 100 users, {high['p95_ms']:.1f} ms"
          f" at 1000 users ({raw:+.1f} % raw); generator-added at 1000 users {corrected:+.1f} % over the probe "
          f"({'within' if corrected <= 5 else 'above'} 5 %); generator CPU {high['cpu_mean_pct']:.0f} % mean, "
          f"{high['cpu_max_pct']:.0f} % max at {high['rps']:.0f} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported by Locust as the locustfile of the runs
    import random

    from locust import between, task

    import reliability.plugin  # noqa: F401
    from reliability.users.http import ApiUser

    class Reader(ApiUser):
        wait_time = between(1, 2)

        @task
        def read(self) -> None:
            self.call("GET", f"/api/items/{random.randint(1, 200)}", name="/api/items/[id]")
