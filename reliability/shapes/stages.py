"""Load stages as pure math: the five progressive levels, step, spike, soak, steady and custom stages.

A :class:`StagePlan` is a list of :class:`Stage` (users held for a duration, reached at a spawn
rate). ``plan.at(elapsed_s)`` is what a Locust shape's ``tick()`` returns; time is a parameter, so
tests step a fake clock instead of sleeping::

    plan = StagePlan(level_stages(["BASELINE", "MODERATE"], time_scale=0.1))
    plan.at(0.0)    # (100, 33.33...)   BASELINE: 100 users, ramped in 10 % of its 3 s
    plan.at(3.5)    # (500, 666.66...)  MODERATE
    plan.at(9.0)    # None: the plan is over, the run stops

Nothing here imports locust or gevent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

BASELINE = "BASELINE"
MODERATE = "MODERATE"
HIGH_LOAD = "HIGH_LOAD"
STRESS_LIMIT = "STRESS_LIMIT"
BREAKING_POINT = "BREAKING_POINT"


@dataclass(frozen=True)
class Level:
    """One progressive level: ``users`` held for ``duration_s``."""

    users: int
    duration_s: float


LEVELS: Mapping[str, Level] = {
    BASELINE: Level(100, 30.0),
    MODERATE: Level(500, 60.0),
    HIGH_LOAD: Level(1000, 120.0),
    STRESS_LIMIT: Level(1500, 180.0),
    BREAKING_POINT: Level(2000, 300.0),
}
LEVEL_NAMES: tuple[str, ...] = tuple(LEVELS)
# BREAKING_POINT is "2000+": it starts at 2000 users and adds this many every BREAKING_STEP_S.
BREAKING_STEP_USERS = 250
BREAKING_STEP_S = 60.0
DEFAULT_RAMP_FRACTION = 0.1


@dataclass(frozen=True)
class Stage:
    """Hold ``users`` for ``duration_s``, starting or stopping users at ``spawn_rate`` per second."""

    name: str
    duration_s: float
    users: int
    spawn_rate: float

    def __post_init__(self) -> None:
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError(f"stage {self.name!r}: duration_s must be a finite number > 0")
        if self.users < 0:
            raise ValueError(f"stage {self.name!r}: users must be >= 0")
        if not (self.spawn_rate > 0 and math.isfinite(self.spawn_rate)):
            raise ValueError(f"stage {self.name!r}: spawn_rate must be a finite number > 0")


class StagePlan:
    """Stages run one after the other; ``at(elapsed_s)`` says what to run at that moment.

    Example::

        plan = StagePlan([Stage("warm", 10, 5, 5.0), Stage("peak", 20, 50, 10.0)])
        plan.total_s          # 30.0
        plan.index_at(12.0)   # 1
        plan.at(30.0)         # None
    """

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)
        if not self.stages:
            raise ValueError("a stage plan needs at least one stage")
        ends: list[float] = []
        total = 0.0
        for stage in self.stages:
            total += stage.duration_s
            ends.append(total)
        self._ends = tuple(ends)

    @property
    def total_s(self) -> float:
        return self._ends[-1]

    def starts(self) -> tuple[float, ...]:
        """Offset (seconds since the start) at which each stage begins."""
        return (0.0, *self._ends[:-1])

    def index_at(self, elapsed_s: float) -> int | None:
        """Index of the stage running ``elapsed_s`` after the start; None once the plan is over."""
        if elapsed_s < 0:
            return 0
        for i, end in enumerate(self._ends):
            if elapsed_s < end:
                return i
        return None

    def at(self, elapsed_s: float) -> tuple[int, float] | None:
        """``(users, spawn_rate)`` for a shape's ``tick()``, or None when the plan is over."""
        i = self.index_at(elapsed_s)
        if i is None:
            return None
        stage = self.stages[i]
        return stage.users, stage.spawn_rate


def ramp_rate(from_users: int, to_users: int, ramp_s: float, previous: float | None = None) -> float:
    """Spawn rate that moves ``from_users`` to ``to_users`` in ``ramp_s`` (at least 1 user/s).

    An unchanged user count keeps ``previous`` (so Locust sees an identical tick and does nothing).
    """
    if from_users == to_users and previous is not None:
        return previous
    return max(1.0, abs(to_users - from_users) / max(ramp_s, 1e-9))


def _scaled_users(users: int, user_scale: float) -> int:
    return max(1, round(users * user_scale))


