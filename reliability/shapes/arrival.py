"""Open-model (arrival-rate) load as pure logic: the rate profile, the arrival times, the split
across load generators and the bookkeeping behind the record's ``load`` section.

An arrival-rate run asks for a number of task starts per second, independent of how fast the
target answers. The rate is a piecewise-linear :class:`RateProfile` over seconds since the
schedule's start ``t0``; its integral ``Λ(t)`` is the number of arrivals expected by ``t``.
Arrival ``k`` happens where ``Λ(t)`` reaches a level:

* ``uniform``: level ``k + 0.5`` (evenly spaced; a constant 100/s puts arrivals at 5 ms, 15 ms ...);
* ``poisson``: level ``E_1 + ... + E_k`` with ``E_i`` unit exponentials from a seeded generator (a
  Poisson process of the asked rate, by time rescaling).

Every load generator computes the same global sequence (same profile, same seed) and runs only
the arrivals ``k`` with ``k % count == index`` under the :class:`Assignment` in force at their time,
so the union over generators is exactly the one-process schedule, whatever the number of workers::

    profile = RateProfile.from_stages([(10.0, 100.0, 100.0, "steady")])
    seq = ArrivalSequence(profile, "uniform", seed=1, assignments=[Assignment(0.0, 0, 2)])
    seq.next_own()        # Arrival(k=0, at_s=0.005, segment=0)
    seq.next_own()        # Arrival(k=2, at_s=0.025, segment=0): k=1 is the other generator's

:class:`ArrivalBook` counts what happened on one generator (scheduled, started, late, dropped,
in flight, schedule lag and start delay histograms); books merge exactly on the master. Nothing
here imports locust or gevent; time is a parameter.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

from reliability.metrics.histogram import HistogramPayload, LatencyHistogram
from reliability.schema import sections as s

UNIFORM = "uniform"
POISSON = "poisson"
ARRIVAL_KINDS = (UNIFORM, POISSON)
DROPPED_NAME = "dropped"
DROPPED_TYPE = "ARRIVAL"


@dataclass(frozen=True)
class RateSegment:
    """``start_s`` seconds after t0 the rate ramps linearly from ``from_rate`` to ``to_rate``
    (arrivals/s) over ``duration_s``; ``duration_s=None`` holds ``from_rate`` until the next segment."""

    start_s: float
    duration_s: float | None
    from_rate: float
    to_rate: float
    name: str = ""

    def __post_init__(self) -> None:
        if not (self.from_rate >= 0 and self.to_rate >= 0 and math.isfinite(self.from_rate)
                and math.isfinite(self.to_rate)):
            raise ValueError(f"rates must be finite and >= 0, got {self.from_rate!r} -> {self.to_rate!r}")
        if self.duration_s is None and self.to_rate != self.from_rate:
            raise ValueError("an open-ended segment holds one rate")
        if self.duration_s is not None and not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError(f"duration_s must be > 0, got {self.duration_s!r}")

    def area(self, until_s: float | None = None) -> float:
        """Arrivals expected from the segment's start until ``until_s`` (relative to the segment)."""
        span = self.duration_s if until_s is None else until_s
        if span is None:
            return math.inf if self.from_rate > 0 else 0.0
        if self.duration_s is not None:
            span = min(span, self.duration_s)
            slope = (self.to_rate - self.from_rate) / self.duration_s
        else:
            slope = 0.0
        return self.from_rate * span + slope * span * span / 2.0

    def rate_at(self, offset_s: float) -> float:
        if self.duration_s is None:
            return self.from_rate
        return self.from_rate + (self.to_rate - self.from_rate) * min(offset_s, self.duration_s) / self.duration_s

    def offset_for(self, area: float) -> float:
        """The offset into the segment at which ``area`` arrivals are expected (inverse of :meth:`area`)."""
        if area <= 0:
            return 0.0
        b = self.from_rate
        a = 0.0 if self.duration_s is None else (self.to_rate - self.from_rate) / (2.0 * self.duration_s)
        # a u^2 + b u = area, in the form that is stable for a -> 0 and for a < 0 (ramp down)
        root = math.sqrt(max(0.0, b * b + 4.0 * a * area))
        denominator = b + root
        return 2.0 * area / denominator if denominator > 0 else 0.0


