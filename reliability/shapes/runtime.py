"""The master-side feature behind ``faults:`` and the reliability shapes (a plugin ``Extension``).

It runs only where the plugin runs its features, the master or the local runner, so faults are
always driven from one place, never from the load generators. What it does:

* **fault schedule**: injects each fault ``at_s`` after the test started and reverts it
  ``hold_s`` later, one fault at a time, each step in its own greenlet (a slow backend never
  blocks the shape's tick or the SLA loop). After a revert it polls ``verify()`` until the
  backend is healthy (up to ``recovery.verify_timeout_s``) and records the check;
* **nothing left broken**: every injected fault is reverted on test stop, before the record is
  written (``quitting``), on SIGTERM (a second gevent watcher next to Locust's own, which stays
  in charge of shutting down), on SIGINT (chained in front of the previous handler, so Ctrl-C
  still raises KeyboardInterrupt) and, as a last resort, from ``atexit``. Reverts are retried and
  idempotent. SIGKILL cannot be caught: there, the fault's own dead-man switch (``dead_man_s``)
  restores the backend;
* **capacity search**: grades closed windows for the shape's :class:`CapacitySearch`;
* **record**: ``faults`` (per fault: times, checks, recovery metrics), ``resilience_score``,
  ``recovery`` (the parameters used), a ``phase`` on every timeline row, ``stages`` (per stage of
  a reliability shape) and ``capacity``; failed reverts, unhealthy backends after a revert and
  faults that never ran make the verdict inconclusive.
"""

from __future__ import annotations

import atexit
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import gevent
from gevent.lock import BoundedSemaphore

from reliability.config import ScenarioSpec
from reliability.exceptions import FaultError
from reliability.revert.journal import JOURNAL_ENV, UndoError
from reliability.revert.ledger import RevertLedger, backend_of, conflicts
from reliability.schema import RunRecord
from reliability.schema.sections import Load
from reliability.shapes.capacity import CapacitySearch
from reliability.shapes.sections import (
    IN_EFFECT,
    FaultLike,
    FaultRun,
    capacity_section,
    faults_section,
    grade_window,
    stages_section,
)
from reliability.shapes.spec import ScheduledFaultSpec, fault_names, resolve_factory

if TYPE_CHECKING:
    from reliability.plugin import ReliabilityPlugin

logger = logging.getLogger("reliability.faults")

DRIVER_STEP_S = 0.1
REVERT_ATTEMPTS = 3
STEP_TIMEOUT_S = 30.0
LOCK_WAIT_S = 35.0
VERIFY_EVERY_S = 0.5
MASTER_DATA_LAG_S = 4  # workers report every 3 s; a second is complete on the master ~4 s later
LOCAL_DATA_LAG_S = 1


FaultBuilder = Callable[[ScheduledFaultSpec, str], FaultLike]


def build_scheduled_fault(spec: ScheduledFaultSpec, name: str) -> FaultLike:
    """A fault from its spec: ``factory(name=..., **args)``, else ``reliability.faults.build_fault``."""
    if spec.factory is not None:
        fault: FaultLike = resolve_factory(spec.factory)(name=name, **spec.args)
        return fault
    from reliability.faults import build_fault

    built: FaultLike = build_fault(spec.fault, name)
    return built


