"""Open-model load at the edge: drives users by arrival times (gevent + locust).

Two halves, one message type (``reliability_arrival``):

* :class:`ArrivalController` (the shape's side, on the master or the local runner) sends the plan:
  the schedule's start ``t0`` (epoch), the rate profile, the arrival kind and seed, and each
  worker's share (:class:`~reliability.shapes.arrival.Assignment`). It re-splits when workers are
  lost or join with users, appends rate segments for a capacity search, merges the generators'
  books and writes the record's ``load`` section.
* :class:`GeneratorDriver` (local runner or worker) gates the locustfile's tasks: every task of
  every user class (nested task sets included) first takes an arrival from a queue, so a user runs
  one task per arrival and waits for the next one instead of its ``wait_time``. A scheduler
  greenlet puts arrivals up at their time; an arrival older than ``max_delay_s`` when a user (or the
  scheduler's pruning) reaches it is dropped and reported as a failed request ``ARRIVAL dropped``.
  While a task runs, the greenlet's intended start is the arrival's scheduled time, so the
  request's latency counts the wait for a free user too.

The plan arrives before the spawn message (the controller sends it from the shape's first tick),
so no task ever runs ungated. The class attributes are restored when the test stops.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Protocol, TypedDict

import gevent
from gevent.event import Event
from gevent.queue import Queue
from greenlet import GreenletExit
from locust import TaskSet, User, constant
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from reliability.jsontypes import JsonArray, JsonObject, JsonValue, as_array, as_number
from reliability.locust_hooks import Hook
from reliability.pacing import intended_start_api
from reliability.schema import sections as s
from reliability.shapes.arrival import (
    DROPPED_NAME,
    DROPPED_TYPE,
    ArrivalBook,
    ArrivalSequence,
    Assignment,
    BookPayload,
    MergedBook,
    RateProfile,
    RateSegment,
    check_book,
    load_section,
    split,
)

if TYPE_CHECKING:
    from gevent import Greenlet

logger = logging.getLogger("reliability.shapes")

MESSAGE = "reliability_arrival"
REPORT_KEY = "reliability_arrival"
RESPLIT_LEAD_S = 1.0  # a new split takes effect this long after it is sent (every worker has it by then)
MASTER_SEGMENT_LEAD_S = 0.5
DRIVER_ATTR = "reliability_arrival"


class DroppedArrival(Exception):
    """An arrival found no free user within ``max_delay_s`` (reported as a failed request)."""


# -- what this module uses of Locust's events and messages (EventHook is untyped) --------------------


class Hooks(Protocol):
    """The events of a Locust ``Environment`` this module listens to or fires."""

    @property
    def request(self) -> Hook: ...

    @property
    def test_stopping(self) -> Hook: ...

    @property
    def worker_report(self) -> Hook: ...

    @property
    def report_to_master(self) -> Hook: ...


def hooks(environment: Environment) -> Hooks:
    events: Hooks = environment.events
    return events


class Message(Protocol):
    """Locust's ``rpc.protocol.Message`` as the handler reads it: ``data`` went through msgpack."""

    @property
    def data(self) -> JsonValue: ...


# -- the messages (master -> generators) ---------------------------------------------------------------

AssignmentWire = list[float]  # [from_s, index, count]


class PlanMessage(TypedDict):
    op: str  # plan
    t0: float
    kind: str
    seed: int
    max_delay_s: float
    late_after_ms: float
    segments: list[JsonArray]
    closed_at_s: float | None
    assign: list[AssignmentWire]


class SegmentMessage(TypedDict):
    op: str  # segment
    segment: JsonArray


class AssignMessage(TypedDict):
    op: str  # assign
    assign: AssignmentWire


def _segment_wire(segment: RateSegment) -> JsonArray:
    return [segment.start_s, segment.duration_s, segment.from_rate, segment.to_rate, segment.name]


def _segment_from(row: JsonValue) -> RateSegment:
    start, duration, from_rate, to_rate, name = as_array(row, "segment")
    return RateSegment(as_number(start, "segment start"),
                       None if duration is None else as_number(duration, "segment duration"),
                       as_number(from_rate, "segment from_rate"), as_number(to_rate, "segment to_rate"), str(name))


