"""The error tree of locust-reliability.

::

    ReliabilityError                 base of everything this package raises on purpose
    ├── InputError                   a file we were given is unreadable, too big, not text or not YAML/JSON
    ├── ScenarioError                a scenario file is unreadable or invalid (names file and field)
    ├── MetricsError                 a histogram or window payload cannot be decoded or merged
    ├── TargetError                  the reference system under test failed to start or answer
    └── FaultError                   a fault could not be injected, reverted or verified

Every message is one line a user can act on; the CLI prints it without a traceback.
"""

from __future__ import annotations


class ReliabilityError(Exception):
    """Base class for the errors this package raises on purpose."""


class InputError(ReliabilityError):
    """A file handed to us cannot be read within the limits of :mod:`reliability.inputfile`.

    Example: ``InputError("s.yaml", "cannot read file: a FIFO (give a regular file)")``;
    ``str()`` is ``"s.yaml: cannot read file: a FIFO (give a regular file)"``.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


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
