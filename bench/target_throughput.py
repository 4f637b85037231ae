"""Throughput of the reference target on one core: cached ``GET /api/items/{id}`` requests/s.

The target runs pinned to one CPU (``taskset -c 0``); the load comes from another process on
another CPU: ``wrk`` when it is installed (it costs far less CPU per request than any Python
client), else an aiohttp client loop in this process. The cache is warmed first, so every measured
request is a cache hit. Run by hand; not part of the tests::

    python bench/target_throughput.py                 # embedded store and cache
    python bench/target_throughput.py --load aiohttp --duration-s 5 --concurrency 64
    python bench/target_throughput.py --dsn postgresql://... --redis-url redis://...

Prints one result line starting with ``target_throughput:``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp

READY_PREFIX = "reliability-target listening on "
WRK_SCRIPT = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/items/" .. math.random(1, %d), {["Authorization"] = "Bearer %s"})
end
"""


def start_target(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [sys.executable, "-m", "reliability.target", "--port", "0"]
    if args.dsn:
        cmd += ["--dsn", args.dsn]
    if args.redis_url:
        cmd += ["--redis-url", args.redis_url]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(args.target_cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = b""
    while not line.endswith(b"\n"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("target did not start")
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line += os.read(proc.stdout.fileno(), 4096)
    text = line.decode().strip()
    if not text.startswith(READY_PREFIX):
        proc.kill()
        raise SystemExit(f"unexpected first line: {text}")
    return proc, text[len(READY_PREFIX) :]


def login_and_warm(base_url: str, items: int) -> str:
    body = json.dumps({"username": "demo", "password": "demo"}).encode()
    request = urllib.request.Request(f"{base_url}/auth/login", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        token: str = json.load(reply)["token"]
    for item_id in range(1, items + 1):
        warm = urllib.request.Request(f"{base_url}/api/items/{item_id}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(warm, timeout=10) as reply:
            reply.read()
    return token


def load_with_wrk(args: argparse.Namespace, base_url: str, token: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (args.items, token))
    try:
        cmd = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration_s}s", "--latency", "-s", script.name]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", str(args.load_cpu), *cmd]
        out = subprocess.run([*cmd, base_url], capture_output=True, text=True, check=True).stdout
    finally:
        Path(script.name).unlink()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    return (
        f"{float(rate.group(1)):.0f} req/s (load: wrk, concurrency {args.concurrency}, {args.duration_s} s, "
        f"p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'}, "
        f"non-2xx {errors.group(1) if errors else 0})"
    )


async def _aiohttp_load(args: argparse.Namespace, base_url: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    statuses: Counter[int] = Counter()
    cache: Counter[str] = Counter()
    latencies_s: list[float] = []
    rng = random.Random(1)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:
        deadline = time.perf_counter() + args.duration_s

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(f"/api/items/{rng.randint(1, args.items)}") as reply:
                    await reply.read()
                    statuses[reply.status] += 1
                    cache[reply.headers.get("X-Cache", "-")] += 1
                latencies_s.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed_s = time.perf_counter() - started
    total = sum(statuses.values())
    cuts = statistics.quantiles(latencies_s, n=100)
    return (
        f"{total / elapsed_s:.0f} req/s (load: aiohttp, concurrency {args.concurrency}, {args.duration_s} s, "
        f"p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms, "
        f"non-200 {total - statuses[200]}, cache hits {cache['hit'] / max(total, 1):.1%})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--items", type=int, default=200, help="ids 1..N are requested (seeded: 300)")
    parser.add_argument("--target-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--load", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument("--dsn", help="PostgreSQL DSN for the target (default: embedded store)")
    parser.add_argument("--redis-url", help="Redis URL for the target (default: embedded cache)")
    args = parser.parse_args()

    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    if not use_wrk and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {args.load_cpu})  # keep the Python client off the target's core
    proc, base_url = start_target(args)
    try:
        token = login_and_warm(base_url, args.items)
        load = load_with_wrk if use_wrk else lambda *a: asyncio.run(_aiohttp_load(*a))
        result = load(args, base_url, token)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    store = "postgresql+redis" if args.dsn else "embedded"
    print(f"target_throughput: cached GET /api/items/{{id}} on 1 core ({store}): {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
