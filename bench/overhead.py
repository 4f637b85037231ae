"""Throughput cost of the plugin on a saturated load generator: bare Locust vs ``import reliability.plugin``.

Locust (one process, FastHttpUser, ``constant(0)`` wait) is pinned to CPU 0 with ``taskset``; a
minimal keep-alive HTTP target (``bench/_common.py``, or ``--target pattern`` for
``tests/support/pattern_server.py --delay-ms 0``) is pinned to CPU 1. Runs alternate bare, plugin, bare,
plugin, ... so drift (thermal, noisy neighbours) hits both sides alike. Each run's request rate is
its request count over the span between its first and last request, read from ``--json-file``.
The CPU use of both processes is sampled over each run: the generator should sit near 100 %, the
target well below, otherwise the target is the bottleneck and the ratio means nothing.

On a shared machine other processes steal the generator's core and swing a run by 10-30 %, far
more than the effect measured. So the busy time of both pinned CPUs is sampled too; a pair in which
other processes took more than ``--max-foreign`` % of the generator's CPU (or three times that of
the target's) is marked disturbed and another pair is run while the ``--budget`` allows; the ratio
is the median over undisturbed pairs (over all pairs, flagged as indicative, if none is).
Steadier figures come with it: CPU time per request inside the locust process (a probe in both
locustfiles, between 2 s after the spawn and the stop), the ratio of the fastest 1 s slices (other
processes only take throughput away, so the fastest seconds are the least disturbed) and, in a
separate process, the cost of the plugin's request counting alone (``events.request.fire``
with and without it, best of 7 alternating rounds). Last, an A/B inside one plugin-enabled locust
process (``--toggle-seconds``): the plugin's request counting is switched off and on every 0.47 s
(``stop_counting_requests()`` / ``count_requests()``: the plugin's own dispatch of the request
event, or its listener where it cannot take the dispatch over), and each counting slice is
compared with the mean of the other slices either side, which cancels drift and most contention;
it measures the per-request work (the plugin's only) with the dispatch it saves or adds. The
slice is not a divisor of a second, so the once-a-second work (Locust's and the plugin's
tickers) falls in both arms alike instead of locking onto one. Both locustfiles
time Python's garbage collector (``gc.callbacks``): its full collections, tens of ms about once a
second, are taken out of the slice comparison and compared as totals (see ``toggle_summary``).

    python bench/overhead.py [--pairs 3] [--seconds 15] [--users N] [--target fast|pattern]
                             [--wait constant|pacing|backfill]

The wait decides what the plugin's coordinated-omission correction does (the same in both variants):

* ``constant`` (default): ``constant(0)``, 32 users. No schedule, no correction.
* ``pacing``: ``constant_pacing(0.15)``, 1000 users. The schedule is just out of reach: the users
  ask for 6,700 requests/s, more than one core sends when Locust needs over 150 us per request
  (check the generator CPU), so the generator is still saturated. Every task has an intended
  start, so the correction is on for every request (the mark, the corrected histogram). A
  saturated closed loop makes a task take users x CPU per request (150-240 ms here), under twice
  the interval, so little is back-filled. The script prints the back-filled samples per request
  from the plugin run's record.
* ``backfill``: ``constant_pacing(0.0001)``, 32 users. Every request is ~35 intervals late, so each
  back-fills ~35 samples: the cost of a permanent stall, not of the correction in normal running.

Goal: plugin/bare >= 0.98.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from _common import REPO_ROOT, fmt_table, subprocess_env

# reliability.request_dispatch's switch and whether its compiled fire is built, read without
# importing that module (it imports locust, which monkey-patches this process)
DISPATCH_ENV = "RELIABILITY_DISPATCH"
COMPILED_AVAILABLE = importlib.util.find_spec("reliability._dispatch") is not None
TOGGLE_SLICE_S = 0.47  # the A/B slice length (in the locustfile below too)
WAITS = {  # --wait: the users' wait time and default user count (see the module docstring)
    "constant": ("constant(0)", 32),
    "pacing": ("constant_pacing(0.15)", 1000),
    "backfill": ("constant_pacing(0.0001)", 32),
}

# the plugin variant times the store's flush (a class-level wrap: the plugin makes a new store at the
# test start), so the A/B can tell the per-request listener from the batched fold
FLUSH_TIMER = """
from reliability.metrics.windows import WindowStore as _Store

