"""Intended-start latency, back-fill and the stall-aware down rules, on a fake clock."""

from __future__ import annotations

import pytest

from reliability.config import SlaSpec, parse_scenario
from reliability.exceptions import MetricsError
from reliability.metrics import DEFAULT_RELATIVE_ACCURACY, WindowStore
from reliability.metrics.payload import check_report
from reliability.sla import EDGE, ERRORS, SLOW, STALLED, UP, compute_uptime, evaluate, second_state
from tests.support.fakes import FakeClock

T0 = 1_000_000


def _by_t(store: WindowStore) -> dict[int, object]:
    return {s.t: s for s in store.snapshot().seconds}


def test_intended_start_adds_the_lag_and_counts_in_the_intended_second() -> None:
    store = WindowStore(clock=FakeClock(T0 + 5))
    # due at T0 + 0.9, sent 300 ms late at T0 + 1.2, answered in 10 ms
    store.record_request("GET", "/a", 10.0, False, None, T0 + 1.2, T0 + 0.9)
    snap = store.snapshot()
    assert snap.total.hist.quantile(0.5) == pytest.approx(10.0, rel=0.005)  # measured kept
    assert snap.total.corrected is not None
    assert snap.total.corrected.quantile(0.5) == pytest.approx(310.0, rel=0.005)
    assert [s.t for s in snap.seconds] == [T0]  # the second it was due in
    assert store.schedule_lag().quantile(0.5) == pytest.approx(300.0, rel=0.005)


def test_unscheduled_requests_have_no_corrected_basis() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    for i in range(10):
        store.record_request("GET", "/a", 5.0, False, None, T0 + i / 10)
    snap = store.snapshot()
    assert snap.total.corrected is None and snap.total.backfilled == 0
    assert snap.seconds[0].requests == 10 and snap.seconds[0].done == 10


def test_backfill_records_the_requests_a_stall_prevented_in_the_seconds_they_were_due() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    # a user paced every 100 ms sends at T0 + 0.05; the target freezes and answers 2 s later
    store.record_request("GET", "/a", 2000.0, False, None, T0 + 0.05, T0 + 0.05, 100.0)
    snap = store.snapshot()
    assert snap.total.requests == 1 and snap.total.backfilled == 19  # 1900, 1800, ..., 100 ms
    corrected = snap.total.corrected
    assert corrected is not None and corrected.count == 20
    assert corrected.max_ms == pytest.approx(2000.0)
    assert corrected.min_ms == pytest.approx(100.0)
    seconds = _by_t(store)
    # due at T0+0.15 .. T0+0.95 -> 9 in T0, T0+1.05 .. T0+1.95 -> 10 in T0+1 (+ the sent one in T0)
    assert seconds[T0].backfilled == 9 and seconds[T0 + 1].backfilled == 10  # type: ignore[attr-defined]
    # the measured basis knows nothing of them
    assert snap.total.hist.count == 1


def test_a_second_with_requests_held_and_nothing_completed_is_down_not_skipped() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    for i in range(5):  # 5 users each stuck on a request from T0+0.5 to T0+2.5
        store.record_request("GET", "/a", 2000.0, False, None, T0 + 0.5 + i / 100)
    for i in range(10):  # fast traffic before and after
        store.record_request("GET", "/a", 5.0, False, None, T0 + 0.1 + i / 100)
        store.record_request("GET", "/a", 5.0, False, None, T0 + 3.1 + i / 100)
    seconds = _by_t(store)
    held = seconds[T0 + 1]
    assert held.requests == 0 and held.held == 5 and held.done == 0  # type: ignore[attr-defined]
    assert second_state(held, 0.05) == STALLED  # type: ignore[arg-type]
    # T0+2 had the same requests in flight but they completed in it and nothing was sent: not counted
    assert T0 + 2 not in seconds
    uptime = compute_uptime(store.snapshot().seconds, 0.05, 1000.0)
    # T0: 10 fast + 5 slow sent -> p95 above 1000 ms: slow; T0+1 stalled; T0+3 up
    assert (uptime.windows, uptime.up_windows, uptime.stalled_windows, uptime.slow_windows) == (3, 1, 1, 1)


