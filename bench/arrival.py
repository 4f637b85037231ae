"""Arrival scheduler: can one generator process keep an open-model schedule of 2,000 arrivals/s?

Runs headless Locust (local runner: one generator process, the plugin loaded) with the scenario
shape ``arrival_rate`` (``--rate`` arrivals/s, uniform, for ``--seconds``, a pool of ``--users``
FastHttpUsers) against the minimal keep-alive target of ``bench/_common.py`` in its own process;
each arrival is one ``GET /``. The target and the generator are pinned to different CPUs when
``taskset`` exists. Per run, from the record's ``load`` section and the generator process:

* achieved/asked: arrivals a user started over the arrivals the schedule asked (goal >= 0.99);
* schedule lag p50/p99: when the scheduler put an arrival up minus its scheduled time (goal p99
  <= 5 ms); start delay p50/p99: when a user started it minus its scheduled time;
* generator CPU: the process's CPU time over the schedule's span (psutil), as % of one core and
  as microseconds per arrival; the requests' p50/p99 as the record reports them.

``--repeat N`` runs it N times (the spread is the min..max over the runs). The load average is
printed before and after: the lag is the event loop's punctuality, and a machine busy with other
work (another process on the generator's CPU) shows up in it first. Run by hand; not a test::

    python bench/arrival.py                       # 2,000/s for 20 s, 3 runs
    python bench/arrival.py --rate 4000 --repeat 1

Prints one line per run and a result line starting with ``arrival:``. This file is also the
locustfile of the runs (Locust imports it; then it only defines the user class).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"listening on (http://\S+)")


PIN = [True]


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    from _common import pinned as on_cpu  # late: Locust imports this file as the runs' locustfile

    return on_cpu(cpu, cmd, PIN[0])


def start_target() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(pinned(0, [sys.executable, str(ROOT / "bench/_common.py"), "--port", "0"]), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = READY.search(line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"target did not start: {line!r}")
    return proc, match.group(1)


def run_once(url: str, rate: float, seconds: float, users: int, workdir: Path) -> dict[str, Any]:
    import psutil

    scenario = workdir / "arrival.yaml"
    scenario.write_text(f"""
sla: {{tier: bronze}}
shape:
  type: arrival_rate
  stages: [{{duration_s: {seconds}s, rate_per_s: {rate}}}]
  max_users: {users}
  max_delay_s: 10s
""")
    record_path = workdir / "run.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    cmd = pinned(1, [sys.executable, "-m", "locust", "-f", str(Path(__file__).resolve()), "--headless", "--host", url,
                     "--scenario", str(scenario), "--run-record", str(record_path), "--only-summary",
                     "-t", f"{seconds + 60:g}s"])
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    assert proc.stdout is not None
    cpu_start = cpu_end = None
    t_start = t_end = 0.0
    for line in proc.stdout:
        if cpu_start is None and "shape: stage 1" in line:  # the schedule starts: the pool is spawned
            t_start, cpu_start = time.monotonic(), sum(ps.cpu_times()[:2])
        elif cpu_start is not None and cpu_end is None and "Shape test stopping" in line:
            t_end, cpu_end = time.monotonic(), sum(ps.cpu_times()[:2])
    code = proc.wait(60)
    record = json.loads(record_path.read_text())
    load = record["load"]
    cpu_s = (cpu_end or 0.0) - (cpu_start or 0.0)
    span = max(t_end - t_start, 1e-9)
    return {
        "exit": code,
        "asked": load["asked"],
        "started": load["started"],
        "dropped": load["dropped"],
        "ratio": load["achieved_ratio"],
        "lag_p50": load["schedule_lag_ms"]["p50"],
        "lag_p99": load["schedule_lag_ms"]["p99"],
        "delay_p50": load["start_delay_ms"]["p50"],
        "delay_p99": load["start_delay_ms"]["p99"],
        "cpu_pct": 100.0 * cpu_s / span,
        "us_per_arrival": 1e6 * cpu_s / max(load["started"], 1),
        "p50_ms": record["totals"]["p50_ms"],
        "p99_ms": record["totals"]["p99_ms"],
        "max_in_flight": load["max_in_flight"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="arrivals per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the schedule")
    parser.add_argument("--users", type=int, default=100, help="the pool (max_users)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true", help="no taskset (on a machine shared with other work)")
    args = parser.parse_args()
    PIN[0] = not args.no_pin
    load_before = os.getloadavg()
    target, url = start_target()
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="arrival-bench-") as tmp:
            for i in range(args.repeat):
                workdir = Path(tmp) / str(i)
                workdir.mkdir()
                r = run_once(url, args.rate, args.seconds, args.users, workdir)
                runs.append(r)
                print(f"run {i + 1}: exit {r['exit']}, asked {r['asked']:.0f}, started {r['started']}, dropped "
                      f"{r['dropped']}, achieved/asked {r['ratio']:.4f}; schedule lag p50 {r['lag_p50']:.2f} ms p99 "
                      f"{r['lag_p99']:.2f} ms; start delay p50 {r['delay_p50']:.2f} ms p99 {r['delay_p99']:.2f} ms; "
                      f"generator CPU {r['cpu_pct']:.0f} % of a core ({r['us_per_arrival']:.0f} us/arrival); "
                      f"requests p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms; max in flight "
                      f"{r['max_in_flight']}", flush=True)
    finally:
        target.terminate()
        target.wait(10)
    load_after = os.getloadavg()

    def spread(key: str, fmt: str = ".2f") -> str:
        values = [r[key] for r in runs]
        return f"{min(values):{fmt}}..{max(values):{fmt}}"

    ok = all(r["ratio"] >= 0.99 for r in runs) and all(r["lag_p99"] <= 5.0 for r in runs)
    print(f"arrival: {args.rate:g}/s for {args.seconds:g} s x {len(runs)}: achieved/asked {spread('ratio', '.4f')}, "
          f"schedule lag p99 {spread('lag_p99')} ms, start delay p99 {spread('delay_p99')} ms, generator CPU "
          f"{spread('cpu_pct', '.0f')} % ({spread('us_per_arrival', '.0f')} us/arrival); goals (>= 0.99, <= 5 ms) "
          f"{'met' if ok else 'NOT met'}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"on {os.cpu_count()} CPUs, {'pinned' if PIN[0] else 'not pinned'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported by Locust as the locustfile of the runs
    from locust import FastHttpUser, constant, task

    import reliability.plugin  # noqa: F401

    class ArrivalBenchUser(FastHttpUser):
        wait_time = constant(1)  # replaced by the schedule

        @task
        def root(self) -> None:
            self.client.get("/")
