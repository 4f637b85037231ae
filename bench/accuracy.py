"""Quantile accuracy of our LatencyHistogram vs the exact sample, next to Locust, DDSketch and HdrHistogram.

For 100k-value lognormal, bimodal and Pareto samples (see ``_common.samples``), each estimator gets
every value and is asked for p50, p95, p99 and p99.9. The exact reference is the sorted sample at
rank floor(q * (n - 1)) (numpy ``method="lower"``), the convention our histogram documents.

* ours: ``LatencyHistogram()`` (relative accuracy 0.4 %), values in ms;
* Locust: a real ``StatsEntry`` fed with ``log(ms, 0)`` (so ``bucket_response_time`` rounds it as in
  a run) and read with ``get_response_time_percentile`` (rank floor(n * q) in its own convention);
* DDSketch: ``ddsketch.DDSketch(0.004)``, values in ms;
* HdrHistogram: ``HdrHistogram(1, 3_600_000_000, 3)`` over integer microseconds.

    python bench/accuracy.py

Goal: our max relative error <= 0.5 %.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _common import QUANTILES, SAMPLE_KINDS, exact_quantile, fmt_table, rel_error, samples
from ddsketch import DDSketch
from hdrh.histogram import HdrHistogram
from locust.stats import RequestStats

from reliability.metrics.histogram import LatencyHistogram

METHODS = ("ours", "locust", "ddsketch", "hdr")


SWEEP = tuple(i / 1000 for i in range(1, 1000))  # p0.1 .. p99.9


def estimates(values: np.ndarray, ordered: np.ndarray) -> tuple[dict[str, dict[float, float]], float]:
    """Each method's answer (ms) for every quantile in ``QUANTILES``, and our max relative error
    over the sweep p0.1, p0.2, ..., p99.9."""
    as_list = values.tolist()
    ours = LatencyHistogram()
    entry = RequestStats().get("/", "GET")
    sketch = DDSketch(0.004)
    hdr = HdrHistogram(1, 3_600_000_000, 3)
    for ms in as_list:
        ours.record(ms)
        entry.log(ms, 0)
        sketch.add(ms)
        hdr.record_value(max(1, round(ms * 1000)))
    out: dict[str, dict[float, float]] = {m: {} for m in METHODS}
    for q in QUANTILES:
        out["ours"][q] = float(ours.quantile(q) or 0.0)
        out["locust"][q] = float(entry.get_response_time_percentile(q))
        out["ddsketch"][q] = float(sketch.get_quantile_value(q) or 0.0)
        out["hdr"][q] = hdr.get_value_at_percentile(q * 100) / 1000.0
    sweep = max(rel_error(float(ours.quantile(q) or 0.0), exact_quantile(ordered, q)) for q in SWEEP)
    return out, sweep


def main() -> int:
    started = time.perf_counter()
    worst: dict[str, tuple[float, str]] = {m: (0.0, "") for m in METHODS}
    worst_locust_own_rank = (0.0, "")
    worst_sweep = 0.0
    for kind in SAMPLE_KINDS:
        values = samples(kind)
        ordered = np.sort(values)
        got, sweep = estimates(values, ordered)
        worst_sweep = max(worst_sweep, sweep)
        rows = []
        for q in QUANTILES:
            exact = exact_quantile(ordered, q)
            row: list[object] = [f"p{q * 100:g}", f"{exact:.3f}"]
            for m in METHODS:
                err = rel_error(got[m][q], exact)
                row.append(f"{got[m][q]:.3f} ({100 * err:.3f} %)")
                if err > worst[m][0]:
                    worst[m] = (err, f"{kind} p{q * 100:g}")
            rows.append(row)
            # Locust's rank is floor(n * q); separate the rounding from the rank convention.
            own = float(ordered[min(len(ordered) - 1, int(len(ordered) * q))])
            err_own = rel_error(got["locust"][q], own)
            if err_own > worst_locust_own_rank[0]:
                worst_locust_own_rank = (err_own, f"{kind} p{q * 100:g}")
        print(f"{kind}: n={len(values):,}, min {ordered[0]:.3f} ms, max {ordered[-1]:.1f} ms")
        print(fmt_table(["quantile", "exact ms", "ours ms (err)", "locust ms (err)", "ddsketch ms (err)",
                         "hdr ms (err)"], rows))
        print()
    for m in METHODS:
        err, where = worst[m]
        print(f"max relative error {m:9s} {100 * err:7.3f} %  ({where})")
    err, where = worst_locust_own_rank
    print(f"  (locust against its own rank floor(n*q) instead: max {100 * err:.3f} % at {where}, so its error "
          "is bucket_response_time's rounding, not the rank convention)")
    print(f"ours over the sweep p0.1, p0.2, ..., p99.9 of all three samples: max {100 * worst_sweep:.4f} %")
    ours = max(worst["ours"][0], worst_sweep)
    print(f"ours: max {100 * ours:.4f} % (goal <= 0.5 %: {'met' if ours <= 0.005 else 'NOT met'}); "
          f"elapsed {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
