"""Run by test_plugin_listener.py in a subprocess of its own (it imports locust).

``reliability.request_dispatch``: the request event's dispatch the plugin takes over behaves as
Locust's own ``EventHook.fire`` for every other listener, case by case, side by side with a hook
Locust dispatches itself. Every test runs twice: with the compiled dispatch and with the Python
one (``RELIABILITY_DISPATCH``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from gevent import GreenletExit
from locust import log as locust_log
from locust.env import Environment
from locust.event import EventHook
from locust.exception import RescheduleTask, StopUser

import reliability.plugin as plugin_module
from reliability import request_dispatch
from reliability.request_dispatch import can_take_over, give_back, take_over, use_compiled

T0 = 1_700_000_000.0


@pytest.fixture(autouse=True, params=["compiled", "python"])
def dispatch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The dispatch the plugin installs in this test (skipped where the extension is not built)."""
    if request.param == "compiled" and not request_dispatch.COMPILED_AVAILABLE:
        pytest.skip("reliability._dispatch is not built (no C compiler at install time)")
    monkeypatch.setenv(request_dispatch.DISPATCH_ENV, request.param)
    return str(request.param)


def _event(i: int, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"request_type": "GET", "name": f"/r{i % 3}", "response_time": 5.0 + i,
                              "response_length": 10, "response": None, "context": {}, "exception": None,
                              "start_time": T0 + i * 0.1, "url": None}
    kwargs.update(overrides)
    return kwargs


def _pair() -> tuple[Environment, EventHook, EventHook]:
    """An environment with the plugin (its hook taken over) and a plain hook Locust dispatches."""
    env = Environment()
    plugin = plugin_module.install(env)
    taken = env.events.request
    assert vars(taken)["fire"] is plugin._request_fire
    assert (type(plugin._request_fire).__name__ == "Fire") == use_compiled()
    return env, taken, EventHook()


def _same_on_both(taken: EventHook, plain: EventHook, make: Callable[[list[tuple[str, object]], EventHook],
                                                                        list[Callable[..., None]]],
                  fire_kwargs: dict[str, Any]) -> list[tuple[str, object]]:
    """Add the listeners ``make`` builds to each hook, fire each once, and return the call log
    (which must be the same for both hooks)."""
    logs: list[list[tuple[str, object]]] = []
    for hook in (taken, plain):
        log: list[tuple[str, object]] = []
        added = make(log, hook)
        for handler in added:
            hook.add_listener(handler)
        try:
            hook.fire(**fire_kwargs)
        except BaseException as exc:  # KeyboardInterrupt, GreenletExit too: what fire passes on
            log.append(("raised", type(exc).__name__))
        for handler in list(hook._handlers):
            if handler in added:
                hook.remove_listener(handler)
        logs.append(log)
    assert logs[0] == logs[1]
    return logs[0]


def test_listeners_run_in_order_with_the_same_keywords_and_reverse_runs_them_backwards() -> None:
    env, taken, plain = _pair()

    def make(log: list[tuple[str, object]], _hook: EventHook) -> list[Callable[..., None]]:
        def first(**kw: Any) -> None:
            log.append(("first", sorted(kw.items(), key=lambda item: item[0])))

        def second(name: str, **_kw: Any) -> None:
            log.append(("second", name))
        return [first, second]

    log = _same_on_both(taken, plain, make, _event(1))
    assert [entry[0] for entry in log] == ["first", "second"]
    log = _same_on_both(taken, plain, make, {**_event(2), "reverse": True})
    assert [entry[0] for entry in log] == ["second", "first"]
    assert env.reliability.store.snapshot().total.requests == 2  # type: ignore[attr-defined]  # one hook counts


def test_a_listener_that_adds_or_removes_listeners_while_firing_changes_only_later_events() -> None:
    _env, taken, plain = _pair()

    def make(log: list[tuple[str, object]], hook: EventHook) -> list[Callable[..., None]]:
        def late(**_kw: Any) -> None:
            log.append(("late", None))

        def changer(**_kw: Any) -> None:
            log.append(("changer", None))
            hook.add_listener(late)
            hook.remove_listener(victim)

        def victim(**_kw: Any) -> None:
            log.append(("victim", None))
        return [changer, victim]

    log = _same_on_both(taken, plain, make, _event(3))
    assert log == [("changer", None), ("victim", None)]  # the copy of the list taken before


def test_a_failing_listener_is_logged_and_marked_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    env, taken, plain = _pair()
    for hook in (taken, plain):
        calls: list[str] = []

        def broken(calls: list[str] = calls, **_kw: Any) -> None:
            calls.append("broken")
            raise ValueError("listener bug")

        def after(calls: list[str] = calls, **_kw: Any) -> None:
            calls.append("after")

        hook.add_listener(broken)
        hook.add_listener(after)
        locust_log.unhandled_greenlet_exception = False
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            hook.fire(**_event(4))
        assert calls == ["broken", "after"]
        assert locust_log.unhandled_greenlet_exception is True
        assert any("Uncaught exception in event handler" in r.getMessage() and "listener bug" in r.getMessage()
                   for r in caplog.records)
        hook.remove_listener(broken)
        hook.remove_listener(after)
    locust_log.unhandled_greenlet_exception = False
    assert env.reliability.store.snapshot().total.requests == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("control", [StopUser, RescheduleTask, KeyboardInterrupt, GreenletExit])
