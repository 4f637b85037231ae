"""Percentile accuracy against exact sorted values, exact merge, and the wire form."""

from __future__ import annotations

import math
import random

import msgpack
import pytest

from reliability.exceptions import MetricsError
from reliability.metrics import LatencyHistogram

QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _samples(kind: str, n: int = 50_000, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    if kind == "lognormal":
        return [rng.lognormvariate(math.log(50), 0.6) for _ in range(n)]
    if kind == "bimodal":  # cache hits at ~2 ms, misses at ~180 ms
        return [rng.gauss(2.0, 0.3) if rng.random() < 0.8 else rng.gauss(180, 25) for _ in range(n)]
    if kind == "heavy":  # Pareto tail: a few requests take seconds
        return [5.0 * rng.paretovariate(1.2) for _ in range(n)]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["lognormal", "bimodal", "heavy"])
def test_every_quantile_within_half_a_percent_of_exact(kind: str) -> None:
    values = [abs(v) for v in _samples(kind)]
    hist = LatencyHistogram()
    for v in values:
        hist.record(v)
    for q in QUANTILES:
        exact = _exact(values, q)
        got = hist.quantile(q)
        assert got is not None
        assert abs(got - exact) / exact <= 0.005, (kind, q, got, exact)
    assert hist.quantile(1.0) == max(values)
    assert hist.quantile(0.0) == pytest.approx(min(values), rel=0.005)


def test_three_way_split_merged_equals_the_whole() -> None:
    values = _samples("lognormal", 30_000, seed=3)
    whole = LatencyHistogram()
    parts = [LatencyHistogram() for _ in range(3)]
    for i, v in enumerate(values):
        whole.record(v)
        parts[i % 3].record(v)
    merged = LatencyHistogram()
    for part in parts:
        # through the wire form, as between worker and master
        merged.merge(LatencyHistogram.from_payload(msgpack.unpackb(msgpack.packb(part.to_payload()))))
    assert merged.count == whole.count
    assert merged.to_payload()["c"] == whole.to_payload()["c"]
    for q in QUANTILES:
        assert merged.quantile(q) == whole.quantile(q)
    assert merged.max_ms == whole.max_ms and merged.min_ms == whole.min_ms
    assert merged.sum_ms == pytest.approx(whole.sum_ms)


def test_merge_into_lower_and_higher_ranges_and_empty() -> None:
    low, high, empty = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for v in (1.0, 2.0, 3.0):
        low.record(v)
    for v in (1000.0, 2000.0):
        high.record(v)
    high.merge(low)
    high.merge(empty)
    assert high.count == 5
    assert high.quantile(0.0) == pytest.approx(1.0, rel=0.005)
    assert high.quantile(1.0) == 2000.0
    assert empty.quantile(0.5) is None


def test_values_recorded_out_of_order_extend_both_ways() -> None:
    hist = LatencyHistogram()
    for v in (100.0, 0.5, 5000.0, 0.0, 20.0):
        hist.record(v)
    assert hist.count == 5
    assert hist.quantile(0.5) == pytest.approx(20.0, rel=0.005)
    assert hist.min_ms == 0.0


def test_wire_form_is_compact() -> None:
    hist = LatencyHistogram()
    for v in _samples("lognormal", 300):
        hist.record(v)
    packed = msgpack.packb(hist.to_payload())
    assert len(packed) < 1000  # a few hundred small integers, not 8-byte floats per bucket


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_invalid_latency_is_rejected(bad: float) -> None:
    with pytest.raises(MetricsError):
        LatencyHistogram().record(bad)


def test_merging_different_accuracies_is_refused() -> None:
    with pytest.raises(MetricsError, match="relative accuracy"):
        LatencyHistogram(0.004).merge(LatencyHistogram(0.01))


def test_corrupt_payload_is_refused() -> None:
    payload = LatencyHistogram().to_payload()
    payload["n"] = 3
    with pytest.raises(MetricsError):
        LatencyHistogram.from_payload(payload)


