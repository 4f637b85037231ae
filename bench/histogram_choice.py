"""Why LatencyHistogram: record cost, memory, wire size and accuracy next to DDSketch and HdrHistogram.

Same samples for all three (the lognormal, bimodal and Pareto sets of ``_common.samples``):

* record cost: ns per ``record``/``add``/``record_value`` call, 20k lognormal values into a fresh
  histogram per round, methods alternating round by round in one process, best of ``--rounds``
  (short rounds, so a burst from another process spoils few of them; HdrHistogram's ms -> integer
  us conversion is part of its cost; the bare ``for`` loop is shown for scale);
* memory of one 1 s window: tracemalloc growth per histogram holding 300 samples, averaged over
  200 such windows cut from each sample set;
* wire size of one such window: ours ``msgpack.packb(to_payload())`` (what a worker sends),
  DDSketch's protobuf (``ddsketch.pb``, when protobuf is installed), HdrHistogram ``encode()``
  (zlib + base64; the raw compressed size in brackets);
* max relative error of p50/p95/p99/p99.9 over the 100k-value samples (``method="lower"`` rank).

    python bench/histogram_choice.py [--rounds 25]
"""

from __future__ import annotations

import argparse
import base64
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
from _common import QUANTILES, SAMPLE_KINDS, exact_quantile, fmt_table, rel_error, samples
from ddsketch import DDSketch
from hdrh.histogram import HdrHistogram

from reliability.metrics.histogram import LatencyHistogram

try:
    from ddsketch.pb.proto import DDSketchProto
except ImportError:  # protobuf not installed
    DDSketchProto = None

WINDOW_SAMPLES = 300
WINDOWS = 200
METHODS = ("ours", "ddsketch", "hdr")


def new(method: str) -> Any:
    if method == "ours":
        return LatencyHistogram()
    if method == "ddsketch":
        return DDSketch(0.004)
    return HdrHistogram(1, 3_600_000_000, 3)


def fill(method: str, hist: Any, values: list[float]) -> None:
    if method == "ours":
        for ms in values:
            hist.record(ms)
    elif method == "ddsketch":
        for ms in values:
            hist.add(ms)
    else:
        for ms in values:
            hist.record_value(round(ms * 1000) or 1)


def quantile(method: str, hist: Any, q: float) -> float:
    if method == "ours":
        return float(hist.quantile(q))
    if method == "ddsketch":
        return float(hist.get_quantile_value(q))
    return float(hist.get_value_at_percentile(q * 100)) / 1000.0


def wire(method: str, hist: Any) -> tuple[int, int | None]:
    """(serialized bytes, raw compressed bytes for HdrHistogram's base64 form)."""
    if method == "ours":
        return len(msgpack.packb(hist.to_payload())), None
    if method == "ddsketch":
        if DDSketchProto is None:
            return -1, None
        return len(DDSketchProto.to_proto(hist).SerializeToString()), None
    encoded = hist.encode()
    return len(encoded), len(base64.b64decode(encoded))


def record_cost_ns(values: list[float], rounds: int) -> dict[str, float]:
    def loop_only(vals: list[float]) -> None:
        for _ms in vals:
            pass

    timers: dict[str, Callable[[], None]] = {m: (lambda m=m: fill(m, new(m), values)) for m in METHODS}
    timers["for loop alone"] = lambda: loop_only(values)
    best = {name: float("inf") for name in timers}
    for _ in range(rounds):
        for name, run in timers.items():
            gc.collect()
            t0 = time.perf_counter_ns()
            run()
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / len(values))
    return best


def window_footprint(method: str, values: np.ndarray) -> tuple[float, float, float | None]:
    """Mean (tracemalloc bytes, wire bytes, raw compressed bytes) of one 300-sample window."""
    chunks = [values[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES].tolist() for i in range(WINDOWS)]
    new(method)  # first instance pays for lazy imports and caches: keep it out of the measure
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    hists = []
    for chunk in chunks:
        h = new(method)
        fill(method, h, chunk)
        hists.append(h)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    sizes = [wire(method, h) for h in hists]
    raw = [r for _, r in sizes if r is not None]
    return ((after - before) / WINDOWS, statistics.mean(s for s, _ in sizes),
            statistics.mean(raw) if raw else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    started = time.perf_counter()
    data = {kind: samples(kind) for kind in SAMPLE_KINDS}

    cost = record_cost_ns(data["lognormal"][:20_000].tolist(), args.rounds)

    errors = {m: 0.0 for m in METHODS}
    for values in data.values():
        ordered = np.sort(values)
        for m in METHODS:
            h = new(m)
            fill(m, h, values.tolist())
            for q in QUANTILES:
                errors[m] = max(errors[m], rel_error(quantile(m, h, q), exact_quantile(ordered, q)))

    footprint = {(m, kind): window_footprint(m, data[kind]) for m in METHODS for kind in SAMPLE_KINDS}

    rows = []
    for m in METHODS:
        rows.append([m, f"{cost[m]:.0f}", f"{100 * errors[m]:.3f} %"])
    rows.append(["for loop alone", f"{cost['for loop alone']:.0f}", ""])
    print(f"record cost (20k lognormal values per round, best of {args.rounds} alternating rounds) and max relative "
          "error of p50/p95/p99/p99.9 over the three 100k samples")
    print(fmt_table(["histogram", "ns/record", "max error"], rows))
    print()

    rows = []
    for m in METHODS:
        row: list[object] = [m]
        for kind in SAMPLE_KINDS:
            row.append(f"{footprint[(m, kind)][0]:,.0f}")
        for kind in SAMPLE_KINDS:
            _, size, raw = footprint[(m, kind)]
            row.append("n/a" if size < 0 else f"{size:,.0f}" + (f" ({raw:,.0f})" if raw is not None else ""))
        rows.append(row)
    print(f"one 1 s window = {WINDOW_SAMPLES} samples, mean of {WINDOWS} windows: memory (tracemalloc bytes) "
          "and wire size (bytes)")
    print(fmt_table(["histogram", *(f"mem {k}" for k in SAMPLE_KINDS), *(f"wire {k}" for k in SAMPLE_KINDS)],
                    rows))
    if DDSketchProto is None:
        print("(ddsketch wire size skipped: protobuf is not installed)")
    mem_ratio = statistics.mean(footprint[("ddsketch", k)][0] / footprint[("ours", k)][0] for k in SAMPLE_KINDS)
    wire_ratio = (statistics.mean(footprint[("ddsketch", k)][1] / footprint[("ours", k)][1] for k in SAMPLE_KINDS)
                  if DDSketchProto is not None else float("nan"))
    print(f"\nours vs DDSketch(0.004): record {cost['ours']:.0f} vs {cost['ddsketch']:.0f} ns, "
          f"{mem_ratio:.1f}x less memory and {wire_ratio:.1f}x smaller on the wire per window, same error bound; "
          f"HdrHistogram: {cost['hdr'] / cost['ours']:.1f}x our record cost and "
          f"{statistics.mean(footprint[('hdr', k)][0] for k in SAMPLE_KINDS) / 1024:.0f} KiB per window in memory")
    print(f"elapsed {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
