"""What each basis says about a target that freezes, next to the open-model truth.

The scenario of the coordinated-omission issue: a target (``tests/support/pattern_server.py``) answering in
5 ms but freezing completely for 2 s every 8 s, first 3 s after its first request; 10 users at
100 requests/s intended for 20 s. Reported side by side:

* raw Locust: the p95/p99 of Locust's own response times (its ``--json-file`` histogram);
* our measured basis (``totals.p95_ms``): the same requests, our histogram;
* our corrected basis (``totals.corrected``): latency from the intended start, stalls back-filled;
* the arrival-rate shape (``--arrivals``, when ``reliability.shapes.arrival`` exists): an open-model
  run at 100 arrivals/s, its corrected basis;
* the truth: arrivals every 10 ms over the run, each waiting ``max(0, freeze_end - t)`` plus 5 ms.

Every run gets a fresh target, so each starts its freeze schedule from its own first request.

    python bench/truth.py [--runs 3] [--seconds 20] [--no-arrivals]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, fmt_table, subprocess_env

EVERY_S, FOR_S, FIRST_S, DELAY_MS, RATE, USERS = 8.0, 2.0, 3.0, 5.0, 100, 10

PACED = """\
import reliability.plugin  # noqa: F401
from locust import FastHttpUser, constant_pacing, task


class Paced(FastHttpUser):
    wait_time = constant_pacing({pacing})

    @task
    def item(self):
        self.client.get("/item")
"""

OPEN = """\
import reliability.plugin  # noqa: F401
from locust import FastHttpUser, constant, task


class Open(FastHttpUser):
    wait_time = constant(0)

    @task
    def item(self):
        self.client.get("/item")
"""

ARRIVAL_SCENARIO = """\
name: freeze truth
shape:
  type: arrival_rate
  stages:
    - {{duration_s: {seconds}s, rate_per_s: {rate}}}
  max_users: 400
  max_delay_s: 10s
"""


@contextlib.contextmanager
def frozen_target() -> Iterator[str]:
    cmd = [sys.executable, str(REPO_ROOT / "tests" / "support" / "pattern_server.py"), "--delay-ms", str(DELAY_MS),
           "--freeze-every", str(EVERY_S), "--freeze-for", str(FOR_S), "--freeze-first", str(FIRST_S)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on " not in line:
            raise SystemExit(f"target did not start: {line!r}")
        yield line.split("listening on ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(10)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def truth(anchor: float, end: float) -> tuple[float, float]:
    values = []
    for i in range(int((end - anchor) * RATE)):
        s = anchor + i / RATE
        since = s - anchor - FIRST_S
        wait = FOR_S - since % EVERY_S if since >= 0 and since % EVERY_S < FOR_S else 0.0
        values.append(DELAY_MS + 1000.0 * wait)
    values.sort()
    return tuple(values[math.floor(q * (len(values) - 1))] for q in (0.95, 0.99))  # type: ignore[return-value]


def locust_percentiles(stats_file: Path) -> tuple[float, float]:
    """p95/p99 of Locust's own aggregated histogram (its bucketed response times)."""
    counts: dict[float, int] = {}
    for entry in json.loads(stats_file.read_text()):
        for value, n in entry["response_times"].items():
            counts[float(value)] = counts.get(float(value), 0) + int(n)
    total = sum(counts.values())
    out = []
    for q in (0.95, 0.99):
        rank, seen = math.floor(q * (total - 1)), 0
        for value in sorted(counts):
            seen += counts[value]
            if seen > rank:
                out.append(value)
                break
    return out[0], out[1]


def run_one(work: Path, tag: str, locustfile: str, seconds: int, extra: list[str]) -> dict[str, Any]:
    path = work / f"{tag}.py"
    path.write_text(locustfile)
    record = work / f"{tag}-{time.monotonic_ns()}.json"
    with frozen_target() as host:
        cmd = [sys.executable, "-m", "locust", "-f", str(path), "--headless", "-t", f"{seconds}s", "-H", host,
               "--only-summary", "--json-file", str(work / f"{tag}-stats"), "--run-record", str(record), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=work, timeout=seconds + 90)
        with urllib.request.urlopen(f"{host}/stats", timeout=10) as response:
            anchor = float(json.load(response)["freeze_anchor"])
    data = json.loads(record.read_text())
    t95, t99 = truth(anchor, _epoch(data["run"]["ended_at"]))
    l95, l99 = locust_percentiles(work / f"{tag}-stats.json")
    corrected = data["totals"].get("corrected") or {}
    return {"exit": proc.returncode, "truth": (t95, t99), "locust": (l95, l99),
            "measured": (data["totals"]["p95_ms"], data["totals"]["p99_ms"]),
            "corrected": (corrected.get("p95_ms"), corrected.get("p99_ms")),
            "uptime": data["uptime"]["ratio"], "down": data["uptime"]["windows"] - data["uptime"]["up_windows"],
            "lag_p99": (data.get("schedule") or {}).get("lag_p99_ms"),
            "verdict": "NOT MET" if data["sla"]["exit_code"] == 3 else data["sla"]["exit_code"]}


def _fmt(pair: tuple[float | None, float | None]) -> str:
    return " / ".join("-" if v is None else f"{v:.0f}" for v in pair)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--no-arrivals", action="store_true")
    args = parser.parse_args()
    try:
        import reliability.shapes.arrival  # noqa: F401
        arrivals = not args.no_arrivals
    except ImportError:
        arrivals = False
    work = Path(tempfile.mkdtemp(prefix="bench-truth-"))
    paced = PACED.format(pacing=USERS / RATE)
    rows, results = [], []
    for i in range(args.runs):
        kinds = [("paced", paced, ["-u", str(USERS), "-r", str(USERS), "--sla-tier", "gold"])]
        if arrivals:
            scenario = work / "arrival.yaml"
            scenario.write_text(ARRIVAL_SCENARIO.format(seconds=args.seconds, rate=RATE))
            kinds.append(("arrival", OPEN, ["--scenario", str(scenario), "--sla-tier", "gold"]))
        for kind, locustfile, extra in kinds:
            r = run_one(work, kind, locustfile, args.seconds, extra)
            results.append((kind, r))
            rows.append([f"run {i + 1} {kind}", _fmt(r["truth"]), _fmt(r["locust"]), _fmt(r["measured"]),
                         _fmt(r["corrected"]), f"{100 * (r['uptime'] or 0):.1f} % ({r['down']} down)",
                         "-" if r["lag_p99"] is None else f"{r['lag_p99']:.1f}", str(r["verdict"]), str(r["exit"])])
            print(f"  {rows[-1]}", flush=True)
    print()
    print(fmt_table(["run", "truth p95/p99 ms", "raw Locust", "our measured", "our corrected", "uptime",
                     "lag p99 ms", "gold", "exit"], rows))
    for kind in sorted({k for k, _ in results}):
        errs = [(r["corrected"][j] - r["truth"][j]) / r["truth"][j] for k, r in results if k == kind
                for j in (0, 1) if r["corrected"][j] is not None]
        if errs:
            print(f"{kind}: corrected vs truth, p95 and p99 over {len(errs) // 2} runs: "
                  f"median {100 * statistics.median(errs):+.1f} %, "
                  f"span {100 * min(errs):+.1f} .. {100 * max(errs):+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