def _assignment_from(row: JsonValue) -> Assignment:
    from_s, index, count = as_array(row, "assign")
    return Assignment(as_number(from_s, "assign from_s"), int(as_number(index, "assign index")),
                      int(as_number(count, "assign count")))


Task = Callable[[User | TaskSet], object]  # a task: called with its user or task set


# -- the generator side ------------------------------------------------------------------------------


class GeneratorDriver:
    """Arrival-driven users on one load generator; see the module docstring."""

    def __init__(self, environment: Environment, clock: Callable[[], float] = time.time,
                 intended_start: Callable[[float, float | None], AbstractContextManager[None]] | None = None) -> None:
        self.environment = environment
        self.clock = clock
        self.intended_start = intended_start
        self.book: ArrivalBook | None = None
        self.t0 = 0.0
        self.profile: RateProfile | None = None
        self.sequence: ArrivalSequence | None = None
        self.queue: Queue[tuple[float, int, float]] = Queue()  # (due, segment, put up at)
        self._changed = Event()
        self._scheduler: Greenlet | None = None
        self._restore: list[tuple[type, str, bool, object]] = []  # (class, attribute, had it, its old value)
        self._running = False

    # -- messages ----------------------------------------------------------------------------------

    def on_message(self, environment: Environment, msg: Message, **_kwargs: object) -> None:
        raw = msg.data or {}
        data: JsonObject = raw if isinstance(raw, dict) else {}
        op = data.get("op")
        try:
            if op == "plan":
                self.start(data)
            elif self.profile is None or self.sequence is None:
                return
            elif op == "segment":
                self.profile.add(_segment_from(data["segment"]))
                self._changed.set()
            elif op == "close":
                self.profile.close(as_number(data["at_s"], "at_s"))
                self._changed.set()
            elif op == "assign":
                self.sequence.assign(_assignment_from(data["assign"]))
                self._changed.set()
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("arrival schedule: bad %s message from the master: %s", op, exc)

    def start(self, plan: JsonObject) -> None:
        """Run the plan of a ``plan`` message (a :class:`PlanMessage` as received: checked here)."""
        self.stop()
        if self.intended_start is None:  # from now on the plugin reads the marks the gate leaves
            self.intended_start = intended_start_api(self.environment)
        self.t0 = as_number(plan["t0"], "t0")
        self.profile = RateProfile(_segment_from(row) for row in as_array(plan["segments"], "segments"))
        closed_at_s = plan.get("closed_at_s")
        if closed_at_s is not None:
            self.profile.close(as_number(closed_at_s, "closed_at_s"))
        assign = [_assignment_from(a) for a in as_array(plan["assign"], "assign")]
        self.sequence = ArrivalSequence(self.profile, str(plan["kind"]), int(as_number(plan["seed"], "seed")), assign)
        self.book = ArrivalBook(as_number(plan["late_after_ms"], "late_after_ms"),
                                as_number(plan["max_delay_s"], "max_delay_s"))
        while self.queue.qsize():  # a previous plan's arrivals; the queue stays (users may be waiting on it)
            self.queue.get_nowait()
        self._changed = Event()
        self._gate_classes()
        self._running = True
        self._scheduler = gevent.spawn(self._schedule)
        logger.info("arrival schedule: %s arrivals from %+.1f s, share %s", plan["kind"], self.t0 - self.clock(),
                    "; ".join(f"{a.index} of {a.count} from +{a.from_s:g}s" for a in assign))

    def stop(self) -> None:
        """Stop scheduling (the test is stopping); idempotent. Queued arrivals stay counted as pending."""
        self._running = False
        if self._scheduler is not None:
            self._scheduler.kill(block=False)
            self._scheduler = None
        self._ungate_classes()

    def payload(self) -> BookPayload | None:
        return None if self.book is None else self.book.payload(self.queue.qsize())

    # -- the scheduler -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        assert self.sequence is not None and self.book is not None
        sequence, book, queue, clock = self.sequence, self.book, self.queue, self.clock
        while self._running:
            arrival = sequence.peek_own()
            now = clock()
            if arrival is None:  # the profile holds nothing more yet: prune, and wait for a change
                self._changed.clear()
                self._changed.wait(self._prune(now))
                continue
            due = self.t0 + arrival.at_s
            if due > now:
                expiry = self._prune(now)
                self._changed.clear()
                if self._changed.wait(min(due - now, expiry) if expiry is not None else due - now):
                    continue  # the profile or the share changed: look again
                if clock() < due:
                    continue  # woken for pruning
            sequence.consume(arrival)
            now = clock()
            book.scheduled(arrival.segment, due, now)
            queue.put_nowait((due, arrival.segment, now))

    def _prune(self, now: float) -> float | None:
        """Drop queued arrivals older than max_delay_s; seconds until the next one expires (None: empty)."""
        assert self.book is not None
        queue, book = self.queue, self.book
        while queue.qsize():
            head: tuple[float, int, float] = queue.peek_nowait()
            due, segment, _ready = head
            if not book.expired(due, now):
                return max(0.0, due + book.max_delay_s - now) + 1e-4
            queue.get_nowait()
            book.drop(segment)
            self._report_drop(due, now)
        return None

    def _report_drop(self, due: float, now: float) -> None:
        assert self.book is not None
        hooks(self.environment).request.fire(
            request_type=DROPPED_TYPE, name=DROPPED_NAME, response_time=(now - due) * 1000.0, response_length=0,
            response=None, context={}, exception=DroppedArrival(f"no free user within {self.book.max_delay_s:g} s"),
            start_time=due, url=None)

    # -- the gate ----------------------------------------------------------------------------------

    def take(self, user: User) -> tuple[float, float] | None:
        """Block until an arrival is up for ``user``: its scheduled epoch time and where the
        generator's own start lag counts from (None: not gated now). That origin is the due time
        moved past the time the arrival waited in the queue for a free user: waiting for a user is
        the target's slowness (it stays in the latency), not the generator missing its schedule."""
        if self.book is None or not self._running:
            return None
        while True:
            waiting = user._state == LOCUST_STATE_RUNNING
            if user._state == LOCUST_STATE_STOPPING:
                return None
            if waiting:  # Locust kills a waiting user at once when the test stops
                user._state = LOCUST_STATE_WAITING
            try:
                item: tuple[float, int, float] = self.queue.get()
            finally:
                if waiting:
                    user._state = LOCUST_STATE_RUNNING
            due, segment, ready = item
            now = self.clock()
            book = self.book  # read after the wait: a new plan may have come meanwhile
            if book is None:
                return None
            if book.take(segment, due, now):
                return due, due + max(0.0, now - ready)
            self._report_drop(due, now)

    def _gated(self, task: Task) -> Task:
        driver = self

        def gated(parent: User | TaskSet) -> None:
            user = parent if isinstance(parent, User) else parent.user
            taken = driver.take(user)
            if taken is None:
                task(parent)
                return
            due, lag_from = taken
            book = driver.book
            assert book is not None
            context = driver.intended_start(due, lag_from) if driver.intended_start is not None else nullcontext()
            try:
                with context:
                    task(parent)
            except GreenletExit:  # killed mid-task at the stop: it stays counted in flight
                raise
            except BaseException:
                book.finished()
                raise
            else:
                book.finished()

        gated.__name__ = getattr(task, "__name__", "task")
        gated.__qualname__ = getattr(task, "__qualname__", gated.__name__)
        gated.reliability_gated = task  # type: ignore[attr-defined]
        return gated

    def _gate_classes(self) -> None:
        seen: set[type] = set()
        for user_class in self.environment.user_classes:
            self._gate(user_class, seen)

    def _gate(self, cls: type, seen: set[type]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        tasks = list(getattr(cls, "tasks", []) or [])
        gated: list[type[TaskSet] | Task] = []
        for task in tasks:
            if isinstance(task, type) and issubclass(task, TaskSet):
                self._gate(task, seen)
                gated.append(task)
            elif getattr(task, "reliability_gated", None) is not None:
                gated.append(task)
            else:
                gated.append(self._gated(task))
        self._set(cls, "tasks", gated)
        if issubclass(cls, User) or "wait_time" in cls.__dict__:
            self._set(cls, "wait_time", constant(0))  # no think time: the next arrival paces the user

    def _set(self, cls: type, name: str, value: object) -> None:
        self._restore.append((cls, name, name in cls.__dict__, cls.__dict__.get(name)))
        setattr(cls, name, value)

    def _ungate_classes(self) -> None:
        for cls, name, had, old in reversed(self._restore):
            if had:
                setattr(cls, name, old)
            else:
                delattr(cls, name)
        self._restore = []


# -- the controller (master / local runner) ----------------------------------------------------------


class ArrivalController:
    """Plans and splits the schedule; merges the books. Used by the reliability shapes.

    Example (what :class:`~reliability.shapes.locust_shapes.ReliabilityShape` does)::

        controller = ArrivalController(runner, profile, kind="uniform", seed=None, max_users=100,
                                       max_delay_s=10, late_after_ms=10)
        controller.start(t0=time.time() + 2)   # sends the plan to every generator
        controller.tick(time.time())           # about once a second: re-split on worker changes
    """

    def __init__(self, runner: Runner, profile: RateProfile, *, kind: str, seed: int | None, max_users: int,
                 max_delay_s: float, late_after_ms: float, clock: Callable[[], float] = time.time) -> None:
        self.runner = runner
        self.profile = profile
        self.kind = kind
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.max_users = max_users
        self.max_delay_s = max_delay_s
        self.late_after_ms = late_after_ms
        self.clock = clock
        self.t0: float | None = None
        self.stopped_at: float | None = None
        self.shares: dict[str, tuple[int, int]] = {}
        self.generators_seen: set[str] = set()
        self.resplits: list[s.LoadResplit] = []
        self.problems: list[str] = []  # inconclusive reasons (a generator's unreadable book)
        self.merged = MergedBook()

    @property
    def distributed(self) -> bool:
        return isinstance(self.runner, MasterRunner)

    def _workers(self, with_users: bool) -> list[str]:
        if not isinstance(self.runner, MasterRunner):
            return []
        clients = self.runner.clients
        nodes = clients.running + clients.spawning if with_users else clients.ready + clients.running + clients.spawning
        return [n.id for n in nodes if not with_users or n.user_count > 0]

    def start(self, t0: float) -> None:
        self.t0 = t0
        ids = self._workers(with_users=False) if self.distributed else ["local"]
        if not ids:
            logger.error("arrival schedule: no workers connected; nothing will be sent")
        self.shares = split(ids)
        self.generators_seen = set(ids)
        segments = [_segment_wire(segment) for segment in self.profile.segments]
        for worker, (index, count) in self.shares.items():
            plan: PlanMessage = {"op": "plan", "t0": t0, "kind": self.kind, "seed": self.seed,
                                 "max_delay_s": self.max_delay_s, "late_after_ms": self.late_after_ms,
                                 "segments": segments, "closed_at_s": self.profile.closed_at_s,
                                 "assign": [[0.0, index, count]]}
            self._send(plan, worker)

    def _send(self, data: PlanMessage | SegmentMessage | AssignMessage, worker: str | None) -> None:
        if self.distributed:
            if worker is None:
                self.runner.send_message(MESSAGE, data)
            else:
                self.runner.send_message(MESSAGE, data, client_id=worker)
        else:
            self.runner.send_message(MESSAGE, data)

    def tick(self, now: float) -> None:
        """Re-split the rate when the set of workers with users changed (lost, or joined and given users)."""
        if not self.distributed or self.t0 is None or now < self.t0:
            return
        ids = self._workers(with_users=True)
        if not ids or set(ids) == set(self.shares):
            return
        from_s = now + RESPLIT_LEAD_S - self.t0
        gone = set(self.shares) - set(ids)
        self.shares = split(ids)
        self.resplits.append(s.LoadResplit(at_s=round(from_s, 6), generators=sorted(ids)))
        self.generators_seen |= set(ids)
        logger.warning("arrival schedule: generators now %s; the rate is re-split from +%.1f s",
                       ", ".join(sorted(ids)), from_s)
        for worker, (index, count) in self.shares.items():
            self._send({"op": "assign", "assign": [from_s, index, count]}, worker)
        for worker in gone:  # alive but without users (or missing: then the message goes nowhere)
            self._send({"op": "assign", "assign": [from_s, 0, 0]}, worker)

    def set_rate(self, now: float, rate_per_s: float, name: str) -> None:
        """From about ``now`` on, hold ``rate_per_s`` (capacity search steps)."""
        assert self.t0 is not None
        at_s = max(0.0, now - self.t0 + (MASTER_SEGMENT_LEAD_S if self.distributed else 0.0))
        segment = RateSegment(at_s, None, rate_per_s, rate_per_s, name)
        self.profile.add(segment)
        self._send({"op": "segment", "segment": _segment_wire(segment)}, None)

    def on_report(self, generator: str, payload: BookPayload) -> None:
        self.merged.update(generator, payload)

    def section(self, end: float, local: GeneratorDriver | None = None) -> s.Load:
        if local is not None:
            payload = local.payload()
            if payload is not None:
                self.merged.update("local", payload)
        t0 = self.t0 if self.t0 is not None else end
        stop = self.stopped_at if self.stopped_at is not None else end
        active = max(0.0, stop - t0)
        if self.profile.closed_at_s is not None:
            active = min(active, self.profile.closed_at_s)
        section = load_section(self.merged, self.profile, kind=self.kind, seed=self.seed, active_s=active,
                               max_users=self.max_users, max_delay_s=self.max_delay_s,
                               late_after_ms=self.late_after_ms, generators=len(self.generators_seen))
        section.resplits = list(self.resplits)
        section.per_generator = [
            s.LoadGenerator(id=gen, scheduled=p["scheduled"], started=p["started"], dropped=p["dropped"],
                            max_in_flight=p["max_in_flight"])
            for gen, p in sorted(self.merged.latest.items())]
        lag = section.schedule_lag_ms.p99
        logger.info("open-model load: asked %.1f/s, achieved %.1f/s (%d of %.0f arrivals started), %d dropped, "
                    "%d late; schedule lag p99 %s ms", section.asked_rate_per_s, section.achieved_rate_per_s,
                    section.started, section.asked, section.dropped, section.late,
                    "-" if lag is None else f"{lag:.1f}")
        return section


# -- wiring (called from reliability.plugin.install) -------------------------------------------------


def attach(environment: Environment) -> GeneratorDriver | None:
    """Register the message and the report hooks of open-model load on this process."""
    runner = environment.runner
    if runner is None:
        return None
    events = hooks(environment)
    if not isinstance(runner, WorkerRunner):
        def on_stopping(**_kwargs: object) -> None:  # the shape's side: the schedule ends here at the latest
            controller = getattr(environment.shape_class, "arrival", None)
            if isinstance(controller, ArrivalController) and controller.stopped_at is None:
                controller.stopped_at = controller.clock()

        events.test_stopping.add_listener(on_stopping)
    if isinstance(runner, MasterRunner):
        # a report is Locust's msgpack payload (its own keys too): only ours is read, and checked
        def on_worker_report(client_id: str, data: dict[str, object], **_kwargs: object) -> None:
            payload = data.get(REPORT_KEY)
            controller = getattr(environment.shape_class, "arrival", None)
            if payload is None or not isinstance(controller, ArrivalController):
                return
            try:
                controller.on_report(client_id, check_book(payload))
            except ValueError as exc:
                reason = f"worker {client_id} sent an unreadable arrival book ({exc}); its share is not counted"
                logger.error("%s", reason)
                if reason not in controller.problems:
                    controller.problems.append(reason)

        events.worker_report.add_listener(on_worker_report)
        return None
    driver = GeneratorDriver(environment)
    runner.register_message(MESSAGE, driver.on_message)
    setattr(environment, DRIVER_ATTR, driver)

    def on_test_stopping(**_kwargs: object) -> None:
        driver.stop()

    events.test_stopping.add_listener(on_test_stopping)
    if isinstance(runner, WorkerRunner):
        def on_report_to_master(client_id: str, data: dict[str, object], **_kwargs: object) -> None:
            payload = driver.payload()
            if payload is not None:
                data[REPORT_KEY] = payload

        events.report_to_master.add_listener(on_report_to_master)
    return driver


def local_driver(environment: Environment) -> GeneratorDriver | None:
    driver = getattr(environment, DRIVER_ATTR, None)
    return driver if isinstance(driver, GeneratorDriver) else None

