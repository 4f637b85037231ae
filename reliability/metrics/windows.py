"""Per-second windows of latency histograms and counts, per endpoint, with bounded memory.

Data flow: a load generator ``record()``s each request into the window of the second it completed
in. A worker ``drain()``s closed windows into a compact payload every report; the master
``merge_payload()``s them (counts and histograms add, so the merge is exact). ``snapshot()`` turns
a time range into plain numbers for the SLA evaluator.

Memory stays bounded on long runs by rolling old windows up (``rollup()``):

* 1 s windows with per-endpoint histograms for the last ``fine_horizon_s`` (default 5 min);
* then 60 s windows with per-endpoint histograms for ``minute_horizon_s`` (default 1 h);
* then 1 h windows forever (24 per day);
* every second keeps a compact timeline row (requests, failures, users, p50/p95/p99/max) in
  typed arrays, so uptime and the timeline stay exact to the second for the whole run.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypedDict

from reliability.exceptions import MetricsError
from reliability.metrics.histogram import DEFAULT_RELATIVE_ACCURACY, HistogramPayload, LatencyHistogram

Endpoint = tuple[str, str]  # (request_type, name)

DEFAULT_COMPONENTS: Mapping[str, str] = {
    **{m: "api" for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "HTTP", "HTTPS")},
    **{t: "db" for t in ("postgres", "postgresql", "sql", "db", "mysql")},
    **{t: "cache" for t in ("redis", "cache", "memcached")},
    **{t: "ws" for t in ("ws", "wss", "websocket")},
}
MAX_ERROR_KINDS = 50  # distinct error messages kept per endpoint; more are counted as "(other)"
MAX_ERROR_TEXT = 200


def component_of(request_type: str, overrides: Mapping[str, str] | None = None) -> str:
    """Component (api, db, cache, ws or other) a request type belongs to; ``overrides`` win."""
    if overrides and request_type in overrides:
        return overrides[request_type]
    return DEFAULT_COMPONENTS.get(request_type, DEFAULT_COMPONENTS.get(request_type.upper(), "other"))


class EndpointPayload(TypedDict):
    t: str  # request type
    n: str  # name
    r: int  # requests
    f: int  # failures
    h: HistogramPayload | None


class WindowPayload(TypedDict):
    t: int  # epoch second the window starts at
    e: list[EndpointPayload]


class ErrorPayload(TypedDict):
    t: str
    n: str
    m: str  # message
    c: int


class WindowsPayload(TypedDict):
    """What a worker sends to the master each report (under ``data["reliability"]["windows"]``)."""

    v: int
    w: list[WindowPayload]
    err: list[ErrorPayload]


class _Counts:
    """Requests, failures and a latency histogram for one endpoint in one window."""

    __slots__ = ("requests", "failures", "hist")

    def __init__(self, relative_accuracy: float) -> None:
        self.requests = 0
        self.failures = 0
        self.hist = LatencyHistogram(relative_accuracy)

    def absorb(self, other: _Counts) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.hist.merge(other.hist)


class _Window:
    __slots__ = ("t", "endpoints", "users")

    def __init__(self, t: int) -> None:
        self.t = t
        self.endpoints: dict[Endpoint, _Counts] = {}
        self.users: int | None = None


@dataclass(frozen=True)
class EndpointStats:
    """Aggregated numbers for one endpoint (or component, or the total) over a time range.

    ``hist`` is owned by the snapshot: treat it as read-only.
    """

    request_type: str
    name: str
    component: str
    requests: int
    failures: int
    hist: LatencyHistogram

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def latency_ms(self, quantile: float) -> float | None:
        return self.hist.quantile(quantile)


@dataclass(frozen=True)
class SecondCounts:
    """Requests and failures completed in one 1 s window."""

    t: int
    requests: int
    failures: int
    users: int | None
    partial: bool


@dataclass(frozen=True)
class Snapshot:
    """Everything the SLA evaluator needs about a time range, as plain values."""

    start_t: int
    end_t: int  # exclusive
    total: EndpointStats
    endpoints: tuple[EndpointStats, ...]
    components: tuple[EndpointStats, ...]
    seconds: tuple[SecondCounts, ...]  # only seconds that had traffic or a user count


class _Timeline:
    """Compact per-second rows for seconds that left the fine horizon (typed arrays, ~60 B/s)."""

    def __init__(self, quantiles: tuple[float, ...]) -> None:
        self.t0: int | None = None
        self.quantiles = quantiles
        self.requests: array[int] = array("q")
        self.failures: array[int] = array("q")
        self.users: array[int] = array("q")  # -1 = unknown
        self.flags: array[int] = array("b")  # bit 0: present, bit 1: partial
        self.latency: dict[float, array[float]] = {q: array("d") for q in quantiles}

    def _index(self, t: int) -> int:
        if self.t0 is None:
            self.t0 = t
        if t < self.t0:  # late data from before the first row: grow at the front (rare)
            pad = self.t0 - t
            self.requests = array("q", bytes(8 * pad)) + self.requests
            self.failures = array("q", bytes(8 * pad)) + self.failures
            self.users = array("q", [-1] * pad) + self.users
            self.flags = array("b", bytes(pad)) + self.flags
            for q in self.quantiles:
                self.latency[q] = array("d", [math.nan] * pad) + self.latency[q]
            self.t0 = t
        i = t - self.t0
        grow = i + 1 - len(self.requests)
        if grow > 0:
            self.requests.extend([0] * grow)
            self.failures.extend([0] * grow)
            self.users.extend([-1] * grow)
            self.flags.extend([0] * grow)
            for q in self.quantiles:
                self.latency[q].extend([math.nan] * grow)
        return i

    def put(self, t: int, requests: int, failures: int, users: int | None, hist: LatencyHistogram) -> None:
        i = self._index(t)
        self.requests[i] += requests
        self.failures[i] += failures
        if users is not None:
            self.users[i] = users
        self.flags[i] |= 1
        for q in self.quantiles:
            value = hist.quantile(q)
            if value is not None and math.isnan(self.latency[q][i]):
                self.latency[q][i] = value

    def mark_partial(self, t: int) -> None:
        if self.t0 is not None and self.t0 <= t < self.t0 + len(self.flags):
            self.flags[t - self.t0] |= 2

    def rows(self, start_t: int, end_t: int) -> Iterable[tuple[int, int, int, int | None, bool, dict[float, float]]]:
        if self.t0 is None:
            return
        for i in range(max(0, start_t - self.t0), min(len(self.flags), end_t - self.t0)):
            if self.flags[i] & 1:
                users = self.users[i]
                lat = {q: self.latency[q][i] for q in self.quantiles}
                yield (self.t0 + i, self.requests[i], self.failures[i], None if users < 0 else users,
                       bool(self.flags[i] & 2), lat)

    def nbytes(self) -> int:
        return sum(a.itemsize * len(a) for a in (self.requests, self.failures, self.users, self.flags)) + sum(
            a.itemsize * len(a) for a in self.latency.values()
        )


class WindowStore:
    """Per-second, per-endpoint request windows; see the module docstring.

    Example::

        store = WindowStore(clock=fake_clock)
        store.record("GET", "/items", 12.5, failed=False)
        snap = store.snapshot()          # whole run
        snap.total.latency_ms(0.95)
    """

    def __init__(
        self,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        *,
        fine_horizon_s: int = 300,
        minute_horizon_s: int = 3600,
        timeline_quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
        components: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if fine_horizon_s < 10 or minute_horizon_s < 60:
            raise MetricsError("fine_horizon_s must be >= 10 and minute_horizon_s >= 60")
        self.relative_accuracy = relative_accuracy
        self.fine_horizon_s = fine_horizon_s
        self.minute_horizon_s = minute_horizon_s
        self.components = dict(components or {})
        self._clock = clock
        self._fine: dict[int, _Window] = {}
        self._minutes: dict[int, _Window] = {}
        self._hours: dict[int, _Window] = {}
        self._rolled_before: int | None = None  # fine windows before this second were rolled up
        self._timeline = _Timeline(tuple(sorted(set(timeline_quantiles))))
        self._partial: set[int] = set()
        self._errors: dict[Endpoint, dict[str, int]] = {}
        self._cur_t = -1
        self._cur: _Window | None = None

    # -- recording (load generators) ---------------------------------------------------------------

    def record(self, request_type: str, name: str, latency_ms: float | None, failed: bool,
               error: str | None = None) -> None:
        """Count one completed request. ``latency_ms=None`` counts it without a latency sample.

        An invalid latency (negative, NaN) raises MetricsError before anything is counted."""
        t = int(self._clock())
        if t != self._cur_t or self._cur is None:
            self._cur = self._window_for(t)
            self._cur_t = t
        counts = self._cur.endpoints.get((request_type, name))
        if counts is None:
            counts = self._cur.endpoints[(request_type, name)] = _Counts(self.relative_accuracy)
        if latency_ms is not None:
            counts.hist.record(latency_ms)  # first: a rejected latency leaves the counts untouched
        counts.requests += 1
        if failed:
            counts.failures += 1
            self._count_error((request_type, name), error or "failed")

    def _count_error(self, endpoint: Endpoint, message: str, n: int = 1) -> None:
        kinds = self._errors.setdefault(endpoint, {})
        text = message[:MAX_ERROR_TEXT]
        if text not in kinds and len(kinds) >= MAX_ERROR_KINDS:
            text = "(other)"
        kinds[text] = kinds.get(text, 0) + n

    def _window_for(self, t: int) -> _Window:
        if self._rolled_before is not None and t < self._rolled_before:
            level = self._minutes if t >= self._rolled_before - self.minute_horizon_s else self._hours
            span = 60 if level is self._minutes else 3600
            start = t - t % span
            window = level.get(start)
            if window is None:
                window = level[start] = _Window(start)
            return window
        window = self._fine.get(t)
        if window is None:
            window = self._fine[t] = _Window(t)
        return window

    def note_users(self, t: int, users: int) -> None:
        """Remember how many users ran during second ``t`` (master or local runner)."""
        if self._rolled_before is None or t >= self._rolled_before:
            self._window_for(t).users = users

    def mark_partial(self, start_t: int, end_t: int) -> None:
        """Flag seconds ``[start_t, end_t)`` as missing some generator's data."""
        for t in range(start_t, end_t):
            self._partial.add(t)
            self._timeline.mark_partial(t)

    # -- worker -> master --------------------------------------------------------------------------

    def drain(self, final: bool = False) -> WindowsPayload:
        """Remove and return closed windows (all windows when ``final``), plus new error counts."""
        now_t = int(self._clock())
        out: list[WindowPayload] = []
        for t in sorted(self._fine):
            if t >= now_t and not final:
                continue
            window = self._fine.pop(t)
            out.append({"t": t, "e": [_endpoint_payload(ep, c) for ep, c in window.endpoints.items()]})
        self._cur = None
        self._cur_t = -1
        errors: list[ErrorPayload] = []
        for (rtype, name), kinds in self._errors.items():
            for message, count in kinds.items():
                errors.append({"t": rtype, "n": name, "m": message, "c": count})
        self._errors = {}
        return {"v": 1, "w": out, "err": errors}

    def merge_payload(self, payload: WindowsPayload) -> int:
        """Add a worker's drained windows; returns the number of requests merged."""
        try:
            if payload["v"] != 1:
                raise MetricsError(f"unsupported window payload version {payload['v']!r}")
            merged = 0
            for wp in payload["w"]:
                window = self._window_for(int(wp["t"]))
                for ep in wp["e"]:
                    key = (str(ep["t"]), str(ep["n"]))
                    counts = window.endpoints.get(key)
                    if counts is None:
                        counts = window.endpoints[key] = _Counts(self.relative_accuracy)
                    counts.requests += int(ep["r"])
                    counts.failures += int(ep["f"])
                    if ep["h"] is not None:
                        counts.hist.merge(LatencyHistogram.from_payload(ep["h"]))
                    merged += int(ep["r"])
                if window is not self._fine.get(window.t) and self._rolled_before is not None:
                    # late data for a second already summarised: keep its counts exact
                    t = int(wp["t"])
                    reqs = sum(int(ep["r"]) for ep in wp["e"])
                    fails = sum(int(ep["f"]) for ep in wp["e"])
                    self._timeline.put(t, reqs, fails, None, LatencyHistogram(self.relative_accuracy))
            for err in payload.get("err", []):
                self._count_error((str(err["t"]), str(err["n"])), str(err["m"]), int(err["c"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricsError(f"malformed window payload: {exc!r}") from exc
        return merged

    # -- memory bound ------------------------------------------------------------------------------

    def rollup(self, now: float | None = None) -> None:
        """Fold windows older than the fine / minute horizons into coarser ones."""
        now_t = int(self._clock() if now is None else now)
        cutoff = now_t - self.fine_horizon_s
        for t in sorted(t for t in self._fine if t < cutoff):
            window = self._fine.pop(t)
            total = _Counts(self.relative_accuracy)
            for counts in window.endpoints.values():
                total.absorb(counts)
            self._timeline.put(t, total.requests, total.failures, window.users, total.hist)
            if t in self._partial:
                self._timeline.mark_partial(t)
            _absorb_into(self._minutes, t - t % 60, window, self.relative_accuracy)
        if self._rolled_before is None or cutoff > self._rolled_before:
            self._rolled_before = cutoff
            if self._cur is not None and self._cur_t < cutoff:
                self._cur = None
                self._cur_t = -1
        minute_cutoff = cutoff - self.minute_horizon_s
        for t in sorted(t for t in self._minutes if t < minute_cutoff):
            _absorb_into(self._hours, t - t % 3600, self._minutes.pop(t), self.relative_accuracy)

    # -- reading -----------------------------------------------------------------------------------

    def snapshot(self, start_t: int | None = None, end_t: int | None = None) -> Snapshot:
        """Aggregate ``[start_t, end_t)`` (default: everything). Coarse windows count when they
        start inside the range, so ranges reaching into rolled-up time are rounded to their span."""
        lo = -(2**62) if start_t is None else start_t
        hi = 2**62 if end_t is None else end_t
        per_endpoint: dict[Endpoint, _Counts] = {}
        seconds: dict[int, SecondCounts] = {}
        for level in (self._hours, self._minutes, self._fine):
            for t, window in level.items():
                if not lo <= t < hi:
                    continue
                reqs = fails = 0
                for ep, counts in window.endpoints.items():
                    agg = per_endpoint.get(ep)
                    if agg is None:
                        agg = per_endpoint[ep] = _Counts(self.relative_accuracy)
                    agg.absorb(counts)
                    reqs += counts.requests
                    fails += counts.failures
                if level is self._fine and (reqs or window.users is not None):
                    seconds[t] = SecondCounts(t, reqs, fails, window.users, t in self._partial)
        for t, reqs, fails, users, partial, _lat in self._timeline.rows(lo, hi):
            seconds[t] = SecondCounts(t, reqs, fails, users, partial or t in self._partial)
        endpoints = tuple(
            EndpointStats(rt, name, component_of(rt, self.components), c.requests, c.failures, c.hist)
            for (rt, name), c in sorted(per_endpoint.items())
        )
        by_component: dict[str, _Counts] = {}
        total = _Counts(self.relative_accuracy)
        for stats, counts in zip(endpoints, (per_endpoint[k] for k in sorted(per_endpoint)), strict=True):
            comp = by_component.get(stats.component)
            if comp is None:
                comp = by_component[stats.component] = _Counts(self.relative_accuracy)
            comp.absorb(counts)
            total.absorb(counts)
        components = tuple(
            EndpointStats("", name, name, c.requests, c.failures, c.hist) for name, c in sorted(by_component.items())
        )
        ordered = tuple(seconds[t] for t in sorted(seconds))
        first = ordered[0].t if ordered else (lo if start_t is not None else 0)
        last = ordered[-1].t + 1 if ordered else (hi if end_t is not None else 0)
        return Snapshot(
            start_t=first if start_t is None else start_t,
            end_t=last if end_t is None else end_t,
            total=EndpointStats("", "Aggregated", "all", total.requests, total.failures, total.hist),
            endpoints=endpoints,
            components=components,
            seconds=ordered,
        )

    def timeline(self, quantile: float = 0.95) -> list[tuple[int, int | None, int, int, float | None, bool]]:
        """Per-second rows ``(t, users, requests, failures, latency_ms at quantile, partial)``."""
        rows: dict[int, tuple[int, int | None, int, int, float | None, bool]] = {}
        for t, reqs, fails, users, partial, lat in self._timeline.rows(-(2**62), 2**62):
            value = lat.get(quantile)
            rows[t] = (t, users, reqs, fails, None if value is None or math.isnan(value) else value, partial)
        for t, window in self._fine.items():
            total = _Counts(self.relative_accuracy)
            for counts in window.endpoints.values():
                total.absorb(counts)
            if not total.requests and window.users is None:
                continue
            rows[t] = (t, window.users, total.requests, total.failures, total.hist.quantile(quantile),
                       t in self._partial)
        return [rows[t] for t in sorted(rows)]

    def errors(self) -> list[tuple[str, str, str, int]]:
        """``(request_type, name, message, count)`` for every error seen, most frequent first."""
        out = [(rt, n, m, c) for (rt, n), kinds in self._errors.items() for m, c in kinds.items()]
        return sorted(out, key=lambda e: (-e[3], e[0], e[1], e[2]))

    def window_count(self) -> tuple[int, int, int]:
        """Windows held at each level (fine, minute, hour): for memory tests."""
        return len(self._fine), len(self._minutes), len(self._hours)

    def timeline_nbytes(self) -> int:
        return self._timeline.nbytes()


def _endpoint_payload(endpoint: Endpoint, counts: _Counts) -> EndpointPayload:
    return {
        "t": endpoint[0],
        "n": endpoint[1],
        "r": counts.requests,
        "f": counts.failures,
        "h": counts.hist.to_payload() if counts.hist.count else None,
    }


def _absorb_into(level: dict[int, _Window], start: int, window: _Window, accuracy: float) -> None:
    target = level.get(start)
    if target is None:
        target = level[start] = _Window(start)
    for ep, counts in window.endpoints.items():
        mine = target.endpoints.get(ep)
        if mine is None:
            target.endpoints[ep] = counts  # the source window is discarded: no copy needed
        else:
            mine.absorb(counts)
