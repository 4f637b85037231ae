"""Metrics core: latency histograms and per-second windows. Pure: imports neither locust nor gevent."""

from __future__ import annotations

from reliability.metrics.histogram import DEFAULT_RELATIVE_ACCURACY, LatencyHistogram
from reliability.metrics.windows import (
    EndpointStats,
    SecondCounts,
    Snapshot,
    WindowsPayload,
    WindowStore,
    component_of,
)

__all__ = [
    "DEFAULT_RELATIVE_ACCURACY",
    "EndpointStats",
    "LatencyHistogram",
    "SecondCounts",
    "Snapshot",
    "WindowStore",
    "WindowsPayload",
    "component_of",
]
