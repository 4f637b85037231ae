"""Checking what a worker sends before the master merges any of it.

A worker's report (``data["reliability"]``) crosses a network from a process the master does not
control: a bug, a version skew or a hostile sender can put wrong types, negative or huge counts,
NaN, a window a century away or a histogram asking for a billion buckets in it. The master calls
:func:`check_report` first: either the whole report is sound (and merged as is) or it raises
:class:`~reliability.exceptions.MetricsError` with one line naming the first bad field, and
none of that report is merged (the plugin names the worker and makes the run inconclusive).

Pure: no locust, no gevent. Example::

    report = check_report(data["reliability"], now=time.time())
    store.merge_payload(report.windows)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from reliability.exceptions import MetricsError
from reliability.metrics.windows import WindowsPayload

MAX_COUNT = 2**53  # exact as a float; no real count in one report comes near
MAX_BUCKETS = 16_384  # a histogram spans 1 us .. 1 h in ~2,600 buckets at 0.4 % accuracy
MAX_KEY = 100_000
MAX_WINDOWS = 100_000
MAX_ENDPOINTS = 100_000
MAX_ERRORS = 100_000
MAX_TEXT = 1_000_000  # characters of a request type, name or error message
MAX_SKEW_S = 7 * 86400  # a window's second must be within a week of the master's clock
MAX_LATENCY_MS = 1e12


@dataclass(frozen=True)
class WorkerReport:
    """A checked report: the windows to merge, cache counts, and the worker's CPU/memory sample."""

    windows: WindowsPayload
    cache: tuple[tuple[str, str, int, int], ...]
    usage: tuple[float, float, float] | None


def _fail(where: str, reason: str) -> MetricsError:
    return MetricsError(f"{where}: {reason}")


# wire data (msgpack) before its check: its items are whatever arrived until a checker below has looked


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: object, where: str, limit: int) -> list[object]:
    if not isinstance(value, list | tuple):
        raise _fail(where, f"expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"{len(value)} items, more than {limit}")
    return list(value)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"expected a whole number, got {type(value).__name__}")
    if not 0 <= value <= MAX_COUNT:
        raise _fail(where, "a count must be between 0 and 2^53" if value >= 0 else "a negative count")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"expected a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise _fail(where, "out of range")
    return value


def _number(value: object, where: str, low: float = 0.0, high: float = MAX_LATENCY_MS) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise _fail(where, "not a finite number in range")
    return number


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected text, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise _fail(where, f"{len(value)} characters, more than {MAX_TEXT}")
    return value


def _histogram(value: object, where: str, accuracy: float) -> None:
    h = _mapping(value, where)
    a = _number(h.get("a"), f"{where}.a", 0.0, 1.0)
    if a != accuracy:
        raise _fail(f"{where}.a", f"relative accuracy {a:g}, the master uses {accuracy:g}")
    counts = _list(h.get("c"), f"{where}.c", MAX_BUCKETS)
    total = sum(_count(c, f"{where}.c[{i}]") for i, c in enumerate(counts))
    n = _count(h.get("n"), f"{where}.n")
    if total != n:
        raise _fail(where, f"bucket counts add up to {total}, not its total {n}")
    _int(h.get("o", 0), f"{where}.o", -MAX_KEY, MAX_KEY)
    if n:
        lo = _number(h.get("lo"), f"{where}.lo")
        hi = _number(h.get("hi"), f"{where}.hi")
        _number(h.get("s"), f"{where}.s", 0.0, MAX_LATENCY_MS * MAX_COUNT)
        if lo > hi:
            raise _fail(where, "its minimum is above its maximum")


def check_windows(value: object, now: float, accuracy: float) -> WindowsPayload:
    """The ``windows`` part of a report, checked (see the module docstring)."""
    payload = _mapping(value, "windows")
    if payload.get("v") != 1:
        raise _fail("windows.v", f"unsupported payload version {str(payload.get('v'))[:20]!r}")
    for i, wp in enumerate(_list(payload.get("w"), "windows.w", MAX_WINDOWS)):
        where = f"windows.w[{i}]"
        window = _mapping(wp, where)
        _int(window.get("t"), f"{where}.t", int(now) - MAX_SKEW_S, int(now) + MAX_SKEW_S)
        for j, ep in enumerate(_list(window.get("e"), f"{where}.e", MAX_ENDPOINTS)):
            at = f"{where}.e[{j}]"
            endpoint = _mapping(ep, at)
            _text(endpoint.get("t"), f"{at}.t")
            _text(endpoint.get("n"), f"{at}.n")
            requests = _count(endpoint.get("r"), f"{at}.r")
            failures = _count(endpoint.get("f"), f"{at}.f")
            if failures > requests:
                raise _fail(at, f"{failures} failures out of {requests} requests")
            if endpoint.get("h") is not None:
                _histogram(endpoint["h"], f"{at}.h", accuracy)
            if endpoint.get("ch") is not None:  # latency from the intended start, back-fill included
                _histogram(endpoint["ch"], f"{at}.ch", accuracy)
            if endpoint.get("b") is not None:
                _count(endpoint["b"], f"{at}.b")
        if window.get("s") is not None:  # stall counters [held, spill_out, spill_in]
            stalls = _list(window["s"], f"{where}.s", 3)
            if len(stalls) != 3:
                raise _fail(f"{where}.s", "expected [held, spill_out, spill_in]")
            for k, value in enumerate(stalls):
                _count(value, f"{where}.s[{k}]")
    if payload.get("lag") is not None:  # start lags of scheduled requests
        _histogram(payload["lag"], "windows.lag", accuracy)
    for i, err in enumerate(_list(payload.get("err", []), "windows.err", MAX_ERRORS)):
        where = f"windows.err[{i}]"
        error = _mapping(err, where)
        for key in ("t", "n", "m"):
            _text(error.get(key), f"{where}.{key}")
        _count(error.get("c"), f"{where}.c")
    return cast(WindowsPayload, payload)


def check_report(value: object, now: float, accuracy: float) -> WorkerReport:
    """A worker's whole ``data["reliability"]`` checked; raises MetricsError naming the first bad field."""
    report = _mapping(value, "report")
    windows = check_windows(report.get("windows"), now, accuracy)
    cache: list[tuple[str, str, int, int]] = []
    for i, row in enumerate(_list(report.get("cache", []), "cache", MAX_ENDPOINTS)):
        items = _list(row, f"cache[{i}]", 4)
        if len(items) != 4:
            raise _fail(f"cache[{i}]", "expected [type, name, hits, misses]")
        cache.append((_text(items[0], f"cache[{i}][0]"), _text(items[1], f"cache[{i}][1]"),
                      _count(items[2], f"cache[{i}][2]"), _count(items[3], f"cache[{i}][3]")))
    usage = None
    if report.get("usage") is not None:
        items = _list(report["usage"], "usage", 3)
        if len(items) != 3:
            raise _fail("usage", "expected [time, cpu_pct, rss_mb]")
        usage = (_number(items[0], "usage[0]", 0.0, 1e11), _number(items[1], "usage[1]", 0.0, 1e5),
                 _number(items[2], "usage[2]", 0.0, 1e9))
    return WorkerReport(windows, tuple(cache), usage)
