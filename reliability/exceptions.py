"""The error tree of locust-reliability.

::

    ReliabilityError                 base of everything this package raises on purpose
    ├── ScenarioError                a scenario file is unreadable or invalid (names file and field)
    ├── MetricsError                 a histogram or window payload cannot be decoded or merged
    ├── TargetError                  the reference system under test failed to start or answer
    └── FaultError                   a fault could not be injected, reverted or verified

Every message is one line a user can act on; the CLI prints it without a traceback.
"""

from __future__ import annotations


class ReliabilityError(Exception):
    """Base class for the errors this package raises on purpose."""


class ScenarioError(ReliabilityError):
    """A scenario file is unreadable or invalid.

    Example::

        ScenarioError("scenarios/gold.yaml", "sla.tiers.gold.p95_ms", "must be > 0")
        # str() -> "scenarios/gold.yaml: sla.tiers.gold.p95_ms: must be > 0"
    """

    def __init__(self, path: str, field: str, reason: str) -> None:
        self.path = path
        self.field = field
        self.reason = reason
        where = f"{path}: {field}" if field else path
        super().__init__(f"{where}: {reason}")


class MetricsError(ReliabilityError):
    """A histogram or window payload cannot be decoded or merged."""


class TargetError(ReliabilityError):
    """The reference system under test failed to start or to answer."""


class FaultError(ReliabilityError):
    """A fault could not be injected, reverted or verified."""