def test_one_slow_request_does_not_stall_a_second_others_complete_in() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    store.record_request("GET", "/a", 2500.0, False, None, T0 + 0.2)  # held through T0+1
    for i in range(20):
        store.record_request("GET", "/a", 5.0, False, None, T0 + 1 + i / 20)
    assert second_state(_by_t(store)[T0 + 1], 0.05) == UP  # type: ignore[arg-type]


def test_slow_and_error_rules_and_the_idle_second() -> None:
    store = WindowStore(clock=FakeClock(float(T0)), down_quantile=0.95)
    for i in range(20):
        store.record_request("GET", "/a", 1500.0 if i >= 18 else 5.0, False, None, T0 + i / 20)  # p95 1500
        store.record_request("GET", "/a", 5.0, i % 2 == 0, "HTTP 500", T0 + 1 + i / 20)
    seconds = _by_t(store)
    assert second_state(seconds[T0], 0.05, 1000.0) == SLOW  # type: ignore[arg-type]
    assert second_state(seconds[T0], 0.05, 2000.0) == UP  # type: ignore[arg-type]
    assert second_state(seconds[T0], 0.05, None) == UP  # type: ignore[arg-type]
    assert second_state(seconds[T0 + 1], 0.05, 1000.0) == ERRORS  # type: ignore[arg-type]
    store.note_users(T0 + 5, 10)
    assert second_state(_by_t(store)[T0 + 5], 0.05, 1000.0) is None  # type: ignore[arg-type]


def test_the_seconds_the_run_covered_less_than_half_of_are_edges_not_graded() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    # the run: T0+0.7 .. T0+3.2; the stop's sliver at T0+3 has 10 requests and 1 of them failed
    store.set_span(T0 + 0.7)
    for t in (0, 1, 2):
        for i in range(30):
            store.record_request("GET", "/a", 5.0, False, None, T0 + t + max(0.7 if t == 0 else 0.0, i / 30))
    for i in range(10):
        store.record_request("GET", "/a", 5.0, i == 9, "HTTP 500", T0 + 3 + i / 100)
    live = _by_t(store)  # while the run goes on, the second it stopped in is not known yet
    assert live[T0].covered == pytest.approx(0.3) and live[T0 + 3].covered == 1.0  # type: ignore[attr-defined]
    store.set_span(T0 + 0.7, T0 + 3.2)
    seconds = _by_t(store)
    assert [seconds[T0 + t].covered for t in range(4)] == pytest.approx([0.3, 1.0, 1.0, 0.2])  # type: ignore[attr-defined]
    assert second_state(seconds[T0], 0.05) == EDGE  # type: ignore[arg-type]
    assert second_state(seconds[T0 + 3], 0.05) == EDGE  # 1 of 10 failed: the rule would say down  # type: ignore[arg-type]
    uptime = compute_uptime(store.snapshot().seconds, 0.05)
    assert (uptime.windows, uptime.up_windows, uptime.edge_windows, uptime.ratio) == (2, 2, 2, 1.0)
    assert uptime.request_availability == pytest.approx(1 - 1 / 100)  # every request counts there
    # covered half or more: graded as any second
    store.set_span(T0 + 0.5, T0 + 3.5)
    uptime = compute_uptime(store.snapshot().seconds, 0.05)
    assert (uptime.windows, uptime.up_windows, uptime.edge_windows) == (4, 3, 0)
    # a run inside one second: graded only if it lasted half of it
    store = WindowStore(clock=FakeClock(float(T0)))
    store.set_span(T0 + 0.1, T0 + 0.4)
    store.record_request("GET", "/a", 5.0, False, None, T0 + 0.2)
    assert compute_uptime(store.snapshot().seconds, 0.05).windows == 0


def test_the_slow_rule_reads_the_graded_basis() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    for i in range(10):  # each sent on time but due 1.5 s earlier: measured fast, corrected slow
        store.record_request("GET", "/a", 5.0, False, None, T0 + 1.5 + i / 100, T0 + i / 100)
    second = _by_t(store)[T0]
    assert second_state(second, 0.05, 1000.0, "measured") == UP  # type: ignore[arg-type]
    assert second_state(second, 0.05, 1000.0, "corrected") == SLOW  # type: ignore[arg-type]