def test_inlined_key_matches_the_library_mapping() -> None:
    from ddsketch import LogarithmicMapping

    mapping = LogarithmicMapping(0.004)
    rng = random.Random(11)
    values = [rng.lognormvariate(3, 2) for _ in range(20_000)] + [mapping.value(k) for k in range(-50, 2000)]
    for v in values:
        single = LatencyHistogram(0.004)
        single.record(v)
        assert single.to_payload()["o"] == mapping.key(max(v, 0.001)), v


def test_bulk_keys_equal_one_by_one_keys_at_bucket_edges() -> None:
    """bucket_keys takes numpy's log for long lists; at a bucket edge, where numpy's and the C
    library's log may differ in the last bit, the keys must still equal record()'s."""
    import math

    from reliability.metrics.histogram import BULK_KEYS_FROM, bucket_keys

    reference = LatencyHistogram(0.004)
    multiplier = reference._multiplier
    values = [0.0, 1e-9, 0.001]
    for k in range(-900, 2600):  # the exact edges 2**(k / multiplier) and their neighbours, 0.7 us .. 1e9 ms
        edge = 2.0 ** (k / multiplier)
        values += [math.nextafter(edge, 0.0), edge, math.nextafter(edge, math.inf)]
    rng = random.Random(5)
    values += [rng.lognormvariate(3, 2) for _ in range(20_000)]
    assert len(values) >= BULK_KEYS_FROM
    expected = []
    for v in values:
        single = LatencyHistogram(0.004)
        single.record(v)
        expected.append(single.to_payload()["o"])
    assert bucket_keys(values, multiplier) == expected
    assert bucket_keys(values[:5], multiplier) == expected[:5]  # the short-list path


def test_record_many_refuses_infinite_and_nan_latencies_anywhere_in_the_batch() -> None:
    h = LatencyHistogram()
    for bad in ([float("inf")] + [1.0] * 40, [1.0] * 40 + [float("nan")], [float("nan")] + [1.0] * 40):
        with pytest.raises(MetricsError, match="finite"):
            h.record_many(bad)
    with pytest.raises(MetricsError, match="finite"):
        h.record(float("inf"))
    assert h.count == 0


@pytest.mark.parametrize("first, step, n", [(2000.0, 100.0, 19), (10_000.0, 1.0, 9_999), (3.7, 0.0001, 30_000),
                                            (5.0, 0.0, 40)])
def test_record_series_fills_the_same_buckets_as_record_one_by_one(first: float, step: float, n: int) -> None:
    one, series = LatencyHistogram(), LatencyHistogram()
    for j in range(n):
        one.record(first - j * step)
    series.record_series(first, step, n)
    a, b = one.to_payload(), series.to_payload()
    assert (a["o"], a["c"], a["n"], a["lo"], a["hi"]) == (b["o"], b["c"], b["n"], b["lo"], b["hi"])
    assert a["s"] == pytest.approx(b["s"], rel=1e-9)
    with pytest.raises(MetricsError):
        series.record_series(1.0, 0.5, 4)  # would reach -0.5 ms
    assert series.count == n


def test_bulk_keys_recompute_values_next_to_an_edge_when_numpy_log_is_off_by_an_ulp(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On this CPU numpy's log may agree with the C library's at every edge; a numpy whose log is
    one ulp high everywhere must still give record()'s keys."""
    import math

    import numpy as np

    from reliability.metrics import histogram

    real_log = np.log

    def log_one_ulp_high(x: object, out: object = None) -> object:
        result = np.nextafter(real_log(x), np.inf)
        if out is not None:
            out[...] = result  # type: ignore[index]
            return out
        return result

    multiplier = LatencyHistogram(0.004)._multiplier
    values = []
    for k in range(-800, 2000):
        edge = 2.0 ** (k / multiplier)
        values += [math.nextafter(edge, 0.0), edge]
    expected = [math.ceil(math.log(max(v, 0.001), 2) * multiplier) for v in values]
    monkeypatch.setattr(np, "log", log_one_ulp_high)
    assert histogram.bucket_keys(values, multiplier) == expected
