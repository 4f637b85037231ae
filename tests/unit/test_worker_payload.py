"""The master's check of a worker's report: a sound report passes whole; each kind of bad field
is one MetricsError line naming it, and nothing of a rejected report reaches the store."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reliability.exceptions import MetricsError
from reliability.metrics.payload import check_report
from reliability.metrics.windows import DEFAULT_RELATIVE_ACCURACY, WindowStore
from tests.support.fakes import FakeClock

NOW = 1_800_000_000.0


def real_report() -> dict[str, Any]:
    clock = FakeClock(NOW - 5)
    store = WindowStore(clock=clock)
    for ms in (10.0, 20.0, 30.0):
        store.record("GET", "/a", ms, False, None)
    store.record("GET", "/a", 15.0, True, "HTTPError: 500")
    clock.now = NOW
    return {"windows": store.drain(final=True), "usage": [NOW, 12.5, 80.0], "cache": [["GET", "/a", 3, 1]]}


def test_a_real_report_passes_whole_and_merges() -> None:
    report = check_report(real_report(), NOW, DEFAULT_RELATIVE_ACCURACY)
    store = WindowStore(clock=FakeClock(NOW))
    assert store.merge_payload(report.windows) == 4
    assert report.cache == (("GET", "/a", 3, 1),) and report.usage == (NOW, 12.5, 80.0)
    assert store.snapshot().total.requests == 4 and store.snapshot().total.failures == 1


def _endpoint(report: dict[str, Any]) -> dict[str, Any]:
    endpoint: dict[str, Any] = report["windows"]["w"][0]["e"][0]
    return endpoint


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        (lambda r: _endpoint(r).update(r=2**70), "windows.w[0].e[0].r"),  # overflow
        (lambda r: _endpoint(r).update(r=-4), "windows.w[0].e[0].r: a negative count"),
        (lambda r: _endpoint(r).update(f=9), "windows.w[0].e[0]: 9 failures out of 4"),
        (lambda r: _endpoint(r).update(r="4"), "windows.w[0].e[0].r: expected a whole number, got str"),
        (lambda r: _endpoint(r).update(n=["x"]), "windows.w[0].e[0].n: expected text"),
        (lambda r: _endpoint(r)["h"].update(c=[-1, 5]), "windows.w[0].e[0].h.c[0]: a negative count"),
        (lambda r: _endpoint(r)["h"].update(n=999), "bucket counts add up to 4, not its total 999"),
        (lambda r: _endpoint(r)["h"].update(o=10**9), "windows.w[0].e[0].h.o: out of range"),
        (lambda r: _endpoint(r)["h"].update(c=[0] * 100_000 + [4]), "more than 16384"),
        (lambda r: _endpoint(r)["h"].update(hi=float("nan")), "windows.w[0].e[0].h.hi: not a finite number"),
        (lambda r: _endpoint(r)["h"].update(a=0.05), "relative accuracy 0.05"),
        (lambda r: r["windows"]["w"][0].update(t=10**15), "windows.w[0].t: out of range"),
        (lambda r: r["windows"].update(v=7), "windows.v: unsupported payload version"),
        (lambda r: r["windows"].update(w={"not": "a list"}), "windows.w: expected a list, got dict"),
        (lambda r: r["windows"]["err"].append({"t": "GET", "n": "/a", "m": "x", "c": -1}), "windows.err[1].c"),
        (lambda r: r.update(cache=[["GET", "/a", "lots", 1]]), "cache[0][2]: expected a whole number"),
        (lambda r: r.update(usage=[NOW, float("inf"), 1.0]), "usage[1]: not a finite number"),
        (lambda r: r.update(windows=None), "windows: expected a mapping, got NoneType"),
    ],
)
def test_each_bad_field_is_rejected_by_name(spoil: Any, named: str) -> None:
    report = real_report()
    spoil(report)
    with pytest.raises(MetricsError, match=None) as caught:
        check_report(report, NOW, DEFAULT_RELATIVE_ACCURACY)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_a_non_mapping_report_is_rejected() -> None:
    for value in (None, [], "x", 5):
        with pytest.raises(MetricsError, match="report: expected a mapping"):
            check_report(copy.deepcopy(value), NOW, DEFAULT_RELATIVE_ACCURACY)