def test_locusts_control_flow_exceptions_pass_through(control: type[BaseException]) -> None:
    env, taken, plain = _pair()

    def make(log: list[tuple[str, object]], _hook: EventHook) -> list[Callable[..., None]]:
        def stopper(**_kw: Any) -> None:
            log.append(("stopper", None))
            raise control()

        def after(**_kw: Any) -> None:
            log.append(("after", None))
        return [stopper, after]

    log = _same_on_both(taken, plain, make, _event(5))
    assert log == [("stopper", None), ("raised", control.__name__)]
    assert env.reliability.store.snapshot().total.requests == 1  # type: ignore[attr-defined]


def test_positional_arguments_are_refused_as_locusts_fire_refuses_them() -> None:
    env, taken, plain = _pair()
    for hook in (taken, plain):
        with pytest.raises(TypeError, match="positional"):
            hook.fire("GET", **_event(9))
    assert env.reliability.store.snapshot().total.requests == 0  # type: ignore[attr-defined]


def test_an_event_without_a_request_type_is_logged_and_leaves_nothing_queued(caplog: pytest.LogCaptureFixture) -> None:
    env, taken, _plain = _pair()
    plugin = env.reliability  # type: ignore[attr-defined]
    event = _event(10)
    del event["request_type"]
    locust_log.unhandled_greenlet_exception = False
    with caplog.at_level(logging.ERROR):
        taken.fire(**event)
    assert locust_log.unhandled_greenlet_exception is True
    assert any("request_type" in r.getMessage() for r in caplog.records)
    assert (len(plugin.store.quick), len(plugin.store.quick_ms)) == (0, 0)  # no half-queued request
    taken.fire(**_event(11))
    assert plugin.store.snapshot().total.requests == 1
    locust_log.unhandled_greenlet_exception = False


def test_the_dispatch_switch_takes_python_compiled_or_warns_about_anything_else(
        caplog: pytest.LogCaptureFixture) -> None:
    assert use_compiled({request_dispatch.DISPATCH_ENV: "python"}) is False
    assert use_compiled({request_dispatch.DISPATCH_ENV: "compiled"}) is request_dispatch.COMPILED_AVAILABLE
    assert use_compiled({}) is request_dispatch.COMPILED_AVAILABLE
    with caplog.at_level(logging.WARNING):
        assert use_compiled({request_dispatch.DISPATCH_ENV: "fast"}) is request_dispatch.COMPILED_AVAILABLE
    assert any("must be 'python' or 'compiled', got 'fast'" in r.getMessage() for r in caplog.records)


def test_the_plugins_own_failure_is_logged_like_a_listeners_and_locusts_listeners_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    env, taken, _plain = _pair()
    plugin = env.reliability  # type: ignore[attr-defined]
    seen: list[str] = []
    taken.add_listener(lambda name, **_kw: seen.append(name))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("plugin bug")

    plugin.count_other_request = broken  # the general path (a failure takes it) raises
    locust_log.unhandled_greenlet_exception = False
    with caplog.at_level(logging.ERROR):
        taken.fire(**_event(6, exception=ConnectionError("refused")))
    assert seen == ["/r0"]
    assert locust_log.unhandled_greenlet_exception is True
    assert any("plugin bug" in r.getMessage() for r in caplog.records)
    locust_log.unhandled_greenlet_exception = False


def test_an_event_without_locusts_full_keywords_is_counted_by_the_general_path() -> None:
    env, taken, _plain = _pair()
    taken.fire(request_type="redis", name="get", response_time=1.5, response_length=0)
    taken.fire(request_type="redis", name="get", response_time=2.5, response_length=0, exception=KeyError("k"))
    snap = env.reliability.store.snapshot()  # type: ignore[attr-defined]
    assert (snap.total.requests, snap.total.failures) == (2, 1)
    assert not locust_log.unhandled_greenlet_exception


def test_taking_over_is_idempotent_reversible_and_only_for_locusts_plain_hook() -> None:
    env = Environment()
    hook = env.events.request
    plugin = plugin_module.install(env)
    fire = vars(hook)["fire"]
    plugin.count_requests()  # again: nothing changes
    assert vars(hook)["fire"] is fire and plugin.on_request not in hook._handlers
    plugin.stop_counting_requests()
    assert "fire" not in vars(hook) and hook.fire.__func__ is EventHook.fire
    hook.fire(**_event(7))
    assert plugin.store.snapshot().total.requests == 0  # not counting
    plugin.count_requests()
    hook.fire(**_event(8))
    assert plugin.store.snapshot().total.requests == 1
    # a hook whose fire somebody else replaced, or a subclass of Locust's, is not taken over
    replaced = EventHook()
    replaced.fire = lambda **_kw: None  # type: ignore[method-assign]
    assert not can_take_over(replaced)

    class Custom(EventHook):
        pass

    assert not can_take_over(Custom()) and can_take_over(EventHook())
    # give_back leaves alone a fire that is not the one it took over with
    other = EventHook()
    mine = take_over(other, plugin)
    other.fire = lambda **_kw: None  # type: ignore[method-assign]
    give_back(other, mine)
    assert vars(other)["fire"] is not mine
