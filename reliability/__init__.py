"""locust-reliability: SLA grading, fault injection and recovery measurement for Locust.

The package root imports nothing from locust or gevent (importing locust monkey-patches the
process). Add ``import reliability.plugin`` to a locustfile to grade a run.
"""

from __future__ import annotations

from reliability.exceptions import FaultError, MetricsError, ReliabilityError, ScenarioError, TargetError

__version__ = "0.1.0"

__all__ = [
    "FaultError",
    "MetricsError",
    "ReliabilityError",
    "ScenarioError",
    "TargetError",
    "__version__",
]
