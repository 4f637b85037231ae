"""The Locust plugin: the only module that touches Locust events.

Add one line to any locustfile::

    import reliability.plugin  # noqa: F401  (SLA grading, run record, exit codes)

and run Locust as usual (``--sla-tier gold --sla-percentile p95 --scenario FILE --run-record PATH
--sla-abort``). Importing registers two listeners on ``locust.events``: one adds the options,
one calls :func:`install` on the environment. Code that builds its own ``Environment`` calls
``install(environment)`` itself.

Who does what:

* load generators (local runner, workers): ``request`` -> per-second windows; workers send
  closed windows to the master in ``report_to_master`` (every 3 s and a final report on stop);
* master / local runner: merge windows, note users per second, evaluate the rolling window and
  print a status line, abort on a sustained breach, watch for lost/joined workers and generator
  CPU, then in ``quitting`` (after the workers' last reports) grade the whole run, write the
  record and set the exit code: 0 met, 3 not met, 4 inconclusive.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import sys
import time
from argparse import Namespace
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import gevent
import locust
import psutil
from gevent import getcurrent
from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

from reliability import __version__
from reliability.basis import annotate_record, lag_problem, schedule_section
from reliability.config import ScenarioSpec, SlaSpec
from reliability.exceptions import MetricsError, ReliabilityError
from reliability.exitcode import ExitCodes
from reliability.extension import LOCAL_DATA_LAG_S, Contribution, RunContext, ShapeLike
from reliability.extension import Extension as Extension  # re-exported: the protocol lives in reliability.extension
from reliability.locust_hooks import listen
from reliability.masking import MaskingFilter, install_log_masking, mask, mask_data
from reliability.metrics.payload import check_report
from reliability.metrics.windows import PACED_QUEUE_LIMIT, WindowStore
from reliability.options import resolve_spec as resolve_spec  # re-exported: where locustfiles found it
from reliability.pacing import (
    MARK_ATTR,
    IntendedStart,
    locust_pacing_s,
    pace_user_classes,
    pending_marks,
    still_pending,
)
from reliability.plugin_options import add_to
from reliability.record import (
    USAGE_SAMPLE_S,
    GeneratorUsage,
    RunRecord,
    build_record,
    default_record_path,
    iso,
    write_record,
)
from reliability.request_dispatch import can_take_over, give_back, take_over
from reliability.schema import sections as s
from reliability.sla import EXIT_FAILED, EXIT_INCONCLUSIVE, OUTCOMES, Verdict, evaluate, status_line

logger = logging.getLogger("reliability")
T = TypeVar("T")

PAYLOAD_KEY = "reliability"
ROLLUP_EVERY_S = 10
LIVE_EVAL_EVERY_S = 2.0
EXIT_LISTENER_ERROR = 2
EXIT_USAGE = 2
_INF = math.inf


def _as_float(value: object) -> float | None:
    """A real number (int, float, numpy's, Fraction ...) as a float; None for anything else."""
    if type(value) is float:
        return value
    if not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _epoch_s(start_time: object) -> float | None:
    """``start_time`` as epoch seconds (2001-5138, Locust's ``time.time()``); None for anything else."""
    sent = _as_float(start_time)
    return sent if sent is not None and 1e9 <= sent < 1e11 else None


def add_arguments(parser: LocustArgumentParser, **_kwargs: object) -> None:
    """Our command-line options, each with its ``LOCUST_*`` variable (idempotent: Locust may build
    several parsers). The table is :data:`reliability.plugin_options.OPTIONS`."""
    group = parser.add_argument_group("locust-reliability", "SLA grading (locust-reliability)")
    for action in add_to(group):  # Locust's start form shows only actions marked so (a group cannot take the kwarg)
        action.include_in_web_ui = True


SPEC_OPTIONS = ("scenario", "sla_tier", "sla_percentile", "sla_window", "sla_status_interval", "sla_abort",
                "sla_abort_grace", "sla_confidence", "sla_min_requests", "sla_latency_basis", "allow_unsafe_faults")


class ReliabilityPlugin:
    """Per-environment state and listeners. Created by :func:`install`; one per Environment."""

    def __init__(self, environment: Environment, clock: Callable[[], float] = time.time) -> None:
        self.environment = environment
        self.clock = clock
        self.store = WindowStore(clock=clock)
        self.scenario = ScenarioSpec()
        self.sla = self.scenario.sla
        self.role = self._role()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.live: Verdict | None = None
        self.final: Verdict | None = None
        self.record_path: Path | None = None
        self.aborted: str | None = None
        self.problems: list[str] = []  # inconclusive reasons found during the run
        self.lost_workers: dict[str, s.LostWorker] = {}
        self.joined_workers: dict[str, float] = {}
        self.worker_last_report: dict[str, float] = {}
        self.rejected_reports: dict[str, tuple[int, str]] = {}  # worker id -> (reports rejected, first reason)
        self.workers_seen: set[str] = set()
        self.generators: dict[str, GeneratorUsage] = {}
        self._final_drain = False
        self._ticker: gevent.Greenlet | None = None
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._breach_since: float | None = None
        self._finalized = False
        self._cache_counts: dict[tuple[str, str], list[int]] = {}  # (type, name) -> [hits, misses]
        self.extensions: list[Extension] = []
        self.exit_codes = ExitCodes()
        self._record: RunRecord | None = None
        self._expect_marks = False  # a scheduler marks intended starts (reliability.pacing)
        self._request_fire: Callable[..., None] | None = None  # the request event's dispatch, once taken over
        self._stopping_marks: list[tuple[IntendedStart, float]] = []  # in flight as the test stopped
        self.paced_users: dict[str, float] = {}  # user class -> schedule interval (s)
        self.masker = MaskingFilter()  # attached to the log handlers by on_init
        self._resolved: tuple[tuple[object, ...], tuple[ScenarioSpec, SlaSpec]] | None = None  # (option values, spec)
        self.run: RunContext | None = None  # what the features see of the current test

    def expect_intended_starts(self) -> None:
        """Make the request listener read the intended-start marks schedulers leave on greenlets
        (see :mod:`reliability.pacing`). Call on the load generators before the marked tasks run."""
        self._expect_marks = True

    def resolve(self, options: Namespace | None) -> tuple[ScenarioSpec, SlaSpec]:
        """:func:`resolve_spec`, read once per run: the shape, the plugin and the log masking
        share it (a new test in the web UI reads the file again)."""
        key = tuple(getattr(options, name, None) for name in SPEC_OPTIONS)
        if self._resolved is None or self._resolved[0] != key:
            self._resolved = None
            resolved = resolve_spec(options)
            self._resolved = (key, resolved)
            self.masker.secrets = tuple(dict.fromkeys((*self.masker.secrets, *resolved[0].secrets)))
        return self._resolved[1]

    def add_extension(self, extension: Extension) -> None:
        """Register a master/local-side feature; see :class:`Extension`."""
        if all(e.name != extension.name for e in self.extensions):
            self.extensions.append(extension)

    def _features(self) -> list[Extension]:
        """The master-side features the scenario asks for, built fresh for each test.

        Each feature module is imported only when its scenario section is present, so a plain
        run loads nothing it does not use."""
        features: list[Extension] = []
        if self.scenario.health is not None:
            from reliability.health.monitor import HealthMonitor
            features.append(HealthMonitor(self.scenario.health))
        if (self.scenario.faults or self.scenario.shape is not None
                or getattr(self.environment.shape_class, "reliability_shape", False)):
            from reliability.shapes.runtime import ScheduleExtension
            features.append(ScheduleExtension(self.scenario))
        if self.scenario.alerts is not None:
            from reliability.web.alerting import AlertingExtension
            features.append(AlertingExtension(self.scenario.alerts))
        return features

    @property
    def data_lag_s(self) -> int:
        """Seconds until a second's data is complete here (see ``reliability.extension.complete_until``)."""
        return int(WORKER_REPORT_INTERVAL) + LOCAL_DATA_LAG_S if self.role == "master" else LOCAL_DATA_LAG_S

    def runner_state(self) -> str | None:
        """Locust's runner state (ready, spawning, running, stopped ...), None without a runner."""
        state = getattr(self.environment.runner, "state", None)
        return None if state is None else str(state)

    def request_stop(self, reason: str) -> None:
        """Stop the test from a greenlet (Locust then quits as usual: the record is written)."""
        logger.info("stopping the run: %s", reason)
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)

    def _run_context(self) -> RunContext:
        options = self.environment.parsed_options
        run_time = getattr(options, "run_time", None)
        runner = self.environment.runner

        def headless_shape_run() -> bool:
            return bool(getattr(options, "headless", False) and runner is not None
                        and getattr(runner, "shape_greenlet", None) is not None)

        def local_generator() -> object | None:
            if self.role != "local":
                return None
            from reliability.shapes.arrival_driver import local_driver

            return local_driver(self.environment)

        journal = getattr(options, "revert_journal", None)
        return RunContext(
            scenario=self.scenario, store=self.store, clock=self.clock, role=self.role,
            started_at=self.started_at if self.started_at is not None else self.clock(),
            data_lag_s=self.data_lag_s,
            run_time_s=float(run_time) if isinstance(run_time, int | float) and run_time > 0 else None,
            shape=self._reliability_shape(), stop=self.request_stop, headless_shape_run=headless_shape_run,
            revert_journal=str(journal) if journal else None,
            ignore_applied_faults=bool(getattr(options, "ignore_applied_faults", False)),
            local_generator=local_generator)

    def _reliability_shape(self) -> ShapeLike | None:
        shape = self.environment.shape_class
        if shape is None or not getattr(shape, "reliability_shape", False):
            return None
        from reliability.shapes.locust_base import ReliabilityShape

        return shape if isinstance(shape, ReliabilityShape) else None

    def _call_extensions(self, hook: str, call: Callable[[Extension, RunContext], T]) -> list[T]:
        """``call(feature, run)`` for every feature, ``hook`` naming it in the log; a feature that
        raises is logged and makes the run inconclusive. Nothing to call before a test started."""
        run = self.run
        if run is None:
            return []
        results: list[T] = []
        for ext in list(self.extensions):
            try:
                results.append(call(ext, run))
            except Exception as exc:  # a broken feature must not take the run down with it
                logger.exception("%s.%s failed", ext.name, hook)
                reason = f"{ext.name} failed in {hook}: {type(exc).__name__}: {exc}"
                if reason not in self.problems:
                    self.problems.append(reason)
        return results

    def _tick_extensions(self, now: float) -> None:
        self._call_extensions("on_tick", lambda ext, run: ext.on_tick(run, now))

    def _role(self) -> str:
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            return "master"
        if isinstance(runner, WorkerRunner):
            return "worker"
        return "local"

    # -- wiring ------------------------------------------------------------------------------------

    def attach(self) -> None:
        ev = self.environment.events
        if self.role in ("local", "worker"):
            self.count_requests()
        if self.role == "worker":
            listen(ev.report_to_master, self.on_report_to_master)
        if self.role == "master":
            listen(ev.worker_report, self.on_worker_report)
            listen(ev.worker_connect, self.on_worker_connect)
        listen(ev.test_start, self.on_test_start)
        if self.role in ("local", "worker"):
            listen(ev.test_stopping, self.on_test_stopping)
        listen(ev.test_stop, self.on_test_stop)
        listen(ev.quitting, self.on_quitting)
        if self.role != "worker":
            guard_exit_code(self.environment, self.exit_codes)
            listen(ev.quit, self.on_quit)

    # -- load generators ---------------------------------------------------------------------------

    def count_requests(self) -> None:
        """Count this load generator's requests: through the request event's own dispatch where
        the hook is Locust's plain ``EventHook`` (:mod:`reliability.request_dispatch`, about 0.5 us
        a request cheaper in place), else as a listener (:meth:`on_request`)."""
        hook = self.environment.events.request
        if self._request_fire is not None or self.on_request in hook._handlers:
            return
        if can_take_over(hook):
            self._request_fire = take_over(hook, self)
        else:
            logger.debug("the request event is not Locust's own EventHook: counting requests as a listener")
            listen(hook, self.on_request)

    def stop_counting_requests(self) -> None:
        """Undo :meth:`count_requests` (``bench/overhead.py`` toggles the two)."""
        hook = self.environment.events.request
        if self._request_fire is not None:
            give_back(hook, self._request_fire)
            self._request_fire = None
        elif self.on_request in hook._handlers:
            hook.remove_listener(self.on_request)  # type: ignore[no-untyped-call]

    def on_request(self, request_type: str, name: str, response_time: float | None,
                   response_length: object = None, response: object = None,
                   context: Mapping[str, object] | None = None, exception: BaseException | None = None,
                   start_time: object = None, url: object = None, **_kwargs: object) -> None:
        """Locust's ``request`` event, once per request on a load generator, for the requests
        :mod:`reliability.request_dispatch` does not queue itself (all of them where the plugin
        listens as a plain listener). Every keyword Locust passes is a named parameter: binding
        them is cheaper than collecting the unused ones into a ``**kwargs`` dict.

        A scheduled success is queued by :meth:`queue_scheduled`; everything else takes
        :meth:`count_other_request`, which converts other real numbers (an int, numpy's) to floats."""
        if self._expect_marks and exception is None and not context:
            mark = getcurrent().__dict__.get(MARK_ATTR)
            if mark is not None and self.queue_scheduled(mark, request_type, name, response_time, start_time):
                return
        self.count_other_request(request_type, name, response_time, context, exception, start_time)

    def queue_scheduled(self, mark: IntendedStart, request_type: str, name: str, response_time: object,
                        start_time: object) -> bool:
        """Queue a success without a context that carries an intended-start ``mark`` when it is the
        task's first request (the mark's start not consumed yet) with a float ``start_time`` in
        epoch seconds and a valid float latency, as ``WindowStore.record_request`` would queue it,
        without that call. Returns whether it did (else the general path must count it)."""
        intended = mark.start_s
        if (intended is None or type(start_time) is not float or not 1e9 <= start_time < 1e11
                or type(response_time) is not float or not 0.0 <= response_time < _INF):
            return False
        mark.start_s = None  # the task's first request consumes the mark
        store = self.store
        paced = store.paced
        paced.append(request_type)
        paced.append(name)
        paced.append(response_time)
        paced.append(start_time)
        paced.append(intended)
        paced.append(mark.interval_ms)
        paced.append(mark.lag_from_s)
        if len(paced) >= PACED_QUEUE_LIMIT:
            store.flush()
        return True

    def count_other_request(self, request_type: str, name: str, response_time: float | None,
                          context: Mapping[str, object] | None, exception: BaseException | None,
                          start_time: object) -> None:
        if exception is None:
            failed, error = False, None
        else:
            failed, error = True, f"{type(exception).__name__}: {exception}"
        if context:
            outcome = context.get("cache")
            if outcome is not None:  # a cache lookup (e.g. RedisUser.get): count hits and misses
                counts = self._cache_counts.setdefault((request_type, name), [0, 0])
                counts[0 if outcome == "hit" else 1] += 1
        store = self.store
        latency = response_time
        if latency is not None and type(latency) is not float:  # an int, numpy's ...
            as_float = _as_float(latency)
            latency = math.nan if as_float is None else as_float  # not a number: invalid
        # Locust's start_time is epoch seconds; a custom user passing something else (None, a
        # perf_counter reading, NaN) is counted in the second the request completed in
        sent = _epoch_s(start_time)
        try:
            if sent is None:
                store.record(request_type, name, latency, failed, error)
            elif not self._expect_marks:
                store.record_request(request_type, name, latency, failed, error, sent)
            else:
                mark = getcurrent().__dict__.get(MARK_ATTR)
                if mark is None:
                    store.record_request(request_type, name, latency, failed, error, sent)
                else:
                    intended, mark.start_s = mark.start_s, None  # the task's first request consumes it
                    store.record_request(request_type, name, latency, failed, error, sent,
                                         intended, mark.interval_ms, mark.lag_from_s)
        except MetricsError:
            # a custom user reported a negative/NaN time: count the request, drop the latency (in
            # its send second, as the flush does with an invalid latency the inline queue took)
            if sent is None:
                store.record(request_type, name, None, failed, error)
            else:
                store.record_request(request_type, name, None, failed, error, sent)
            store.warn_invalid_latency(response_time, request_type, name)

    # a report is Locust's msgpack payload (its own keys too): the plugin writes and reads only its key

    def on_report_to_master(self, client_id: str, data: dict[str, object], **_kwargs: object) -> None:
        # once the test stopped every report drains everything, also the current second: a periodic
        # report between the stop and the last one must not leave the last second behind
        final = self._final_drain
        rss_mb = self._process.memory_info().rss / 1e6
        data[PAYLOAD_KEY] = {
            "windows": self.store.drain(final=final),
            "usage": [self.clock(), self._process.cpu_percent(None), rss_mb],
            "cache": [[rt, name, hits, misses] for (rt, name), (hits, misses) in self._cache_counts.items()],
        }
        self._cache_counts = {}

    # -- master ------------------------------------------------------------------------------------

    def on_worker_report(self, client_id: str, data: dict[str, object], **_kwargs: object) -> None:
        payload = data.get(PAYLOAD_KEY)
        now = self.clock()
        self.workers_seen.add(client_id)
        self.worker_last_report[client_id] = now
        if payload is None:
            if data.get("stats"):
                reason = f"worker {client_id} sends no SLA data (is reliability.plugin imported there?)"
                if reason not in self.problems:
                    self.problems.append(reason)
            return
        try:  # checked whole before any of it is merged: a bad report is rejected, never half-merged
            report = check_report(payload, now, self.store.relative_accuracy)
            self.store.merge_payload(report.windows)
        except MetricsError as exc:
            self._reject_report(client_id, str(exc))
            return
        for rt, name, hits, misses in report.cache:
            counts = self._cache_counts.setdefault((rt, name), [0, 0])
            counts[0] += hits
            counts[1] += misses
        if report.usage is not None:
            self._usage(client_id, "worker").add(*report.usage)

    def _reject_report(self, client_id: str, reason: str) -> None:
        """A worker's report failed its checks: drop it, say so once per worker, grade inconclusive."""
        count, first = self.rejected_reports.get(client_id, (0, mask(reason)[:300]))
        self.rejected_reports[client_id] = (count + 1, first)
        if count == 0:
            logger.error("worker %s sent an invalid report, rejected (its data is not counted): %s", client_id, first)
        prefix = f"worker {client_id} sent invalid data"
        line = f"{prefix} ({count + 1} report(s) rejected, the data in them is not counted; first: {first})"
        self.problems = [p for p in self.problems if not p.startswith(prefix + " (")] + [line]

    def on_worker_connect(self, client_id: str, **_kwargs: object) -> None:
        if self.started_at is not None and client_id not in self.joined_workers:
            self.joined_workers[client_id] = self.clock()
            logger.info("worker %s joined at +%.0f s; counted from its join", client_id,
                        self.clock() - self.started_at)

    @property
    def _own_generator(self) -> str:
        """This process's id among the generators' usage, and its role alike (not a worker's)."""
        return "local" if self.role == "local" else "master"

    def _sample_usage(self, now: float) -> None:
        """This process's CPU since the last sample (or the test's start) and its memory."""
        own = self._own_generator
        self._usage(own, own).add(now, self._process.cpu_percent(None), self._process.memory_info().rss / 1e6)

    def _usage(self, gen_id: str, role: str) -> GeneratorUsage:
        usage = self.generators.get(gen_id)
        if usage is None:
            usage = self.generators[gen_id] = GeneratorUsage(gen_id, role)
        return usage

    def _check_workers(self, now: float) -> None:
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return
        for node in runner.clients.missing:
            if node.id in self.lost_workers:
                continue
            last = self.worker_last_report.get(node.id)
            start = int(last) if last else int(self.started_at or now)
            origin = int(self.started_at or start)  # the timeline's t = epoch second - origin
            self.lost_workers[node.id] = s.LostWorker(id=node.id, detected_at=iso(now),
                                                      last_report_at=iso(last) if last else None,
                                                      partial_s=(start - origin, int(now) - origin))
            self.store.mark_partial(start, int(now) + 1)
            logger.error("worker %s went missing; data since %s is lost, the verdict will be inconclusive",
                         node.id, iso(last) if last else "the start")

    # -- lifecycle (master / local) -----------------------------------------------------------------

    def _paced_anywhere(self) -> dict[str, float]:
        """Paced user classes (the master paces none itself: the classes are the same everywhere)."""
        if self.paced_users or self.role != "master":
            return self.paced_users
        found = {cls.__name__: locust_pacing_s(getattr(cls, "wait_time", None))
                 for cls in self.environment.user_classes}
        return {name: interval for name, interval in found.items() if interval is not None}

    def _pace_users(self, environment: Environment) -> None:
        """Generators: recognise Locust's scheduling wait times so their latency counts from the
        intended start (``reliability.pacing``)."""
        self.paced_users = pace_user_classes(environment.user_classes)
        if self.paced_users:
            self.expect_intended_starts()

    def on_test_start(self, environment: Environment, **_kwargs: object) -> None:
        self._process.cpu_percent(None)  # CPU samples cover the run, not Locust's start-up before it
        if self.role != "master":
            self._pace_users(environment)
        if self.role == "worker":
            self._final_drain = False
            return
        if self.started_at is not None and not self._finalized and self.store.snapshot().total.requests:
            self.finalize()  # web UI: a new test begins; keep the previous one's record
        try:
            self.scenario, self.sla = self.resolve(environment.parsed_options)
        except ReliabilityError as exc:
            logger.error("%s", exc)
            self.exit_codes.verdict = EXIT_USAGE
            if environment.runner is not None:
                gevent.spawn(environment.runner.quit)
            return
        self.store = WindowStore(clock=self.clock, components=self.scenario.components,
                                 timeline_quantiles=(0.5, 0.95, 0.99), down_quantile=self.sla.percentile / 100.0)
        self.started_at = self.clock()
        self.store.set_span(self.started_at)  # the second the run started in is covered only in part
        self.ended_at = None
        self._finalized = False
        self.final = self.live = None
        self.aborted = None
        self.problems = []
        self.rejected_reports = {}
        self._cache_counts = {}
        self.run = self._run_context()
        if self._ticker is None or self._ticker.dead:
            self._ticker = gevent.spawn(self._tick_loop)
        self.extensions = []  # features are per test: a new test in the web UI gets fresh ones
        for feature in self._features():
            self.add_extension(feature)
        self._call_extensions("on_test_start", lambda ext, run: ext.on_test_start(run))
        sla = self.sla
        logger.info("grading against %s (%s), rolling window %g s, %g %% intervals, min %d requests, status every "
                    "%g s, abort %s", sla.tier, f"p{sla.percentile:g}", sla.rolling_window_s, sla.confidence * 100,
                    sla.min_requests, sla.status_interval_s,
                    f"after {sla.abort.grace_s:g} s" if sla.abort.enabled else "off")

    def on_test_stopping(self, environment: Environment, **_kwargs: object) -> None:
        """Before Locust kills the users: note the scheduled tasks whose first request is in flight."""
        runner = environment.runner
        if self._expect_marks and runner is not None:
            self._stopping_marks = pending_marks(list(runner.user_greenlets), self.clock())

    def on_test_stop(self, environment: Environment, **_kwargs: object) -> None:
        if self._stopping_marks:  # killed in flight: held to the stop (see WindowStore.record_held_at_stop)
            self.store.record_held_at_stop(still_pending(self._stopping_marks), self.clock())
            self._stopping_marks = []
        if self.role == "worker":
            self._final_drain = True  # reports from now on carry the current, unfinished second too
            return
        self.ended_at = self.clock()
        if self.run is not None:
            self.run.ended_at = self.ended_at
        self._call_extensions("on_test_stop", lambda ext, run: ext.on_test_stop(run))

    def on_quitting(self, environment: Environment, **_kwargs: object) -> None:
        if self.role == "worker":
            return
        if self._ticker is not None:
            self._ticker.kill(block=False)
        if self.started_at is None:
            if self.exit_codes.verdict is None:
                logger.error("SLA: no test ran: inconclusive")
                self.exit_codes.verdict = EXIT_INCONCLUSIVE
            return
        if not self._finalized:
            self.finalize()

    def on_quit(self, exit_code: int, **_kwargs: object) -> None:
        """After every ``quitting`` listener: name other listeners' codes in the log and the record."""
        note = self.exit_codes.explain()
        if note is not None:
            logger.warning("%s", note)
        if self.exit_codes.others and self._record is not None and self.record_path is not None:
            self._record.exit = s.Exit.model_validate(self.exit_codes.to_dict())
            try:
                write_record(self._record, self.record_path)
            except OSError as exc:
                logger.error("cannot update the run record %s: %s", self.record_path, exc)

    # -- periodic work -----------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        last_eval = last_status = 0.0
        last_usage = self.clock()  # the first sample covers a whole interval of the run, not the start-up
        ticks = 0
        while True:
            now = self.clock()
            runner = self.environment.runner
            if runner is not None and self.ended_at is None:
                self.store.note_users(int(now), runner.user_count)
            if now - last_usage >= USAGE_SAMPLE_S:
                last_usage = now
                self._sample_usage(now)
            self._check_workers(now)
            if self.ended_at is None:
                self._tick_extensions(now)
            if now - last_eval >= LIVE_EVAL_EVERY_S and self.ended_at is None:
                last_eval = now
                self._evaluate_live(now, print_status=now - last_status >= self.sla.status_interval_s)
                if now - last_status >= self.sla.status_interval_s:
                    last_status = now
            ticks += 1
            if ticks % ROLLUP_EVERY_S == 0:
                self.store.rollup(now)
            gevent.sleep(1.0)

    def _evaluate_live(self, now: float, print_status: bool) -> None:
        if self.run is None:
            return
        end = self.run.complete_until(now)
        start = max(end - int(self.sla.rolling_window_s), int(self.started_at or now))
        if end <= start:
            return
        self.live = self.run.live = evaluate(self.store.snapshot(start, end), self.sla)
        if print_status:
            logger.info("%s", status_line(self.live, f"SLA live {end - start}s"))
        if not self.sla.abort.enabled or self.aborted:
            return
        if not self.live.firm_failures() or not self.live.requests:
            self._breach_since = None  # only a breach on evidence counts, never a thin window
            return
        if self._breach_since is None:
            self._breach_since = now
        if now - self._breach_since >= self.sla.abort.grace_s:
            failing = "; ".join(c.describe() for c in self.live.firm_failures())
            self.aborted = f"SLA {self.sla.tier} breached for {now - self._breach_since:.0f} s: {failing}"
            logger.error("aborting: %s", self.aborted)
            self.request_stop("SLA abort")

    # -- the end -----------------------------------------------------------------------------------

    def finalize(self) -> Verdict:
        """Grade the whole run, write the record, log the verdict. Master: call after the last
        worker reports (``quitting``)."""
        self._finalized = True
        end = self.ended_at or self.clock()
        start = self.started_at or end
        if self.run is not None:
            self.run.ended_at = end
        known = len(self.problems)
        finished = self._call_extensions("finish", lambda ext, run: ext.finish(run))
        contributions: list[Contribution] = [c for c in finished if c is not None]
        reasons = list(self.problems[:known])
        for lost in self.lost_workers.values():
            first, last_s = lost.partial_s or (0, 0)
            reasons.append(f"worker {lost.id} went missing (detected {lost.detected_at}); its last "
                           f"reports were lost: seconds +{first}..+{last_s} have partial data")
        own = self.generators.get(self._own_generator)
        if own is None or not own.samples:
            self._sample_usage(self.clock())  # a run shorter than one sampling interval
        saturated = False
        for gen in self.generators.values():
            if gen.role != "master" and gen.saturated:
                saturated = True
                peak = max(s[1] for s in gen.samples)
                reasons.append(f"load generator {gen.id} CPU above {gen.saturation_pct:g} % (peak {peak:.0f} %): "
                               "latencies include the generator's own queueing")
        runner = self.environment.runner
        if runner is not None and runner.exceptions:
            count = sum(e["count"] for e in runner.exceptions.values())
            reasons.append(f"user code raised {count} exception(s) (see Locust's exception report)")
        self.store.set_span(start, end)  # ... and the second it stopped in
        snapshot = self.store.snapshot()
        verdict = evaluate(snapshot, self.sla)  # graded once; the features' results join it below
        if self.aborted and verdict.passed:
            reasons.append(f"run aborted: {self.aborted}")
        schedule = schedule_section(self.store.schedule_lag(), self.sla, self._paced_anywhere(),
                                    self.store.held_at_stop)
        lagging = lag_problem(schedule)
        if lagging:
            reasons.append(lagging)
        verdict = verdict.with_inconclusive(reasons, latency_untrusted=saturated)
        # criteria a feature adds (health_uptime) join the selected tier's verdict
        verdict = verdict.with_criteria(c for contribution in contributions for c in contribution.criteria)
        extra = [r for contribution in contributions for r in contribution.inconclusive]
        extra += self.problems[known:]  # a feature that failed while finishing
        verdict = verdict.with_inconclusive(extra)
        run = s.Run(
            started_at=iso(start),
            ended_at=iso(end),
            duration_s=round(end - start, 3),
            mode="master" if self.role == "master" else "local",
            workers=len(self.workers_seen),
            locust_version=locust.__version__,
            reliability_version=__version__,
            scenario=self.scenario.name if getattr(self.environment.parsed_options, "scenario", None) else None,
            aborted=self.aborted,
        )
        sections: dict[str, object] = {}
        if schedule.scheduled_starts:
            sections["schedule"] = schedule
        if self.scenario.cost is not None:  # so `reliability report RUN.json` can price the run later
            sections["cost_model"] = self.scenario.cost.model_dump(mode="json")
        phases: dict[int, str] | None = None
        for contribution in contributions:
            sections.update(contribution.sections)
            if contribution.phases is not None:
                phases = {**(phases or {}), **contribution.phases}
        record = build_record(
            verdict=verdict,
            snapshot=snapshot,
            store=self.store,
            run=run,
            down_error_ratio=self.sla.down_error_ratio,
            generators=list(self.generators.values()),
            cache={k: (v[0], v[1]) for k, v in self._cache_counts.items()},
            workers=s.Workers(
                seen=sorted(self.workers_seen),
                lost=list(self.lost_workers.values()),
                joined=[s.JoinedWorker(id=k, at=iso(v)) for k, v in self.joined_workers.items()],
            ),
            sections=sections,
            phases=phases,
        )
        annotate_record(record, snapshot, verdict, self.sla)
        self.final = verdict
        code = verdict.exit_code
        if locust.log.unhandled_greenlet_exception and code != EXIT_FAILED:
            logger.error("a listener or greenlet raised during the run (see above): exit %d", EXIT_LISTENER_ERROR)
            code = EXIT_LISTENER_ERROR
        self.exit_codes.verdict = code  # the same object the exit-code guard reads
        record.exit = s.Exit.model_validate(self.exit_codes.to_dict())
        self._resolved = None  # the next test (web UI) reads the scenario afresh
        record = RunRecord.model_validate(mask_data(record.to_json_dict(), self.scenario.secrets))
        self._record = record
        option = getattr(self.environment.parsed_options, "run_record", None)
        path = Path(option) if option else default_record_path()
        try:
            self.record_path = write_record(record, path)
        except OSError as exc:
            logger.error("cannot write the run record to %s: %s", path, exc)
            self.record_path = None
        if self.record_path is not None:
            self._write_reports(record, self.record_path)
        self._log_verdict(verdict)
        return verdict

    def _write_reports(self, record: RunRecord, record_path: Path) -> None:
        """HTML, JUnit XML and Markdown next to the record. A rendering problem is logged, never
        allowed to change the verdict: the record is written and can be re-rendered later."""
        from reliability.report import write_reports

        try:
            paths = write_reports(record, record_path, cost=self.scenario.cost)
        except Exception:
            logger.exception("could not render the reports; re-run `reliability report %s`", record_path)
            return
        logger.info("reports: %s", ", ".join(str(p) for p in paths))
        from reliability.report.output import append_summary, render, summary_targets

        targets = summary_targets(getattr(self.environment.parsed_options, "summary_file", None))
        if not targets:
            return
        try:
            append_summary(render(record, "md", cost=self.scenario.cost), targets)
        except OSError as exc:
            logger.error("cannot append the summary: %s", exc)
            return
        logger.info("summary appended to %s", ", ".join(str(t) for t in targets))

    def _log_verdict(self, verdict: Verdict) -> None:
        outcome = OUTCOMES.get(verdict.exit_code, "?")
        logger.info("SLA %s (%s): %s", verdict.tier, f"p{verdict.percentile:g}", outcome)
        for c in verdict.criteria:
            logger.info("  %s %s", c.state.upper(), c.describe())
        logger.info("  highest tier met: %s", verdict.highest_tier_met or "none")
        if verdict.next_tier and verdict.blocked_by:
            logger.info("  %s blocked by: %s", verdict.next_tier, "; ".join(c.describe() for c in verdict.blocked_by))
        for reason in verdict.inconclusive:
            logger.warning("  inconclusive: %s", reason)
        if self.record_path is not None:
            logger.info("run record: %s", self.record_path)