_unwrapped_flush = _Store.flush


def _timed_flush(self):
    t0 = time.process_time()
    try:
        _unwrapped_flush(self)
    finally:
        _flush_s[0] += time.process_time() - t0


_Store.flush = _timed_flush
"""

LOCUSTFILE = """\
{plugin_import}
import json
import os
import time

import gevent
from locust import FastHttpUser, constant, constant_pacing, events, task


class Bench(FastHttpUser):
    wait_time = {wait}

    @task
    def hit(self):
        self.client.get("/")


# Probe (same in both variants, off the request path): CPU time and requests of this process
# between 2 s after the spawn and the stop (start-up imports and ramp-up left out), whole and in
# 1 s slices. With BENCH_TOGGLE=1 (plugin variant only) the slices last 0.47 s and the plugin's
# request listener is detached and re-attached between them: an A/B inside one process.
_probe = {{"slices": []}}
_TOGGLE = os.environ.get("BENCH_TOGGLE") == "1"
# not a divisor of 1 s: work done once a second (Locust's and the plugin's tickers) must not lock
# onto the "on" or the "off" slices, or it counts as per-request cost of one arm
TOGGLE_SLICE_S = 0.47


import gc
_gc_s = [0.0, 0.0, 0]  # collector time (s), start of the running collection, collections


def _gc_timer(phase, info):
    if phase == "start":
        _gc_s[1] = time.perf_counter()
    else:
        _gc_s[0] += time.perf_counter() - _gc_s[1]
        _gc_s[2] += 1


gc.callbacks.append(_gc_timer)


_flush_s = [0.0]  # CPU time inside the plugin's WindowStore.flush (the plugin variant only)
{flush_timer}

def _sample():
    return (time.perf_counter(), time.process_time(), _env.runner.stats.total.num_requests, _gc_s[0], _gc_s[2],
            _flush_s[0])


@events.spawning_complete.add_listener
def _start_probe(**_kwargs):
    def run():
        gevent.sleep(2.0)
        _probe["start"] = last = _sample()
        on = True
        while True:
            gevent.sleep(TOGGLE_SLICE_S if _TOGGLE else 1.0)
            if _TOGGLE and on:
                # the on-slice's queued requests are folded in it: otherwise a later flush (a full
                # queue, the ticker) may fall in an off-slice and count there
                _env.reliability.store.flush()
            now = _sample()
            _probe["slices"].append([on, now[0] - last[0], now[1] - last[1], now[2] - last[2],
                                     now[3] - last[3], now[4] - last[4], now[5] - last[5]])
            if _TOGGLE:
                if on:
                    _env.reliability.stop_counting_requests()
                else:
                    _env.reliability.count_requests()
                on = not on
            last = _sample()

    _probe["greenlet"] = gevent.spawn(run)


@events.test_stop.add_listener
def _stop_probe(environment, **_kwargs):
    if "start" in _probe:
        _probe["greenlet"].kill(block=False)
        end, start = _sample(), _probe["start"]
        out = {{"wall_s": end[0] - start[0], "cpu_s": end[1] - start[1], "requests": end[2] - start[2],
               "gc_s": end[3] - start[3], "collections": end[4] - start[4], "slices": _probe["slices"]}}
        with open(os.environ["BENCH_PROBE_OUT"], "w") as f:
            json.dump(out, f)


@events.init.add_listener
def _keep_env(environment, **_kwargs):
    global _env
    _env = environment
