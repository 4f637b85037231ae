"""What a master-side feature (an :class:`Extension`) sees of the run, and what it hands back.

Locust-free: the plugin builds one :class:`RunContext` per test and is the only module that
touches Locust objects; the fault schedule, health probes and alerts read the context, and a
unit test drives them with a context of its own (a fake clock, a ``stop`` that records).

A feature's hooks, all called on the master or the local runner::

    class Probe:
        name = "probe"

        def on_test_start(self, run: RunContext) -> None: ...
        def on_tick(self, run: RunContext, now: float) -> None: ...      # about once a second
        def on_test_stop(self, run: RunContext) -> None: ...
        def finish(self, run: RunContext) -> Contribution:              # once, before grading
            return Contribution(sections={"probe": {...}}, inconclusive=("probe never ran",))

``finish`` returns; it never edits the record. The plugin grades the run once, with every
feature's extra criteria and inconclusive reasons, and builds the record once, with every
feature's named sections and timeline phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reliability.config import ScenarioSpec, SlaSpec
from reliability.metrics.windows import WindowStore
from reliability.shapes.capacity import CapacitySearch
from reliability.shapes.sections import StageEntryLike
from reliability.sla import Criterion, Verdict

LOCAL_DATA_LAG_S = 1  # a master's is Locust's WORKER_REPORT_INTERVAL + 1 (the plugin sets it)


class ShapeLike(Protocol):
    """What the features read of the reliability shape the runner drives."""

    @property
    def capacity(self) -> CapacitySearch | None: ...

    @property
    def stage_log(self) -> Sequence[StageEntryLike]: ...


def complete_until(now: float, data_lag_s: int) -> int:
    """The first epoch second whose data may still be incomplete at ``now``: every second before
    it has all its samples where the plugin evaluates. ``data_lag_s`` is 1 on a local runner and
    Locust's ``WORKER_REPORT_INTERVAL`` + 1 on a master (workers report every 3 s). The one rule
    for the live verdict, the alerts, the capacity search and the web UI."""
    return int(now) - data_lag_s + 1


def _no_stop(reason: str) -> None:
    del reason


def _false() -> bool:
    return False


def _none() -> object | None:
    return None


@dataclass
class RunContext:
    """One test as the features see it. The plugin fills it in ``test_start`` and keeps
    ``ended_at`` and ``live`` current; everything else is fixed for the test.

    Example (what a unit test does)::

        run = RunContext(scenario, WindowStore(clock=clock), clock=clock, started_at=clock(),
                         stop=stops.append)
        extension.on_test_start(run)
    """

    scenario: ScenarioSpec
    store: WindowStore
    clock: Callable[[], float] = time.time
    role: str = "local"  # local | master
    started_at: float = 0.0
    data_lag_s: int = LOCAL_DATA_LAG_S
    run_time_s: float | None = None  # the run length Locust was given (-t, the web form), if any
    shape: ShapeLike | None = None  # the reliability shape driving the load, if one does
    stop: Callable[[str], None] = _no_stop
    headless_shape_run: Callable[[], bool] = _false  # a headless run driven by a load shape (see shapes.runtime)
    revert_journal: str | None = None  # --revert-journal (None: the default path)
    ignore_applied_faults: bool = False  # --ignore-applied-faults
    local_generator: Callable[[], object | None] = _none  # this process's arrival-rate gate (local runner)
    ended_at: float | None = None
    live: Verdict | None = None  # the latest rolling verdict

    @property
    def sla(self) -> SlaSpec:
        return self.scenario.sla

    def complete_until(self, now: float) -> int:
        """See :func:`complete_until`."""
        return complete_until(now, self.data_lag_s)

    def request_stop(self, reason: str) -> None:
        """Ask the runner to stop the test (it finishes as usual: faults reverted, record written)."""
        self.stop(reason)


@dataclass(frozen=True)
class Contribution:
    """What a feature hands back at the end of a run.

    ``sections``: record keys to JSON-ready values (dicts, lists, numbers) or pydantic models;
    ``criteria``: checks that join the selected tier's verdict (``health_uptime``);
    ``inconclusive``: reasons the numbers cannot be trusted; ``phases``: epoch second -> the
    timeline row's ``phase`` (fault | recovery; baseline where absent) for runs with a fault
    schedule, None for a feature that labels no seconds.
    """

    sections: Mapping[str, object] = field(default_factory=dict)
    criteria: tuple[Criterion, ...] = ()
    inconclusive: tuple[str, ...] = ()
    phases: Mapping[int, str] | None = None


class Extension(Protocol):
    """A feature that runs on the master / local runner alongside the SLA engine (fault schedule,
    health probes, alerts ...). Every hook is called from the plugin; none may block for long
    (spawn a greenlet for slow work). An exception in a hook is logged and makes the run
    inconclusive, never crashes the run."""

    name: str

    def on_test_start(self, run: RunContext) -> None: ...

    def on_tick(self, run: RunContext, now: float) -> None: ...

    def on_test_stop(self, run: RunContext) -> None: ...

    def finish(self, run: RunContext) -> Contribution:
        """Stop, clean up and return this feature's part of the result (called once)."""
        ...