def test_evaluate_grades_corrected_by_default_and_measured_on_request() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    for i in range(100):
        store.record_request("GET", "/a", 5.0, False, None, T0 + i / 100, T0 + i / 100, 100.0)
    store.record_request("GET", "/a", 2000.0, False, None, T0 + 1.0, T0 + 1.0, 100.0)  # back-fills 19
    snap = store.snapshot()
    corrected = evaluate(snap, SlaSpec(tier="gold"))
    measured = evaluate(snap, SlaSpec(tier="gold", latency_basis="measured"))
    assert corrected.latency_basis == "corrected" and measured.latency_basis == "measured"
    lat = {v.latency_basis: next(c for c in v.criteria if c.name == "p95_ms").actual for v in (corrected, measured)}
    assert lat["measured"] == pytest.approx(5.0, rel=0.01)
    assert lat["corrected"] is not None and lat["corrected"] > 1000  # 20 of 120 samples >= 100 ms
    plain = WindowStore(clock=FakeClock(float(T0)))
    plain.record_request("GET", "/a", 5.0, False, None, T0 + 0.5)
    assert evaluate(plain.snapshot(), SlaSpec()).latency_basis == "measured"  # nothing to correct


def test_drain_and_merge_keep_corrected_stalls_and_lag_exact() -> None:
    clock = FakeClock(T0 + 10)
    local, worker, master = (WindowStore(clock=clock) for _ in range(3))
    calls = [("GET", "/a", 2000.0, False, None, T0 + 0.5, T0 + 0.4, 100.0),
             ("GET", "/a", 5.0, False, None, T0 + 3.2, None, None),
             ("GET", "/b", 7.0, True, "HTTP 500", T0 + 4.5, T0 + 4.45, 50.0)]
    for store in (local, worker):
        for call in calls:
            store.record_request(*call)  # type: ignore[arg-type]
    master.merge_payload(worker.drain(final=True))
    a, b = local.snapshot(), master.snapshot()
    assert a.seconds == b.seconds
    assert a.total.corrected is not None and b.total.corrected is not None
    assert a.total.corrected.to_payload() == b.total.corrected.to_payload()
    assert a.total.backfilled == b.total.backfilled == 19
    assert local.schedule_lag().to_payload() == master.schedule_lag().to_payload()


def test_rollup_keeps_the_stall_and_corrected_latency_of_old_seconds() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock, fine_horizon_s=10, down_quantile=0.95)
    for i in range(3):
        store.record_request("GET", "/a", 2500.0, False, None, T0 + 0.5 + i / 100, T0 + 0.5, 100.0)
    before = _by_t(store)
    store.rollup(T0 + 100)
    after = _by_t(store)
    for t in (T0, T0 + 1, T0 + 2):
        assert after[t] == before[t], t
    assert after[T0 + 1].held == 3  # type: ignore[attr-defined]


def test_down_latency_default_is_the_least_demanding_tiers_threshold() -> None:
    assert SlaSpec().down_latency_threshold_ms == 1000.0  # bronze p95
    custom = parse_scenario({"sla": {"down_latency_ms": "2s", "tiers": {"bronze": {"latency_ms": 800}}}})
    assert custom.sla.down_latency_threshold_ms == 2000.0
    assert parse_scenario({"sla": {"tiers": {"bronze": {"latency_ms": 800}}}}).sla.down_latency_threshold_ms == 800.0
    assert SlaSpec(tier="gold").schedule_lag_bound_ms == 50.0  # 25 % of gold's 200 ms
    assert SlaSpec(tier="platinum").schedule_lag_bound_ms == 25.0


def _scheduled_report() -> dict[str, object]:
    clock = FakeClock(T0 + 10)
    worker = WindowStore(clock=clock)
    worker.record_request("GET", "/a", 2000.0, False, None, T0 + 0.5, T0 + 0.4, 100.0)
    return {"windows": worker.drain(final=True)}