"""


def _is_clean(pair: tuple[dict[str, Any], dict[str, Any]], max_foreign: float) -> bool:
    """In both runs other processes took at most ``max_foreign`` % of the generator's CPU and at most
    three times that of the target's (a descheduled target leaves the generator idle)."""
    return all(r["foreign_gen_cpu"] <= max_foreign and r["foreign_target_cpu"] <= 3 * max_foreign for r in pair)


def summarize_pairs(pairs: list[tuple[dict[str, Any], dict[str, Any]]], max_foreign: float) -> float:
    """Print the pair table and ratios; return bare Locust's CPU us per request (median)."""
    rows = []
    for i, (b, p) in enumerate(pairs):
        rows.append([f"pair {i + 1}", f"{b['rps']:.0f}", f"{p['rps']:.0f}", f"{p['rps'] / b['rps']:.3f}",
                     f"{b['cpu_us_per_req']:.1f}", f"{p['cpu_us_per_req']:.1f}",
                     f"{b['cpu_us_per_req'] / p['cpu_us_per_req']:.3f}",
                     "yes" if _is_clean((b, p), max_foreign) else "no"])
    print()
    print(fmt_table(["run", "bare req/s", "plugin req/s", "plugin/bare", "bare CPU us/req",
                     "plugin CPU us/req", "bare/plugin", "undisturbed"], rows))
    clean = [pair for pair in pairs if _is_clean(pair, max_foreign)]
    used = clean or pairs
    ratios = [p["rps"] / b["rps"] for b, p in used]
    cpu_ratios = [b["cpu_us_per_req"] / p["cpu_us_per_req"] for b, p in used]
    median = statistics.median(ratios)
    which = (f"{len(clean)} undisturbed pairs" if clean
             else f"all {len(pairs)} pairs (none undisturbed: treat as indicative only)")
    print(f"\nthroughput ratio plugin/bare, median of {which}: {median:.3f} "
          f"(span {min(ratios):.3f}-{max(ratios):.3f}; goal >= 0.98: {'met' if median >= 0.98 else 'NOT met'})")
    print(f"CPU per request ratio bare/plugin, same pairs: {statistics.median(cpu_ratios):.3f}")
    # Other processes only ever take throughput away, so the fastest seconds of each side are the
    # least disturbed ones: compare the 90th percentile of the 1 s slices over all runs.
    best = {kind: statistics.quantiles([x for pair in pairs for x in pair[k]["slice_rps"]], n=10)[-1]
            for k, kind in enumerate(("bare", "plugin"))}
    print(f"fastest seconds (p90 of 1 s slices, all runs): bare {best['bare']:.0f}, plugin {best['plugin']:.0f} "
          f"req/s, ratio {best['plugin'] / best['bare']:.3f}")
    return statistics.median(b["cpu_us_per_req"] for b, _ in used)


