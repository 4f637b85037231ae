"""Scenario sections for load shapes and recovery analysis (pydantic v2); the fault schedule's
spec is :mod:`reliability.faults.schedule` (re-exported here).

These are the ``shape:`` and ``recovery:`` keys of a scenario file (and the ``faults:`` they are
checked against)::

    shape: {type: levels, levels: [BASELINE, HIGH_LOAD], time_scale: 0.1}
    recovery: {windows: 3, band_tolerance: 0.5}
    faults:
      - name: redis down
        at_s: 30s
        hold_s: 20s
        fault: {type: ...}        # a fault spec of reliability.faults (discriminated on "type")
      - at_s: 90s
        hold_s: 10s
        factory: mypkg.faults:DiskFull   # or any callable(name=..., **args) returning a Fault
        args: {path: /var/data}

Cross-section checks (faults in order and not overlapping, a baseline before the first fault, the
shape long enough for the schedule, tier names) run as the scenario is parsed, so errors name
their field: ``faults[1].at_s: starts at 20 s, before faults[0] (redis down) ends at 50 s``.
Nothing here imports locust or gevent.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reliability.faults.schedule import (  # re-exported: the schedule's spec moved to reliability.faults
    FaultSchedule as FaultSchedule,
)
from reliability.faults.schedule import ScheduledFaultSpec as ScheduledFaultSpec
from reliability.faults.schedule import fault_names as fault_names
from reliability.faults.schedule import resolve_factory as resolve_factory
from reliability.faults.schedule import schedule_end_s as schedule_end_s
from reliability.shapes.stages import (
    BREAKING_STEP_USERS,
    DEFAULT_RAMP_FRACTION,
    LEVEL_NAMES,
    LEVELS,
    StagePlan,
    level_stages,
    scale_stages,
    soak_stages,
    spike_stages,
    steady_stages,
    step_stages,
)
from reliability.units import DurationS, FrozenSpec, LatencyMs, raise_at


def _tier_name(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


TierName = Annotated[str, BeforeValidator(_tier_name)]


# -- shapes ------------------------------------------------------------------------------------------


class _ShapeSpec(FrozenSpec):
    time_scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        """The stages to run; ``schedule_end_s`` is when the last scheduled fault is reverted."""
        raise NotImplementedError

    def length_s(self, schedule_end_s: float | None = None) -> float | None:
        """Total length in seconds (None when it depends on the run, as in a capacity search)."""
        return self.plan(schedule_end_s).total_s


class LevelsShapeSpec(_ShapeSpec):
    """The progressive levels by name (all five by default), e.g. ``levels: [BASELINE, HIGH_LOAD]``."""

    type: Literal["levels"] = "levels"
    levels: tuple[str, ...] = LEVEL_NAMES
    user_scale: float = Field(default=1.0, gt=0, le=1000, allow_inf_nan=False)
    ramp_fraction: float = Field(default=DEFAULT_RAMP_FRACTION, gt=0, le=1)
    breaking_point_step_users: int = Field(default=BREAKING_STEP_USERS, ge=0)
    spawn_rate: float | None = Field(default=None, gt=0)

    @field_validator("levels", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            out = []
            for i, name in enumerate(value):
                key = str(name).strip().upper()
                if key not in LEVELS:
                    raise_at((i,), f"unknown level {name!r}; known: {', '.join(LEVEL_NAMES)}", name)
                out.append(key)
            if not out:
                raise ValueError("name at least one level")
            return tuple(out)
        return value

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        return StagePlan(level_stages(self.levels, time_scale=self.time_scale, user_scale=self.user_scale,
                                      ramp_fraction=self.ramp_fraction,
                                      breaking_step_users=self.breaking_point_step_users,
                                      spawn_rate=self.spawn_rate))


class StepShapeSpec(_ShapeSpec):
    """``steps`` stages of ``step_s``: start_users, then ``step_users`` more each step."""

    type: Literal["step"] = "step"
    start_users: int = Field(ge=0)
    step_users: int = Field(ge=1)
    steps: int = Field(ge=1)
    step_s: DurationS = Field(gt=0)
    spawn_rate: float | None = Field(default=None, gt=0)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        stages = step_stages(self.start_users, self.step_users, self.steps, self.step_s, spawn_rate=self.spawn_rate)
        return StagePlan(scale_stages(stages, self.time_scale))


class SpikeShapeSpec(_ShapeSpec):
    """Base load for ``before_s``, ``spike_users`` for ``spike_s``, base load for ``after_s``."""

    type: Literal["spike"] = "spike"
    base_users: int = Field(ge=0)
    spike_users: int = Field(ge=1)
    before_s: DurationS = Field(gt=0)
    spike_s: DurationS = Field(gt=0)
    after_s: DurationS = Field(gt=0)
    spawn_rate: float | None = Field(default=None, gt=0)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        stages = spike_stages(self.base_users, self.spike_users, self.before_s, self.spike_s, self.after_s,
                              spawn_rate=self.spawn_rate)
        return StagePlan(scale_stages(stages, self.time_scale))


class SoakShapeSpec(_ShapeSpec):
    """Ramp to ``users`` over ``ramp_s`` and hold them for ``hold_s`` (leaks, slow drift)."""

    type: Literal["soak"] = "soak"
    users: int = Field(ge=1)
    ramp_s: DurationS = Field(default=60.0, gt=0)
    hold_s: DurationS = Field(gt=0)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        return StagePlan(scale_stages(soak_stages(self.users, self.ramp_s, self.hold_s), self.time_scale))


class SteadyShapeSpec(_ShapeSpec):
    """Constant ``users`` (the usual load under a fault schedule). Without ``duration_s`` the run
    lasts until the last fault is reverted plus ``tail_s`` for recovery (not time-scaled: recovery
    does not speed up because the test does)."""

    type: Literal["steady"] = "steady"
    users: int = Field(ge=1)
    ramp_s: DurationS = Field(default=5.0, gt=0)
    duration_s: DurationS | None = Field(default=None, gt=0)
    tail_s: DurationS = Field(default=30.0, gt=0)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        if self.duration_s is not None:
            duration = self.duration_s * self.time_scale
        elif schedule_end_s is not None:
            duration = schedule_end_s + self.tail_s
        else:
            raise ValueError("a steady shape needs duration_s when the scenario has no faults")
        return StagePlan(steady_stages(self.users, duration, self.ramp_s * self.time_scale))


class StageSpec(FrozenSpec):
    """One stage of a ``stages`` shape."""

    duration_s: DurationS = Field(gt=0)
    users: int = Field(ge=0)
    spawn_rate: float | None = Field(default=None, gt=0)
    name: str | None = None


class StagesShapeSpec(_ShapeSpec):
    """Stages written out in the scenario; a missing spawn_rate ramps in 10 % of the stage."""

    type: Literal["stages"] = "stages"
    stages: tuple[StageSpec, ...] = Field(min_length=1)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        from reliability.shapes.stages import Stage, ramp_rate

        out: list[Stage] = []
        before = 0
        rate: float | None = None
        for i, s in enumerate(self.stages):
            rate = s.spawn_rate or ramp_rate(before, s.users, s.duration_s * DEFAULT_RAMP_FRACTION, rate)
            out.append(Stage(s.name or f"stage {i + 1}", s.duration_s, s.users, rate))
            before = s.users
        return StagePlan(scale_stages(out, self.time_scale))


class RateStageSpec(FrozenSpec):
    """One stage of an ``arrival_rate`` shape: ramps linearly to ``rate_per_s`` over ``duration_s``."""

    duration_s: DurationS = Field(gt=0)
    rate_per_s: float = Field(ge=0, allow_inf_nan=False)
    name: str | None = None


class _OpenModelSpec(_ShapeSpec):
    """What arrival-rate load shares with the capacity search's rate mode."""

    arrivals: Literal["uniform", "poisson"] = "uniform"
    max_delay_s: DurationS = Field(default=10.0, gt=0)
    late_after_ms: LatencyMs = Field(default=10.0, gt=0)
    seed: int | None = None

    def pool_lead_s(self, users: int, spawn_rate: float | None) -> float:
        """Seconds between the first tick and the schedule's start: the pool of users is spawned first."""
        rate = spawn_rate or max(users, 1)
        return math.ceil(users / rate) + 1.0