def test_the_master_accepts_a_scheduled_report_and_rejects_spoiled_parts_by_name() -> None:
    report = check_report(_scheduled_report(), T0 + 10, DEFAULT_RELATIVE_ACCURACY)
    master = WindowStore(clock=FakeClock(T0 + 10))
    master.merge_payload(report.windows)
    assert master.snapshot().total.backfilled == 19 and master.schedule_lag().count == 1
    spoils = {
        "windows.w[0].e[0].ch.c[0]: a negative count": lambda w: w["w"][0]["e"][0]["ch"].update(c=[-1]),
        "windows.w[0].e[0].b: a negative count": lambda w: w["w"][0]["e"][0].update(b=-3),
        "windows.w[0].s: expected [held, spill_out, spill_in]": lambda w: w["w"][0].update(s=[1]),
        "windows.lag.n": lambda w: w["lag"].update(n="many"),
    }
    for named, spoil in spoils.items():
        spoiled = _scheduled_report()
        spoil(spoiled["windows"])
        with pytest.raises(MetricsError) as caught:
            check_report(spoiled, T0 + 10, DEFAULT_RELATIVE_ACCURACY)
        assert named in str(caught.value), (named, str(caught.value))


def test_record_many_fills_the_same_buckets_as_record_one_by_one() -> None:
    import random

    from reliability.metrics import LatencyHistogram

    rng = random.Random(3)
    values = [rng.lognormvariate(2.0, 1.5) for _ in range(3000)] + [0.0, 1e-7, 3_600_000.0]
    one, many = LatencyHistogram(), LatencyHistogram()
    for v in values[:1000]:
        one.record(v)
        many.record(v)
    for v in values[1000:]:
        one.record(v)
    many.record_many(values[1000:2000])
    many.record_many(values[2000:])
    a, b = one.to_payload(), many.to_payload()
    assert a["c"] == b["c"] and a["o"] == b["o"] and a["n"] == b["n"] and (a["lo"], a["hi"]) == (b["lo"], b["hi"])
    assert a["s"] == pytest.approx(b["s"], rel=1e-12)
    with pytest.raises(MetricsError):
        many.record_many([1.0, float("nan")])
    assert many.count == one.count  # nothing added by the rejected batch


def test_a_batch_mixing_unscheduled_and_scheduled_requests_keeps_both_bases() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    for i in range(300):  # more than one batch; the first scheduled request comes mid-batch
        if i % 3 == 0:
            store.record_request("GET", "/a", 5.0, False, None, T0 + 0.5, T0 + 0.3, None)  # +200 ms lag
        else:
            store.record_request("GET", "/a", 5.0, False, None, T0 + 0.5)
    with pytest.raises(MetricsError):
        store.record_request("GET", "/a", -1.0, False, None, T0 + 0.5)
    snap = store.snapshot()
    assert snap.total.requests == 300 and snap.total.hist.count == 300
    corrected = snap.total.corrected
    assert corrected is not None and corrected.count == 300
    assert corrected.quantile(0.5) == pytest.approx(5.0, rel=0.005)  # 200 unscheduled at 5 ms
    assert corrected.quantile(0.9) == pytest.approx(205.0, rel=0.005)  # 100 scheduled at 205 ms


def _canonical(store: WindowStore) -> tuple[object, ...]:
    """What a store holds, as plain values: per endpoint its counts and both histograms' payloads,
    per second its counts. Sums are rounded: adding floats in another order moves the last bits."""
    snap = store.snapshot()

    def hist(h: object) -> object:
        if h is None:
            return None
        payload = dict(h.to_payload())  # type: ignore[attr-defined]
        payload["s"] = f"{payload['s']:.9g}"
        return payload

    endpoints = tuple((e.request_type, e.name, e.requests, e.failures, e.backfilled, hist(e.hist), hist(e.corrected))
                      for e in snap.endpoints)
    return endpoints, snap.seconds, hist(store.schedule_lag())


def test_batched_flushes_give_the_same_windows_as_one_request_at_a_time() -> None:
    """The queue is folded in batches, successes without a schedule apart from the rest; whatever
    the mix and order, the windows equal those of folding every request on its own."""
    import random

    rng = random.Random(7)
    requests = []
    for i in range(3000):
        kind = rng.random()
        sent = T0 + i * 0.004 + rng.random() * 0.002
        latency = rng.lognormvariate(2.5, 1.2) if rng.random() > 0.02 else None
        name = f"/e{rng.randrange(5)}"
        if kind < 0.6:  # a success without a schedule: the allocation-free queue
            requests.append(("GET", name, latency, False, None, sent))
        elif kind < 0.7:
            requests.append(("GET", name, latency, True, "HTTPError: 503", sent))
        else:  # scheduled: intended start up to 300 ms before the send, every 100 ms
            requests.append(("GET", name, latency, rng.random() < 0.1, None, sent, sent - rng.random() * 0.3, 100.0))
    one, batched = WindowStore(clock=FakeClock(T0 + 30.0)), WindowStore(clock=FakeClock(T0 + 30.0))
    for args in requests:
        one.record_request(*args)  # type: ignore[arg-type]
        one.flush()
        batched.record_request(*args)  # type: ignore[arg-type]
    assert _canonical(one) == _canonical(batched)
    assert batched.snapshot().total.requests == 3000