def guard_exit_code(environment: Environment, codes: ExitCodes) -> None:
    """Make ``environment.process_exit_code`` the combination of the verdict and every other
    listener's code (:mod:`reliability.exitcode`): writes by others are noted with the function
    that made them, reads return the combined code, so Locust exits with it whatever order the
    ``quitting`` listeners ran in."""
    base = type(environment)
    if getattr(base, "_reliability_exit_guard", False):
        environment.__dict__["_reliability_exit_codes"] = codes
        return

    def read(self: Environment) -> int | None:
        held: ExitCodes = self.__dict__["_reliability_exit_codes"]
        return held.combined()

    def write(self: Environment, value: int | None) -> None:
        frame = sys._getframe(1)
        held: ExitCodes = self.__dict__["_reliability_exit_codes"]
        held.note(f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}", value)

    guarded = type(base.__name__, (base,), {"process_exit_code": property(read, write),
                                            "_reliability_exit_guard": True, "__module__": base.__module__})
    earlier = environment.__dict__.pop("process_exit_code", None)
    environment.__dict__["_reliability_exit_codes"] = codes
    environment.__class__ = guarded
    if earlier is not None:
        codes.note("before reliability.plugin", earlier)


def install(environment: Environment, clock: Callable[[], float] = time.time) -> ReliabilityPlugin:
    """Attach the plugin to ``environment`` (idempotent) and return its state."""
    existing = getattr(environment, "reliability", None)
    if isinstance(existing, ReliabilityPlugin):
        return existing
    plugin = ReliabilityPlugin(environment, clock)
    plugin.attach()
    environment.reliability = plugin  # type: ignore[attr-defined]
    return plugin


