"""Run by test_plugin_listener.py in a subprocess of its own (it imports locust).

The plugin's request listener: the inline queue for the common request and the general path for
everything else give the windows ``WindowStore`` gives for the same requests."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from locust import log as locust_log
from locust.env import Environment
from locust.event import EventHook

import reliability.plugin as plugin_module
from reliability import request_dispatch
from reliability.metrics import WindowStore
from tests.support.fakes import FakeClock

T0 = 1_700_000_000
MODES = ["compiled", "python", "listener"]  # the plugin's compiled dispatch, its Python one, its listener


def _install(mode: str, env: Environment, clock: FakeClock,
             monkeypatch: pytest.MonkeyPatch) -> plugin_module.ReliabilityPlugin:
    """The plugin on ``env``, counting requests the way ``mode`` names."""
    hook = env.events.request
    if mode == "compiled" and not request_dispatch.COMPILED_AVAILABLE:
        pytest.skip("reliability._dispatch is not built (no C compiler at install time)")
    monkeypatch.setenv(request_dispatch.DISPATCH_ENV, "python" if mode == "python" else "compiled")
    if mode == "listener":
        hook.fire = functools.partial(EventHook.fire, hook)  # somebody else's fire: not taken over
    plugin = plugin_module.install(env, clock=clock)
    if mode == "listener":
        assert plugin._request_fire is None and plugin.on_request in hook._handlers
    else:
        assert vars(hook)["fire"] is plugin._request_fire and plugin.on_request not in hook._handlers
        assert (type(plugin._request_fire).__name__ == "Fire") == (mode == "compiled")
    return plugin


class _Stamp:
    """Compares with floats like a time, yet is no number (no ``__float__``)."""

    def __init__(self, s: float) -> None:
        self.s = s

    def __le__(self, other: object) -> bool:
        return self.s <= other  # type: ignore[operator]

    def __lt__(self, other: object) -> bool:
        return self.s < other  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        return self.s >= other  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        return self.s > other  # type: ignore[operator]


@pytest.mark.parametrize("mode", MODES)
def test_every_kind_of_request_event_lands_where_the_store_puts_it(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the plugin's own dispatch of the event (Locust's plain hook; compiled and Python)
    and, where somebody replaced the hook's ``fire`` before, through the plugin's listener: the
    same windows."""
    clock = FakeClock(T0 + 50.0)
    env = Environment()
    plugin = _install(mode, env, clock, monkeypatch)
    reference = WindowStore(clock=clock)
    fire = env.events.request.fire
    for i in range(3000):
        sent = T0 + i * 0.01
        kind = i % 6
        latency: float | int | None = 2.0 + (i % 50)
        context: dict[str, object] = {}
        exception: BaseException | None = None
        if kind == 1:
            latency = int(latency)  # an int latency from a custom user: the general path
        elif kind == 2:
            exception = ConnectionError("refused")
        elif kind == 3:
            context = {"cache": "hit" if i % 12 == 3 else "miss"}
        elif kind == 4:
            latency = None
        fire(request_type="GET", name=f"/e{i % 4}", response_time=latency, response_length=0, response=None,
             context=context, exception=exception, start_time=sent, url=None)
        error = None if exception is None else f"ConnectionError: {exception}"
        reference.record_request("GET", f"/e{i % 4}", latency, exception is not None, error, sent)
    for bad_start in (math.nan, math.inf, 12.5, None, "1700000001", _Stamp(T0 + 1.0)):
        # not a number of epoch seconds: counted at completion (the stamp compares like one and
        # fails only when the inline queue converts it: nothing of it may stay queued)
        fire(request_type="GET", name="/late", response_time=3.0, response_length=0, response=None, context={},
             exception=None, start_time=bad_start, url=None)
        reference.record("GET", "/late", 3.0, False)
    # other real numbers are numbers: an int or numpy send time counts in its second, failed or not
    for i, (sent_as, latency_as) in enumerate([(int, float), (np.float64, float), (int, int), (float, np.float32),
                                               (float, Fraction)]):
        for failed in (False, True):
            sent, latency = T0 + 20 + i, 4.5 + i
            fire(request_type="GET", name="/numbers", response_time=latency_as(latency), response_length=0,
                 response=None, context={}, exception=ConnectionError("x") if failed else None,
                 start_time=sent_as(sent), url=None)
            reference.record_request("GET", "/numbers", float(latency_as(latency)), failed,
                                     "ConnectionError: x" if failed else None, float(sent_as(sent)))
    # a latency that is no valid number of ms (the inline queue takes it unchecked, the flush sets
    # it aside): counted in its send second without a latency, like the general path's
    for i, bad_latency in enumerate((math.nan, -1.0, math.inf, -math.inf, -3)):
        for failed in (False, True):
            sent = T0 + 30 + i
            fire(request_type="GET", name="/bad", response_time=bad_latency, response_length=0, response=None,
                 context={}, exception=ConnectionError("y") if failed else None, start_time=sent, url=None)
            reference.record_request("GET", "/bad", None, failed, "ConnectionError: y" if failed else None, sent)
    mine, theirs = plugin.store.snapshot(), reference.snapshot()
    assert [(e.name, e.requests, e.failures, e.hist.to_payload()["c"]) for e in mine.endpoints] == \
        [(e.name, e.requests, e.failures, e.hist.to_payload()["c"]) for e in theirs.endpoints]
    assert mine.seconds == theirs.seconds and mine.total.requests == 3026
    assert sum(hits + misses for hits, misses in plugin._cache_counts.values()) == 500
    # Locust only logs a listener's exception (and exits 2 later): none may have been raised
    assert not locust_log.unhandled_greenlet_exception