def test_an_infinite_latency_is_refused_before_anything_is_counted() -> None:
    store = WindowStore(clock=FakeClock(float(T0)))
    with pytest.raises(MetricsError, match="finite"):
        store.record_request("GET", "/a", float("inf"), False, None, T0 + 0.5)
    assert store.snapshot().total.requests == 0


def test_a_long_stall_at_a_short_interval_back_fills_every_prevented_request_in_its_second() -> None:
    """10 s stall, 1 ms schedule: 9,999 back-filled samples, V - k*I due at start + k*I, counted per
    second as the expected-interval method says (recorded as one series per second)."""
    store = WindowStore(clock=FakeClock(float(T0)))
    start = T0 + 0.25
    store.record_request("GET", "/a", 10_000.0, False, None, start, start, 1.0)
    snap = store.snapshot()
    assert snap.total.backfilled == 9_999
    expected: dict[int, int] = {}
    for k in range(1, 10_000):
        t = int(start + k * 1.0 / 1000.0)
        expected[t] = expected.get(t, 0) + 1
    assert {s.t: s.backfilled for s in snap.seconds if s.backfilled} == expected
    corrected = snap.total.corrected
    assert corrected is not None and corrected.count == 10_000
    assert corrected.min_ms == pytest.approx(1.0) and corrected.max_ms == pytest.approx(10_000.0)
    assert corrected.quantile(0.5) == pytest.approx(5_000.0, rel=0.005)


def test_back_fill_one_by_one_and_by_series_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few back-filled samples are queued one by one, more as one series per second: both ways
    give the same windows."""
    import random

    from reliability.metrics import windows

    rng = random.Random(11)
    cases = [(T0 + rng.random() * 3, rng.uniform(1, 3000), rng.choice([1.0, 7.5, 50.0, 100.0, 333.0]))
             for _ in range(300)]

    def stored(few: int) -> tuple[object, ...]:
        monkeypatch.setattr(windows, "FEW_BACKFILLED", few)
        store = WindowStore(clock=FakeClock(T0 + 10.0))
        for start, latency, interval in cases:
            store.record_request("GET", f"/e{int(interval)}", latency, False, None, start, start, interval)
        return _canonical(store)

    assert stored(10**9) == stored(0)


def test_the_numpy_flush_gives_the_same_windows_as_the_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Successes, with and without a schedule, are folded in numpy from VECTOR_FLUSH_FROM queued on:
    grouped by second and endpoint (names and request types equal but not the same objects
    included), with requests completing seconds later, seconds already rolled up, endpoints that
    already have a corrected histogram, back-fill, no interval, a lag origin of their own, and
    failures queued in between. The windows and the schedule lag equal the plain loop's."""
    import random

    from reliability.metrics import windows

    rng = random.Random(5)
    types = ["GET", "POST", "".join(["G", "E", "T"])]  # the last equals "GET" but is another object
    names = ["/a", "/b", "/c/" + str(rng.randrange(10)), "".join(["/", "a"])]
    base = T0 + 400  # beyond the 300 s fine horizon of a store whose clock reads T0 + 700
    batch = []
    for i in range(5000):
        latency = rng.lognormvariate(2.0, 1.5) if i % 97 else rng.uniform(1000.0, 4000.0)  # some spill
        batch.append((rng.choice(types), rng.choice(names), latency, base + rng.random() * 20.0))
    old = [(rng.choice(types), "/a", 5.0, T0 + 10 + rng.random() * 5) for _ in range(200)]  # rolled up
    scheduled = []  # intended up to 0.5 s before the send; intervals 100 ms, none, or 2 s; some lag origins
    for i in range(3000):
        sent = base + rng.random() * 20.0
        intended = sent - rng.random() * 0.5
        interval = rng.choice([100.0, None, 2000.0])
        lag_from = None if i % 3 else intended + rng.random() * 0.1
        latency = rng.lognormvariate(2.0, 1.5) if i % 89 else rng.uniform(1000.0, 3000.0)
        scheduled.append((rng.choice(types), rng.choice(names), latency, False, None, sent, intended, interval,
                          lag_from))

    def stored(vector_from: int) -> tuple[object, ...]:
        monkeypatch.setattr(windows, "VECTOR_FLUSH_FROM", vector_from)
        clock = FakeClock(T0 + 700.0)
        store = WindowStore(clock=clock)
        store.record_request("GET", "/b", 3.0, False, None, base + 1.5, base + 1.2, 100.0)  # a corrected hist
        store.record_request("GET", "/a", 3.0, False, None, T0 + 11.5, T0 + 11.2, 100.0)
        store.flush()
        store.rollup()  # seconds before T0 + 400 go to the minute level
        for request_type, name, latency, sent in old + batch:
            store.record_request(request_type, name, latency, False, None, sent)
        for i, args in enumerate(scheduled):
            store.record_request(*args)  # type: ignore[arg-type]
            if i % 700 == 0:
                store.record_request("GET", "/a", 2.0, True, "HTTPError: 500", base + 3.0)  # pending between
        return _canonical(store)

    plain, vector = stored(10**9), stored(1)
    assert plain == vector
    endpoints = plain[0]
    assert isinstance(endpoints, tuple) and sum(e[2] for e in endpoints) == 8207  # type: ignore[index]
    assert sum(e[4] for e in endpoints) > 0  # type: ignore[index]  # some back-filled