class RateProfile:
    """The arrival rate over seconds since t0: a list of :class:`RateSegment` end to end.

    Segments may be appended while a run is on (a capacity search steps the rate); appending
    closes an open-ended last segment where the new one starts. :meth:`close` ends the profile.
    """

    def __init__(self, segments: Iterable[RateSegment] = ()) -> None:
        self.segments: list[RateSegment] = []
        self._starts: list[float] = []
        self._cumulative: list[float] = []  # expected arrivals before each segment
        self.closed_at_s: float | None = None
        for segment in segments:
            self.add(segment)

    @classmethod
    def from_stages(cls, stages: Sequence[tuple[float, float, float, str]]) -> RateProfile:
        """``stages``: ``(duration_s, from_rate, to_rate, name)`` back to back from t0; closed at their end."""
        profile = cls()
        start = 0.0
        for duration, from_rate, to_rate, name in stages:
            profile.add(RateSegment(start, duration, from_rate, to_rate, name))
            start += duration
        profile.close(start)
        return profile

    def add(self, segment: RateSegment) -> None:
        if self.closed_at_s is not None:
            raise ValueError("the profile is closed")
        if self.segments:
            last = self.segments[-1]
            if last.duration_s is None:
                if segment.start_s < last.start_s:
                    raise ValueError("segments must be added in time order")
                if segment.start_s == last.start_s:  # replaced before it began
                    self._pop()
                else:
                    self._pop()
                    self._append(RateSegment(last.start_s, segment.start_s - last.start_s, last.from_rate,
                                             last.from_rate, last.name))
            else:
                end = last.start_s + last.duration_s
                if segment.start_s < end - 1e-9:
                    raise ValueError(f"segment starts at {segment.start_s:g} s, before the previous one ends "
                                     f"at {end:g} s")
                if segment.start_s > end + 1e-9:  # a gap: no arrivals
                    self._append(RateSegment(end, segment.start_s - end, 0.0, 0.0, "gap"))
        self._append(segment)

    def _append(self, segment: RateSegment) -> None:
        before = 0.0
        if self.segments:
            before = self._cumulative[-1] + self.segments[-1].area()
        self.segments.append(segment)
        self._starts.append(segment.start_s)
        self._cumulative.append(before)

    def _pop(self) -> None:
        self.segments.pop()
        self._starts.pop()
        self._cumulative.pop()

    def close(self, at_s: float) -> None:
        """No arrivals from ``at_s`` on (an open last segment ends there)."""
        if self.segments and self.segments[-1].duration_s is None:
            last = self.segments[-1]
            self._pop()
            if at_s > last.start_s:
                self._append(RateSegment(last.start_s, at_s - last.start_s, last.from_rate, last.from_rate,
                                         last.name))
        self.closed_at_s = at_s

    @property
    def end_s(self) -> float | None:
        """Where the profile ends (None while it is open-ended)."""
        return self.closed_at_s

    def segment_index(self, t_s: float) -> int | None:
        index = bisect.bisect_right(self._starts, t_s) - 1
        return index if index >= 0 else None

    def expected(self, t_s: float) -> float:
        """Arrivals expected in ``[0, t_s)``: the integral of the rate."""
        if self.closed_at_s is not None:
            t_s = min(t_s, self.closed_at_s)
        index = self.segment_index(t_s)
        if index is None:
            return 0.0
        segment = self.segments[index]
        return self._cumulative[index] + segment.area(t_s - segment.start_s)

    def rate_at(self, t_s: float) -> float:
        index = self.segment_index(t_s)
        if index is None or (self.closed_at_s is not None and t_s >= self.closed_at_s):
            return 0.0
        segment = self.segments[index]
        return segment.rate_at(t_s - segment.start_s)

    def time_at(self, level: float) -> tuple[float, int] | None:
        """``(t_s, segment index)`` where ``expected(t_s) == level``; None if beyond what the profile
        holds so far (its end, or an open segment of rate 0)."""
        index = bisect.bisect_right(self._cumulative, level) - 1
        if index < 0:
            return None
        # a zero-area segment shares its cumulative value with the next one: take the last such
        segment = self.segments[index]
        remaining = level - self._cumulative[index]
        if remaining >= segment.area():
            return None
        t_s = segment.start_s + segment.offset_for(remaining)
        if self.closed_at_s is not None and t_s >= self.closed_at_s:
            return None
        return t_s, index


