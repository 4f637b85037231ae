"""The Locust load-shape classes behind :mod:`reliability.shapes.locust_shapes` (read that
module's docstring for how to pick one). Kept apart from it so the plugin can build a scenario's
shape without importing the module that, for locustfiles, also loads the plugin.
"""

from __future__ import annotations

import logging
import os
import time
from argparse import Namespace
from dataclasses import dataclass
from typing import ClassVar

from locust import LoadTestShape
from locust.env import Environment

from reliability.config import ScenarioSpec, SlaSpec
from reliability.exceptions import ReliabilityError
from reliability.options import resolve_spec
from reliability.shapes.arrival import RateProfile
from reliability.shapes.arrival_driver import ArrivalController
from reliability.shapes.capacity import CapacitySearch
from reliability.shapes.spec import (
    ArrivalRateShapeSpec,
    CapacitySearchSpec,
    LevelsShapeSpec,
    ShapeSpec,
    schedule_end_s,
)
from reliability.shapes.stages import LEVEL_NAMES, StagePlan

logger = logging.getLogger("reliability.shapes")

TIME_SCALE_ENV = "RELIABILITY_TIME_SCALE"
LEVELS_ENV = "RELIABILITY_LEVELS"


@dataclass(frozen=True)
class StageEntry:
    """A stage the shape entered: ``started_at`` is an epoch time (the plugin's clock)."""

    name: str
    users: int
    started_at: float