def conclude(environment: Environment) -> int:
    """For code that builds its own ``Environment`` (Locust's "use as a library"): after the
    runner has stopped, grade the run, write the record and reports, log the verdict and return
    the exit code (0 met, 3 not met, 4 inconclusive, combined with any code other listeners set
    on the environment). ``install(environment)`` must have been called before the run started.
    The ``locust`` command does all of this itself in ``quitting``."""
    plugin = getattr(environment, "reliability", None)
    if not isinstance(plugin, ReliabilityPlugin):
        raise ReliabilityError("reliability.plugin.install(environment) was not called before the run")
    if plugin.ended_at is None and plugin.started_at is not None:
        plugin.ended_at = plugin.clock()
    plugin.on_quitting(environment)
    code = plugin.exit_codes.combined()
    return EXIT_INCONCLUSIVE if code is None else code


def _check_installed(environment: Environment, **_kwargs: object) -> None:
    """An Environment built by hand with Locust's events but never given the plugin: say so once,
    instead of a run that ends with no record and no verdict."""
    if not isinstance(getattr(environment, "reliability", None), ReliabilityPlugin):
        logger.warning("reliability.plugin is imported but not installed on this Environment: no SLA verdict or "
                       "run record. Call reliability.plugin.install(environment) after create_local_runner() "
                       "and reliability.plugin.conclude(environment) after the run.")