def toggle_figures(slices: list[list[Any]]) -> dict[str, float] | None:
    """The listener's cost in place, from the in-process A/B (None when no slice was recorded).
    Slice i is [on, wall s, CPU s, requests, GC s, collections, flush s]; on- and off-slices
    alternate.

    Python's full collections (40-60 ms each, about once a second in a saturated Locust process)
    land in some slices and not in others, which makes single slices differ by 10 %. So the CPU the
    collector took is taken out of each slice: the listener's direct cost is the median, over the
    on-slices, of their CPU per request outside the collector minus the mean of the two off-slices
    either side (a linear drift cancels). The collector's share is compared as totals over all
    on- and all off-slices (every slice has the same chance of holding a full collection); so is
    the throughput."""
    triples = [(slices[i - 1], slices[i], slices[i + 1]) for i in range(1, len(slices) - 1)
               if slices[i][0] and not slices[i - 1][0] and not slices[i + 1][0]
               and slices[i][3] and slices[i - 1][3] and slices[i + 1][3]]
    if not triples:
        return None

    def outside_gc_us(x: list[Any]) -> float:
        return (float(x[2]) - float(x[4])) / float(x[3]) * 1e6

    direct = statistics.median(outside_gc_us(on) - (outside_gc_us(a) + outside_gc_us(b)) / 2 for a, on, b in triples)
    base = statistics.median(outside_gc_us(x) for a, _, b in triples for x in (a, b))
    ons = [x for x in slices if x[0] and x[3]]
    offs = [x for x in slices if not x[0] and x[3]]

    def total(xs: list[list[Any]], field: int) -> float:
        return sum(float(x[field]) for x in xs)

    flush_on = total(ons, 6) / total(ons, 3) * 1e6
    gc_on = total(ons, 4) / total(ons, 3) * 1e6
    gc_off = total(offs, 4) / total(offs, 3) * 1e6
    cpu_on = total(ons, 2) / total(ons, 3) * 1e6
    cpu_off = total(offs, 2) / total(offs, 3) * 1e6
    return {
        "on_slices": len(triples),
        "busy_slices": sum(1 for trio in triples if all(x[2] >= 0.95 * x[1] for x in trio)),
        "direct_us": direct, "base_us": base, "gc_on_us": gc_on, "gc_off_us": gc_off,
        "in_place_us": direct + gc_on - gc_off, "flush_us": flush_on, "cpu_on_us": cpu_on, "cpu_off_us": cpu_off,
        "cpu_ratio": cpu_off / cpu_on,
        "rps_ratio": (total(ons, 3) / total(ons, 1)) / (total(offs, 3) / total(offs, 1)),
    }


