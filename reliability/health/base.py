"""What every probe shares: :class:`Status`, :class:`Finding`, :class:`ProbeResult`, the
:class:`Probe` protocol, a :class:`Deadline` for client-level timeouts, and :func:`measure`.

A probe's ``check(deadline)`` does its network work with every socket bounded by
``deadline.remaining_s()``, returns a :class:`Finding` (healthy / degraded / down with a detail
line and numbers), and raises for "down, here is why". :func:`measure` times it, turns an
exception into a *down* result and scrubs secrets from the detail. Nothing here imports locust or
gevent: under gevent's monkey-patching the same blocking sockets simply cooperate.

Example::

    class AlwaysUp:
        kind = "static"
        target = "nowhere"

        def check(self, deadline: Deadline) -> Finding:
            return Finding(Status.HEALTHY, "fine")

        def close(self) -> None:
            pass

    measure(AlwaysUp(), timeout_s=0.5).status   # Status.HEALTHY
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from reliability.jsontypes import JsonData
from reliability.masking import mask, mask_data


class Status(enum.Enum):
    """A component's health; ``severity`` orders them (healthy 0 < degraded 1 < down 2)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def up(self) -> bool:
        """Healthy or degraded: the component answers (what probe-based uptime counts)."""
        return self is not Status.DOWN

    @staticmethod
    def worst(statuses: Iterable[Status]) -> Status:
        """The most severe of ``statuses`` (healthy when empty)."""
        return max(statuses, key=lambda s: s.severity, default=Status.HEALTHY)


_SEVERITY = {Status.HEALTHY: 0, Status.DEGRADED: 1, Status.DOWN: 2}


class ProbeTimeout(TimeoutError):
    """The probe's deadline passed before it finished."""


@dataclass(frozen=True)
class Finding:
    """What a probe observed: a status, one line for people, and numbers for the record."""

    status: Status
    detail: str = ""
    data: Mapping[str, JsonData] = field(default_factory=dict)

    @classmethod
    def graded(cls, problems: list[str], detail: str, data: Mapping[str, JsonData]) -> Finding:
        """Healthy with ``detail``, or degraded naming the ``problems`` first."""
        if problems:
            return cls(Status.DEGRADED, "; ".join(problems) + f" ({detail})", data)
        return cls(Status.HEALTHY, detail, data)


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one component: a :class:`Finding` plus how long it took (``latency_ms``)."""

    status: Status
    latency_ms: float
    detail: str = ""
    data: Mapping[str, JsonData] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JsonData]:
        return {"status": self.status.value, "latency_ms": round(self.latency_ms, 3), "detail": self.detail,
                "data": dict(self.data)}


class Deadline:
    """The time left for one probe; every blocking call takes ``remaining_s()`` as its timeout.

    Example::

        deadline = Deadline(0.8)
        sock = socket.create_connection(addr, timeout=deadline.remaining_s())
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._end = clock() + timeout_s

    def remaining_s(self) -> float:
        """Seconds left; raises :class:`ProbeTimeout` once none are."""
        left = self._end - self._clock()
        if left <= 0:
            raise ProbeTimeout(f"no answer within {self.timeout_s * 1000:.0f} ms")
        return left


class Probe(Protocol):
    """Checks one component. ``kind`` names the probe type, ``target`` is printable (no secrets).

    ``check`` must bound every blocking call by ``deadline.remaining_s()`` and may raise for a
    component that is down; ``close`` releases anything kept between checks.
    """

    kind: str
    target: str

    def check(self, deadline: Deadline) -> Finding: ...

    def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """One line for an exception: its message, or its type when it has none."""
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


def measure(probe: Probe, timeout_s: float, secrets: tuple[str, ...] = (),
            clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    """Run ``probe.check`` under a :class:`Deadline`; any exception makes the result *down*.

    The detail is scrubbed of ``secrets`` and a finding that arrives after the deadline counts
    as a timeout, so no result ever claims health later than its bound.
    """
    started = clock()
    deadline = Deadline(timeout_s, clock)
    try:
        finding = probe.check(deadline)
    except TimeoutError:  # socket timeouts say just "timed out": say what the bound was
        finding = Finding(Status.DOWN, f"no answer within {timeout_s * 1000:.0f} ms")
    except Exception as exc:  # every failure of the component or the network is a "down"
        finding = Finding(Status.DOWN, describe_error(exc))
    elapsed_s = clock() - started
    if elapsed_s > timeout_s and finding.status is not Status.DOWN:
        finding = Finding(Status.DOWN, f"no answer within {timeout_s * 1000:.0f} ms", finding.data)
    return ProbeResult(finding.status, elapsed_s * 1000.0, mask(finding.detail, secrets),
                       mask_data(finding.data, secrets))