def on_init(environment: Environment, **_kwargs: object) -> None:
    plugin = install(environment)
    from reliability.shapes.arrival_driver import attach as attach_arrivals  # open-model load's messages

    attach_arrivals(environment)
    plugin.masker = install_log_masking()  # Locust's log (and ours): no password in the clear
    # Locust's stats table has its own non-propagating logger: the same filter there
    install_log_masking(logging.getLogger("locust.stats_logger"), masker=plugin.masker)
    if getattr(environment.parsed_options, "scenario", None):
        with contextlib.suppress(ReliabilityError):  # a bad file is reported when the test starts
            plugin.resolve(environment.parsed_options)  # its ${ENV} secrets are masked from the start
    if environment.web_ui is not None:  # master or local runner with the web UI on
        from reliability.web.ui import install_web_ui
        options = environment.parsed_options
        install_web_ui(environment.web_ui, plugin, lag_s=plugin.data_lag_s,
                       base_path=getattr(options, "web_base_path", None) or "",
                       web_origin=getattr(options, "web_origin", None), runner_state=plugin.runner_state)
    if environment.shape_class is None and not isinstance(environment.runner, WorkerRunner):
        from reliability.shapes.locust_base import scenario_shape  # a scenario's shape: drives the load
        environment.shape_class = scenario_shape(environment)
    # gevent's loop caches its clock and has not run since the hub was made, before the locustfile
    # and its imports loaded; Locust times -t with spawn_later from that stale clock, so a slow
    # start (seconds on a loaded machine) would cut the run short by as much. Refresh it.
    gevent.get_hub().loop.update_now()


listen(events.init_command_line_parser, add_arguments)
listen(events.init, on_init)
listen(events.test_start, _check_installed)