class ReliabilityShape(LoadTestShape):
    """Base of the reliability shapes: runs ``spec`` (or the scenario's ``shape:``).

    Subclass it with ``spec = <a ShapeSpec from reliability.shapes.spec>``; see the module docstring.
    """

    abstract = True
    reliability_shape: ClassVar[bool] = True  # the plugin looks for this, without importing us
    spec: ClassVar[ShapeSpec | None] = None

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Locust's LoadTestShape is untyped
        self._reset()

    def reset_time(self) -> None:
        super().reset_time()  # type: ignore[no-untyped-call]
        arrival = getattr(self, "arrival", None)
        if arrival is not None and arrival.t0 is not None and arrival.stopped_at is None and time.time() < arrival.t0:
            # Locust's master resets the shape again when its first tick starts the run: the plan
            # already sent to the workers stands (a second one would only delay the schedule)
            return
        self._reset()  # a new run (the web UI can start several): resolve the plan again

    def _reset(self) -> None:
        self.plan: StagePlan | None = None
        self.capacity: CapacitySearch | None = None
        self.arrival: ArrivalController | None = None  # open-model load (arrival_rate, rate-mode search)
        self._pool: tuple[int, float] = (0, 1.0)
        self._lead_s = 0.0
        self._end_s = 0.0
        self.stage_log: list[StageEntry] = []
        self._resolved = False
        self._stage: int | None = None

    def default_spec(self) -> ShapeSpec | None:
        """The shape to run when the scenario has no ``shape:`` section."""
        return self.spec

    def _scenario(self) -> ScenarioSpec | None:
        environment = self.runner.environment if self.runner is not None else None
        options = environment.parsed_options if environment is not None else None
        if options is None:
            return None
        scenario, _sla = resolve_once(environment, options)
        return scenario

    def _resolve(self) -> None:
        scenario = self._scenario()
        spec = scenario.shape if scenario is not None and scenario.shape is not None else self.default_spec()
        source = "scenario" if scenario is not None and scenario.shape is not None else type(self).__name__
        if spec is None:
            raise ReliabilityError(f"{type(self).__name__} has nothing to run: give the scenario a shape: section "
                                   "(--scenario FILE) or the class a spec")
        scale = os.environ.get(TIME_SCALE_ENV)
        if scale:
            try:
                factor = float(scale)
            except ValueError:
                raise ReliabilityError(f"{TIME_SCALE_ENV} must be a number, got {scale!r}") from None
            if not factor > 0:
                raise ReliabilityError(f"{TIME_SCALE_ENV} must be > 0, got {scale!r}")
            spec = spec.model_copy(update={"time_scale": factor})
        if isinstance(spec, CapacitySearchSpec):
            s = spec.scaled()
            tier = s.tier or (scenario.sla.tier if scenario is not None else "gold")
            self.capacity = CapacitySearch(start_users=s.start_users, step_users=s.step_users, step_s=s.step_s,
                                           max_users=s.users_cap, tier=tier, breach_windows=s.breach_windows,
                                           window_s=int(s.window_s), settle_s=s.settle_s, spawn_rate=s.spawn_rate,
                                           start_rate_per_s=s.start_rate_per_s, step_rate_per_s=s.step_rate_per_s,
                                           max_rate_per_s=s.max_rate_per_s)
            if s.rate_mode:
                self._open_model(s, RateProfile(), s.users_cap, s.spawn_rate)
                logger.info("shape (%s): capacity search against %s, +%g arrivals/s every %g s from %g (%s, pool "
                            "of %d users)", source, tier, self.capacity.step_rate_per_s or 0.0, s.step_s,
                            s.start_rate_per_s or 0.0, s.arrivals, s.users_cap)
            else:
                logger.info("shape (%s): capacity search against %s, +%d users every %g s from %d", source, tier,
                            s.step_users, s.step_s, s.start_users)
        elif isinstance(spec, ArrivalRateShapeSpec):
            profile = RateProfile.from_stages(spec.rate_stages())
            self._open_model(spec, profile, spec.max_users, spec.spawn_rate)
            self._end_s = (profile.closed_at_s or 0.0) + spec.drain_s
            logger.info("shape (%s): arrival rate, %d stage(s), %g s, %s arrivals, pool of %d users, drop after "
                        "%g s", source, len(spec.stages), profile.closed_at_s or 0.0, spec.arrivals, spec.max_users,
                        spec.max_delay_s)
        else:
            self.plan = spec.plan(schedule_end_s(scenario.faults) if scenario is not None else None)
            logger.info("shape (%s): %s, %d stage(s), %g s", source, spec.type, len(self.plan.stages),
                        self.plan.total_s)

    def tick(self) -> tuple[int, float] | None:
        try:
            return self._tick()
        except Exception as exc:  # an exception here would kill the shape greenlet and exit 2
            reason = f"load shape stopped the run: {exc}"
            if isinstance(exc, ReliabilityError):
                logger.error("%s", reason)
            else:
                logger.exception("%s", reason)
            plugin = getattr(getattr(self.runner, "environment", None), "reliability", None)
            if plugin is not None and plugin.started_at is not None and reason not in plugin.problems:
                plugin.problems.append(reason)
            return None

    def _open_model(self, spec: ArrivalRateShapeSpec | CapacitySearchSpec, profile: RateProfile, users: int,
                    spawn_rate: float | None) -> None:
        if self.runner is None:  # tick() runs on the shape greenlet of a runner, after Locust set it
            raise ReliabilityError("an open-model shape needs its runner")
        self.arrival = ArrivalController(self.runner, profile, kind=spec.arrivals, seed=spec.seed, max_users=users,
                                         max_delay_s=spec.max_delay_s, late_after_ms=spec.late_after_ms)
        self._pool = (users, spawn_rate or float(users))
        self._lead_s = spec.pool_lead_s(users, spawn_rate)

    def _tick_open(self, arrival: ArrivalController, now: float) -> tuple[int, float] | None:
        """The pool of users, held while arrivals drive them; the schedule starts once it is spawned."""
        if arrival.t0 is None:
            arrival.start(now + self._lead_s)
            logger.info("shape: spawning a pool of %d users; arrivals start in %.0f s", self._pool[0], self._lead_s)
        assert arrival.t0 is not None
        arrival.tick(now)
        if now < arrival.t0:
            return self._pool
        if self.capacity is not None:
            target = self.capacity.target(now)
            if target is None:
                arrival.stopped_at = now
                if self.capacity.stopped_because:
                    logger.info("capacity search over: %s", self.capacity.stopped_because)
                return None
            step = self.capacity.steps[-1]
            if step.index != self._stage and step.rate_per_s is not None:
                self._stage = step.index
                arrival.set_rate(now, step.rate_per_s, f"step {step.index + 1}")
                self.stage_log.append(StageEntry(f"step {step.index + 1}", step.users, now))
                logger.info("shape: step %d, %g arrivals/s", step.index + 1, step.rate_per_s)
            return target
        elapsed = now - arrival.t0
        if elapsed >= self._end_s:
            return None
        index = arrival.profile.segment_index(elapsed)
        if index is not None and index != self._stage and elapsed < (arrival.profile.closed_at_s or 0.0):
            self._stage = index
            segment = arrival.profile.segments[index]
            self.stage_log.append(StageEntry(segment.name, self._pool[0], arrival.t0 + segment.start_s))
            logger.info("shape: %s, %g -> %g arrivals/s", segment.name, segment.from_rate, segment.to_rate)
        return self._pool

    def _tick(self) -> tuple[int, float] | None:
        if not self._resolved:
            self._resolved = True
            self._resolve()
        now = time.time()
        if self.arrival is not None:
            return self._tick_open(self.arrival, now)
        if self.capacity is not None:
            target = self.capacity.target(now)
            index: int | None = len(self.capacity.steps) - 1
            name = f"step {len(self.capacity.steps)}"
            if target is None and self.capacity.stopped_because:
                logger.info("capacity search over: %s", self.capacity.stopped_because)
        else:
            assert self.plan is not None
            elapsed = self.get_run_time()  # type: ignore[no-untyped-call]
            target = self.plan.at(elapsed)
            index = self.plan.index_at(elapsed)
            name = self.plan.stages[index].name if index is not None else ""
        if target is not None and index != self._stage:
            self._stage = index
            self.stage_log.append(StageEntry(name, target[0], now))
            logger.info("shape: %s, %d users (spawn rate %.1f/s)", name, target[0], target[1])
        return target


