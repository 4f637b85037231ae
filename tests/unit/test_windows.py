"""Per-second windows: recording on a fake clock, worker drain -> master merge, roll-up."""

from __future__ import annotations

import random

import pytest

from reliability.exceptions import MetricsError
from reliability.metrics import WindowStore, component_of
from tests.support.fakes import FakeClock

T0 = 1_000_000.0


def _fill(store: WindowStore, clock: FakeClock, seconds: int, per_second: int, fail_every: int = 0,
          seed: int = 5) -> None:
    rng = random.Random(seed)
    start = clock.now
    for s in range(seconds):
        for i in range(per_second):
            clock.now = start + s + i / per_second
            failed = bool(fail_every) and i % fail_every == 0
            store.record("GET", "/a" if i % 2 else "/b", rng.lognormvariate(3, 0.5), failed, "HTTP 500")
    clock.now = start + seconds


def test_record_and_snapshot_per_endpoint_and_second() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    _fill(store, clock, seconds=5, per_second=100, fail_every=10)
    snap = store.snapshot()
    assert snap.total.requests == 500 and snap.total.failures == 50
    assert [e.name for e in snap.endpoints] == ["/a", "/b"]
    assert len(snap.seconds) == 5 and all(s.requests == 100 for s in snap.seconds)
    assert snap.components[0].name == "api"
    rolling = store.snapshot(int(clock.now) - 2, int(clock.now))
    assert rolling.total.requests == 200
    assert store.errors()[0][2:] == ("HTTP 500", 50)


def test_drain_then_merge_on_master_equals_local() -> None:
    clock = FakeClock(T0)
    local = WindowStore(clock=clock)
    workers = [WindowStore(clock=clock) for _ in range(3)]
    master = WindowStore(clock=clock)
    rng = random.Random(9)
    for s in range(6):
        for i in range(300):
            clock.now = 1_000_000 + s + i / 300
            value = rng.lognormvariate(3.5, 0.7)
            failed = i % 37 == 0
            local.record("GET", "/x", value, failed)
            workers[i % 3].record("GET", "/x", value, failed)
        if s % 3 == 2:  # a report every 3 s carries the closed seconds only
            for w in workers:
                master.merge_payload(w.drain())
    for w in workers:
        master.merge_payload(w.drain(final=True))
    a, b = local.snapshot(), master.snapshot()
    assert (a.total.requests, a.total.failures) == (b.total.requests, b.total.failures) == (1800, 54)
    for q in (0.5, 0.95, 0.99):
        assert a.total.latency_ms(q) == b.total.latency_ms(q)
    assert [(s.t, s.requests) for s in a.seconds] == [(s.t, s.requests) for s in b.seconds]


def test_drain_keeps_the_current_second_unless_final() -> None:
    clock = FakeClock(2_000_000.5)
    store = WindowStore(clock=clock)
    store.record("GET", "/x", 5.0, False)
    assert store.drain()["w"] == []
    assert len(store.drain(final=True)["w"]) == 1


def test_rollup_bounds_windows_and_keeps_counts_and_timeline_exact() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock, fine_horizon_s=30, minute_horizon_s=120)
    start = int(clock.now)
    _fill(store, clock, seconds=400, per_second=20, fail_every=5)
    before = store.snapshot()
    store.rollup()
    fine, minutes, hours = store.window_count()
    assert fine <= 31 and minutes <= 3 + 1 and hours >= 1
    after = store.snapshot()
    assert (after.total.requests, after.total.failures) == (before.total.requests, before.total.failures)
    assert after.total.latency_ms(0.95) == before.total.latency_ms(0.95)  # exact merge survives roll-up
    assert len(after.seconds) == 400 and all(s.requests == 20 and s.failures == 4 for s in after.seconds)
    timeline = store.timeline()
    assert [row[0] for row in timeline] == list(range(start, start + 400))
    assert all(row[4] is not None for row in timeline)


def test_late_worker_data_after_rollup_still_counts() -> None:
    clock = FakeClock(T0)
    worker = WindowStore(clock=clock)
    master = WindowStore(clock=clock, fine_horizon_s=10, minute_horizon_s=60)
    worker.record("GET", "/x", 3.0, True)
    clock.now += 100
    master.rollup()
    master.merge_payload(worker.drain())
    snap = master.snapshot()
    assert snap.total.requests == 1 and snap.total.failures == 1
    assert snap.seconds[0].failures == 1


def test_partial_windows_are_flagged() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    _fill(store, clock, seconds=3, per_second=10)
    t0 = int(clock.now) - 3
    store.mark_partial(t0 + 1, t0 + 2)
    assert [s.partial for s in store.snapshot().seconds] == [False, True, False]


def test_users_are_noted_per_second_even_without_traffic() -> None:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    store.note_users(int(clock.now), 42)
    assert store.snapshot().seconds[0].users == 42
    assert store.timeline()[0][1] == 42


def test_bad_payload_is_a_metrics_error() -> None:
    with pytest.raises(MetricsError):
        WindowStore().merge_payload({"v": 1, "w": [{"t": 1}], "err": []})  # type: ignore[typeddict-item]
    with pytest.raises(MetricsError, match="version"):
        WindowStore().merge_payload({"v": 9, "w": [], "err": []})


@pytest.mark.parametrize(
    ("request_type", "component"),
    [("GET", "api"), ("post", "api"), ("postgres", "db"), ("redis", "cache"), ("ws", "ws"), ("grpc", "other")],
)
def test_components_derive_from_request_type(request_type: str, component: str) -> None:
    assert component_of(request_type) == component


def test_component_override_wins() -> None:
    assert component_of("grpc", {"grpc": "api"}) == "api"
    clock = FakeClock(T0)
    store = WindowStore(clock=clock, components={"redis": "session-store"})
    store.record("redis", "GET session", 1.0, False)
    assert store.snapshot().endpoints[0].component == "session-store"


def test_error_kinds_are_bounded() -> None:
    store = WindowStore(clock=FakeClock(T0))
    for i in range(200):
        store.record("GET", "/x", 1.0, True, f"error {i}")
    kinds = {m for _, _, m, _ in store.errors()}
    assert len(kinds) == 51 and "(other)" in kinds


def test_invalid_latency_is_not_counted() -> None:
    store = WindowStore(clock=FakeClock(T0))
    with pytest.raises(MetricsError):
        store.record("GET", "/x", float("nan"), True, "boom")
    assert store.snapshot().total.requests == 0 and store.errors() == []