@pytest.mark.parametrize("mode", MODES)
def test_scheduled_requests_land_where_the_store_puts_them(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With intended-start marks (a paced user): the first success of a marked task is queued with
    its schedule, the task's later requests, failures and unmarked requests are not, in both modes."""
    import gevent

    from reliability.pacing import mark_intended_start

    clock = FakeClock(T0 + 50.0)
    env = Environment()
    hook = env.events.request
    plugin = _install(mode, env, clock, monkeypatch)
    plugin.expect_intended_starts()
    reference = WindowStore(clock=clock)

    def task(i: int) -> None:
        sent = T0 + i * 0.05
        marked = i % 4 != 3
        if marked:
            mark_intended_start(sent - 0.02 * (i % 5), 0.01)  # late by up to 80 ms: back-fills
        failed = i % 7 == 0
        exception = ConnectionError("down") if failed else None
        error = "ConnectionError: down" if failed else None
        latency = 3.0 + i % 11
        hook.fire(request_type="GET", name=f"/p{i % 3}", response_time=latency, response_length=0, response=None,
                  context={}, exception=exception, start_time=sent, url=None)
        if marked:
            reference.record_request("GET", f"/p{i % 3}", latency, failed, error, sent, sent - 0.02 * (i % 5), 10.0)
        else:
            reference.record_request("GET", f"/p{i % 3}", latency, failed, error, sent)
        # the task's second request: its start was consumed, the interval stays
        hook.fire(request_type="GET", name="/then", response_time=2.0, response_length=0, response=None,
                  context={}, exception=None, start_time=sent + 0.004, url=None)
        reference.record_request("GET", "/then", 2.0, False, None, sent + 0.004, None, 10.0 if marked else None)

    for i in range(400):
        gevent.spawn(task, i).join()
    mine, theirs = plugin.store.snapshot(), reference.snapshot()
    assert [(e.name, e.requests, e.failures, e.hist.to_payload()["c"],
             None if e.corrected is None else e.corrected.to_payload()["c"]) for e in mine.endpoints] == \
        [(e.name, e.requests, e.failures, e.hist.to_payload()["c"],
          None if e.corrected is None else e.corrected.to_payload()["c"]) for e in theirs.endpoints]
    assert mine.seconds == theirs.seconds and mine.total.requests == 800 and mine.total.backfilled > 0
    assert plugin.store.schedule_lag().to_payload() == reference.schedule_lag().to_payload()
    assert not locust_log.unhandled_greenlet_exception


def _windows(plugin: plugin_module.ReliabilityPlugin) -> tuple[object, ...]:
    """What a store holds: per endpoint its counts and both histograms, the seconds, the lag."""
    snap = plugin.store.snapshot()
    return ([(e.name, e.requests, e.failures, e.hist.to_payload()["c"],
              None if e.corrected is None else e.corrected.to_payload()["c"]) for e in snap.endpoints],
            snap.seconds, snap.total.requests, snap.total.backfilled, plugin.store.schedule_lag().to_payload())


@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_scheduled_events_of_every_kind_are_counted_as_the_plugins_listener_counts_them(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A marked task's first request of every shape (float, int, numpy and missing times, invalid
    latencies, failures, contexts): the dispatch queues only the float successes itself and gives
    the rest to the general path, which must leave the windows the plugin's listener leaves."""
    import gevent

    from reliability.pacing import mark_intended_start

    latencies: list[object] = [4.0, 7, np.float64(6.5), math.nan, -2.0, math.inf, 3.0, 3.0, 3.0, 3.0, 3.0]
    starts: list[object] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "int", "numpy", "perf", "none", 0.0]

    def run(on: str) -> tuple[object, ...]:
        env = Environment()
        plugin = _install(on, env, FakeClock(T0 + 90.0), monkeypatch)
        plugin.expect_intended_starts()

        def task(i: int) -> None:
            sent = T0 + i * 0.02
            mark_intended_start(sent - 0.015 * (i % 4), 0.005)
            kind = i % len(latencies)
            start: object = {"int": int(sent), "numpy": np.float64(sent), "perf": 12.5,
                             "none": None}.get(starts[kind], sent)  # type: ignore[call-overload]
            exception = ConnectionError("down") if i % 13 == 0 else None
            context = {"cache": "hit"} if i % 17 == 0 else {}
            env.events.request.fire(request_type="GET", name=f"/k{kind}", response_time=latencies[kind],
                                    response_length=0, response=None, context=context, exception=exception,
                                    start_time=start, url=None)
            env.events.request.fire(request_type="GET", name="/second", response_time=1.5, response_length=0,
                                    response=None, context={}, exception=None, start_time=sent + 0.001, url=None)

        for i in range(660):
            gevent.spawn(task, i).join()
        return _windows(plugin)

    mine, theirs = run(mode), run("listener")
    assert mine == theirs
    assert mine[2] == 1320 and mine[3] > 0  # type: ignore[operator]
    assert not locust_log.unhandled_greenlet_exception