@dataclass(frozen=True)
class Assignment:
    """From ``from_s`` (seconds after t0) on, this generator runs arrivals ``k % count == index``
    (``count == 0``: none)."""

    from_s: float
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 0 or (self.count and not 0 <= self.index < self.count):
            raise ValueError(f"bad assignment: index {self.index} of {self.count}")


class Arrival(NamedTuple):
    """Arrival number ``k`` of the global schedule, due ``at_s`` after t0, in profile segment ``segment``."""

    k: int
    at_s: float
    segment: int


class ArrivalSequence:
    """The global arrival sequence of a profile, filtered to one generator's share.

    Levels (``k + 0.5``, or the running sum of exponentials) depend only on ``k`` and the seed;
    their times are read off the profile when asked, so a profile or share that changes later
    (a capacity step, a re-split) moves the arrivals not handed out yet, never the levels.
    """

    def __init__(self, profile: RateProfile, kind: str, seed: int,
                 assignments: Sequence[Assignment] = (Assignment(0.0, 0, 1),)) -> None:
        if kind not in ARRIVAL_KINDS:
            raise ValueError(f"arrivals must be one of {', '.join(ARRIVAL_KINDS)}, got {kind!r}")
        self.profile = profile
        self.kind = kind
        self._rng = random.Random(seed)
        self.assignments: list[Assignment] = []
        for assignment in assignments:
            self.assign(assignment)
        self.k = 0  # the first arrival not consumed yet
        self._levels: list[float] = []  # levels of k, k+1, ... computed ahead
        self._last = 0.0 if kind == POISSON else -0.5

    def assign(self, assignment: Assignment) -> None:
        """A new share from ``assignment.from_s`` on."""
        if self.assignments and assignment.from_s < self.assignments[-1].from_s:
            raise ValueError("assignments must be in time order")
        self.assignments.append(assignment)

    def _share_at(self, t_s: float) -> Assignment:
        if len(self.assignments) == 1:
            return self.assignments[0]
        chosen = self.assignments[0]
        for assignment in self.assignments:
            if assignment.from_s <= t_s:
                chosen = assignment
            else:
                break
        return chosen

    def _level(self, i: int) -> float:
        levels = self._levels
        while len(levels) <= i:
            self._last = self._last + (1.0 if self.kind == UNIFORM else self._rng.expovariate(1.0))
            levels.append(self._last)
        return levels[i]

    def peek_own(self) -> Arrival | None:
        """The next arrival of this generator's share, without consuming it; None when the profile
        holds no further arrival yet."""
        i = 0
        while True:
            found = self.profile.time_at(self._level(i))
            if found is None:
                return None
            share = self._share_at(found[0])
            if share.count and (self.k + i) % share.count == share.index:
                return Arrival(self.k + i, found[0], found[1])
            i += 1

    def consume(self, arrival: Arrival) -> None:
        """Hand ``arrival`` out (and skip the others' arrivals before it)."""
        done = arrival.k + 1 - self.k
        del self._levels[:done]
        self.k = arrival.k + 1

    def next_own(self) -> Arrival | None:
        """:meth:`peek_own` and :meth:`consume` in one."""
        arrival = self.peek_own()
        if arrival is not None:
            self.consume(arrival)
        return arrival