def _chain(named: Sequence[tuple[str, float, int]], ramp_fraction: float, spawn_rate: float | None,
           start_users: int = 0) -> tuple[Stage, ...]:
    """Stages from ``(name, duration_s, users)``: each ramps from the previous stage's users in
    ``ramp_fraction`` of its own duration, unless ``spawn_rate`` fixes the rate."""
    stages: list[Stage] = []
    users_before = start_users
    rate: float | None = None
    for name, duration_s, users in named:
        if spawn_rate is not None:
            rate = spawn_rate
        else:
            rate = ramp_rate(users_before, users, duration_s * ramp_fraction, rate)
        stages.append(Stage(name, duration_s, users, rate))
        users_before = users
    return tuple(stages)


def level_stages(
    names: Iterable[str] = LEVEL_NAMES,
    *,
    time_scale: float = 1.0,
    user_scale: float = 1.0,
    ramp_fraction: float = DEFAULT_RAMP_FRACTION,
    breaking_step_users: int = BREAKING_STEP_USERS,
    spawn_rate: float | None = None,
) -> tuple[Stage, ...]:
    """Stages of the named progressive levels (case-insensitive), in the order given.

    ``time_scale`` multiplies every duration (0.1 runs the five levels in 69 s instead of 11.5
    min); ``user_scale`` multiplies every user count (at least 1). BREAKING_POINT climbs from
    2000 users by ``breaking_step_users`` every 60 s (scaled) of its 300 s; 0 holds 2000.
    """
    named: list[tuple[str, float, int]] = []
    for raw in names:
        key = raw.strip().upper()
        if key not in LEVELS:
            raise ValueError(f"unknown level {raw!r}; known: {', '.join(LEVEL_NAMES)}")
        level = LEVELS[key]
        if key == BREAKING_POINT and breaking_step_users > 0:
            steps = max(1, round(level.duration_s / BREAKING_STEP_S))
            for k in range(steps):
                users = _scaled_users(level.users + k * breaking_step_users, user_scale)
                named.append((key, level.duration_s / steps * time_scale, users))
        else:
            named.append((key, level.duration_s * time_scale, _scaled_users(level.users, user_scale)))
    if not named:
        raise ValueError("no levels given")
    return _chain(named, ramp_fraction, spawn_rate)


def step_stages(start_users: int, step_users: int, steps: int, step_s: float, *, spawn_rate: float | None = None,
                ramp_fraction: float = DEFAULT_RAMP_FRACTION) -> tuple[Stage, ...]:
    """``steps`` stages of ``step_s`` each: start_users, start_users + step_users, ..."""
    named = [(f"step {k + 1}", step_s, start_users + k * step_users) for k in range(steps)]
    return _chain(named, ramp_fraction, spawn_rate)


def spike_stages(base_users: int, spike_users: int, before_s: float, spike_s: float, after_s: float, *,
                 spawn_rate: float | None = None) -> tuple[Stage, ...]:
    """Base load, a sudden spike (reached within about a second), then base load again."""
    rate = spawn_rate if spawn_rate is not None else max(1.0, float(abs(spike_users - base_users)))
    base_rate = spawn_rate if spawn_rate is not None else ramp_rate(0, base_users, before_s * DEFAULT_RAMP_FRACTION)
    return (
        Stage("before spike", before_s, base_users, base_rate),
        Stage("spike", spike_s, spike_users, rate),
        Stage("after spike", after_s, base_users, rate),
    )


def soak_stages(users: int, ramp_s: float, hold_s: float) -> tuple[Stage, ...]:
    """Ramp to ``users`` over ``ramp_s``, then hold them for ``hold_s`` (hours, typically)."""
    rate = ramp_rate(0, users, ramp_s)
    return (Stage("ramp", ramp_s, users, rate), Stage("soak", hold_s, users, rate))


def steady_stages(users: int, duration_s: float, ramp_s: float) -> tuple[Stage, ...]:
    """One stage: ``users`` for ``duration_s``, reached in ``ramp_s`` (the usual degradation run)."""
    return (Stage("steady", duration_s, users, ramp_rate(0, users, ramp_s)),)


def scale_stages(stages: Iterable[Stage], time_scale: float) -> tuple[Stage, ...]:
    """The same stages with every duration multiplied by ``time_scale`` and ramps kept proportional."""
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise ValueError("time_scale must be a finite number > 0")
    return tuple(Stage(s.name, s.duration_s * time_scale, s.users, s.spawn_rate / time_scale) for s in stages)