class ArrivalRateShapeSpec(_OpenModelSpec):
    """Open-model load: ``rate_per_s`` task starts per second, whatever the target's latency.

    Each stage ramps linearly from the previous rate (``start_rate_per_s`` for the first, by
    default the first stage's own rate, so one stage is a constant rate) to its ``rate_per_s``.
    A pool of ``max_users`` users (the locustfile's classes) is spawned first; each arrival runs
    one task of a free user, and one that finds no free user for ``max_delay_s`` is dropped (a
    failed request ``ARRIVAL dropped``). ``drain_s`` after the last arrival lets started tasks end.
    """

    type: Literal["arrival_rate"] = "arrival_rate"
    stages: tuple[RateStageSpec, ...] = Field(min_length=1)
    start_rate_per_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_users: int = Field(default=1000, ge=1)
    spawn_rate: float | None = Field(default=None, gt=0)
    drain_s: DurationS = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _some_load(self) -> ArrivalRateShapeSpec:
        if self.start_rate_per_s in (None, 0) and all(s.rate_per_s == 0 for s in self.stages):
            raise ValueError("stages: every rate_per_s is 0; the shape would send nothing")
        return self

    def rate_stages(self) -> list[tuple[float, float, float, str]]:
        """``(duration_s, from_rate, to_rate, name)`` per stage, durations time-scaled."""
        before = self.stages[0].rate_per_s if self.start_rate_per_s is None else self.start_rate_per_s
        out = []
        for i, stage in enumerate(self.stages):
            out.append((stage.duration_s * self.time_scale, before, stage.rate_per_s, stage.name or f"stage {i + 1}"))
            before = stage.rate_per_s
        return out

    def lead_s(self) -> float:
        return self.pool_lead_s(self.max_users, self.spawn_rate)

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        raise ValueError("an arrival-rate shape holds a pool of users; its load is a rate (see rate_stages)")

    def length_s(self, schedule_end_s: float | None = None) -> float | None:
        return self.lead_s() + sum(s[0] for s in self.rate_stages()) + self.drain_s


