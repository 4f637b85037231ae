"""The ``request`` event's dispatch on a load generator: Locust's own loop over the listeners, with
the plugin's count of the common request done first, inside it.

A Locust listener is called as ``handler(**kwargs)``: the event's nine keywords are unpacked from
the dict and bound to the listener's parameters once per listener and request. In a saturated
load generator, on cold caches, that call alone cost about 0.4-0.5 us, a third of what the
plugin added per request as a listener (``bench/overhead.py``). So where the hook is Locust's plain
``EventHook``, :func:`take_over` gives it a ``fire`` of its own (an instance attribute, the class
is untouched) that reads the common requests (a success without a context, sent at an epoch
``start_time``, with or without an intended-start mark) straight from the keyword dict into the
plugin's queues, then runs Locust's loop over the hook's listeners unchanged: the same order, the same copy
of the list (listeners may add or remove listeners while the event fires), Locust's control-flow
exceptions (``StopUser`` ...) passed on, any other exception of a listener logged and marked the
way Locust does (the process then exits 2). Every other request goes to the plugin's general
path (``count_other_request``), as from its listener. :func:`give_back` restores Locust's ``fire``.

The ``fire`` is compiled where the package's C extension was built (``reliability/_dispatch.c``,
the same steps; an install without a C compiler goes on without it): a saturated load generator
pays several times a bytecode's tight-loop price for each of this module's, between Locust's own
work that leaves the caches cold. This module's ``fire`` is its specification and its fallback;
``RELIABILITY_DISPATCH=python`` chooses it where both exist. The one difference: the compiled
``fire`` queues a success itself only when its latency and send time are Python floats (Locust's
are); an int or numpy number takes the general path, which counts it the same.

Locust is pinned to 2.47 (``pyproject.toml``); ``tests/integration/request_dispatch_inproc.py``
checks the loop against Locust's own ``EventHook.fire`` case by case.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from gevent import getcurrent
from locust import log as locust_log
from locust.event import EventHook
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser

from reliability.metrics.windows import PACED_QUEUE_LIMIT, QUICK_QUEUE_LIMIT, WindowStore
from reliability.pacing import MARK_ATTR, IntendedStart

try:
    from reliability._dispatch import Fire as _CompiledFire
except ImportError:  # built without a C compiler: the Python fire below does the same
    _CompiledFire = None

# what Locust's fire lets through from a listener (2.47: the same tuple)
_PASSED_ON = (StopUser, StopTest, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet)

COMPILED_AVAILABLE = _CompiledFire is not None
DISPATCH_ENV = "RELIABILITY_DISPATCH"  # "python": the Python fire even where the compiled one exists


class Counter(Protocol):
    """What the dispatch needs of the plugin (``reliability.plugin.ReliabilityPlugin``)."""

    store: WindowStore
    _expect_marks: bool

    def count_other_request(self, request_type: str, name: str, response_time: float | None,
                            context: Mapping[str, object] | None, exception: BaseException | None,
                            start_time: object) -> None: ...

    def queue_scheduled(self, mark: IntendedStart, request_type: str, name: str, response_time: object,
                        start_time: object) -> bool: ...


def can_take_over(hook: object) -> bool:
    """Whether ``hook`` is Locust's plain ``EventHook`` with its own ``fire`` (nobody replaced it)."""
    return (type(hook) is EventHook and "fire" not in vars(hook)
            and isinstance(getattr(hook, "_handlers", None), list))


def use_compiled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether :func:`take_over` gives the compiled ``fire``: where it is built, unless
    ``RELIABILITY_DISPATCH=python``. Any other value than ``python``/``compiled`` is logged as a
    warning (a diagnostic switch: it must not stop a load test) and the default taken."""
    choice = environ.get(DISPATCH_ENV, "").strip().lower()
    if choice not in ("", "python", "compiled"):
        logging.warning("%s must be 'python' or 'compiled', got %r: using the default", DISPATCH_ENV,
                        environ[DISPATCH_ENV])
    return COMPILED_AVAILABLE and choice != "python"


def _report(exc: BaseException) -> None:
    """A listener's (or the count's) error, logged and marked as Locust's ``fire`` does (the
    compiled ``fire`` calls it with the exception, its traceback attached)."""
    logging.error("Uncaught exception in event handler: \n%s", "".join(traceback.format_exception(exc)))
    locust_log.unhandled_greenlet_exception = True


def take_over(hook: EventHook, plugin: Counter, *, compiled: bool | None = None) -> Callable[..., None]:
    """Give ``hook`` (see :func:`can_take_over`) a ``fire`` that counts each request for ``plugin``
    and then calls the hook's listeners as Locust does. Returns that ``fire``: the compiled one when
    ``compiled`` (default: :func:`use_compiled`), else the Python one."""
    if compiled is None:
        compiled = use_compiled()
    if compiled:
        if _CompiledFire is None:
            raise RuntimeError("reliability._dispatch is not built (no C compiler at install time)")
        compiled_fire: Callable[..., None] = _CompiledFire(hook, plugin, _PASSED_ON, _report, getcurrent, MARK_ATTR,
                                                           QUICK_QUEUE_LIMIT, PACED_QUEUE_LIMIT)
        hook.fire = compiled_fire  # type: ignore[method-assign]
        return compiled_fire

    def fire(*, reverse: bool = False, **kwargs: Any) -> None:
        try:
            try:
                exception = kwargs["exception"]
                context = kwargs["context"]
                start_time = kwargs["start_time"]
            except KeyError:  # a custom user's event without Locust's full set of keywords
                exception, context = kwargs.get("exception"), kwargs.get("context")
                start_time = kwargs.get("start_time")
            queued = False
            if exception is None and not context:  # a success: queued here when it can be
                mark = getcurrent().__dict__.get(MARK_ATTR) if plugin._expect_marks else None
                if mark is not None:
                    queued = plugin.queue_scheduled(mark, kwargs["request_type"], kwargs["name"],
                                                    kwargs["response_time"], start_time)
                else:
                    request_type, name = kwargs["request_type"], kwargs["name"]  # before anything is queued
                    store = plugin.store
                    values = store.quick_ms
                    try:
                        if 1e9 <= start_time < 1e11:  # the array converts any real number, refuses the rest
                            values.append(kwargs["response_time"])
                            values.append(start_time)
                            queued = True
                    except Exception:  # None, a str, no __float__ ...: nothing of it stays queued
                        del values[len(store.quick):]
                    if queued:
                        quick = store.quick
                        quick.append(request_type)
                        quick.append(name)
                        if len(quick) >= QUICK_QUEUE_LIMIT:
                            store.flush()
            if not queued:
                plugin.count_other_request(kwargs["request_type"], kwargs["name"], kwargs["response_time"], context,
                                           exception, start_time)
        except _PASSED_ON:
            raise
        except Exception:
            logging.error("Uncaught exception in event handler: \n%s", traceback.format_exc())
            locust_log.unhandled_greenlet_exception = True
        # Locust 2.47's EventHook.fire, as it is
        handlers = hook._handlers[::-1] if reverse else hook._handlers.copy()
        for handler in handlers:
            try:
                handler(**kwargs)
            except _PASSED_ON:
                raise
            except Exception:
                logging.error("Uncaught exception in event handler: \n%s", traceback.format_exc())
                locust_log.unhandled_greenlet_exception = True

    hook.fire = fire  # type: ignore[method-assign]
    return fire


def give_back(hook: EventHook, fire: Callable[..., None]) -> None:
    """Undo :func:`take_over` (only if ``fire`` is still the hook's)."""
    if vars(hook).get("fire") is fire:
        del hook.fire