class _StepTimeout(Exception):
    """A fault's inject/revert/verify did not return in time (raised by gevent.Timeout)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class ScheduleExtension:
    """Drives ``scenario.faults`` and feeds the reliability shape; see the module docstring.

    Example (what the plugin does when a scenario has ``faults:`` or a ``shape:``)::

        plugin.add_extension(ScheduleExtension(scenario))
    """

    name = "schedule"

    def __init__(self, scenario: ScenarioSpec, *, builder: FaultBuilder = build_scheduled_fault,
                 step_timeout_s: float = STEP_TIMEOUT_S, ledger: RevertLedger | None = None) -> None:
        self.scenario = scenario
        self.builder = builder
        self.ledger = ledger
        self.step_timeout_s = step_timeout_s
        self.runs: list[FaultRun] = []
        self._locks: dict[str, BoundedSemaphore] = {}
        self.plugin: ReliabilityPlugin | None = None
        self.shape: Any = None
        self.started_at = 0.0
        self.clock: Callable[[], float] = time.time
        self._stopping = False
        self._driver: gevent.Greenlet | None = None
        self._term_watcher: Any = None
        self._sigint_handler: Callable[[int, FrameType | None], Any] | None = None
        self._previous_sigint: Any = None
        self._atexit_registered = False
        self._locust_handles_sigterm: bool | None = None
        self._problems: list[str] = []
        self.interrupted: str | None = None

    # -- plugin hooks ------------------------------------------------------------------------------

    def on_test_start(self, plugin: ReliabilityPlugin) -> None:
        self.plugin = plugin
        self.clock = plugin.clock
        self.started_at = plugin.started_at if plugin.started_at is not None else plugin.clock()
        shape = getattr(plugin.environment, "shape_class", None)
        self.shape = shape if getattr(shape, "reliability_shape", False) else None
        if self.scenario.shape is not None and self.shape is None:
            reason = (f"the scenario's shape ({self.scenario.shape.type}) is not running: the locustfile has its own "
                      "load shape, not a reliability shape")
            logger.warning("%s", reason)
            if self.scenario.shape.type == "capacity_search":
                self._problems.append(reason)
        names = fault_names(self.scenario.faults)
        self.runs = [FaultRun(spec, name) for spec, name in zip(self.scenario.faults, names, strict=True)]
        self._locks = {run.name: BoundedSemaphore(1) for run in self.runs}
        for run in self.runs:
            try:
                run.fault = self.builder(run.spec, run.name)
            except Exception as exc:
                run.build_error = _describe(exc)
                run.state = "skipped"
                logger.error("fault %s cannot be built: %s", run.name, run.build_error)
        if any(run.fault is not None for run in self.runs):
            self._open_ledger(plugin)
        if self.runs:
            self._install_handlers()
            self._driver = gevent.spawn(self._drive)
            plan = "; ".join(f"{r.name} at +{r.spec.at_s:g}s for {r.spec.hold_s:g}s" for r in self.runs)
            logger.info("fault schedule: %s", plan)

    def _open_ledger(self, plugin: ReliabilityPlugin) -> None:
        """The revert journal and guard; refuse the faults when another run's journal says one is
        still applied on a backend of ours (unless --ignore-applied-faults)."""
        options = plugin.environment.parsed_options
        if self.ledger is None:
            option = getattr(options, "revert_journal", None)
            self.ledger = RevertLedger(Path(option) if option else None)
        ledger = self.ledger
        backends = {backend_of(run.fault) for run in self.runs if run.fault is not None}
        found = conflicts(backends, ledger.path.parent, exclude=ledger.path)
        if found and not getattr(options, "ignore_applied_faults", False):
            reason = ("another run's revert journal says a fault is still applied on a backend this run uses: "
                      + "; ".join(c.line() for c in found)
                      + ". Undo it with `reliability revert`, or pass --ignore-applied-faults")
            logger.error("%s", reason)
            self._problems.append(reason)
            for run in self.runs:
                run.fault, run.state, run.build_error = None, "skipped", "refused: a fault is still applied"
            runner = plugin.environment.runner
            if runner is not None:
                gevent.spawn(runner.quit)
            return
        try:
            ledger.open()
        except OSError as exc:
            reason = f"cannot write the revert journal {ledger.path} ({exc}); set {JOURNAL_ENV} or --revert-journal"
            logger.error("%s", reason)
            self._problems.append(reason)
            for run in self.runs:
                run.fault, run.state, run.build_error = None, "skipped", "refused: no revert journal"

    def on_tick(self, plugin: ReliabilityPlugin, now: float) -> None:
        self.advance(now)
        self._feed_capacity(plugin, now)

    def on_test_stop(self, plugin: ReliabilityPlugin) -> None:
        self._stopping = True
        if self._driver is not None:
            self._driver.kill(block=False)
        if any(r.state in IN_EFFECT for r in self.runs):
            gevent.spawn(self.revert_all, "the test stopped")

    def contribute(self, plugin: ReliabilityPlugin, record: RunRecord) -> list[str]:
        self._stopping = True
        if self._driver is not None:
            self._driver.kill(block=False)
        self.revert_all("the run is over")
        if self.ledger is not None:
            self.ledger.close()
        self._uninstall_handlers()
        reasons = list(self._problems)
        end = plugin.ended_at or self.clock()
        if self.runs:
            result = faults_section(self.runs, plugin.store, plugin.sla, self.scenario.recovery, self.started_at, end,
                                    record.totals.requests)
            result.apply(record)
            reasons += result.reasons
        arrival = getattr(self.shape, "arrival", None)
        if arrival is not None:  # open-model load: what was asked, what ran, what was dropped
            from reliability.shapes.arrival_driver import local_driver

            record.load = Load.model_validate(
                arrival.section(end, local_driver(plugin.environment) if plugin.role == "local" else None))
            reasons += arrival.problems
        search: CapacitySearch | None = getattr(self.shape, "capacity", None)
        if search is not None:
            record.capacity = capacity_section(search, plugin.store, plugin.sla, end)
        elif self.shape is not None:
            record.stages = stages_section(getattr(self.shape, "stage_log", ()), plugin.store, plugin.sla,
                                           self.started_at, end)
        return reasons

    # -- the schedule ------------------------------------------------------------------------------

    def _drive(self) -> None:
        while not self._stopping:
            self.advance(self.clock())
            gevent.sleep(DRIVER_STEP_S)

    def advance(self, now: float) -> None:
        """Start what is due at ``now``: one fault at a time, in order; idempotent."""
        if self._stopping:
            return
        elapsed = now - self.started_at
        on_demand = next((r for r in self.runs if r.revert_due_at is not None and r.state in IN_EFFECT), None)
        if on_demand is not None:  # injected from the web UI: its own hold, and nothing else meanwhile
            due = on_demand.revert_due_at
            if on_demand.state == "active" and due is not None and now >= due:
                on_demand.state = "reverting"
                gevent.spawn(self._revert, on_demand, "its hold time is over")
            return
        for run in self.runs:
            if run.state in ("reverted", "skipped"):
                continue
            if run.state == "pending" and elapsed >= run.spec.at_s:
                run.state = "injecting"  # claimed now, so a second advance() does not start it twice
                gevent.spawn(self._inject, run)
            elif run.state == "active" and elapsed >= run.spec.end_s:
                run.state = "reverting"
                gevent.spawn(self._revert, run, "its hold time is over")
            return

    def _inject(self, run: FaultRun) -> None:
        assert run.fault is not None
        with self._locks[run.name]:
            if run.state != "injecting" or self._stopping:  # stopped before this greenlet got to run
                run.state = "skipped"
                return
            if self.ledger is not None:
                try:  # the undo is on disk before the fault exists
                    self.ledger.intend(run.name, run.fault, getattr(run.spec.fault, "dead_man_s", None))
                except (UndoError, FaultError) as exc:
                    run.build_error = f"refused: {exc}"
                    run.state = "skipped"
                    logger.error("fault %s: not injected: %s", run.name, exc)
                    return
            run.inject_started_at = self.clock()
            logger.info("fault %s: injecting (%s, %s)", run.name, run.spec.type, run.fault.kind)
            try:
                with gevent.Timeout(self.step_timeout_s, _StepTimeout(f"inject took over {self.step_timeout_s:g} s")):
                    run.fault.inject()
            except Exception as exc:
                run.inject_error = _describe(exc)
                logger.error("fault %s: injection failed (%s); reverting whatever part took effect", run.name,
                             run.inject_error)
            else:
                run.injected_at = self.clock()
                if run.state == "injecting":
                    run.state = "active"
                logger.info("fault %s: injected at +%.1f s", run.name, run.injected_at - self.started_at)
            if self.ledger is not None:
                self.ledger.injected(run.name, run.inject_error is None, run.inject_error)
            # Only now is the backend's own expiry known (a real Toxiproxy has none).
            if run.inject_error is None and run.fault.dead_man_s is None:
                guarded = self.ledger is not None and self.ledger.guard_pid is not None
                logger.warning("fault %s: its backend has no expiry of its own: %s", run.name,
                               "the revert guard undoes it if this process dies or hangs" if guarded else
                               "if this process is SIGKILLed while it is active, nothing reverts it")
        if run.inject_error is not None or self._stopping:
            self._revert(run, "the injection failed" if run.inject_error else "the test stopped")

    def _revert(self, run: FaultRun, why: str) -> None:
        """Revert (retried) and verify; safe to call from several greenlets and from atexit."""
        if run.fault is None:
            return
        lock = self._locks[run.name]
        got = lock.acquire(timeout=LOCK_WAIT_S)
        try:
            if run.state not in IN_EFFECT:
                return
            if run.inject_started_at is None:  # claimed, but the injection never began: nothing to undo
                run.state = "skipped"
                return
            run.state = "reverting"
            run.revert_started_at = self.clock()
            logger.info("fault %s: reverting (%s)", run.name, why)
            for attempt in range(1, REVERT_ATTEMPTS + 1):
                run.revert_attempts = attempt
                try:
                    with gevent.Timeout(self.step_timeout_s,
                                        _StepTimeout(f"revert took over {self.step_timeout_s:g} s")):
                        run.fault.revert()
                except Exception as exc:
                    run.revert_error = _describe(exc)
                    if self.ledger is not None:
                        self.ledger.attempt(run.name, attempt, False, run.revert_error)
                    logger.error("fault %s: revert attempt %d failed: %s", run.name, attempt, run.revert_error)
                    if attempt < REVERT_ATTEMPTS:
                        gevent.sleep(0.5 * attempt)
                    continue
                run.reverted_at = self.clock()
                if self.ledger is not None:
                    self.ledger.attempt(run.name, attempt, True)
                    self.ledger.reverted(run.name)
                run.revert_error = None
                run.reverted_because = why
                run.state = "reverted"
                logger.info("fault %s: reverted at +%.1f s", run.name, run.reverted_at - self.started_at)
                break
            if run.state == "reverted":
                self._verify(run)
        finally:
            if got:
                lock.release()

    def _verify(self, run: FaultRun) -> None:
        assert run.fault is not None
        timeout_s = self.scenario.recovery.verify_timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            run.check_attempts += 1
            try:
                with gevent.Timeout(self.step_timeout_s, _StepTimeout(f"verify took over {self.step_timeout_s:g} s")):
                    run.check = run.fault.verify()
                run.check_error = None
            except Exception as exc:
                run.check = None
                run.check_error = _describe(exc)
            run.checked_at = self.clock()
            if (run.check is not None and run.check.healthy) or time.monotonic() >= deadline:
                break
            gevent.sleep(VERIFY_EVERY_S)
        if run.check is not None and run.check.healthy:
            logger.info("fault %s: backend healthy after the revert (%s)", run.name, run.check.detail)
        else:
            detail = run.check.detail if run.check is not None else run.check_error
            logger.error("fault %s: backend still unhealthy %.0f s after the revert: %s", run.name, timeout_s, detail)

    def inject_now(self, name: str) -> FaultRun:
        """Inject the pending fault ``name`` now instead of at its ``at_s`` (the web UI's button); it
        is held ``hold_s`` and reverted like a scheduled one. ValueError when it is unknown or not
        pending, another fault is in effect, or the schedule has stopped."""
        run = next((r for r in self.runs if r.name == name), None)
        if run is None:
            raise ValueError(f"unknown fault {name!r}")
        if self._stopping:
            raise ValueError("the fault schedule has stopped")
        if run.state != "pending" or run.fault is None:
            raise ValueError(f"fault {name} is {run.state}, not pending")
        busy = [r.name for r in self.runs if r.state in IN_EFFECT]
        if busy:
            raise ValueError(f"fault {busy[0]} is in effect; one fault at a time")
        run.revert_due_at = self.clock() + run.spec.hold_s
        run.state = "injecting"
        gevent.spawn(self._inject, run)
        return run

    def revert_all(self, why: str) -> None:
        """Revert every fault that is (or may be) in effect, one after the other; blocks until done."""
        self._stopping = True
        for run in self.runs:
            if run.state in IN_EFFECT:
                self._revert(run, why)

    # -- signals and exit --------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        if not self._atexit_registered:
            atexit.register(self._at_exit)
            self._atexit_registered = True
        # Locust 2.47 installs its SIGTERM handler only after a headless shape run has ended, so
        # during one SIGTERM would kill the process outright. Note whether a handler is there now.
        self._locust_handles_sigterm = _sigterm_caught()
        try:
            # A second watcher: where Locust has its own, that one still shuts the process down.
            self._term_watcher = gevent.signal_handler(signal.SIGTERM, self._on_sigterm)
        except (ValueError, OSError) as exc:
            logger.warning("cannot watch SIGTERM (%s); faults are still reverted when Locust quits", exc)
        previous = signal.getsignal(signal.SIGINT)
        if previous in (signal.SIG_IGN, None):
            return  # SIGINT is ignored in this process (a background job): leave it so

        def on_sigint(signum: int, frame: FrameType | None) -> Any:
            self._on_signal("SIGINT")
            if previous is signal.default_int_handler:
                hub = gevent.get_hub()
                if gevent.getcurrent() is not hub.parent:
                    # Raise it in the main greenlet, where Locust waits for Ctrl-C, as gevent would
                    # after printing a traceback of whichever greenlet happened to be running.
                    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)
                    return None
            if callable(previous):
                return previous(signum, frame)
            raise KeyboardInterrupt

        try:
            signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main OS thread (greenlets all run in it)
            return
        self._previous_sigint = previous
        self._sigint_handler = on_sigint

    def _uninstall_handlers(self) -> None:
        if self._term_watcher is not None:
            self._term_watcher.cancel()
            self._term_watcher = None
        if self._sigint_handler is not None and signal.getsignal(signal.SIGINT) is self._sigint_handler:
            signal.signal(signal.SIGINT, self._previous_sigint)
        self._sigint_handler = None
        if self._atexit_registered:
            atexit.unregister(self._at_exit)
            self._atexit_registered = False

    def _on_signal(self, which: str) -> None:
        self.interrupted = self.interrupted or which
        if any(r.state in IN_EFFECT for r in self.runs):
            logger.warning("%s: reverting the active fault(s) before shutting down", which)
            gevent.spawn(self.revert_all, f"{which} received")
        self._stopping = True

    def _on_sigterm(self) -> None:
        self._on_signal("SIGTERM")
        plugin = self.plugin
        runner = plugin.environment.runner if plugin is not None else None
        locust_handles = self._locust_handles_sigterm
        if locust_handles is None and plugin is not None:  # no /proc: Locust 2.47's blind spot, by its looks
            options = plugin.environment.parsed_options
            locust_handles = not (getattr(options, "headless", False) and runner is not None
                                  and getattr(runner, "shape_greenlet", None) is not None)
        if not locust_handles and runner is not None:
            # Quitting the runner ends the shape run; Locust then quits normally: the record is
            # written (faults reverted first) and the exit code is the plugin's.
            logger.info("SIGTERM: stopping the run")
            gevent.spawn(runner.quit)

    def _at_exit(self) -> None:
        try:
            if any(r.state in IN_EFFECT for r in self.runs):
                logger.warning("process exiting with a fault in effect: reverting it now")
                self.revert_all("the process is exiting")
        except BaseException:  # noqa: BLE001 - atexit must never raise; this is the last resort
            logger.exception("revert at exit failed")

    # -- capacity search ---------------------------------------------------------------------------

    def _feed_capacity(self, plugin: ReliabilityPlugin, now: float) -> None:
        search: CapacitySearch | None = getattr(self.shape, "capacity", None)
        if search is None:
            return
        lag = MASTER_DATA_LAG_S if plugin.role == "master" else LOCAL_DATA_LAG_S
        for start_t, end_t in search.windows_due(int(now) - lag):
            search.observe(grade_window(plugin.store, plugin.sla, start_t, end_t))

def _sigterm_caught() -> bool | None:
    """Whether this process has a SIGTERM handler installed (Linux ``SigCgt``); None if unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except (OSError, ValueError):
        return None
    return None


