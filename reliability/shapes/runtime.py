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
* **result** (``finish`` returns it, the plugin builds the record): ``faults`` (per fault:
  times, checks, recovery metrics), ``resilience_score``, ``recovery`` (the parameters used), a
  ``phase`` for every timeline second, ``stages`` (per stage of a reliability shape), ``load``
  and ``capacity``; failed reverts, unhealthy backends after a revert and faults that never ran
  make the verdict inconclusive.
"""

from __future__ import annotations

import atexit
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol

import gevent
from gevent.lock import BoundedSemaphore

from reliability.config import ScenarioSpec
from reliability.exceptions import FaultError
from reliability.extension import Contribution, RunContext, ShapeLike
from reliability.faults.base import hold_check
from reliability.revert.journal import JOURNAL_ENV, UndoError
from reliability.revert.ledger import FINISHING_LINE, RevertLedger, backend_of, conflicts
from reliability.revert.undo import backoff_s
from reliability.schema.sections import Load
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

logger = logging.getLogger("reliability.faults")

DRIVER_STEP_S = 0.1
REVERT_DEADLINE_S = 20.0  # this process retries a revert that long (each call); then the guard carries on
HOLD_CHECK_S = 2.0  # re-verify a held fault on its data path this often
STEP_TIMEOUT_S = 30.0
LOCK_WAIT_S = 75.0  # > REVERT_DEADLINE_S + a step timeout + a verification
VERIFY_EVERY_S = 0.5


FaultBuilder = Callable[[ScheduledFaultSpec, str], FaultLike]
SigintHandler = Callable[[int, FrameType | None], object]  # a signal handler's return value is ignored
SignalDisposition = SigintHandler | int | signal.Handlers | None  # what signal.getsignal returns


class Watcher(Protocol):
    """A gevent signal watcher (``gevent.signal_handler``)."""

    def cancel(self) -> None: ...


def build_scheduled_fault(spec: ScheduledFaultSpec, name: str) -> FaultLike:
    """A fault from its spec: ``factory(name=..., **args)``, else ``reliability.faults.build_fault``."""
    if spec.factory is not None:
        fault: FaultLike = resolve_factory(spec.factory)(name=name, **spec.args)
        return fault
    from reliability.faults import build_fault

    if spec.fault is None:  # the spec's own check: exactly one of fault and factory
        raise ValueError(f"fault {name}: give a fault spec or a factory")
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
        self.run: RunContext | None = None
        self.shape: ShapeLike | None = None
        self.started_at = 0.0
        self.clock: Callable[[], float] = time.time
        self._stopping = False
        self._driver: gevent.Greenlet | None = None
        self._term_watcher: Watcher | None = None
        self._hup_watcher: Watcher | None = None
        self._finishing = False
        self._sigint_handler: SigintHandler | None = None
        self._previous_sigint: SignalDisposition = None
        self._atexit_registered = False
        self._locust_handles_sigterm: bool | None = None
        self._problems: list[str] = []
        self.interrupted: str | None = None

    # -- plugin hooks ------------------------------------------------------------------------------

    def on_test_start(self, ctx: RunContext) -> None:
        self.run = ctx
        self.clock = ctx.clock
        self.started_at = ctx.started_at
        self.shape = ctx.shape
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
            self._open_ledger(ctx)
        if self.runs:
            self._install_handlers()
            self._driver = gevent.spawn(self._drive)
            plan = "; ".join(f"{r.name} at +{r.spec.at_s:g}s for {r.spec.hold_s:g}s" for r in self.runs)
            logger.info("fault schedule: %s", plan)

    def _open_ledger(self, ctx: RunContext) -> None:
        """The revert journal and guard; refuse the faults when another run's journal says one is
        still applied on a backend of ours (unless --ignore-applied-faults)."""
        if self.ledger is None:
            self.ledger = RevertLedger(Path(ctx.revert_journal) if ctx.revert_journal else None)
        ledger = self.ledger
        backends = {backend_of(run.fault) for run in self.runs if run.fault is not None}
        found = conflicts(backends, ledger.path.parent, exclude=ledger.path)
        if found and not ctx.ignore_applied_faults:
            reason = ("another run's revert journal says a fault is still applied on a backend this run uses: "
                      + "; ".join(c.line() for c in found)
                      + ". Undo it with `reliability revert`, or pass --ignore-applied-faults")
            logger.error("%s", reason)
            self._problems.append(reason)
            for run in self.runs:
                run.fault, run.state, run.build_error = None, "skipped", "refused: a fault is still applied"
            ctx.request_stop("a fault is still applied from another run")
            return
        try:
            ledger.open()
        except OSError as exc:
            reason = f"cannot write the revert journal {ledger.path} ({exc}); set {JOURNAL_ENV} or --revert-journal"
            logger.error("%s", reason)
            self._problems.append(reason)
            for run in self.runs:
                run.fault, run.state, run.build_error = None, "skipped", "refused: no revert journal"

    def on_tick(self, ctx: RunContext, now: float) -> None:
        self.advance(now)
        self._feed_capacity(ctx, now)

    def on_test_stop(self, ctx: RunContext) -> None:
        self._stopping = True
        if self._driver is not None:
            self._driver.kill(block=False)
        if any(r.state in IN_EFFECT for r in self.runs):
            gevent.spawn(self.revert_all, "the test stopped")

    def finish(self, ctx: RunContext) -> Contribution:
        if self.runs:
            self._finishing = True  # from here a Ctrl-C must not cut the reverts or the record short
            logger.info("%s", FINISHING_LINE)
        self._stopping = True
        if self._driver is not None:
            self._driver.kill(block=False)
        self.revert_all("the run is over")
        if self.ledger is not None:
            self.ledger.close()
        self._uninstall_handlers()
        reasons = list(self._problems)
        end = ctx.ended_at or self.clock()
        sections: dict[str, object] = {}
        phases: dict[int, str] | None = None
        if self.runs:
            result = faults_section(self.runs, ctx.store, ctx.sla, self.scenario.recovery, self.started_at, end,
                                    ctx.store.snapshot().total.requests)
            sections.update(faults=result.faults, resilience_score=result.resilience_score, recovery=result.recovery)
            phases = result.phases
            reasons += result.reasons
        arrival = getattr(self.shape, "arrival", None)
        if arrival is not None:  # open-model load: what was asked, what ran, what was dropped
            sections["load"] = Load.model_validate(arrival.section(end, ctx.local_generator()))
            reasons += arrival.problems
        search = self.shape.capacity if self.shape is not None else None
        if search is not None:
            sections["capacity"] = capacity_section(search, ctx.store, ctx.sla, end)
        elif self.shape is not None:
            sections["stages"] = stages_section(self.shape.stage_log, ctx.store, ctx.sla, self.started_at, end)
        return Contribution(sections=sections, inconclusive=tuple(reasons), phases=phases)

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
        for index, run in enumerate(self.runs):
            if run.state in ("reverted", "skipped"):
                continue
            if run.state == "pending" and elapsed >= run.spec.at_s:
                run.state = "injecting"  # claimed now, so a second advance() does not start it twice
                gevent.spawn(self._inject, run)
            elif run.state == "active" and elapsed >= run.spec.end_s:
                run.state = "reverting"
                gevent.spawn(self._revert, run, "its hold time is over")
            elif run.state in ("injecting", "reverting"):
                # One fault at a time: a later fault due while this one is still being injected or
                # reverted is skipped, with the reason, rather than silently waiting for ever.
                for later in self.runs[index + 1:]:
                    if later.state == "pending" and elapsed >= later.spec.at_s:
                        later.state = "skipped"
                        doing = "being injected" if run.state == "injecting" else "being reverted"
                        later.skipped_because = (f"at its start (+{later.spec.at_s:g} s) fault {run.name} was still "
                                                 f"{doing}")
                        logger.error("fault %s: skipped: %s", later.name, later.skipped_because)
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
            check, run.not_rechecked_because = hold_check(run.fault)
            if run.inject_error is None and check is not None:
                gevent.spawn(self._watch_hold, run, check)
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
            self._revert_attempts(run, why)
            if run.state == "reverted":
                self._verify(run)
        finally:
            if got:
                lock.release()

    def _revert_attempts(self, run: FaultRun, why: str) -> None:
        """Call ``revert()`` until it works, with backoff, for up to REVERT_DEADLINE_S; every attempt
        goes into the record and the journal. Stops early when the guard (or ``reliability
        revert``) has undone the fault meanwhile."""
        assert run.fault is not None
        deadline = time.monotonic() + REVERT_DEADLINE_S
        tries = 0
        while True:
            tries += 1
            run.revert_attempts += 1
            attempt_at = self.clock()
            try:
                with gevent.Timeout(self.step_timeout_s, _StepTimeout(f"revert took over {self.step_timeout_s:g} s")):
                    run.fault.revert()
            except Exception as exc:
                run.revert_error = _describe(exc)
                run.revert_log.append({"at": attempt_at, "by": "master", "ok": False, "error": run.revert_error})
                if self.ledger is not None:
                    self.ledger.attempt(run.name, run.revert_attempts, False, run.revert_error)
                logger.error("fault %s: revert attempt %d failed: %s", run.name, run.revert_attempts, run.revert_error)
                by = self._undone_elsewhere(run)
                if by is not None:
                    self._reverted(run, why, by)
                    return
                delay = backoff_s(tries)
                if time.monotonic() + delay > deadline:
                    logger.error("fault %s: still not reverted after %d attempt(s) over %.0f s; the revert guard keeps "
                                 "trying (journal %s)", run.name, run.revert_attempts, REVERT_DEADLINE_S,
                                 self.ledger.path if self.ledger is not None else "none")
                    return
                gevent.sleep(delay)
                continue
            run.revert_log.append({"at": attempt_at, "by": "master", "ok": True, "error": None})
            if self.ledger is not None:
                self.ledger.attempt(run.name, run.revert_attempts, True)
                self.ledger.reverted(run.name)
            self._reverted(run, why, "master")
            return

    def _undone_elsewhere(self, run: FaultRun) -> str | None:
        if self.ledger is None:
            return None
        try:
            state = self.ledger.state()
        except OSError:
            return None
        entry = state.faults.get(run.name)
        if entry is not None and entry.state == "reverted" and entry.reverted_by not in (None, "master"):
            for attempt in entry.attempts:
                if attempt.get("by") != "master":
                    run.revert_log.append({"at": attempt.get("t"), "by": attempt.get("by"), "ok": attempt.get("ok"),
                                           "error": attempt.get("error")})
            return str(entry.reverted_by)
        return None

    def _reverted(self, run: FaultRun, why: str, by: str) -> None:
        run.reverted_at = self.clock()
        run.revert_error = None
        run.reverted_because = why if by == "master" else f"{why}; undone by the revert {by}"
        run.reverted_by = by
        run.state = "reverted"
        logger.info("fault %s: reverted at +%.1f s (by the %s)", run.name, max(0.0, run.reverted_at - self.started_at),
                    by)

    def _watch_hold(self, run: FaultRun, still_applied: Callable[[], str | None]) -> None:
        """While ``run`` is held, ask the fault every HOLD_CHECK_S whether it is still applied, on its
        data path; two answers in a row that it is not (or two failed checks) mark it lost."""
        misses = 0
        while True:
            gevent.sleep(HOLD_CHECK_S)
            if run.state != "active" or self._stopping:
                return
            try:
                with gevent.Timeout(self.step_timeout_s, _StepTimeout(f"check took over {self.step_timeout_s:g} s")):
                    gone = still_applied()
            except Exception as exc:
                gone = f"the check failed: {_describe(exc)}"
            if run.state != "active":  # reverted while we looked: not lost
                return
            run.hold_checks += 1
            misses = misses + 1 if gone else 0
            if misses >= 2:
                run.lost_at = self.clock()
                run.lost_detail = str(gone)
                logger.error("fault %s: no longer applied at +%.1f s (%s); the run will be inconclusive", run.name,
                             max(0.0, run.lost_at - self.started_at), gone)
                return

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
            elif run.name in self._locks:
                # a revert or its verification may still be running elsewhere: wait for it, so the
                # record is written with its outcome
                lock = self._locks[run.name]
                if lock.acquire(timeout=LOCK_WAIT_S):
                    lock.release()

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
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            try:  # a closed terminal or a dropped ssh session: handled like SIGTERM (Locust has no handler)
                self._hup_watcher = gevent.signal_handler(signal.SIGHUP, self._on_sighup)
            except (ValueError, OSError) as exc:
                logger.warning("cannot watch SIGHUP (%s)", exc)
        previous = signal.getsignal(signal.SIGINT)
        if previous in (signal.SIG_IGN, None):
            return  # SIGINT is ignored in this process (a background job): leave it so

        def on_sigint(signum: int, frame: FrameType | None) -> object:
            if self._finishing or self.interrupted is not None:
                logger.warning("SIGINT again: still reverting and writing the record, so it is ignored (SIGKILL "
                               "would stop this process; the revert guard would then undo what is left)")
                return None
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
        if self._hup_watcher is not None:
            self._hup_watcher.cancel()
            self._hup_watcher = None
        if self._finishing:
            return  # the Ctrl-C guard stays: the record is written after the extensions contribute
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

    def _on_sighup(self) -> None:
        self._on_signal("SIGHUP")
        if self.run is not None:
            self.run.request_stop("SIGHUP")

    def _on_sigterm(self) -> None:
        self._on_signal("SIGTERM")
        ctx = self.run
        locust_handles = self._locust_handles_sigterm
        if locust_handles is None and ctx is not None:  # no /proc: Locust 2.47's blind spot, by its looks
            locust_handles = not ctx.headless_shape_run()
        if not locust_handles and ctx is not None:
            # Stopping the runner ends the shape run; Locust then quits normally: the record is
            # written (faults reverted first) and the exit code is the plugin's.
            ctx.request_stop("SIGTERM")

    def _at_exit(self) -> None:
        try:
            if any(r.state in IN_EFFECT for r in self.runs):
                logger.warning("process exiting with a fault in effect: reverting it now")
                self.revert_all("the process is exiting")
        except BaseException:  # noqa: BLE001 - atexit must never raise; this is the last resort
            logger.exception("revert at exit failed")

    # -- capacity search ---------------------------------------------------------------------------

    def _feed_capacity(self, ctx: RunContext, now: float) -> None:
        search = self.shape.capacity if self.shape is not None else None
        if search is None:
            return
        for start_t, end_t in search.windows_due(ctx.complete_until(now)):
            search.observe(grade_window(ctx.store, ctx.sla, start_t, end_t))

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