class ScenarioShape(ReliabilityShape):
    """Runs the scenario's ``shape:`` section (``--scenario FILE``); nothing to configure here."""


class ProgressiveShape(ReliabilityShape):
    """The progressive levels: all five, or those named in ``RELIABILITY_LEVELS`` (comma-separated).

    BASELINE 100 users / 30 s, MODERATE 500 / 60 s, HIGH_LOAD 1000 / 120 s, STRESS_LIMIT 1500 /
    180 s, BREAKING_POINT 2000+ / 300 s; ``RELIABILITY_TIME_SCALE`` shortens them.
    """

    def default_spec(self) -> ShapeSpec | None:
        if self.spec is not None:
            return self.spec
        names = os.environ.get(LEVELS_ENV)
        levels = tuple(n for n in (names or "").replace(" ", "").split(",") if n) or LEVEL_NAMES
        try:
            return LevelsShapeSpec(levels=levels)
        except ValueError as exc:
            raise ReliabilityError(f"{LEVELS_ENV}: {exc}") from None


def resolve_once(environment: Environment | None, options: Namespace | None) -> tuple[ScenarioSpec, SlaSpec]:
    """The run's scenario as the plugin read it (once per run), else read here."""
    resolve = getattr(getattr(environment, "reliability", None), "resolve", None)
    if callable(resolve):
        resolved: tuple[ScenarioSpec, SlaSpec] = resolve(options)
        return resolved
    return resolve_spec(options)


def scenario_shape(environment: Environment) -> ReliabilityShape | None:
    """A :class:`ScenarioShape` for a run whose ``--scenario`` has a ``shape:`` section (else None).

    Only looks for the section; the shape validates the scenario when the run starts.
    """
    path = getattr(environment.parsed_options, "scenario", None)
    if not path:
        return None
    try:
        scenario, _sla = resolve_once(environment, environment.parsed_options)
    except ReliabilityError:
        return None  # the plugin reports the bad file when the test starts
    if scenario.shape is None:
        return None
    shape = ScenarioShape()
    shape.runner = environment.runner
    return shape
