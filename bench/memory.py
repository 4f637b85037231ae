"""Master memory over a simulated 24 h run: 20 endpoints, one worker payload per second.

A worker-side ``WindowStore`` on a fake clock records 50-200 lognormal latencies per endpoint per
second (medians 5-400 ms, about 1 % failures with a handful of error messages) and ``drain()``s each
second into a payload, msgpack round-tripped as on the wire. ``--templates`` such payloads are built
up front; the simulation re-stamps their ``"t"`` and feeds the master-side store one per simulated
second with ``merge_payload()`` and ``note_users()``, and calls ``rollup()`` every 10 simulated
seconds, as the plugin's master does, for 86,400 seconds. Reported: the process RSS before and
after (psutil, after ``gc.collect()``), the bytes reachable from the store (a ``gc.get_referents``
walk, cheap), the windows held per level, and the wall and CPU time (the CPU time per simulated
second is what merging costs the master per second of a real run). About 2.5 minutes of CPU.
``--tracemalloc`` adds tracemalloc's count (slows the run down about 2x).

    python bench/memory.py [--hours 24] [--endpoints 20] [--templates 40] [--tracemalloc]

Goal: RSS growth <= 50 MB.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from typing import Any

import msgpack
import numpy as np
import psutil
from _common import fmt_table

from reliability.metrics.histogram import _mapping_for
from reliability.metrics.windows import WindowsPayload, WindowStore

T0 = 1_800_000_000  # an epoch second: the simulated run starts here
ERRORS = ("HTTPError: 500 Server Error", "HTTPError: 503 Service Unavailable", "ConnectionResetError: reset by peer")


def build_templates(count: int, endpoints: int, seed: int = 7) -> list[WindowsPayload]:
    """``count`` one-window worker payloads, as a worker's ``drain()`` produces them."""
    rng = np.random.default_rng(seed)
    medians = np.geomspace(5.0, 400.0, endpoints)
    names = [(("GET", "POST", "PUT", "DELETE")[i % 4], f"/api/v1/resource{i:02d}/{{id}}") for i in range(endpoints)]
    clock = [float(T0)]
    worker = WindowStore(clock=lambda: clock[0])
    out = []
    for k in range(count):
        clock[0] = T0 + k + 0.5
        for (rtype, name), median in zip(names, medians, strict=True):
            n = int(rng.integers(50, 201))
            latencies = rng.lognormal(math.log(median), 0.5, n).tolist()
            failed = (rng.random(n) < 0.01).tolist()
            for ms, bad in zip(latencies, failed, strict=True):
                worker.record(rtype, name, ms, bad, ERRORS[int(ms) % len(ERRORS)] if bad else None)
        clock[0] = T0 + k + 1.5
        payload = worker.drain()
        assert len(payload["w"]) == 1, payload["w"]
        out.append(msgpack.unpackb(msgpack.packb(payload), strict_map_key=False))
    return out


def reachable_bytes(root: Any) -> int:
    """Sum of ``sys.getsizeof`` over every object reachable from ``root`` (shared mappings excluded)."""
    skip = {id(_mapping_for(0.004))}
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or id(obj) in skip or isinstance(obj, type) or callable(obj) and obj is not root:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    seconds = int(args.hours * 3600)

    t_build = time.perf_counter()
    templates = build_templates(args.templates, args.endpoints)
    build_s = time.perf_counter() - t_build
    per_window = sum(ep["r"] for ep in templates[0]["w"][0]["e"])
    wire = sum(len(msgpack.packb(p)) for p in templates) / len(templates)
    print(f"{args.templates} payload templates built in {build_s:.1f} s: {args.endpoints} endpoints, "
          f"~{per_window} requests per second, {wire / 1024:.1f} KiB msgpack per 1 s window")

    now = [float(T0)]
    master = WindowStore(clock=lambda: now[0])
    if args.tracemalloc:
        tracemalloc.start()
    rss_before = rss_mb()
    traced_before = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    merged = 0
    rows = []
    for i in range(seconds):
        t = T0 + i
        payload = templates[i % len(templates)]
        payload["w"][0]["t"] = t
        merged += master.merge_payload(payload)
        master.note_users(t, 100)
        now[0] = t + 1.0
        if i % 10 == 9:
            master.rollup(now[0])
        if (i + 1) % (6 * 3600) == 0 or i + 1 == seconds:
            fine, minutes, hours = master.window_count()
            rows.append([f"{(i + 1) / 3600:g} h", f"{time.perf_counter() - started:.0f}",
                         f"{rss_mb() - rss_before:.1f}", f"{fine}/{minutes}/{hours}",
                         f"{master.timeline_nbytes() / 1e6:.2f}"])
            print(f"  {rows[-1][0]} simulated ...", flush=True)
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    rss_after = rss_mb()
    traced = (tracemalloc.get_traced_memory()[0] - traced_before) if args.tracemalloc else None
    if args.tracemalloc:
        tracemalloc.stop()
    t_snap = time.perf_counter()
    snap = master.snapshot()
    snap_s = time.perf_counter() - t_snap
    assert snap.total.requests == merged, (snap.total.requests, merged)
    store_mb = reachable_bytes(master) / 1e6

    print()
    print(fmt_table(["simulated", "wall s", "RSS growth MB", "windows fine/min/hour", "timeline MB"], rows))
    print()
    growth = rss_after - rss_before
    print(f"RSS growth over {args.hours:g} h: {growth:.1f} MB ({rss_before:.0f} -> {rss_after:.0f} MB; "
          f"goal <= 50 MB: {'met' if growth <= 50 else 'NOT met'})")
    print(f"objects reachable from the store: {store_mb:.1f} MB"
          + (f"; tracemalloc growth: {traced / 1e6:.1f} MB" if traced is not None else ""))
    print(f"{merged:,} requests merged; whole-run snapshot {snap_s:.2f} s, p95 "
          f"{snap.total.latency_ms(0.95):.1f} ms")
    print(f"elapsed {elapsed:.0f} s ({cpu_s:.0f} s CPU) for {seconds:,} simulated seconds: "
          f"{1000 * cpu_s / seconds:.2f} ms of master CPU per second of run ({args.endpoints} endpoints, "
          "merge + rollup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
