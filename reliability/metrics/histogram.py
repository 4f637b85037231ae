"""A latency histogram with a guaranteed relative error, exact merge and a compact wire form.

Bucket boundaries come from DDSketch's logarithmic key mapping (the ``ddsketch`` package): a value
``v`` falls in bucket ``k = ceil(log_gamma(v))`` and every bucket is reported as the value that is
within ``relative_accuracy`` of everything in it. So any quantile read back is within
``relative_accuracy`` (default 0.4 %) of the exact sorted sample at the same rank. Counts live in a
dense ``array('Q')`` indexed from the lowest key seen: a few hundred integers per window, about 8x
smaller on the wire and 2x smaller in memory than DDSketch's own float-bin store (see
``bench/histogram_choice.py``). Two histograms with the same accuracy merge exactly by adding counts.
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Iterable
from typing import TypedDict

import numpy as np
import numpy.typing as npt
from ddsketch import LogarithmicMapping

from reliability.exceptions import MetricsError

# 0.4 % leaves headroom under the 0.5 % promise for float rounding at bucket edges.
DEFAULT_RELATIVE_ACCURACY = 0.004
# Latencies below one microsecond are indistinguishable from timer noise; they share its bucket.
MIN_TRACKED_MS = 0.001
# From this many values on, bucket_keys takes numpy's vectorised log (below, numpy's per-call cost
# is more than the Python loop it saves).
BULK_KEYS_FROM = 32
# From this many values for one histogram, a batch is counted in numpy (bincount) too.
ARRAY_COUNT_FROM = 256
_LN2 = math.log(2.0)


class HistogramPayload(TypedDict):
    """Wire form of a :class:`LatencyHistogram` (msgpack/JSON friendly)."""

    a: float  # relative accuracy
    o: int  # key of counts[0]
    c: list[int]  # dense counts
    n: int  # total count
    s: float  # sum of values, ms
    lo: float  # min value, ms
    hi: float  # max value, ms


class LatencyHistogram:
    """Counts of latencies (ms) in logarithmic buckets with a bounded relative error.

    Example::

        h = LatencyHistogram()
        for ms in (12.0, 15.5, 230.0):
            h.record(ms)
        h.quantile(0.95)   # within 0.5 % of 230.0
        h.merge(other)     # exact: counts add
    """

    __slots__ = ("_mapping", "_multiplier", "_accuracy", "_offset", "_counts", "count", "sum_ms", "min_ms", "max_ms")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < relative_accuracy < 0.1:
            raise MetricsError(f"relative_accuracy must be in (0, 0.1), got {relative_accuracy!r}")
        self._accuracy = relative_accuracy
        self._mapping = _mapping_for(relative_accuracy)
        self._multiplier = key_multiplier(relative_accuracy)
        self._offset = 0
        self._counts: array[int] = array("Q")
        self.count = 0
        self.sum_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = -math.inf

    @property
    def relative_accuracy(self) -> float:
        return self._accuracy

    def record(self, latency_ms: float) -> None:
        """Add one latency. Negative, infinite or NaN values are rejected; tiny ones share the 1 us bucket."""
        if not 0.0 <= latency_ms < math.inf:  # also catches NaN
            raise MetricsError(f"latency must be a finite, non-negative number of ms, got {latency_ms!r}")
        # LogarithmicMapping.key(v) inlined (same float operations, so the same keys; a test checks
        # it): this line runs once per request on the load generator.
        key = math.ceil(math.log(latency_ms if latency_ms > MIN_TRACKED_MS else MIN_TRACKED_MS, 2) * self._multiplier)
        counts = self._counts
        index = key - self._offset
        if not counts:
            self._offset = key
            counts.append(1)
        elif 0 <= index < len(counts):
            counts[index] += 1
        elif index >= len(counts):
            counts.extend([0] * (index - len(counts)))
            counts.append(1)
        else:  # below the lowest key so far: prepend zeros
            self._counts = array("Q", [1] + [0] * (-index - 1)) + counts
            self._offset = key
        self.count += 1
        self.sum_ms += latency_ms
        if latency_ms < self.min_ms:
            self.min_ms = latency_ms
        if latency_ms > self.max_ms:
            self.max_ms = latency_ms

    def record_many(self, values: list[float], keys: list[int] | None = None) -> None:
        """Add many latencies at once (the load generator's batched path): the same buckets as
        :meth:`record` one by one. ``keys``, when given, are ``bucket_keys(values, ...)`` computed
        by the caller (one vectorised call for several histograms). Negative, infinite or NaN
        values are rejected before anything is added."""
        if not values:
            return
        low, high, total = min(values), max(values), sum(values)
        # NaN compares false and makes the sum NaN, wherever it sits in the list
        if not 0.0 <= low <= high < math.inf or total != total:
            bad = next((v for v in values if not 0.0 <= v < math.inf), low)
            raise MetricsError(f"latency must be a finite, non-negative number of ms, got {bad!r}")
        if keys is None:
            keys = bucket_keys(values, self._multiplier)
        lo, hi = min(keys), max(keys)
        self._cover(lo, hi + 1)
        counts = self._counts
        offset = self._offset
        for key in keys:
            counts[key - offset] += 1
        self.add_summary(len(values), total, low, high)

    def record_series(self, first_ms: float, step_ms: float, n: int) -> None:
        """Add the ``n`` latencies ``first_ms, first_ms - step_ms, ... first_ms - (n-1)*step_ms``
        (all finite and >= 0): a back-fill of the requests a stall prevented, which can run to
        thousands per stalled request. Long series are keyed and counted in numpy: a few tens of
        ns per value instead of ~0.5 us one by one."""
        if n <= 0:
            return
        last_ms = first_ms - (n - 1) * step_ms
        if not (0.0 <= last_ms <= first_ms < math.inf and step_ms >= 0.0):
            raise MetricsError(f"latency must be a finite, non-negative number of ms, got {last_ms!r}..{first_ms!r}")
        if n < BULK_KEYS_FROM:
            self.record_many([first_ms - j * step_ms for j in range(n)])
            return
        values = first_ms - step_ms * np.arange(n, dtype=np.float64)
        self._record_arrays(values, array_keys(values, self._multiplier))

    def record_array(self, values: npt.NDArray[np.float64]) -> None:
        """Add a float64 array of latencies, keyed and counted in numpy (the same buckets as
        :meth:`record` one by one). Invalid values are rejected before anything is added."""
        if len(values):
            self._record_arrays(values, array_keys(values, self._multiplier))

    def _record_arrays(self, values: npt.NDArray[np.float64], keys: npt.NDArray[np.int64]) -> None:
        """Add ``values`` (float64, their bucket keys beside them) in numpy: for hundreds of values."""
        low, high, total = float(values.min()), float(values.max()), float(values.sum())
        if not 0.0 <= low <= high < math.inf or total != total:
            raise MetricsError(f"latency must be a finite, non-negative number of ms, got {low!r}..{high!r}")
        lo = int(keys.min())
        self.add_key_counts(lo, np.bincount(keys - lo))
        self.add_summary(len(values), total, low, high)

    def add_key_counts(self, lo: int, counts: npt.NDArray[np.int64]) -> None:
        """Add ``counts[i]`` values to bucket ``lo + i`` (a numpy ``bincount`` of keys minus ``lo``),
        in numpy. Only the buckets change: the caller adds count, sum, min and max
        (:meth:`add_summary`)."""
        self._cover(lo, lo + len(counts))
        base = lo - self._offset
        # a view on the array's own buffer: the array cannot grow while it exists (it ends here)
        view = np.frombuffer(self._counts, dtype=np.uint64)[base : base + len(counts)]
        np.add(view, counts, out=view, casting="unsafe")

    def _cover(self, lo: int, hi: int) -> None:
        """Grow the dense counts (zeros) so that they hold buckets ``lo`` to ``hi - 1``."""
        if not self._counts:
            self._offset = lo
            self._counts = array("Q", bytes(8 * (hi - lo)))
        elif lo < self._offset or hi > self._offset + len(self._counts):
            self._add_counts(min(lo, self._offset), [0] * (max(hi, self._offset + len(self._counts))
                                                            - min(lo, self._offset)))

    def add_summary(self, n: int, total_ms: float, low_ms: float, high_ms: float) -> None:
        """Count, sum, min and max after ``n`` values were added to the buckets."""
        self.count += n
        self.sum_ms += total_ms
        if low_ms < self.min_ms:
            self.min_ms = low_ms
        if high_ms > self.max_ms:
            self.max_ms = high_ms

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this one (exact; accuracies must match)."""
        if other._accuracy != self._accuracy:
            raise MetricsError(
                f"cannot merge histograms of relative accuracy {other._accuracy} and {self._accuracy}"
            )
        if not other.count:
            return
        self._add_counts(other._offset, other._counts)
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)

    def _add_counts(self, offset: int, counts: array[int] | list[int]) -> None:
        if not self._counts:
            self._offset = offset
            self._counts = array("Q", counts)
            return
        lo = min(self._offset, offset)
        hi = max(self._offset + len(self._counts), offset + len(counts))
        if lo != self._offset or hi != self._offset + len(self._counts):
            grown = array("Q", bytes(8 * (hi - lo)))
            start = self._offset - lo
            grown[start : start + len(self._counts)] = self._counts
            self._counts = grown
            self._offset = lo
        base = offset - self._offset
        mine = self._counts
        for i, c in enumerate(counts):
            if c:
                mine[base + i] += c

    def quantile(self, q: float) -> float | None:
        """Latency (ms) at quantile ``q`` (0-1), or None when empty.

        Rank convention: the sample at index ``floor(q * (count - 1))`` of the sorted values
        (numpy's ``method="lower"``); the answer is within ``relative_accuracy`` of it, and clamped
        to the exact observed min/max.
        """
        if not 0.0 <= q <= 1.0:
            raise MetricsError(f"quantile must be within [0, 1], got {q!r}")
        if not self.count:
            return None
        if q == 1.0:
            return self.max_ms
        return self.at_rank(math.floor(q * (self.count - 1)))

    def at_rank(self, rank: int) -> float | None:
        """Latency (ms) of the sample at 0-based ``rank`` of the sorted values (within
        ``relative_accuracy``, clamped to the observed min/max); None when empty."""
        if not self.count:
            return None
        if not 0 <= rank < self.count:
            raise MetricsError(f"rank must be within [0, {self.count}), got {rank!r}")
        if rank == self.count - 1:
            return self.max_ms
        seen = 0
        for i, c in enumerate(self._counts):
            seen += c
            if seen > rank:
                value = float(self._mapping.value(i + self._offset))
                return min(max(value, self.min_ms), self.max_ms)
        return self.max_ms  # unreachable with consistent counts

    def copy(self) -> LatencyHistogram:
        dup = LatencyHistogram(self._accuracy)
        dup.merge(self)
        return dup

    def to_payload(self) -> HistogramPayload:
        """Compact wire form: trailing and leading zero buckets are never stored."""
        return {
            "a": self._accuracy,
            "o": self._offset,
            "c": self._counts.tolist(),
            "n": self.count,
            "s": self.sum_ms,
            "lo": self.min_ms if self.count else 0.0,
            "hi": self.max_ms if self.count else 0.0,
        }

    @classmethod
    def from_payload(cls, payload: HistogramPayload) -> LatencyHistogram:
        try:
            hist = cls(float(payload["a"]))
            counts = [int(c) for c in payload["c"]]
            if any(c < 0 for c in counts) or sum(counts) != int(payload["n"]):
                raise MetricsError("histogram payload counts do not add up to its total")
            if payload["n"]:
                hist._add_counts(int(payload["o"]), counts)
                hist.count = int(payload["n"])
                hist.sum_ms = float(payload["s"])
                hist.min_ms = float(payload["lo"])
                hist.max_ms = float(payload["hi"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricsError(f"malformed histogram payload: {exc}") from exc
        return hist

    def nbytes(self) -> int:
        """Approximate memory held by the bucket counts."""
        return self._counts.itemsize * len(self._counts)


def record_batches(batches: Iterable[tuple[LatencyHistogram, list[float]]]) -> None:
    """``hist.record_many(values)`` for each pair, with the bucket keys of all of them computed in
    one numpy call per accuracy: a load generator's flush spreads a few hundred requests over many
    endpoints, and numpy pays off only on the whole batch. A histogram given many values (a
    back-fill) is counted in numpy too (:data:`ARRAY_COUNT_FROM`)."""
    by_multiplier: dict[float, list[tuple[LatencyHistogram, list[float]]]] = {}
    total = 0
    for hist, values in batches:
        if values:
            by_multiplier.setdefault(hist._multiplier, []).append((hist, values))
            total += len(values)
    if total < BULK_KEYS_FROM:
        for group in by_multiplier.values():
            for hist, values in group:
                hist.record_many(values)
        return
    for multiplier, group in by_multiplier.items():
        every: list[float] = []
        for _hist, values in group:
            every += values
        array = np.array(every, dtype=np.float64)
        keys = array_keys(array, multiplier)
        at = 0
        for hist, values in group:
            n = len(values)
            if n >= ARRAY_COUNT_FROM:
                hist._record_arrays(array[at : at + n], keys[at : at + n])
            else:
                hist.record_many(values, keys[at : at + n].tolist())
            at += n


def bucket_keys(values: list[float], multiplier: float) -> list[int]:
    """The bucket key of each latency (finite, >= 0), bit for bit what :meth:`LatencyHistogram.record`
    computes: ``ceil(log2(max(v, MIN_TRACKED_MS)) * multiplier)``. Long lists go through
    :func:`array_keys` (numpy); short ones through the plain loop, which is faster there."""
    if len(values) < BULK_KEYS_FROM:
        log, ceil, floor_ms = math.log, math.ceil, MIN_TRACKED_MS
        return [ceil(log(v if v > floor_ms else floor_ms, 2) * multiplier) for v in values]
    keys: list[int] = array_keys(np.array(values, dtype=np.float64), multiplier).tolist()
    return keys


def array_keys(values: npt.NDArray[np.float64], multiplier: float) -> npt.NDArray[np.int64]:
    """:func:`bucket_keys` of a float64 array, as an int64 array.

    numpy's vectorised log may differ from the C library's ``log`` in the last bit. Such a
    difference can only move a key where ``log2(v) * multiplier`` lies within about 1e-12 of an
    integer (a bucket edge), so the values within 1e-9 of one are recomputed with ``math.log``: the
    keys are the same as one by one, on any CPU.
    """
    log, ceil, floor_ms = math.log, math.ceil, MIN_TRACKED_MS
    x = np.maximum(values, floor_ms)
    np.log(x, out=x)
    x /= _LN2  # math.log(v, 2) is log(v) / log(2), in this order
    x *= multiplier
    keys: npt.NDArray[np.int64] = np.ceil(x).astype(np.int64)
    for i in np.flatnonzero(np.abs(x - np.rint(x)) < 1e-9).tolist():
        v = float(values[i])
        keys[i] = ceil(log(v if v > floor_ms else floor_ms, 2) * multiplier)
    return keys


@functools.lru_cache(maxsize=16)
def key_multiplier(relative_accuracy: float) -> float:
    """The factor LogarithmicMapping.key applies to log2(value), computed as ddsketch does."""
    gamma_mantissa = 2 * relative_accuracy / (1 - relative_accuracy)
    multiplier = 1 / math.log1p(gamma_mantissa)
    multiplier *= math.log(2)
    return multiplier


@functools.lru_cache(maxsize=16)
def _mapping_for(relative_accuracy: float) -> LogarithmicMapping:
    # Mappings are immutable value objects; sharing one per accuracy saves memory per histogram.
    return LogarithmicMapping(relative_accuracy)