def test_the_numpy_flush_keeps_nothing_back_when_send_times_cannot_be_grouped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Send times too far apart for one integer group key go through the plain loop."""
    answers: list[bool] = []
    vector = WindowStore._flush_quick_arrays

    def spy(self: WindowStore, *args: object) -> bool:
        answers.append(vector(self, *args))  # type: ignore[arg-type]
        return answers[-1]

    monkeypatch.setattr(WindowStore, "_flush_quick_arrays", spy)
    store = WindowStore(clock=FakeClock(1e17))
    for i in range(200):
        store.record_request("GET", f"/e{i % 3}", 5.0, False, None, 1e16 * (i % 2) + i)
    assert store.snapshot(0, 2e16).total.requests == 200
    assert answers == [False]


def test_requests_killed_in_flight_at_the_stop_are_held_to_it_and_survive_drain_and_rollup() -> None:
    clock = FakeClock(T0 + 10)
    worker, master = WindowStore(clock=clock), WindowStore(clock=clock)
    for store in (worker, master):
        store.record_request("GET", "/a", 5.0, False, None, T0 + 0.2, T0 + 0.2, 100.0)
    # two tasks due at T0+1.5 and one at T0+3.9, none completed when the users stopped at T0+6.4;
    # a NaN and a start after the stop are no evidence
    assert worker.record_held_at_stop([T0 + 1.5, T0 + 1.7, T0 + 3.9, float("nan"), T0 + 7.0], T0 + 6.4) == 3
    held = {s.t: s.held for s in worker.snapshot().seconds}
    assert held == {T0: 0, T0 + 2: 2, T0 + 3: 2, T0 + 4: 3, T0 + 5: 3}  # whole seconds after the send, before the stop
    for t in (T0 + 2, T0 + 5):
        second = next(s for s in worker.snapshot().seconds if s.t == t)
        assert second_state(second, 0.05) == STALLED
    payload = worker.drain(final=True)
    assert payload.get("hs") == 3
    master_before = master.snapshot().seconds
    master.merge_payload(payload)
    assert master.held_at_stop == 3 and worker.drain(final=True).get("hs") is None  # sent once
    assert {s.t: s.held for s in master.snapshot().seconds if s.held} == {k: v for k, v in held.items() if v}
    assert len(master.snapshot().seconds) > len(master_before)
    # a stall older than the fine horizon lands in the already summarised timeline as well
    old = WindowStore(clock=FakeClock(T0), fine_horizon_s=10)
    old.record_request("GET", "/a", 5.0, False, None, T0 + 0.2)
    old.rollup(T0 + 100)
    old.record_held_at_stop([T0 + 0.5], T0 + 3.5)
    assert {s.t: s.held for s in old.snapshot().seconds} == {T0: 0, T0 + 1: 1, T0 + 2: 1}