@pytest.mark.parametrize("mode", MODES)
def test_the_scheduled_queue_flushes_at_its_limit(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import gevent

    from reliability.metrics.windows import PACED_QUEUE_LIMIT
    from reliability.pacing import mark_intended_start

    env = Environment()
    plugin = _install(mode, env, FakeClock(T0 + 90.0), monkeypatch)
    plugin.expect_intended_starts()
    reference = WindowStore(clock=FakeClock(T0 + 90.0))
    tasks = PACED_QUEUE_LIMIT // 7 + 5

    def task(i: int) -> None:
        sent = T0 + i * 0.004
        mark_intended_start(sent - 0.001, 0.01)
        env.events.request.fire(request_type="GET", name="/f", response_time=2.0 + i % 9, response_length=0,
                                response=None, context={}, exception=None, start_time=sent, url=None)
        reference.record_request("GET", "/f", 2.0 + i % 9, False, None, sent, sent - 0.001, 10.0)

    for i in range(tasks):
        gevent.spawn(task, i).join()
    if mode != "listener":  # the listener's path queues through the store's own record_request
        assert len(plugin.store.paced) == 7 * 5  # flushed once, at the limit
    snap, expected = plugin.store.snapshot(), reference.snapshot()
    assert snap.total.requests == tasks and snap.seconds == expected.seconds
    assert snap.total.corrected.to_payload()["c"] == expected.total.corrected.to_payload()["c"]  # type: ignore[union-attr]
    assert not locust_log.unhandled_greenlet_exception


@pytest.mark.parametrize("mode", MODES)
def test_a_mark_that_is_no_intended_start_is_logged_and_counts_nothing(
        mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import gevent

    from reliability.pacing import MARK_ATTR

    monkeypatch.setattr(locust_log, "unhandled_greenlet_exception", False)
    env = Environment()
    plugin = _install(mode, env, FakeClock(T0 + 90.0), monkeypatch)
    plugin.expect_intended_starts()

    def task() -> None:
        setattr(gevent.getcurrent(), MARK_ATTR, object())  # somebody else's object under the name
        env.events.request.fire(request_type="GET", name="/m", response_time=2.0, response_length=0, response=None,
                                context={}, exception=None, start_time=T0 + 1.0, url=None)

    with caplog.at_level("ERROR"):
        gevent.spawn(task).join()
    assert plugin.store.snapshot().total.requests == 0
    assert locust_log.unhandled_greenlet_exception and "AttributeError" in caplog.text
