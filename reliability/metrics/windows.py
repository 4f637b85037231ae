"""Per-second windows of latency histograms and counts, per endpoint, with bounded memory.

Data flow: a load generator ``record_request()``s each request into the window of the second it
was *sent* in, or was scheduled to be sent in when a scheduler said so (the latency then counts from
that intended start: see ``reliability.pacing``); ``record()`` without a send time uses the second it
completed in. A worker ``drain()``s closed windows into a compact payload every report; the master
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

import logging
import math
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from reliability.exceptions import MetricsError
from reliability.metrics.histogram import (
    DEFAULT_RELATIVE_ACCURACY,
    HistogramPayload,
    LatencyHistogram,
    array_keys,
    key_multiplier,
    record_batches,
)

logger = logging.getLogger(__name__)

Endpoint = tuple[str, str]  # (request_type, name)

DEFAULT_COMPONENTS: Mapping[str, str] = {
    **{m: "api" for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "HTTP", "HTTPS")},
    **{t: "db" for t in ("postgres", "postgresql", "sql", "db", "mysql")},
    **{t: "cache" for t in ("redis", "cache", "memcached")},
    **{t: "ws" for t in ("ws", "wss", "websocket")},
}
_INF = math.inf
# a back-filled series this long is counted at once, not queued with the flush's batch
SERIES_FROM = 256
FEW_BACKFILLED = 16  # up to this many back-filled samples per request are queued one by one
FLUSH_EVERY = 256  # requests queued on a load generator before they are folded into windows
# successes without a schedule: queued up to this many (cheaper per request in numpy the more there
# are), and folded in numpy from VECTOR_FLUSH_FROM on (below, numpy's per-call cost is more than
# the Python loop it saves)
QUICK_FLUSH_EVERY = 4096
QUICK_QUEUE_LIMIT = 2 * QUICK_FLUSH_EVERY  # length of WindowStore.quick that asks for a flush
# and of WindowStore.paced (seven fields per request): as many requests as the quick queue, since
# the paced flush's numpy work is per flush too (256 a flush cost 2.4-2.9 us per request in place)
PACED_QUEUE_LIMIT = 7 * QUICK_FLUSH_EVERY
VECTOR_FLUSH_FROM = 64
MAX_CODES = 4096  # request types or names coded for the vectorised flush before the codes restart
MAX_ERROR_KINDS = 50  # distinct error messages kept per endpoint; more are counted as "(other)"
MAX_ERROR_TEXT = 200


def component_of(request_type: str, overrides: Mapping[str, str] | None = None) -> str:
    """Component (api, db, cache, ws or other) a request type belongs to; ``overrides`` win."""
    if overrides and request_type in overrides:
        return overrides[request_type]
    return DEFAULT_COMPONENTS.get(request_type, DEFAULT_COMPONENTS.get(request_type.upper(), "other"))


# a queued request: type, name, latency ms, failed, error, sent s, intended s, interval ms, lag-from s
_Pending = tuple[str, str, float | None, bool, str | None, float, float | None, float | None, float | None]

class _EndpointPayloadBase(TypedDict):
    t: str  # request type
    n: str  # name
    r: int  # requests
    f: int  # failures
    h: HistogramPayload | None


class EndpointPayload(_EndpointPayloadBase, total=False):
    ch: HistogramPayload  # latency from the intended start, back-filled samples included
    b: int  # back-filled samples (requests a stall prevented)


class _WindowPayloadBase(TypedDict):
    t: int  # epoch second the window starts at
    e: list[EndpointPayload]


class WindowPayload(_WindowPayloadBase, total=False):
    s: list[int]  # stall counters [held, spill_out, spill_in]; see _Window


class ErrorPayload(TypedDict):
    t: str
    n: str
    m: str  # message
    c: int


class _WindowsPayloadBase(TypedDict):
    v: int
    w: list[WindowPayload]
    err: list[ErrorPayload]


class WindowsPayload(_WindowsPayloadBase, total=False):
    """What a worker sends to the master each report (under ``data["reliability"]["windows"]``)."""

    lag: HistogramPayload  # start lags (ms) of scheduled requests since the last report
    hs: int  # scheduled tasks still in flight when the users stopped, since the last report


class _Counts:
    """Requests, failures and latency histograms for one endpoint in one window.

    ``hist`` holds the measured latency of every request. ``chist`` exists only once a request of
    this endpoint and window had a known schedule: it then holds the latency from the intended start
    (for requests without a schedule the measured one) plus the back-filled samples, so ``chist is
    None`` means "corrected equals measured here" and unscheduled runs pay nothing for it."""

    __slots__ = ("requests", "failures", "hist", "chist", "backfilled")

    def __init__(self, relative_accuracy: float) -> None:
        self.requests = 0
        self.failures = 0
        self.hist = LatencyHistogram(relative_accuracy)
        self.chist: LatencyHistogram | None = None
        self.backfilled = 0

    def corrected(self) -> LatencyHistogram:
        """The corrected histogram, created from the measured one on first use."""
        if self.chist is None:
            self.chist = self.hist.copy()
        return self.chist

    def absorb(self, other: _Counts) -> None:
        if other.chist is not None or self.chist is not None:
            self.corrected().merge(other.chist if other.chist is not None else other.hist)
        self.requests += other.requests
        self.failures += other.failures
        self.hist.merge(other.hist)
        self.backfilled += other.backfilled


class _Window:
    """One second (or a rolled-up span). Stall counters, kept only for requests that did not
    complete in the second they are counted in (a rare path):

    * ``held``: requests in flight for the whole of this second (sent before it, done after it);
    * ``spill_out``: requests counted here that completed in a later second;
    * ``spill_in``: requests counted in another second that completed in this one.

    So the requests that *completed* in this second are ``requests - spill_out + spill_in``."""

    __slots__ = ("t", "endpoints", "users", "held", "spill_out", "spill_in")

    def __init__(self, t: int) -> None:
        self.t = t
        self.endpoints: dict[Endpoint, _Counts] = {}
        self.users: int | None = None
        self.held = 0
        self.spill_out = 0
        self.spill_in = 0

    def absorb_stalls(self, held: int, spill_out: int, spill_in: int) -> None:
        self.held += held
        self.spill_out += spill_out
        self.spill_in += spill_in


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
    corrected: LatencyHistogram | None = None  # None: no request here had a known schedule
    backfilled: int = 0

    def with_basis(self, basis: str) -> EndpointStats:
        """These stats with ``hist`` = the latency basis graded (``corrected`` when it exists)."""
        if basis != "corrected" or self.corrected is None:
            return self
        return replace(self, hist=self.corrected)

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def latency_ms(self, quantile: float) -> float | None:
        return self.hist.quantile(quantile)


@dataclass(frozen=True)
class SecondCounts:
    """One 1 s window: the requests sent (or scheduled) in it and what became of them.

    ``latency_ms`` / ``corrected_ms`` are the total latency at the store's ``down_quantile`` (the
    SLA percentile), measured and from the intended start; ``held`` counts requests in flight for
    the whole second and ``done`` the requests that completed in it (None: unknown)."""

    t: int
    requests: int
    failures: int
    users: int | None
    partial: bool
    latency_ms: float | None = None
    corrected_ms: float | None = None
    held: int = 0
    done: int | None = None
    backfilled: int = 0
    covered: float = 1.0  # share of the second inside the run (less in the seconds it started and stopped in)


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
    """Compact per-second rows for seconds that left the fine horizon (typed arrays, ~100 B/s)."""

    _INT_FIELDS = ("requests", "failures", "held", "done", "backfilled")

    def __init__(self, quantiles: tuple[float, ...]) -> None:
        self.t0: int | None = None
        self.quantiles = quantiles
        self.ints: dict[str, array[int]] = {f: array("q") for f in self._INT_FIELDS}
        self.users: array[int] = array("q")  # -1 = unknown
        self.flags: array[int] = array("b")  # bit 0: present, bit 1: partial
        self.latency: dict[float, array[float]] = {q: array("d") for q in quantiles}
        self.corrected: dict[float, array[float]] = {q: array("d") for q in quantiles}  # nan: = measured

    def _index(self, t: int) -> int:
        if self.t0 is None:
            self.t0 = t
        if t < self.t0:  # late data from before the first row: grow at the front (rare)
            pad = self.t0 - t
            for f in self._INT_FIELDS:
                self.ints[f] = array("q", bytes(8 * pad)) + self.ints[f]
            self.users = array("q", [-1] * pad) + self.users
            self.flags = array("b", bytes(pad)) + self.flags
            for series in (self.latency, self.corrected):
                for q in self.quantiles:
                    series[q] = array("d", [math.nan] * pad) + series[q]
            self.t0 = t
        i = t - self.t0
        grow = i + 1 - len(self.flags)
        if grow > 0:
            for f in self._INT_FIELDS:
                self.ints[f].extend([0] * grow)
            self.users.extend([-1] * grow)
            self.flags.extend([0] * grow)
            for series in (self.latency, self.corrected):
                for q in self.quantiles:
                    series[q].extend([math.nan] * grow)
        return i

    def put(self, t: int, total: _Counts, users: int | None, stalls: tuple[int, int, int] = (0, 0, 0)) -> None:
        i = self._index(t)
        held, spill_out, spill_in = stalls
        ints = self.ints
        ints["requests"][i] += total.requests
        ints["failures"][i] += total.failures
        ints["held"][i] += held
        ints["done"][i] += total.requests - spill_out + spill_in
        ints["backfilled"][i] += total.backfilled
        if users is not None:
            self.users[i] = users
        self.flags[i] |= 1
        for q in self.quantiles:
            value = total.hist.quantile(q)
            if value is not None and math.isnan(self.latency[q][i]):
                self.latency[q][i] = value
            if total.chist is not None and math.isnan(self.corrected[q][i]):
                cvalue = total.chist.quantile(q)
                if cvalue is not None:
                    self.corrected[q][i] = cvalue

    def mark_partial(self, t: int) -> None:
        if self.t0 is not None and self.t0 <= t < self.t0 + len(self.flags):
            self.flags[t - self.t0] |= 2

    def rows(self, start_t: int, end_t: int) -> Iterable[tuple[int, dict[str, int], int | None, bool,
                                                             dict[float, float], dict[float, float]]]:
        if self.t0 is None:
            return
        for i in range(max(0, start_t - self.t0), min(len(self.flags), end_t - self.t0)):
            if self.flags[i] & 1:
                users = self.users[i]
                yield (self.t0 + i, {f: self.ints[f][i] for f in self._INT_FIELDS},
                       None if users < 0 else users, bool(self.flags[i] & 2),
                       {q: self.latency[q][i] for q in self.quantiles},
                       {q: self.corrected[q][i] for q in self.quantiles})

    def nbytes(self) -> int:
        ints: list[array[int]] = [*self.ints.values(), self.users, self.flags]
        floats: list[array[float]] = [*self.latency.values(), *self.corrected.values()]
        return sum(a.itemsize * len(a) for a in ints) + sum(a.itemsize * len(a) for a in floats)


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
        down_quantile: float = 0.95,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if fine_horizon_s < 10 or minute_horizon_s < 60:
            raise MetricsError("fine_horizon_s must be >= 10 and minute_horizon_s >= 60")
        self.relative_accuracy = relative_accuracy
        self.fine_horizon_s = fine_horizon_s
        self.minute_horizon_s = minute_horizon_s
        self.components = dict(components or {})
        self.down_quantile = down_quantile
        self._clock = clock
        self._fine: dict[int, _Window] = {}
        self._minutes: dict[int, _Window] = {}
        self._hours: dict[int, _Window] = {}
        self._rolled_before: int | None = None  # fine windows before this second were rolled up
        self._timeline = _Timeline(tuple(sorted({*timeline_quantiles, down_quantile})))
        self._partial: set[int] = set()
        self._span: tuple[float | None, float | None] = (None, None)
        self._errors: dict[Endpoint, dict[str, int]] = {}
        self._cur_t = -1
        self._cur: _Window | None = None
        # how late scheduled requests started after their intended start (ms): the generator's lag
        self.lag = LatencyHistogram(relative_accuracy)
        self._lag_pending = LatencyHistogram(relative_accuracy)  # not yet drained (workers)
        self.held_at_stop = 0  # scheduled tasks whose first request was still in flight at the stop
        self._held_at_stop_pending = 0  # not yet drained (workers)
        # Queued requests (see record_request). The common kind, a success without a schedule, is
        # queued without an object of its own: its request type and name (objects already alive)
        # side by side in ``quick``, its latency and send time as doubles in ``quick_ms`` (so
        # Locust's float objects are not kept alive until the flush); a scheduled success's seven
        # fields side by side in ``paced``. Failures and requests without a latency are tuples.
        # The plugin's request listener appends to the three directly (the latencies in
        # ``quick_ms`` unchecked: the flush checks them); a flush replaces
        # ``quick_ms`` and ``paced`` and empties ``quick`` in place.
        self.quick: list[object] = []  # request type, name, request type, ...
        self.quick_ms: array[float] = array("d")  # latency ms, sent s, latency ms, ...
        self.paced: list[object] = []  # ... latency ms, sent s, intended s, interval ms, lag-from s
        self._pending: list[_Pending] = []
        # the listener queues latencies unchecked: the flush sets invalid ones aside (and logs one)
        self._invalid_latency_logged = False
        # small integer codes of the request types and names seen by the vectorised flush
        self._type_codes: dict[str, int] = {}
        self._name_codes: dict[str, int] = {}

    # -- recording (load generators) ---------------------------------------------------------------

    def record(self, request_type: str, name: str, latency_ms: float | None, failed: bool,
               error: str | None = None) -> None:
        """Count one completed request in the second it completed in (the clock's now), without a
        schedule. ``latency_ms=None`` counts it without a latency sample.

        An invalid latency (negative, infinite, NaN) raises MetricsError before anything is counted."""
        t = int(self._clock())
        if t != self._cur_t or self._cur is None:
            self._cur = self._window_for(t)
            self._cur_t = t
        counts = self._counts_in(self._cur, request_type, name)
        if latency_ms is not None:
            counts.hist.record(latency_ms)  # first: a rejected latency leaves the counts untouched
            if counts.chist is not None:
                counts.chist.record(latency_ms)
        counts.requests += 1
        if failed:
            counts.failures += 1
            self._count_error((request_type, name), error or "failed")

    def record_request(self, request_type: str, name: str, latency_ms: float | None, failed: bool,
                       error: str | None, sent_s: float, intended_s: float | None = None,
                       interval_ms: float | None = None, lag_from_s: float | None = None) -> None:
        """Count one completed request in the second it was sent in (``sent_s``, epoch s).

        With ``intended_s`` (the start a scheduler intended, epoch s) the request counts in that
        second instead, and its corrected latency is measured from there: ``latency_ms`` plus the
        start lag. With ``interval_ms`` (the user's schedule interval) a corrected latency longer
        than the interval back-fills the requests the stall prevented, HdrHistogram's
        expected-interval method: ``V - I``, ``V - 2I``, ... while >= ``I``, each in the second it
        was due. The schedule-lag histogram (the generator's own start lag) counts from
        ``lag_from_s`` when given, else from ``intended_s``.

        This runs once per request on a load generator, between Locust's own work that leaves the
        CPU caches cold: it only checks the latency and queues the request; every read (snapshot,
        drain, timeline ...) and every ``FLUSH_EVERY`` requests fold the queue in one warm loop.
        An invalid latency (negative, infinite, NaN) raises MetricsError before anything is counted."""
        if not (latency_ms is None or 0.0 <= latency_ms < _INF):
            raise MetricsError(f"latency must be a finite, non-negative number of ms, got {latency_ms!r}")
        if intended_s is None and interval_ms is None and not failed and latency_ms is not None:
            # no allocation here: an object made per request and kept until the flush would
            # make Python's garbage collector run more often, and its cost shows in place
            # (``bench/overhead.py`` times the collector), not in a tight loop
            # (reliability.plugin's listener does the same inline, without this call). The two
            # numbers go into an array of doubles: a list would keep their float objects alive
            # until the flush, which costs more in place than the array's dearer append
            values = self.quick_ms
            try:
                values.append(latency_ms)
                values.append(sent_s)
            except (TypeError, OverflowError):  # not a double: queued as a tuple below
                del values[len(self.quick):]
            else:
                quick = self.quick
                quick.append(request_type)
                quick.append(name)
                if len(quick) >= QUICK_QUEUE_LIMIT:
                    self.flush()
                return
        if intended_s is not None and not failed and latency_ms is not None:
            # a scheduled success (a paced user, an arrival): as above, seven fields
            paced = self.paced
            paced.append(request_type)
            paced.append(name)
            paced.append(latency_ms)
            paced.append(sent_s)
            paced.append(intended_s)
            paced.append(interval_ms)
            paced.append(lag_from_s)
            if len(paced) >= PACED_QUEUE_LIMIT:
                self.flush()
            return
        pending = self._pending
        pending.append((request_type, name, latency_ms, failed, error, sent_s, intended_s, interval_ms, lag_from_s))
        if len(pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Fold the queued requests into their windows (see :meth:`record_request`)."""
        batches: dict[int, tuple[LatencyHistogram, list[float]]] = {}  # id(hist) -> (hist, its new values)
        if self.quick:
            self._flush_quick(batches)
        lags: list[float] = []
        if self._pending:
            pending, self._pending = self._pending, []
            self._fold(pending, batches, lags)
        if self.paced:
            paced, self.paced = self.paced, []
            rest = None
            if len(paced) >= 7 * VECTOR_FLUSH_FROM:
                _apply(batches)  # a corrected histogram made below copies the measured one: complete it first
                rest = self._flush_paced_arrays(paced)
            if rest is not None:
                self._fold(rest, batches, lags)
            else:
                self._fold(((request_type, name, latency_ms, False, None, sent_s, intended_s, interval_ms, lag_from_s)
                           for request_type, name, latency_ms, sent_s, intended_s, interval_ms, lag_from_s
                           in zip(paced[::7], paced[1::7], paced[2::7], paced[3::7], paced[4::7], paced[5::7],
                                  paced[6::7], strict=True)), batches, lags)
        _apply(batches)
        self._lag_pending.record_many(lags)

    def _fold(self, pending: Iterable[_Pending], batches: dict[int, tuple[LatencyHistogram, list[float]]],
              lags: list[float]) -> None:
        """:meth:`flush`'s general loop: every kind of request (failures, schedules, back-fill)."""
        window: _Window | None = None
        cur_t = -1
        # The previous request's endpoint, its counts and value lists: consecutive requests often
        # share endpoint and second, and then skip both lookups. A new window forgets them.
        last_type = last_name = None
        counts: _Counts  # set with the first request: last_name is None
        values: list[float]
        cvalues: list[float] | None
        for request_type, name, latency_ms, failed, error, sent_s, intended_s, interval_ms, lag_from_s in pending:
            t = int(sent_s) if intended_s is None else int(intended_s)
            if t != cur_t or window is None:
                window, cur_t = self._window_for(t), t
                last_name = None
            if name is not last_name or request_type is not last_type:
                counts, values, cvalues = self._batch_for(window, request_type, name, batches)
                last_type, last_name = request_type, name
            counts.requests += 1
            if failed:
                counts.failures += 1
                self._count_error((request_type, name), error or "failed")
            if intended_s is not None:
                lag_ms = (sent_s - (intended_s if lag_from_s is None else lag_from_s)) * 1000.0
                lags.append(lag_ms if lag_ms > 0.0 else 0.0)
            if latency_ms is None:
                continue
            corrected_ms = latency_ms
            if intended_s is None and interval_ms is None:  # no schedule: corrected is measured
                values.append(latency_ms)
                if cvalues is not None:
                    cvalues.append(latency_ms)
            else:
                if intended_s is not None and sent_s > intended_s:
                    corrected_ms = latency_ms + (sent_s - intended_s) * 1000.0
                if cvalues is None:
                    cvalues = _batch(batches, _corrected_in(counts, batches))
                values.append(latency_ms)
                cvalues.append(corrected_ms)
            done_t = int(sent_s + latency_ms / 1000.0)
            if done_t != t:  # rare: the request did not complete in the second it counts in
                self._spill(t, int(sent_s), done_t)
                window, cur_t = None, -1
            if interval_ms is not None and corrected_ms >= 2 * interval_ms:
                self._backfill(request_type, name, intended_s if intended_s is not None else sent_s,
                               corrected_ms, interval_ms, batches)
                window, cur_t = None, -1

    def _batch_for(self, window: _Window, request_type: str, name: str,
                   batches: dict[int, tuple[LatencyHistogram, list[float]]]
                   ) -> tuple[_Counts, list[float], list[float] | None]:
        """An endpoint's counts in ``window`` (made on first use) and the lists a flush adds to its
        measured and, when it has one, corrected histogram."""
        counts = self._counts_in(window, request_type, name)
        return counts, _batch(batches, counts.hist), None if counts.chist is None else _batch(batches, counts.chist)

    def _flush_quick(self, batches: dict[int, tuple[LatencyHistogram, list[float]]]) -> None:
        """The successes without a schedule, added straight to their histograms. Their order relative
        to the other queues does not matter: a corrected histogram made later in the flush copies
        the measured one with them, one that exists gets them too. A long queue goes through
        :meth:`_flush_quick_arrays` (numpy), a short one through the plain loop."""
        quick = self.quick[:]
        del self.quick[:]
        numbers, self.quick_ms = self.quick_ms, array("d")
        latency = np.frombuffer(numbers, dtype=np.float64)[0::2]
        if not ((latency >= 0.0) & (latency < _INF)).all():
            quick, numbers = self._set_aside_invalid(quick, numbers)
        if len(quick) >= 2 * VECTOR_FLUSH_FROM and self._flush_quick_arrays(quick, numbers):  # type: ignore[arg-type]
            return
        window: _Window | None = None
        cur_t = -1
        last_type = last_name = None
        counts: _Counts  # set with the first request: last_name is None
        values: list[float]
        cvalues: list[float] | None
        request_type: str
        name: str
        latency_ms: float
        sent_s: float
        for request_type, name, latency_ms, sent_s in zip(quick[::2], quick[1::2], numbers[::2],  # type: ignore[assignment]
                                                           numbers[1::2], strict=True):
            t = int(sent_s)
            if t != cur_t or window is None:
                window, cur_t = self._window_for(t), t
                last_name = None
            if name is not last_name or request_type is not last_type:
                counts, values, cvalues = self._batch_for(window, request_type, name, batches)
                last_type, last_name = request_type, name
            counts.requests += 1
            values.append(latency_ms)
            if cvalues is not None:
                cvalues.append(latency_ms)
            done_t = int(sent_s + latency_ms / 1000.0)
            if done_t != t:  # rare: the request did not complete in the second it counts in
                self._spill(t, t, done_t)
                window, cur_t = None, -1

    def _set_aside_invalid(self, quick: list[object], numbers: array[float]) -> tuple[list[object], array[float]]:
        """The queued successes whose latency is no valid number of ms (negative, infinite, NaN: a
        custom user's) go to the general queue without a latency, each counted in its send second;
        the first is logged once per store. Returns the valid rest."""
        keep_names: list[object] = []
        keep = array("d")
        for i in range(0, len(numbers), 2):
            latency_ms, sent_s = numbers[i], numbers[i + 1]
            if 0.0 <= latency_ms < _INF:
                keep_names += quick[i:i + 2]
                keep += numbers[i:i + 2]
                continue
            self._pending.append((quick[i], quick[i + 1], None, False, None, sent_s, None, None, None))  # type: ignore[arg-type]
            self.warn_invalid_latency(latency_ms, quick[i], quick[i + 1])
        return keep_names, keep

    def warn_invalid_latency(self, value: object, request_type: object, name: object) -> None:
        """Log a latency that was ignored (not a valid number of ms), once per store."""
        if not self._invalid_latency_logged:
            logger.warning("ignoring invalid response_time %r for %s %s", value, request_type, name)
            self._invalid_latency_logged = True

    def _flush_quick_arrays(self, quick: list[str], values: array[float]) -> bool:
        """:meth:`_flush_quick`'s loop in numpy: the requests are grouped by (second, endpoint) with one
        sort, and each group's buckets are counted with one ``bincount``, so the Python work is per
        group, not per request. The same windows as the loop (a test checks it). Returns False,
        having changed nothing, for send times it cannot group (not finite, or too far apart)."""
        pairs = np.frombuffer(values, dtype=np.float64)
        latency = pairs[0::2]
        sent = pairs[1::2]
        sent_t = np.trunc(sent)  # int(sent_s)
        grouped = self._grouped(quick[0::2], quick[1::2], sent_t)
        if grouped is None:
            return False
        done_t = np.trunc(sent + latency / 1000.0)  # int(sent_s + latency_ms / 1000.0)
        spilled = np.flatnonzero(done_t != sent_t).tolist()
        order, starts, groups = grouped
        if order is not None:
            latency = latency[order]
        self._add_grouped(latency, None, starts, groups)
        for i in spilled:  # rare: completed in a later second than sent
            t = int(sent_t[i])
            self._spill(t, t, int(done_t[i]))
        self._cur = None
        self._cur_t = -1
        return True

    def _flush_paced_arrays(self, paced: list[object]) -> list[_Pending] | None:
        """Scheduled successes (seven fields each) in numpy, as :meth:`_fold` counts them: in the
        intended second, the measured latency in the measured histogram, the latency from the
        intended start in the corrected one, the start lag in the schedule-lag histogram. Those
        that back-fill (a corrected latency of two intervals or more) are returned for
        :meth:`_fold`, as are all when the fields cannot be grouped (None: nothing changed)."""
        try:
            latency = np.array(paced[2::7], dtype=np.float64)
            sent = np.array(paced[3::7], dtype=np.float64)
            intended = np.array(paced[4::7], dtype=np.float64)
            interval = _floats_or_nan(paced[5::7])
            lag_from = _floats_or_nan(paced[6::7])
        except (OverflowError, TypeError, ValueError):
            return None
        if not np.isfinite(sent).all():
            return None
        corrected = np.where(sent > intended, latency + (sent - intended) * 1000.0, latency)
        refill = np.flatnonzero(corrected >= 2 * interval)  # NaN interval (none): never
        rest: list[_Pending] = []
        if len(refill):
            keep = np.ones(len(latency), dtype=bool)
            keep[refill] = False
            for i in refill.tolist():
                at = 7 * i
                rest.append((paced[at], paced[at + 1], paced[at + 2], False, None, paced[at + 3],  # type: ignore[arg-type]
                             paced[at + 4], paced[at + 5], paced[at + 6]))
            latency, sent, intended, corrected, lag_from = (a[keep] for a in (latency, sent, intended, corrected,
                                                                              lag_from))
            types = [x for x, k in zip(paced[0::7], keep.tolist(), strict=True) if k]
            names = [x for x, k in zip(paced[1::7], keep.tolist(), strict=True) if k]
        else:
            types, names = paced[0::7], paced[1::7]
        if not len(latency):
            return rest
        intended_t = np.trunc(intended)  # int(intended_s)
        grouped = self._grouped(types, names, intended_t)  # type: ignore[arg-type]
        if grouped is None:
            return None
        lag_ms = (sent - np.where(np.isnan(lag_from), intended, lag_from)) * 1000.0
        self._lag_pending.record_array(np.maximum(lag_ms, 0.0))
        done_t = np.trunc(sent + latency / 1000.0)
        spilled = np.flatnonzero(done_t != intended_t).tolist()
        sent_t = np.trunc(sent)
        order, starts, groups = grouped
        if order is not None:
            latency, corrected = latency[order], corrected[order]
        self._add_grouped(latency, corrected, starts, groups)
        for i in spilled:
            self._spill(int(intended_t[i]), int(sent_t[i]), int(done_t[i]))
        self._cur = None
        self._cur_t = -1
        return rest

    def _grouped(self, types: list[str], names: list[str], second: npt.NDArray[np.float64]
                 ) -> tuple[npt.NDArray[np.intp] | None, list[int], list[tuple[int, str, str]]] | None:
        """Requests grouped by (second, request type, name): the order that sorts them by group
        (None: already one group), where each group starts in that order, and each group's
        (second, request type, name). None when the seconds cannot be one integer key."""
        if not np.isfinite(second).all():
            return None
        first_t = float(second.min())
        span_t = float(second.max()) - first_t + 1.0
        type_of, type_code = self._codes(types, self._type_codes)
        name_of, name_code = self._codes(names, self._name_codes)
        n_types = len(type_of)
        width = n_types * len(name_of)
        if span_t * width >= 2.0**53:
            return None
        group = (second - first_t).astype(np.int64)  # (second, name, type) as one integer
        if width > 1:
            group *= width
            if name_code is not None:
                group += name_code * n_types
            if type_code is not None:
                group += type_code
        order = None
        starts = [0]
        if group[0] != group[-1] or (group != group[0]).any():
            order = np.argsort(group)
            group = group[order]
            starts += (np.flatnonzero(group[1:] != group[:-1]) + 1).tolist()
        groups = []
        for code in group[starts].tolist():
            second_i, endpoint = divmod(code, width)
            name_index, type_index = divmod(endpoint, n_types)
            groups.append((int(first_t) + second_i, type_of[type_index], name_of[name_index]))
        return order, starts, groups

    def _add_grouped(self, measured: npt.NDArray[np.float64], corrected: npt.NDArray[np.float64] | None,
                     starts: list[int], groups: list[tuple[int, str, str]]) -> None:
        """Add grouped requests (see :meth:`_grouped`; values in group order) to their windows: the
        measured latencies to the measured histogram and, with ``corrected``, those to the corrected
        one (made from the measured one first when it does not exist yet); without, the measured
        latencies also to a corrected histogram that exists."""
        multiplier = key_multiplier(self.relative_accuracy)
        ends = [*starts[1:], len(measured)]
        for values, scheduled in ((measured, False), (corrected, True)):
            if values is None:
                continue
            keys = array_keys(values, multiplier)
            index = np.array(starts, dtype=np.intp)
            for at, end, (t, request_type, name), total, low, high, low_key, high_key in zip(
                    starts, ends, groups, np.add.reduceat(values, index).tolist(),
                    np.minimum.reduceat(values, index).tolist(), np.maximum.reduceat(values, index).tolist(),
                    np.minimum.reduceat(keys, index).tolist(), np.maximum.reduceat(keys, index).tolist(),
                    strict=True):
                counts = self._counts_in(self._window_for(t), request_type, name)
                bins = np.bincount(keys[at:end] - low_key, minlength=high_key - low_key + 1)
                if scheduled:
                    targets: tuple[LatencyHistogram | None, ...] = (counts.chist,)
                else:
                    counts.requests += end - at
                    if corrected is not None:
                        counts.corrected()  # from the measured one before this batch's measured values
                        targets = (counts.hist,)
                    else:
                        targets = (counts.hist, counts.chist)
                for hist in targets:
                    if hist is not None:
                        hist.add_key_counts(low_key, bins)
                        hist.add_summary(end - at, total, low, high)

    @staticmethod
    def _codes(strings: list[str], codes: dict[str, int]) -> tuple[list[str], npt.NDArray[np.int64] | None]:
        """The distinct strings (by code) and each string's code, for :meth:`_flush_quick_arrays`;
        no codes when all are one string (the common case, checked at C speed: identical objects
        compare without a character compare)."""
        if strings.count(strings[0]) == len(strings):
            return [strings[0]], None
        if len(codes) > MAX_CODES:
            codes.clear()
        try:
            coded = list(map(codes.__getitem__, strings))
        except KeyError:  # new strings: coded in order of appearance
            for new in [x for x in dict.fromkeys(strings) if x not in codes]:
                codes[new] = len(codes)
            coded = list(map(codes.__getitem__, strings))
        return list(codes), np.array(coded, dtype=np.int64)

    def _spill(self, t: int, sent_t: int, done_t: int) -> None:
        self._window_for(t).spill_out += 1
        self._window_for(done_t).spill_in += 1
        for held_t in range(sent_t + 1, done_t):
            self._window_for(held_t).held += 1
        self._cur = None  # _window_for may have rolled levels: look the current one up again
        self._cur_t = -1

    def _backfill(self, request_type: str, name: str, start_s: float, value_ms: float, interval_ms: float,
                  batches: dict[int, tuple[LatencyHistogram, list[float]]]) -> None:
        """The requests a stalled user would have sent every ``interval_ms`` meanwhile: the ``k``-th
        was due at ``start + k*I`` and answered when the stall ended, so its latency is ``V - k*I``;
        ``k`` runs while that is at least ``I``. A few join the flush's batch one by one; more are
        taken a second at a time as an arithmetic series, queued with the batch or, when long (a
        long stall at a short interval: thousands of samples), counted at once
        (:meth:`LatencyHistogram.record_series`)."""
        last_k = int(value_ms // interval_ms) - 1  # the last k with V - k*I >= I
        while last_k > 0 and value_ms - last_k * interval_ms < interval_ms:
            last_k -= 1
        while value_ms - (last_k + 1) * interval_ms >= interval_ms:
            last_k += 1
        self._cur = None
        self._cur_t = -1
        if last_k <= FEW_BACKFILLED:
            cur_t = -1
            for k in range(1, last_k + 1):
                due_t = int(start_s + k * interval_ms / 1000.0)
                if due_t != cur_t:
                    counts, queue = self._backfill_into(due_t, request_type, name, batches)
                    cur_t = due_t
                queue.append(value_ms - k * interval_ms)
                counts.backfilled += 1
            return
        k = 1
        while k <= last_k:
            due_t = int(start_s + k * interval_ms / 1000.0)
            # the samples due in second due_t: k .. end_k, where k*I stays below the second's end
            next_t_ms = (due_t + 1 - start_s) * 1000.0
            end_k = min(last_k, max(k, math.ceil(next_t_ms / interval_ms) - 1))
            while end_k < last_k and (end_k + 1) * interval_ms < next_t_ms:
                end_k += 1
            while end_k > k and end_k * interval_ms >= next_t_ms:
                end_k -= 1
            counts, queue = self._backfill_into(due_t, request_type, name, batches)
            n = end_k - k + 1
            first_ms = value_ms - k * interval_ms
            if n >= SERIES_FROM:
                counts.corrected().record_series(first_ms, interval_ms, n)
            else:
                queue.extend([first_ms - j * interval_ms for j in range(n)])
            counts.backfilled += n
            k = end_k + 1

    def _backfill_into(self, t: int, request_type: str, name: str,
                       batches: dict[int, tuple[LatencyHistogram, list[float]]]) -> tuple[_Counts, list[float]]:
        """The endpoint's counts in second ``t`` and the flush's queue for its corrected histogram."""
        counts = self._counts_in(self._window_for(t), request_type, name)
        return counts, _batch(batches, _corrected_in(counts, batches))

    def _counts_in(self, window: _Window, request_type: str, name: str) -> _Counts:
        """The endpoint's counts in ``window``, made on first use."""
        counts = window.endpoints.get((request_type, name))
        if counts is None:
            counts = window.endpoints[(request_type, name)] = _Counts(self.relative_accuracy)
        return counts

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

    def record_held_at_stop(self, sent_s: Iterable[float], stop_s: float) -> int:
        """Requests that were due (sent, or due to be) at ``sent_s`` (epoch s) and still in flight
        when the users were stopped at ``stop_s``: Locust kills them, so they never complete and
        :meth:`record_request` never sees them. Each is held for the whole seconds between its send
        and the stop, as if it completed at the stop (a stall that lasts to the end of a run is
        still a stall); no latency is recorded (it is not known). Returns how many were counted."""
        stop_t = int(stop_s)
        starts: dict[int, int] = {}
        for s in sent_s:
            if math.isfinite(s) and s <= stop_s:
                starts[int(s) + 1] = starts.get(int(s) + 1, 0) + 1
        held = sum(starts.values())
        self.held_at_stop += held
        self._held_at_stop_pending += held
        running = 0
        for t in range(min(starts, default=stop_t), stop_t):  # one pass: each second adds those sent before it
            running += starts.get(t, 0)
            if running:
                self._window_for(t).held += running
                if self._rolled_before is not None and t < self._rolled_before:  # already summarised
                    self._timeline.put(t, _Counts(self.relative_accuracy), None, (running, 0, 0))
        self._cur = None  # _window_for may have rolled levels: look the current one up again
        self._cur_t = -1
        return held

    def note_users(self, t: int, users: int) -> None:
        """Remember how many users ran during second ``t`` (master or local runner)."""
        if self._rolled_before is None or t >= self._rolled_before:
            self._window_for(t).users = users

    def set_span(self, start: float | None = None, end: float | None = None) -> None:
        """The run's first and last instants (epoch seconds; None: not known yet). The second the
        run started in and the second it stopped in are covered only in part: their
        :attr:`SecondCounts.covered` says how much (the rest of the seconds are covered whole)."""
        self._span = (start, end)

    def _covered(self, second: SecondCounts) -> SecondCounts:
        start, end = self._span
        lo = max(float(second.t), start) if start is not None else float(second.t)
        hi = min(second.t + 1.0, end) if end is not None else second.t + 1.0
        share = min(1.0, max(0.0, hi - lo))
        return second if share == 1.0 else replace(second, covered=share)

    def mark_partial(self, start_t: int, end_t: int) -> None:
        """Flag seconds ``[start_t, end_t)`` as missing some generator's data."""
        for t in range(start_t, end_t):
            self._partial.add(t)
            self._timeline.mark_partial(t)

    # -- worker -> master --------------------------------------------------------------------------

    def drain(self, final: bool = False) -> WindowsPayload:
        """Remove and return closed windows (all windows when ``final``), plus new error counts and
        schedule lags. Requests sent in a second count there even when they complete later, so a
        window drained before its last request completed is sent again with the rest (merging adds)."""
        self.flush()
        now_t = int(self._clock())
        out: list[WindowPayload] = []
        for t in sorted(self._fine):
            if t >= now_t and not final:
                continue
            window = self._fine.pop(t)
            wp: WindowPayload = {"t": t, "e": [_endpoint_payload(ep, c) for ep, c in window.endpoints.items()]}
            if window.held or window.spill_out or window.spill_in:
                wp["s"] = [window.held, window.spill_out, window.spill_in]
            out.append(wp)
        self._cur = None
        self._cur_t = -1
        errors: list[ErrorPayload] = []
        for (rtype, name), kinds in self._errors.items():
            for message, count in kinds.items():
                errors.append({"t": rtype, "n": name, "m": message, "c": count})
        self._errors = {}
        payload: WindowsPayload = {"v": 1, "w": out, "err": errors}
        if self._lag_pending.count:
            payload["lag"] = self._lag_pending.to_payload()
            self.lag.merge(self._lag_pending)
            self._lag_pending = LatencyHistogram(self.relative_accuracy)
        if self._held_at_stop_pending:
            payload["hs"] = self._held_at_stop_pending
            self._held_at_stop_pending = 0
        return payload

    def schedule_lag(self) -> LatencyHistogram:
        """Start lags (ms) of every scheduled request recorded or merged here."""
        self.flush()
        total = self.lag.copy()
        total.merge(self._lag_pending)
        return total

    def merge_payload(self, payload: WindowsPayload) -> int:
        """Add a worker's drained windows; returns the number of requests merged."""
        try:
            if payload["v"] != 1:
                raise MetricsError(f"unsupported window payload version {payload['v']!r}")
            merged = 0
            for wp in payload["w"]:
                window = self._window_for(int(wp["t"]))
                late = window is not self._fine.get(window.t) and self._rolled_before is not None
                late_total = _Counts(self.relative_accuracy)
                for ep in wp["e"]:
                    key = (str(ep["t"]), str(ep["n"]))
                    counts = window.endpoints.get(key)
                    if counts is None:
                        counts = window.endpoints[key] = _Counts(self.relative_accuracy)
                    incoming = _counts_from_payload(ep, self.relative_accuracy)
                    counts.absorb(incoming)
                    if late:
                        late_total.requests += incoming.requests
                        late_total.failures += incoming.failures
                        late_total.backfilled += incoming.backfilled
                    merged += incoming.requests
                stalls = wp.get("s")
                held, spill_out, spill_in = (int(x) for x in stalls) if stalls else (0, 0, 0)
                window.absorb_stalls(held, spill_out, spill_in)
                if late:
                    # late data for a second already summarised: keep its counts exact
                    self._timeline.put(int(wp["t"]), late_total, None, (held, spill_out, spill_in))
            for err in payload.get("err", []):
                self._count_error((str(err["t"]), str(err["n"])), str(err["m"]), int(err["c"]))
            lag = payload.get("lag")
            if lag is not None:
                self.lag.merge(LatencyHistogram.from_payload(lag))
            self.held_at_stop += int(payload.get("hs", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricsError(f"malformed window payload: {exc!r}") from exc
        return merged

    # -- memory bound ------------------------------------------------------------------------------

    def rollup(self, now: float | None = None) -> None:
        """Fold windows older than the fine / minute horizons into coarser ones."""
        self.flush()
        now_t = int(self._clock() if now is None else now)
        cutoff = now_t - self.fine_horizon_s
        for t in sorted(t for t in self._fine if t < cutoff):
            window = self._fine.pop(t)
            total = _Counts(self.relative_accuracy)
            for counts in window.endpoints.values():
                total.absorb(counts)
            self._timeline.put(t, total, window.users, (window.held, window.spill_out, window.spill_in))
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

    def _second(self, window: _Window, partial: bool) -> SecondCounts | None:
        total = _Counts(self.relative_accuracy)
        for counts in window.endpoints.values():
            total.absorb(counts)
        if not (total.requests or window.users is not None or window.held or total.backfilled):
            return None
        q = self.down_quantile
        return SecondCounts(window.t, total.requests, total.failures, window.users, partial,
                            latency_ms=total.hist.quantile(q),
                            corrected_ms=None if total.chist is None else total.chist.quantile(q),
                            held=window.held, done=total.requests - window.spill_out + window.spill_in,
                            backfilled=total.backfilled)

    def _timeline_second(self, t: int, ints: Mapping[str, int], users: int | None, partial: bool,
                         lat: Mapping[float, float], clat: Mapping[float, float]) -> SecondCounts:
        q = self.down_quantile
        measured = lat.get(q, math.nan)
        corrected = clat.get(q, math.nan)
        return SecondCounts(t, ints["requests"], ints["failures"], users, partial or t in self._partial,
                            latency_ms=None if math.isnan(measured) else measured,
                            corrected_ms=None if math.isnan(corrected) else corrected,
                            held=ints["held"], done=ints["done"], backfilled=ints["backfilled"])

    def snapshot(self, start_t: int | None = None, end_t: int | None = None) -> Snapshot:
        """Aggregate ``[start_t, end_t)`` (default: everything). Coarse windows count when they
        start inside the range, so ranges reaching into rolled-up time are rounded to their span."""
        self.flush()
        lo = -(2**62) if start_t is None else start_t
        hi = 2**62 if end_t is None else end_t
        per_endpoint: dict[Endpoint, _Counts] = {}
        seconds: dict[int, SecondCounts] = {}
        for level in (self._hours, self._minutes, self._fine):
            for t, window in level.items():
                if not lo <= t < hi:
                    continue
                for ep, counts in window.endpoints.items():
                    agg = per_endpoint.get(ep)
                    if agg is None:
                        agg = per_endpoint[ep] = _Counts(self.relative_accuracy)
                    agg.absorb(counts)
                if level is self._fine:
                    second = self._second(window, t in self._partial)
                    if second is not None:
                        seconds[t] = second
        for t, ints, users, partial, lat, clat in self._timeline.rows(lo, hi):
            seconds[t] = self._timeline_second(t, ints, users, partial, lat, clat)
        keys = sorted(per_endpoint)
        endpoints = tuple(_stats(rt, name, component_of(rt, self.components), per_endpoint[(rt, name)])
                          for rt, name in keys)
        by_component: dict[str, _Counts] = {}
        total = _Counts(self.relative_accuracy)
        for stats, key in zip(endpoints, keys, strict=True):
            comp = by_component.get(stats.component)
            if comp is None:
                comp = by_component[stats.component] = _Counts(self.relative_accuracy)
            comp.absorb(per_endpoint[key])
            total.absorb(per_endpoint[key])
        components = tuple(_stats("", name, name, c) for name, c in sorted(by_component.items()))
        ordered = tuple(seconds[t] for t in sorted(seconds))
        if self._span != (None, None):
            ordered = tuple(self._covered(second) for second in ordered)
        first = ordered[0].t if ordered else (lo if start_t is not None else 0)
        last = ordered[-1].t + 1 if ordered else (hi if end_t is not None else 0)
        return Snapshot(
            start_t=first if start_t is None else start_t,
            end_t=last if end_t is None else end_t,
            total=_stats("", "Aggregated", "all", total),
            endpoints=endpoints,
            components=components,
            seconds=ordered,
        )

    def timeline(self, quantile: float = 0.95, basis: str = "measured"
                 ) -> list[tuple[int, int | None, int, int, float | None, bool]]:
        """Per-second rows ``(t, users, requests, failures, latency_ms at quantile, partial)``;
        ``basis="corrected"`` reads the latency from the intended start where a second has it."""
        self.flush()
        rows: dict[int, tuple[int, int | None, int, int, float | None, bool]] = {}
        corrected = basis == "corrected"
        for t, ints, users, partial, lat, clat in self._timeline.rows(-(2**62), 2**62):
            value = lat.get(quantile)
            cvalue = clat.get(quantile) if corrected else None
            if cvalue is not None and not math.isnan(cvalue):
                value = cvalue
            rows[t] = (t, users, ints["requests"], ints["failures"],
                       None if value is None or math.isnan(value) else value, partial)
        for t, window in self._fine.items():
            total = _Counts(self.relative_accuracy)
            for counts in window.endpoints.values():
                total.absorb(counts)
            if not (total.requests or window.users is not None or window.held or total.backfilled):
                continue
            hist = total.chist if corrected and total.chist is not None else total.hist
            rows[t] = (t, window.users, total.requests, total.failures, hist.quantile(quantile),
                       t in self._partial)
        return [rows[t] for t in sorted(rows)]

    def errors(self) -> list[tuple[str, str, str, int]]:
        """``(request_type, name, message, count)`` for every error seen, most frequent first."""
        self.flush()
        out = [(rt, n, m, c) for (rt, n), kinds in self._errors.items() for m, c in kinds.items()]
        return sorted(out, key=lambda e: (-e[3], e[0], e[1], e[2]))

    def window_count(self) -> tuple[int, int, int]:
        """Windows held at each level (fine, minute, hour): for memory tests."""
        self.flush()
        return len(self._fine), len(self._minutes), len(self._hours)

    def timeline_nbytes(self) -> int:
        return self._timeline.nbytes()


def _batch(batches: dict[int, tuple[LatencyHistogram, list[float]]], hist: LatencyHistogram) -> list[float]:
    """The list of values a flush adds to ``hist`` (made on first use)."""
    entry = batches.get(id(hist))
    if entry is None:
        entry = batches[id(hist)] = (hist, [])
    return entry[1]


def _corrected_in(counts: _Counts, batches: dict[int, tuple[LatencyHistogram, list[float]]]) -> LatencyHistogram:
    """``counts.corrected()`` during a flush: a corrected histogram made now copies the measured
    one, so the measured values this flush queued for it are added first (their list stays, empty:
    the flush loop may hold it)."""
    if counts.chist is None:
        entry = batches.get(id(counts.hist))
        if entry is not None and entry[1]:
            counts.hist.record_many(entry[1])
            entry[1].clear()
    return counts.corrected()


def _floats_or_nan(values: list[object]) -> npt.NDArray[np.float64]:
    """A float64 array of ``values``, NaN for None."""
    try:
        return np.array(values, dtype=np.float64)
    except TypeError:  # some None
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _apply(groups: dict[int, tuple[LatencyHistogram, list[float]]]) -> None:
    record_batches(groups.values())
    groups.clear()


def _stats(request_type: str, name: str, component: str, counts: _Counts) -> EndpointStats:
    return EndpointStats(request_type, name, component, counts.requests, counts.failures, counts.hist,
                         counts.chist, counts.backfilled)


def _endpoint_payload(endpoint: Endpoint, counts: _Counts) -> EndpointPayload:
    out: EndpointPayload = {
        "t": endpoint[0],
        "n": endpoint[1],
        "r": counts.requests,
        "f": counts.failures,
        "h": counts.hist.to_payload() if counts.hist.count else None,
    }
    if counts.chist is not None:
        out["ch"] = counts.chist.to_payload()
        out["b"] = counts.backfilled
    return out


def _counts_from_payload(ep: EndpointPayload, accuracy: float) -> _Counts:
    counts = _Counts(accuracy)
    counts.requests = int(ep["r"])
    counts.failures = int(ep["f"])
    if ep["h"] is not None:
        counts.hist = LatencyHistogram.from_payload(ep["h"])
    chist = ep.get("ch")
    if chist is not None:
        counts.chist = LatencyHistogram.from_payload(chist)
        counts.backfilled = int(ep.get("b", 0))
    return counts


def _absorb_into(level: dict[int, _Window], start: int, window: _Window, accuracy: float) -> None:
    target = level.get(start)
    if target is None:
        target = level[start] = _Window(start)
    target.absorb_stalls(window.held, window.spill_out, window.spill_in)
    for ep, counts in window.endpoints.items():
        mine = target.endpoints.get(ep)
        if mine is None:
            target.endpoints[ep] = counts  # the source window is discarded: no copy needed
        else:
            mine.absorb(counts)