class CapacitySearchSpec(_OpenModelSpec):
    """Step the load up until ``tier`` fails in ``breach_windows`` consecutive windows of
    ``window_s`` (or the limit is reached); the record reports the knee per tier.

    Two modes: users (``start_users``, ``step_users``, up to ``max_users``), or rate, when
    ``start_rate_per_s`` is given: open-model load stepped by ``step_rate_per_s`` (default: the start
    rate) up to ``max_rate_per_s`` (default: no limit but the run time), from a pool of ``max_users``
    users (default 1000 in this mode); the knee is then in requests/s. The first ``settle_s`` of
    each step (the ramp) is not graded.
    """

    type: Literal["capacity_search"] = "capacity_search"
    start_users: int = Field(default=10, ge=1)
    step_users: int = Field(default=10, ge=1)
    step_s: DurationS = Field(default=60.0, gt=0)
    max_users: int | None = Field(default=None, ge=1)
    spawn_rate: float | None = Field(default=None, gt=0)
    tier: TierName | None = None
    breach_windows: int = Field(default=3, ge=1)
    window_s: DurationS = Field(default=5.0, ge=1)
    settle_s: DurationS = Field(default=5.0, ge=0)
    start_rate_per_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    step_rate_per_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_rate_per_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _fits(self) -> CapacitySearchSpec:
        if self.window_s != int(self.window_s):
            raise ValueError("window_s: must be whole seconds")
        if self.settle_s + self.window_s > self.step_s:
            raise ValueError(f"step_s: must hold settle_s + window_s ({self.settle_s + self.window_s:g} s)")
        given = self.model_fields_set
        if self.rate_mode:
            for name in ("start_users", "step_users"):
                if name in given:
                    raise ValueError(f"{name}: not used in rate mode (start_rate_per_s is given)")
            if self.max_rate_per_s is not None and self.start_rate_per_s is not None \
                    and self.max_rate_per_s < self.start_rate_per_s:
                raise ValueError("max_rate_per_s: must be >= start_rate_per_s")
        else:
            for name in ("step_rate_per_s", "max_rate_per_s", "arrivals", "max_delay_s", "late_after_ms", "seed"):
                if name in given:
                    raise ValueError(f"{name}: only used in rate mode; give start_rate_per_s too")
            if self.users_cap < self.start_users:
                raise ValueError("max_users: must be >= start_users")
        return self

    @property
    def rate_mode(self) -> bool:
        return self.start_rate_per_s is not None

    @property
    def users_cap(self) -> int:
        """``max_users``, or its default: 5000 users to step up to, or a pool of 1000 in rate mode."""
        if self.max_users is not None:
            return self.max_users
        return 1000 if self.rate_mode else 5000

    def plan(self, schedule_end_s: float | None = None) -> StagePlan:
        raise ValueError("a capacity search has no fixed plan; see reliability.shapes.capacity")

    def length_s(self, schedule_end_s: float | None = None) -> float | None:
        return None

    def scaled(self) -> CapacitySearchSpec:
        """The same search with step_s, settle_s and window_s multiplied by ``time_scale``."""
        if self.time_scale == 1.0:
            return self
        return self.model_copy(update={
            "step_s": self.step_s * self.time_scale,
            "settle_s": self.settle_s * self.time_scale,
            "window_s": float(max(1, round(self.window_s * self.time_scale))),
            "time_scale": 1.0,
        })