def split(worker_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Each worker's ``(index, count)``: sorted ids, so every node agrees on the order."""
    ids = sorted(set(worker_ids))
    return {worker: (i, len(ids)) for i, worker in enumerate(ids)}


# -- bookkeeping -------------------------------------------------------------------------------------


class BookCounts(TypedDict):
    """An :class:`ArrivalBook`'s counts (cumulative since the schedule started), or their sum."""

    scheduled: int
    started: int
    late: int
    dropped: int
    finished: int
    in_flight: int
    max_in_flight: int
    pending: int


class BookPayload(BookCounts):
    """Wire form of an :class:`ArrivalBook`: its counts, histograms and segments."""

    lag: HistogramPayload
    delay: HistogramPayload
    segments: list[list[int]]  # [segment, scheduled, started, dropped]


class ArrivalBook:
    """What happened to one generator's arrivals.

    * ``scheduled``: arrivals whose time came (the scheduler put them up for a free user);
    * ``started``: taken by a user, who ran one task for it; ``late``: started more than
      ``late_after_ms`` after their scheduled time;
    * ``dropped``: waited over ``max_delay_s`` for a free user (each is a failed request);
    * schedule lag: when the scheduler put an arrival up, minus its scheduled time (the generator's
      own punctuality); start delay: when a user started it, minus its scheduled time (includes
      waiting for a free user, and is part of every request's latency).

    Example::

        book = ArrivalBook(late_after_ms=10, max_delay_s=5)
        book.scheduled(0, due_at=100.0, now=100.001)
        book.take(0, due_at=100.0, now=100.002)   # True: started, 2 ms after its time
        book.finished()
    """

    def __init__(self, late_after_ms: float, max_delay_s: float) -> None:
        self.late_after_ms = late_after_ms
        self.max_delay_s = max_delay_s
        self.counts = {"scheduled": 0, "started": 0, "late": 0, "dropped": 0, "finished": 0}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lag = LatencyHistogram()
        self.delay = LatencyHistogram()
        self.segments: dict[int, list[int]] = {}

    def _segment(self, segment: int) -> list[int]:
        row = self.segments.get(segment)
        if row is None:
            row = self.segments[segment] = [0, 0, 0]
        return row

    def scheduled(self, segment: int, due_at: float, now: float) -> None:
        self.counts["scheduled"] += 1
        self._segment(segment)[0] += 1
        self.lag.record(max(0.0, (now - due_at) * 1000.0))

    def expired(self, due_at: float, now: float) -> bool:
        return now - due_at > self.max_delay_s

    def take(self, segment: int, due_at: float, now: float) -> bool:
        """A free user picks the arrival up at ``now``: True when it starts, False when it is dropped
        (it waited over ``max_delay_s``; the caller reports the failed request)."""
        if self.expired(due_at, now):
            self.drop(segment)
            return False
        delay_ms = max(0.0, (now - due_at) * 1000.0)
        self.counts["started"] += 1
        self._segment(segment)[1] += 1
        if delay_ms > self.late_after_ms:
            self.counts["late"] += 1
        self.delay.record(delay_ms)
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        return True

    def drop(self, segment: int) -> None:
        self.counts["dropped"] += 1
        self._segment(segment)[2] += 1

    def finished(self) -> None:
        self.counts["finished"] += 1
        self.in_flight -= 1

    def payload(self, pending: int = 0) -> BookPayload:
        c = self.counts
        return {
            "scheduled": c["scheduled"], "started": c["started"], "late": c["late"], "dropped": c["dropped"],
            "finished": c["finished"], "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
            "pending": pending, "lag": self.lag.to_payload(), "delay": self.delay.to_payload(),
            "segments": [[i, *row] for i, row in sorted(self.segments.items())],
        }


_COUNT_KEYS = ("scheduled", "started", "late", "dropped", "finished", "in_flight", "max_in_flight", "pending")
MAX_SEGMENTS = 100_000


def check_book(value: object) -> BookPayload:
    """A generator's book payload as received over the wire, checked (raises ValueError naming the field)."""
    if not isinstance(value, dict):
        raise ValueError("not a mapping")
    counts: dict[str, int] = {}
    for key in _COUNT_KEYS:
        item = value.get(key)
        if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item < 10**15:
            raise ValueError(f"{key}: expected a count, got {item!r}")
        counts[key] = item
    hists = {}
    for key in ("lag", "delay"):
        try:
            hists[key] = LatencyHistogram.from_payload(value.get(key)).to_payload()  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - any malformed histogram is one error
            raise ValueError(f"{key}: {exc}") from None
    segments = value.get("segments")
    if not isinstance(segments, list) or len(segments) > MAX_SEGMENTS:
        raise ValueError("segments: expected a list")
    rows: list[list[int]] = []
    for i, row in enumerate(segments):
        if not (isinstance(row, list) and len(row) == 4
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in row)):
            raise ValueError(f"segments[{i}]: expected [segment, scheduled, started, dropped]")
        rows.append([int(x) for x in row])
    return {
        "scheduled": counts["scheduled"], "started": counts["started"], "late": counts["late"],
        "dropped": counts["dropped"], "finished": counts["finished"], "in_flight": counts["in_flight"],
        "max_in_flight": counts["max_in_flight"], "pending": counts["pending"],
        "lag": hists["lag"], "delay": hists["delay"], "segments": rows,
    }


