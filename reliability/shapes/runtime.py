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
import math
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

import gevent
from gevent.lock import BoundedSemaphore

from reliability.config import ScenarioSpec, SlaSpec, percentile_label
from reliability.record import iso
from reliability.shapes.capacity import CapacitySearch, WindowGrade
from reliability.shapes.recovery import (
    BASELINE,
    FaultAnalysis,
    FaultTimes,
    RecoveryParams,
    SecondRow,
    WindowSla,
    analyze,
    overall_score,
)
from reliability.shapes.spec import ScheduledFaultSpec, fault_names, resolve_factory
from reliability.sla import evaluate

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
IN_EFFECT = ("injecting", "active", "reverting")


class FaultCheckLike(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def detail(self) -> str: ...

    @property
    def latency_ms(self) -> float | None: ...


class FaultLike(Protocol):
    """The Fault protocol of ``reliability.faults`` (structural, so custom faults fit too)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def dead_man_s(self) -> float | None: ...

    def inject(self) -> None: ...

    def revert(self) -> None: ...

    def verify(self) -> FaultCheckLike: ...


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


@dataclass
class FaultRun:
    """Runtime state of one scheduled fault. ``state``: pending -> injecting -> active ->
    reverting -> reverted; ``skipped`` when it could not be built or never ran."""

    spec: ScheduledFaultSpec
    name: str
    fault: FaultLike | None = None
    state: str = "pending"
    build_error: str | None = None
    inject_started_at: float | None = None
    injected_at: float | None = None
    revert_started_at: float | None = None
    reverted_at: float | None = None
    inject_error: str | None = None
    revert_error: str | None = None
    revert_attempts: int = 0
    reverted_because: str | None = None
    check: FaultCheckLike | None = None
    check_error: str | None = None
    checked_at: float | None = None
    check_attempts: int = 0
    revert_due_at: float | None = None  # set when injected on demand (inject_now): held hold_s from then
    lock: BoundedSemaphore = field(default_factory=lambda: BoundedSemaphore(1))


@dataclass(frozen=True)
class _Check:
    healthy: bool
    detail: str
    latency_ms: float | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class ScheduleExtension:
    """Drives ``scenario.faults`` and feeds the reliability shape; see the module docstring.

    Example (what the plugin does when a scenario has ``faults:`` or a ``shape:``)::

        plugin.add_extension(ScheduleExtension(scenario))
    """

    name = "schedule"

    def __init__(self, scenario: ScenarioSpec, *, builder: FaultBuilder = build_scheduled_fault,
                 step_timeout_s: float = STEP_TIMEOUT_S) -> None:
        self.scenario = scenario
        self.builder = builder
        self.step_timeout_s = step_timeout_s
        self.runs: list[FaultRun] = []
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
        for run in self.runs:
            try:
                run.fault = self.builder(run.spec, run.name)
            except Exception as exc:
                run.build_error = _describe(exc)
                run.state = "skipped"
                logger.error("fault %s cannot be built: %s", run.name, run.build_error)
                continue
            dead_man = run.fault.dead_man_s
            if dead_man is None:
                logger.warning("fault %s has no dead-man switch: if this process is SIGKILLed while it is active, "
                               "nothing reverts it", run.name)
        if self.runs:
            self._install_handlers()
            self._driver = gevent.spawn(self._drive)
            plan = "; ".join(f"{r.name} at +{r.spec.at_s:g}s for {r.spec.hold_s:g}s" for r in self.runs)
            logger.info("fault schedule: %s", plan)

    def on_tick(self, plugin: ReliabilityPlugin, now: float) -> None:
        self.advance(now)
        self._feed_capacity(plugin, now)

    def on_test_stop(self, plugin: ReliabilityPlugin) -> None:
        self._stopping = True
        if self._driver is not None:
            self._driver.kill(block=False)
        if any(r.state in IN_EFFECT for r in self.runs):
            gevent.spawn(self.revert_all, "the test stopped")

    def contribute(self, plugin: ReliabilityPlugin, record: dict[str, Any]) -> list[str]:
        self._stopping = True
        if self._driver is not None:
            self._driver.kill(block=False)
        self.revert_all("the run is over")
        self._uninstall_handlers()
        reasons = list(self._problems)
        if self.runs:
            reasons += self._contribute_faults(plugin, record)
        if self.shape is not None:
            self._contribute_shape(plugin, record)
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
        with run.lock:
            if run.state != "injecting" or self._stopping:  # stopped before this greenlet got to run
                run.state = "skipped"
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
        if run.inject_error is not None or self._stopping:
            self._revert(run, "the injection failed" if run.inject_error else "the test stopped")

    def _revert(self, run: FaultRun, why: str) -> None:
        """Revert (retried) and verify; safe to call from several greenlets and from atexit."""
        if run.fault is None:
            return
        got = run.lock.acquire(timeout=LOCK_WAIT_S)
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
                    logger.error("fault %s: revert attempt %d failed: %s", run.name, attempt, run.revert_error)
                    if attempt < REVERT_ATTEMPTS:
                        gevent.sleep(0.5 * attempt)
                    continue
                run.reverted_at = self.clock()
                run.revert_error = None
                run.reverted_because = why
                run.state = "reverted"
                logger.info("fault %s: reverted at +%.1f s", run.name, run.reverted_at - self.started_at)
                break
            if run.state == "reverted":
                self._verify(run)
        finally:
            if got:
                run.lock.release()

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
            search.observe(grade_window(plugin, start_t, end_t))

    # -- the record --------------------------------------------------------------------------------

    def _window_sla(self, sla: SlaSpec) -> WindowSla:
        tier_name = self.scenario.recovery.tier or sla.tier
        tier = sla.all_tiers()[tier_name]
        return WindowSla(tier=tier_name, percentile=sla.percentile,
                         latency_ms=tier.latency_thresholds(sla.percentile).get(sla.percentile),
                         error_ratio=tier.error_ratio)

    def _contribute_faults(self, plugin: ReliabilityPlugin, record: dict[str, Any]) -> list[str]:
        sla = plugin.sla
        window_sla = self._window_sla(sla)
        recovery = self.scenario.recovery
        params = RecoveryParams(windows=recovery.windows, band_tolerance=recovery.band_tolerance,
                                band_slack_ms=recovery.band_slack_ms, warmup_s=recovery.warmup_s,
                                baseline_window_s=recovery.baseline_window_s, target_s=recovery.target_s)
        rows = [SecondRow(t, users, reqs, fails, latency)
                for t, users, reqs, fails, latency, _partial in plugin.store.timeline(sla.percentile / 100.0)]
        run_end = plugin.ended_at or self.clock()
        times = []
        for run in self.runs:
            if run.inject_started_at is None:
                continue
            times.append(FaultTimes(
                name=run.name, inject_started_at=run.inject_started_at, injected_at=run.injected_at,
                reverted_at=run.reverted_at,
                budget_error_ratio=(run.spec.graceful_error_pct / 100.0 if run.spec.graceful_error_pct is not None
                                    else window_sla.error_ratio or 0.0),
                fail_fast_ms=run.spec.fail_fast_ms or recovery.fail_fast_ms))
        snapshots: dict[tuple[int, int], Any] = {}

        def quantile(start_t: int, end_t: int, q: float) -> float | None:
            if (start_t, end_t) not in snapshots:
                snapshots[(start_t, end_t)] = plugin.store.snapshot(start_t, end_t)
            value: float | None = snapshots[(start_t, end_t)].total.latency_ms(min(max(q, 0.0), 1.0))
            return value

        total = record.get("totals", {}).get("requests") or 0
        labels, analyses = analyze(rows, times, sla=window_sla, params=params, run_start=self.started_at,
                                   run_end=run_end, total_requests=int(total), quantile=quantile)
        by_name = {a.name: a for a in analyses}
        for row in record.get("timeline", []):
            row["phase"] = labels.get(int(row["epoch_s"]), BASELINE)
        record["faults"] = [self._fault_record(run, by_name.get(run.name), window_sla, params) for run in self.runs]
        record["resilience_score"] = overall_score(analyses)
        record["recovery"] = {
            "tier": window_sla.tier,
            "percentile": percentile_label(window_sla.percentile),
            "sla_latency_ms": window_sla.latency_ms,
            "sla_error_ratio": window_sla.error_ratio,
            "windows": params.windows,
            "window_s": 1,
            "band_tolerance": params.band_tolerance,
            "band_slack_ms": params.band_slack_ms,
            "warmup_s": params.warmup_s,
            "baseline_window_s": params.baseline_window_s,
            "target_s": params.target_s,
        }
        return self._fault_problems(run_end, by_name)

    def _fault_problems(self, run_end: float, analyses: dict[str, FaultAnalysis]) -> list[str]:
        reasons = []
        for run in self.runs:
            if run.build_error is not None:
                reasons.append(f"fault {run.name} could not be built: {run.build_error}")
            elif run.inject_started_at is None:
                reasons.append(f"fault {run.name} never ran: the run ended at +{run_end - self.started_at:.0f} s, "
                               f"before its at_s {run.spec.at_s:g} s")
                continue
            if run.inject_error is not None:
                reasons.append(f"fault {run.name} could not be injected: {run.inject_error}")
            elif (run.reverted_at is not None and run.injected_at is not None
                  and run.reverted_at < (run.revert_due_at or self.started_at + run.spec.end_s) - 1.0):
                reasons.append(f"fault {run.name} was reverted early ({run.reverted_because}) after "
                               f"{run.reverted_at - run.injected_at:.1f} s of its {run.spec.hold_s:g} s hold")
            if run.state in IN_EFFECT:
                reasons.append(f"fault {run.name}: revert failed after {run.revert_attempts} attempt(s) "
                               f"({run.revert_error}); the backend may still be degraded")
            elif run.state == "reverted" and not (run.check is not None and run.check.healthy):
                detail = run.check.detail if run.check is not None else run.check_error
                reasons.append(f"fault {run.name}: backend still unhealthy after the revert: {detail}")
            analysis = analyses.get(run.name)
            if analysis is not None and analysis.note and run.inject_error is None:
                reasons.append(f"fault {run.name}: {analysis.note}; recovery metrics unavailable")
        return reasons

    def _fault_record(self, run: FaultRun, analysis: FaultAnalysis | None, sla: WindowSla,
                      params: RecoveryParams) -> dict[str, Any]:
        def rel(epoch: float | None) -> float | None:
            return None if epoch is None else round(epoch - self.started_at, 3)

        def at(epoch: float | None) -> str | None:
            return None if epoch is None else iso(epoch)

        out: dict[str, Any] = {
            "name": run.name,
            "type": run.spec.type,
            "kind": run.fault.kind if run.fault is not None else None,
            "dead_man_s": run.fault.dead_man_s if run.fault is not None else None,
            "planned": {"at_s": run.spec.at_s, "hold_s": run.spec.hold_s},
            "on_demand": run.revert_due_at is not None,
            "state": run.state,
            "inject_started_at": at(run.inject_started_at),
            "injected_at": at(run.injected_at),
            "reverted_at": at(run.reverted_at),
            "inject_started_at_s": rel(run.inject_started_at),
            "injected_at_s": rel(run.injected_at),
            "reverted_at_s": rel(run.reverted_at),
            "build_error": run.build_error,
            "inject_error": run.inject_error,
            "revert_error": run.revert_error,
            "revert_attempts": run.revert_attempts,
            "reverted_because": run.reverted_because,
            "verified_healthy": None if run.checked_at is None else bool(run.check is not None and run.check.healthy),
            "post_revert_check": None if run.checked_at is None else {
                "healthy": bool(run.check is not None and run.check.healthy),
                "detail": run.check.detail if run.check is not None else run.check_error,
                "latency_ms": _round(run.check.latency_ms if run.check is not None else None),
                "checked_at": iso(run.checked_at),
                "attempts": run.check_attempts,
            },
        }
        if analysis is None:
            return out
        a = analysis
        label = percentile_label(sla.percentile)
        out.update({
            "baseline": None if a.baseline is None else {
                "windows": a.baseline.windows, "latency_ms": _round(a.baseline.latency_ms),
                "rps": _round(a.baseline.rps), "error_ratio": _round(a.baseline.error_ratio, 6)},
            "band": None if a.band is None else {
                "latency_hi_ms": _round(a.band.latency_hi_ms), "rps_lo": _round(a.band.rps_lo)},
            "windows": {"fault": a.fault_windows, "recovery": a.recovery_windows},
            "time_to_detect_s": _round(a.time_to_detect_s),
            "detected_at_s": rel(a.detected_at),
            "degradation": {
                f"peak_{label}_ms": _round(a.peak_latency_ms),
                f"{label}_ms": _round(a.latency_ms),
                f"baseline_{label}_ms": _round(a.baseline.latency_ms if a.baseline else None),
                "peak_error_ratio": _round(a.peak_error_ratio, 6),
                "min_rps": _round(a.lowest_rps),
                "mean_rps": _round(a.mean_rps),
                "baseline_rps": _round(a.baseline.rps if a.baseline else None),
                "min_throughput_ratio": _round(a.lowest_throughput_ratio, 4),
            },
            "time_to_recover_s": _round(a.time_to_recover_s),
            "recovered_at_s": rel(a.recovered_at),
            "recovered": a.time_to_recover_s is not None,
            "requests": a.requests,
            "failures": a.failures,
            "error_ratio": _round(a.error_ratio, 6),
            "graceful": a.graceful,
            "graceful_budget_ratio": _round(run.spec.graceful_error_pct / 100.0
                                            if run.spec.graceful_error_pct is not None else sla.error_ratio, 6),
            "fail_fast": a.fail_fast,
            "fail_fast_ms": run.spec.fail_fast_ms or self.scenario.recovery.fail_fast_ms,
            "failure_latency_ms": None if a.failure_latency_ms is None else {
                "lower": _round(a.failure_latency_ms[0]), "upper": _round(a.failure_latency_ms[1])},
            "burn_rate": _round(a.burn_rate, 4),
            "budget_consumed": _round(a.error_budget_consumed, 6),
            "error_budget": {
                "slo_error_ratio": sla.error_ratio,
                "incident_requests": a.incident_requests,
                "incident_failures": a.incident_failures,
            },
            "score": a.score,
            "note": a.note,
        })
        return out

    def _contribute_shape(self, plugin: ReliabilityPlugin, record: dict[str, Any]) -> None:
        search: CapacitySearch | None = getattr(self.shape, "capacity", None)
        tiers = list(plugin.sla.all_tiers())
        if search is not None:
            # grade whatever closed after the last tick, so the last step is complete in the record
            for start_t, end_t in search.windows_due(int(math.floor(plugin.ended_at or self.clock()))):
                search.observe(grade_window(plugin, start_t, end_t))
            record["capacity"] = search.result(tiers, f"{percentile_label(plugin.sla.percentile)}_ms")
            return
        entries: Sequence[Any] = getattr(self.shape, "stage_log", ())
        end = plugin.ended_at or self.clock()
        stages = []
        for i, entry in enumerate(entries):
            stop = entries[i + 1].started_at if i + 1 < len(entries) else end
            start_t, end_t = math.ceil(entry.started_at), math.floor(stop)
            item: dict[str, Any] = {"name": entry.name, "users": entry.users,
                                    # the shape's first tick comes just before test_start
                                    "started_at_s": round(max(0.0, entry.started_at - self.started_at), 3),
                                    "duration_s": round(stop - entry.started_at, 3)}
            if end_t > start_t:
                snap = plugin.store.snapshot(start_t, end_t)
                verdict = evaluate(snap, plugin.sla)
                item.update({
                    "requests": snap.total.requests,
                    "rps": round(snap.total.requests / (end_t - start_t), 3),
                    "error_ratio": _round(snap.total.error_ratio, 6),
                    f"{percentile_label(plugin.sla.percentile)}_ms": _round(
                        snap.total.latency_ms(plugin.sla.percentile / 100.0)),
                    "passed": verdict.passed if snap.total.requests else None,
                    "highest_tier_met": verdict.highest_tier_met,
                })
            stages.append(item)
        record["stages"] = stages


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


def grade_window(plugin: ReliabilityPlugin, start_t: int, end_t: int) -> WindowGrade:
    """Grade ``[start_t, end_t)`` against every tier of the run's SLA."""
    snap = plugin.store.snapshot(start_t, end_t)
    verdict = evaluate(snap, plugin.sla)
    return WindowGrade(start_t, end_t, snap.total.requests, snap.total.failures,
                       snap.total.latency_ms(plugin.sla.percentile / 100.0),
                       {t.tier: t.passed for t in verdict.tiers})


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)