def toggle_summary(slices: list[list[Any]]) -> str:
    """:func:`toggle_figures` in a sentence."""
    f = toggle_figures(slices)
    if f is None:
        return "in-process A/B: no slices recorded"
    return (f"in-process A/B (plugin's request listener on/off every {TOGGLE_SLICE_S} s, {f['on_slices']:.0f} "
            f"on-slices, {f['busy_slices']:.0f} with the CPU >= 95 % busy): the listener costs {f['direct_us']:+.2f} "
            f"us per request outside the garbage collector (the store's flush {f['flush_us']:.2f} us of it; median "
            f"against the off-slices either side; "
            f"{f['base_us']:.1f} us of Locust's own), the collector {f['gc_on_us']:.2f} vs {f['gc_off_us']:.2f} us "
            f"per request ({f['gc_on_us'] - f['gc_off_us']:+.2f} us): {f['in_place_us']:+.2f} us in place, "
            f"predicting a ratio of {f['base_us'] / (f['base_us'] + f['in_place_us']):.3f}. Totals over all slices: "
            f"CPU {f['cpu_on_us']:.1f} vs {f['cpu_off_us']:.1f} us per request (ratio off/on {f['cpu_ratio']:.3f}), "
            f"throughput ratio on/off {f['rps_ratio']:.3f}")


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """(lower, upper, coverage): the distribution-free interval for the median of ``values``
    between two order statistics, the narrowest symmetric pair whose binomial coverage is at least
    ``confidence``; None when there are too few values for that coverage (fewer than 6 at 95 %)."""
    xs = sorted(values)
    n = len(xs)
    best = None
    for k in range(n // 2):  # the interval [xs[k], xs[n - 1 - k]]
        coverage = 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
        if coverage >= confidence:
            best = (xs[k], xs[n - 1 - k], coverage)
        else:
            break
    return best


def runs_summary(figures: list[dict[str, float]]) -> str:
    """Across separate A/B processes: each process differs a little (heap layout, hash seed), so one
    run's figure spreads more than its slices suggest; the median over runs and its interval say
    what the listener costs."""
    lines = [fmt_table(["A/B run", "on-slices", "outside GC us", "of it flush us", "GC share us", "in place us",
                        "CPU ratio off/on"],
                       [[str(i + 1), f"{f['on_slices']:.0f}", f"{f['direct_us']:+.2f}", f"{f['flush_us']:.2f}",
                         f"{f['gc_on_us'] - f['gc_off_us']:+.2f}", f"{f['in_place_us']:+.2f}",
                         f"{f['cpu_ratio']:.3f}"] for i, f in enumerate(figures)])]
    for key, label, fmt in (("in_place_us", "in place, us per request", "+.2f"),
                            ("direct_us", "outside the collector, us per request", "+.2f"),
                            ("flush_us", "of it the store's flush, us per request", ".2f"),
                            ("cpu_ratio", "CPU ratio off/on", ".3f")):
        values = [f[key] for f in figures]
        interval = median_interval(values)
        spread = f"span {format(min(values), fmt)} to {format(max(values), fmt)}"
        ci = ("" if interval is None else
              f", {100 * interval[2]:.1f} % interval of the median {format(interval[0], fmt)} to "
              f"{format(interval[1], fmt)}")
        lines.append(f"{label}: median {format(statistics.median(values), fmt)} over {len(values)} runs ({spread}{ci})")
    return "\n".join(lines)


def listener_cost_ns(rounds: int = 7, n: int = 100_000) -> tuple[float, float, float]:
    """ns per ``request`` event: (with the plugin's listener, without it, with it and every request
    on a schedule): min over alternating rounds. The scheduled variant pays what the correction
    adds per paced task: the wait's intended-start mark and the listener's corrected histogram.

    Runs in its own process (``--listener-cost``) because importing locust monkey-patches it.
    """
    import random

    from locust.env import Environment

    import reliability.plugin as plugin_module
    from reliability.pacing import mark_intended_start

    env = Environment()
    plugin = plugin_module.install(env)
    rng = random.Random(1)
    latencies = [rng.lognormvariate(1.5, 0.5) for _ in range(n)]

    def timed(scheduled: bool) -> float:
        fire = env.events.request.fire  # the plugin's dispatch while it counts, Locust's otherwise
        start = time.time()
        t0 = time.perf_counter_ns()
        for i, ms in enumerate(latencies):
            sent = start + i * 1e-5
            if scheduled:
                mark_intended_start(sent - 0.0002, 0.1)
            fire(request_type="GET", name="/", response_time=ms, response_length=2, response=None,
                 context={}, exception=None, start_time=sent, url="http://127.0.0.1/")
        return (time.perf_counter_ns() - t0) / n

    with_plugin, without, scheduled = [], [], []
    for _ in range(rounds):
        with_plugin.append(timed(False))
        plugin.stop_counting_requests()
        without.append(timed(False))
        plugin.count_requests()
        plugin.expect_intended_starts()
        scheduled.append(timed(True))
        plugin._expect_marks = False
    return min(with_plugin), min(without), min(scheduled)


def start_target(kind: str, cpu: int) -> tuple[subprocess.Popen[str], str]:
    if kind == "fast":
        cmd = [sys.executable, str(REPO_ROOT / "bench" / "_common.py")]
    else:
        cmd = [sys.executable, str(REPO_ROOT / "tests" / "support" / "pattern_server.py"), "--delay-ms", "0"]
    proc = subprocess.Popen(["taskset", "-c", str(cpu), *cmd], stdout=subprocess.PIPE, text=True,
                            env=subprocess_env())
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].strip()
    proc.kill()
    raise SystemExit(f"target did not start: {' '.join(cmd)}")


def _busy(times: Any) -> float:
    return float(times.user + times.nice + times.system + times.irq + times.softirq + getattr(times, "steal", 0.0))