class MergedBook:
    """The books of every generator (their latest cumulative payloads), summed."""

    def __init__(self) -> None:
        self.latest: dict[str, BookPayload] = {}

    def update(self, generator: str, payload: BookPayload) -> None:
        self.latest[generator] = payload

    def totals(self) -> BookTotals:
        books = list(self.latest.values())
        lag, delay = LatencyHistogram(), LatencyHistogram()
        segments: dict[int, list[int]] = {}
        for p in books:
            lag.merge(LatencyHistogram.from_payload(p["lag"]))
            delay.merge(LatencyHistogram.from_payload(p["delay"]))
            for index, *row in p["segments"]:
                into = segments.setdefault(int(index), [0, 0, 0])
                for i, value in enumerate(row):
                    into[i] += int(value)
        counts: BookCounts = {
            "scheduled": sum(int(p["scheduled"]) for p in books), "started": sum(int(p["started"]) for p in books),
            "late": sum(int(p["late"]) for p in books), "dropped": sum(int(p["dropped"]) for p in books),
            "finished": sum(int(p["finished"]) for p in books), "in_flight": sum(int(p["in_flight"]) for p in books),
            "max_in_flight": sum(int(p["max_in_flight"]) for p in books),
            "pending": sum(int(p["pending"]) for p in books)}
        return BookTotals(counts, lag, delay, segments)


@dataclass(frozen=True)
class BookTotals:
    """The generators' books summed: counts, the merged histograms, per segment [scheduled, started, dropped]."""

    counts: BookCounts
    lag: LatencyHistogram
    delay: LatencyHistogram
    segments: dict[int, list[int]]


def _ms(hist: LatencyHistogram) -> s.LoadDelay:
    def q(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return s.LoadDelay(p50=q(hist.quantile(0.5)), p99=q(hist.quantile(0.99)),
                       max=q(hist.max_ms if hist.count else None))


def load_section(merged: MergedBook, profile: RateProfile, *, kind: str, seed: int, active_s: float,
                 max_users: int, max_delay_s: float, late_after_ms: float,
                 generators: int) -> s.Load:
    """The record's ``load`` section of an open-model run.

    ``active_s``: how long the schedule ran (from t0 to the end of the profile, or to when the run
    stopped if earlier). ``asked`` is what the profile asks for in that span; ``achieved`` counts
    arrivals a user started.
    """
    totals = merged.totals()
    asked = profile.expected(active_s)
    span = max(active_s, 1e-9)
    counts = totals.counts
    started = counts["started"]
    stages: list[s.LoadStage] = []
    for index, segment in enumerate(profile.segments):
        if segment.name == "gap":
            continue
        begin = segment.start_s
        end = begin + (segment.duration_s if segment.duration_s is not None else max(0.0, active_s - begin))
        ran = max(0.0, min(end, active_s) - begin)
        if ran <= 0:
            continue
        scheduled_n, started_n, dropped_n = totals.segments.get(index, [0, 0, 0])
        stage_asked = profile.expected(begin + ran) - profile.expected(begin)
        stages.append(s.LoadStage(
            name=segment.name, start_s=round(begin, 3), duration_s=round(ran, 3),
            from_rate_per_s=segment.from_rate, to_rate_per_s=round(segment.rate_at(ran), 6),
            asked=round(stage_asked, 3), scheduled=scheduled_n, started=started_n, dropped=dropped_n,
            asked_rate_per_s=round(stage_asked / ran, 3), achieved_rate_per_s=round(started_n / ran, 3),
        ))
    return s.Load(
        model="open",
        arrivals=kind,
        seed=seed,
        generators=generators,
        max_users=max_users,
        max_delay_s=max_delay_s,
        late_after_ms=late_after_ms,
        active_s=round(active_s, 3),
        asked=round(asked, 3),
        scheduled=counts["scheduled"],
        started=started,
        late=counts["late"],
        dropped=counts["dropped"],
        finished=counts["finished"],
        pending_at_stop=counts["pending"],
        in_flight_at_stop=counts["in_flight"],
        max_in_flight=counts["max_in_flight"],
        asked_rate_per_s=round(asked / span, 3),
        achieved_rate_per_s=round(started / span, 3),
        achieved_ratio=round(started / asked, 6) if asked > 0 else None,
        schedule_lag_ms=_ms(totals.lag),
        start_delay_ms=_ms(totals.delay),
        stages=stages,
    )