ShapeSpec = (LevelsShapeSpec | StepShapeSpec | SpikeShapeSpec | SoakShapeSpec | SteadyShapeSpec | StagesShapeSpec
             | CapacitySearchSpec | ArrivalRateShapeSpec)
SHAPE_TYPES: dict[str, type[_ShapeSpec]] = {
    "levels": LevelsShapeSpec,
    "step": StepShapeSpec,
    "spike": SpikeShapeSpec,
    "soak": SoakShapeSpec,
    "steady": SteadyShapeSpec,
    "stages": StagesShapeSpec,
    "capacity_search": CapacitySearchSpec,
    "arrival_rate": ArrivalRateShapeSpec,
}


def parse_shape(value: object) -> object:
    """Pick the shape class by ``type`` so errors read ``shape.levels[0]``, not ``shape.levels.levels[0]``."""
    if value is None or isinstance(value, _ShapeSpec):
        return value
    if not isinstance(value, dict):
        raise ValueError("must be a mapping with a type: " + ", ".join(SHAPE_TYPES))
    kind = value.get("type")
    cls = SHAPE_TYPES.get(str(kind))
    if cls is None:
        raise_at(("type",), f"unknown shape type {kind!r}; known: {', '.join(SHAPE_TYPES)}", kind)
        raise AssertionError  # unreachable: _raise_at raises
    return cls.model_validate(value)


# -- recovery analysis -------------------------------------------------------------------------------


class RecoverySpec(FrozenSpec):
    """How windows are judged against the baseline; defaults suit 1 s windows (see the README)."""

    windows: int = Field(default=3, ge=1)
    tier: TierName | None = None
    band_tolerance: float = Field(default=0.5, ge=0, le=10)
    band_slack_ms: LatencyMs = Field(default=5.0, ge=0)
    warmup_s: DurationS = Field(default=5.0, ge=0)
    baseline_window_s: DurationS = Field(default=60.0, ge=1)
    fail_fast_ms: LatencyMs = Field(default=100.0, gt=0)
    target_s: DurationS = Field(default=30.0, gt=0)
    verify_timeout_s: DurationS = Field(default=10.0, ge=0)


def _check_shape(shape: _ShapeSpec | None, info: ValidationInfo) -> _ShapeSpec | None:
    if shape is None:
        return None
    faults: tuple[ScheduledFaultSpec, ...] = info.data.get("faults") or ()
    sla = info.data.get("sla")
    schedule_end = max((f.end_s for f in faults), default=None)
    if isinstance(shape, CapacitySearchSpec):
        if shape.tier is not None and sla is not None and shape.tier not in sla.all_tiers():
            raise_at(("tier",), f"unknown tier {shape.tier!r}; known: {', '.join(sla.all_tiers())}", shape.tier)
        return shape
    if isinstance(shape, SteadyShapeSpec) and shape.duration_s is None and schedule_end is None:
        raise_at(("duration_s",), "required when the scenario has no faults", None)
    total = shape.length_s(schedule_end)
    if schedule_end is not None and total is not None and total < schedule_end:
        last = max(range(len(faults)), key=lambda k: faults[k].end_s)
        raise_at((), f"lasts {total:g} s, but faults[{last}] is reverted only at {schedule_end:g} s", None)
    return shape


def _check_recovery(recovery: RecoverySpec, info: ValidationInfo) -> RecoverySpec:
    sla = info.data.get("sla")
    if recovery.tier is not None and sla is not None and recovery.tier not in sla.all_tiers():
        raise_at(("tier",), f"unknown tier {recovery.tier!r}; known: {', '.join(sla.all_tiers())}", recovery.tier)
    return recovery


ShapeField = Annotated[ShapeSpec | None, BeforeValidator(parse_shape), AfterValidator(_check_shape)]
RecoveryField = Annotated[RecoverySpec, AfterValidator(_check_recovery)]