def wait_for_quiet(cpus: tuple[int, int], limit_s: float, busy_pct: float = 20.0) -> float:
    """Wait (at most ``limit_s``) until both CPUs are below ``busy_pct`` over 0.5 s; return the wait."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        load = psutil.cpu_percent(interval=0.5, percpu=True)
        if all(load[c] < busy_pct for c in cpus):
            break
    return time.monotonic() - t0


def dispatch_env(dispatch: str | None) -> dict[str, str]:
    """The benchmark's subprocess environment with ``RELIABILITY_DISPATCH`` set to ``dispatch``
    (``python`` or ``compiled``; None: the plugin's default)."""
    env = subprocess_env()
    env.pop(DISPATCH_ENV, None)
    if dispatch is not None:
        env[DISPATCH_ENV] = dispatch
    return env


def run_locust(locustfile: Path, host: str, users: int, seconds: int, cpu: int, target_cpu: int, work: Path,
               tag: str, target: psutil.Process, plugin: bool, toggle: bool = False,
               dispatch: str | None = None) -> dict[str, Any]:
    stats_base = work / f"{tag}-stats"
    cmd = ["taskset", "-c", str(cpu), sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
           "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "-H", host, "--only-summary",
           "--json-file", str(stats_base)]
    if plugin:
        cmd += ["--run-record", str(work / f"{tag}-record.json")]
    log = (work / f"{tag}.log").open("w")
    wall0 = time.monotonic()
    probe_path = work / f"{tag}-probe.json"
    env = {**dispatch_env(dispatch), "BENCH_PROBE_OUT": str(probe_path), "BENCH_TOGGLE": "1" if toggle else "0"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    gen = psutil.Process(proc.pid)
    # (elapsed s, generator CPU s, target CPU s); CPU % is taken over the steady part only, after
    # the imports and the spawn (first 3 s) and before the summary printing.
    # (elapsed s, generator CPU s, target CPU s, busy s of the generator's CPU, of the target's CPU)
    readings: list[tuple[float, float, float, float, float]] = []
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            per_cpu = psutil.cpu_times(percpu=True)
            readings.append((time.monotonic() - wall0, sum(gen.cpu_times()[:2]), sum(target.cpu_times()[:2]),
                             _busy(per_cpu[cpu]), _busy(per_cpu[target_cpu])))
        time.sleep(0.25)
    steady = [r for r in readings if 3.0 <= r[0] <= seconds + 1.0] or readings
    first, last = steady[0], steady[-1]
    span_s = max(last[0] - first[0], 1e-9)
    log.close()
    entries = json.loads(Path(f"{stats_base}.json").read_text())
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    span = max(e["last_request_timestamp"] for e in entries) - min(e["start_time"] for e in entries)
    probe = json.loads(probe_path.read_text())
    backfilled = None
    record_path = work / f"{tag}-record.json"
    if plugin and record_path.exists():
        totals = json.loads(record_path.read_text()).get("totals") or {}
        corrected = totals.get("corrected") or {}
        backfilled = (corrected.get("backfilled") or 0) / max(totals.get("requests") or 0, 1)
    return {
        "backfilled_per_request": backfilled,
        "rps": requests / span,
        "cpu_us_per_req": 1e6 * probe["cpu_s"] / probe["requests"],
        "slice_rps": [s[3] / s[1] for s in probe["slices"] if s[3]],
        "slices": probe["slices"],
        "requests": requests,
        "failures": failures,
        "gen_cpu": 100.0 * (last[1] - first[1]) / span_s,
        "target_cpu": 100.0 * (last[2] - first[2]) / span_s,
        # what other processes took of the two pinned CPUs: high values mean a noisy run
        "foreign_gen_cpu": max(0.0, 100.0 * ((last[3] - first[3]) - (last[1] - first[1])) / span_s),
        "foreign_target_cpu": max(0.0, 100.0 * ((last[4] - first[4]) - (last[2] - first[2])) / span_s),
        "exit": proc.returncode,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=None, help="default 32 (1000 with --wait pacing)")
    parser.add_argument("--target", choices=("fast", "pattern"), default="fast")
    parser.add_argument("--wait", choices=tuple(WAITS), default="constant",
                        help="constant(0); constant_pacing(0.15) with 1000 users: the correction on for every "
                             "request; constant_pacing(0.0001): every request back-fills")
    parser.add_argument("--generator-cpu", type=int, default=0)
    parser.add_argument("--target-cpu", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=3.0,
                        help="before each run wait up to this many seconds for both CPUs to be idle")
    parser.add_argument("--max-foreign", type=float, default=5.0,
                        help="a pair is undisturbed when other processes used at most this %% of the "
                             "generator's CPU (3x that of the target's) in both runs; disturbed pairs are "
                             "repeated within --budget")
    parser.add_argument("--budget", type=float, default=180.0,
                        help="seconds; no extra pair starts that would end after this")
    parser.add_argument("--toggle-seconds", type=int, default=30,
                        help="length of the in-process A/B run (plugin listener on/off every 0.47 s); 0 skips it")
    parser.add_argument("--toggle-runs", type=int, default=1,
                        help="separate in-process A/B runs (each --toggle-seconds long); from 6 on the median "
                             "over runs gets a 95 %% interval")
    parser.add_argument("--dispatch", choices=("default", "python", "compiled", "alternate"), default="default",
                        help="the plugin's request dispatch in the plugin runs: its default (compiled where "
                             "built), the Python or the compiled one, or both alternated run by run (the A/B "
                             "runs and the tight loop are then summarised for each)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with logs and records")
    parser.add_argument("--listener-cost", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.listener_cost:
        print(json.dumps(listener_cost_ns()))
        return 0
    if shutil.which("taskset") is None:
        print("taskset not found (util-linux)", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    files = {
        "bare": work / "bare_locustfile.py",
        "plugin": work / "plugin_locustfile.py",
    }
    wait, default_users = WAITS[args.wait]
    if args.users is None:
        args.users = default_users
    files["bare"].write_text(LOCUSTFILE.format(plugin_import="", wait=wait, flush_timer=""))
    files["plugin"].write_text(LOCUSTFILE.format(plugin_import="import reliability.plugin  # noqa: F401", wait=wait,
                                                   flush_timer=FLUSH_TIMER))

    dispatches: list[str | None] = {"default": [None], "python": ["python"], "compiled": ["compiled"],
                                    "alternate": ["compiled", "python"]}[args.dispatch]
    if "compiled" in dispatches and not COMPILED_AVAILABLE:
        print("the compiled dispatch is not built (reliability._dispatch: pip install -e . with a C compiler)",
              file=sys.stderr)
        return 1
    default = "compiled" if COMPILED_AVAILABLE else "python"
    print(f"the plugin's request dispatch: {', '.join(d or default for d in dispatches)}")
    target_proc, host = start_target(args.target, args.target_cpu)
    target = psutil.Process(target_proc.pid)
    print(f"target {args.target} on CPU {args.target_cpu} at {host}; locust on CPU {args.generator_cpu}, "
          f"{args.users} FastHttpUsers ({wait}), {args.seconds} s per run, {args.pairs} pairs (bare, plugin, ...)"
          + (f", then a {args.toggle_seconds} s in-process A/B" if args.toggle_seconds else ""))
    started = time.monotonic()
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    toggle_runs: list[dict[str, Any]] = []
    try:
        while True:
            clean = [pair for pair in pairs if _is_clean(pair, args.max_foreign)]
            if len(pairs) >= args.pairs and len(clean) >= args.pairs:
                break
            per_pair = 2 * (args.seconds + 4 + args.quiet_wait)
            reserved = args.toggle_seconds + 6 if args.toggle_seconds else 0
            if len(pairs) >= args.pairs and time.monotonic() - started + per_pair + reserved > args.budget:
                break
            i = len(pairs)
            pair = []
            for kind in ("bare", "plugin"):
                wait_for_quiet((args.generator_cpu, args.target_cpu), args.quiet_wait)
                r = run_locust(files[kind], host, args.users, args.seconds, args.generator_cpu, args.target_cpu,
                               work, f"{kind}{i}", target, plugin=kind == "plugin",
                               dispatch=dispatches[i % len(dispatches)] if kind == "plugin" else None)
                pair.append(r)
                print(f"  pair {i + 1} {kind:6s} {r['rps']:6.0f} req/s ({r['requests']:.0f} requests, "
                      f"{r['failures']:.0f} failed)  CPU: locust {r['gen_cpu']:3.0f} %, target "
                      f"{r['target_cpu']:3.0f} %, other processes {r['foreign_gen_cpu']:3.0f} % / "
                      f"{r['foreign_target_cpu']:3.0f} %  exit {r['exit']:.0f}", flush=True)
            pairs.append((pair[0], pair[1]))
        for k in range(args.toggle_runs if args.toggle_seconds else 0):
            wait_for_quiet((args.generator_cpu, args.target_cpu), args.quiet_wait)
            dispatch = dispatches[k % len(dispatches)]
            toggled = run_locust(files["plugin"], host, args.users, args.toggle_seconds, args.generator_cpu,
                                 args.target_cpu, work, f"toggle{k}", target, plugin=True, toggle=True,
                                 dispatch=dispatch)
            toggled["dispatch"] = dispatch
            toggle_runs.append(toggled)
            if args.toggle_runs > 1:
                label = f" ({dispatch})" if len(dispatches) > 1 else ""
                print(f"  A/B run {k + 1}{label}: {toggle_summary(toggled['slices'])}", flush=True)
    finally:
        target_proc.terminate()
        target_proc.wait(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}")

    runs = [r for pair in pairs for r in pair] + toggle_runs
    cpu_b = toggle_runs[-1]["cpu_us_per_req"] if toggle_runs else 100.0
    if pairs:
        cpu_b = summarize_pairs(pairs, args.max_foreign)
    for dispatch in dispatches:
        label = f" [{dispatch} dispatch]" if len(dispatches) > 1 else ""
        out = subprocess.run([sys.executable, __file__, "--listener-cost"], capture_output=True, text=True,
                             env=dispatch_env(dispatch), check=True).stdout
        with_ns, without_ns, scheduled_ns = json.loads(out.strip().splitlines()[-1])
        added_us = (with_ns - without_ns) / 1000
        print(f"plugin request listener alone{label} (in-process, min of 7 rounds): +{added_us:.2f} us per request; "
              f"against {cpu_b:.0f} us CPU per request of Locust here that predicts a ratio of "
              f"{cpu_b / (cpu_b + added_us):.3f}")
        print(f"with every request on a schedule (mark + corrected histogram): "
              f"+{(scheduled_ns - without_ns) / 1000:.2f} us per request, the correction's own share "
              f"+{(scheduled_ns - with_ns) / 1000:.2f} us")
        mine = [r for r in toggle_runs if r["dispatch"] == dispatch]
        if len(mine) == 1:
            print(toggle_summary(mine[0]["slices"]))
        elif mine:
            figures = [f for f in (toggle_figures(r["slices"]) for r in mine) if f is not None]
            if figures:
                print(runs_summary(figures))
    shares = [r["backfilled_per_request"] for r in runs if r.get("backfilled_per_request") is not None]
    if shares and args.wait != "constant":
        print(f"back-filled samples per request in the plugin runs: {min(shares):.3f}-{max(shares):.3f}")
    target_peak = max(r["target_cpu"] for r in runs)
    gen_low = min(r["gen_cpu"] for r in runs)
    print(f"target CPU peak {target_peak:.0f} % (must stay well below 100 %), generator CPU min {gen_low:.0f} %")
    print(f"elapsed {time.monotonic() - started:.0f} s")
    if target_peak > 90:
        print("WARNING: the target's core is near saturation; the ratio is not a generator measurement")
    results = {"bare": [b for b, _ in pairs], "plugin": [p for _, p in pairs] + toggle_runs}
    bad = [r["exit"] for r in results["bare"] if r["exit"] != 0] + [
        r["exit"] for r in results["plugin"] if r["exit"] not in (0, 3, 4)
    ]
    if bad:
        print(f"WARNING: unexpected locust exit codes {bad} (run with --keep and read the logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
