"""Capacity search as pure logic: step the load up until an SLA tier breaks, report the knee.

The controller owns the steps; a Locust shape asks it what to run (``target(now)``) and the
master-side feature grades closed windows (``windows_due(safe_t)`` -> SLA evaluation ->
``observe(grade)``). Times are epoch seconds passed in, so tests drive it with a fake clock::

    search = CapacitySearch(start_users=10, step_users=10, step_s=30, max_users=200, tier="gold",
                            breach_windows=3, window_s=5, settle_s=5)
    search.target(1000.0)                 # (10, ...)   step 1 starts
    search.windows_due(1011)              # [(1005, 1010)]: graded once its data is complete
    search.observe(WindowGrade(1005, 1010, requests=500, failures=0, latency_ms=40.0,
                               tiers={"gold": True}))
    search.target(1030.0)                 # (20, ...)   step 2
    ...
    search.result()                       # knee per tier, steps, why it stopped

A window counts for the step it lies in entirely. The search stops after ``breach_windows``
consecutive graded windows (across steps) fail ``tier``, or when the next step would exceed
``max_users``. A tier's knee is the highest step whose every graded window met that tier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from reliability.schema import sections as s
from reliability.shapes.stages import DEFAULT_RAMP_FRACTION, ramp_rate


@dataclass(frozen=True)
class WindowGrade:
    """One graded window ``[start_t, end_t)`` (epoch seconds): its numbers and every tier's verdict."""

    start_t: int
    end_t: int
    requests: int
    failures: int
    latency_ms: float | None
    tiers: Mapping[str, bool]

    @property
    def rps(self) -> float:
        return self.requests / max(1, self.end_t - self.start_t)


@dataclass
class Step:
    """One load step and the windows graded inside it."""

    index: int
    users: int
    started_at: float
    ended_at: float | None = None
    windows: list[WindowGrade] = field(default_factory=list)
    next_window_t: int | None = None
    rate_per_s: float | None = None  # rate mode: the arrival rate asked in this step (users = the pool)

    def rps(self) -> float | None:
        if not self.windows:
            return None
        seconds = sum(w.end_t - w.start_t for w in self.windows)
        return sum(w.requests for w in self.windows) / seconds

    def worst_latency_ms(self) -> float | None:
        return max((w.latency_ms for w in self.windows if w.latency_ms is not None), default=None)

    def held(self, tier: str) -> bool:
        """The tier held in every graded window of this step (and at least one was graded)."""
        return bool(self.windows) and all(w.tiers.get(tier, False) for w in self.windows)


class CapacitySearch:
    """Step-up load controller; see the module docstring."""

    def __init__(
        self,
        *,
        start_users: int,
        step_users: int,
        step_s: float,
        max_users: int,
        tier: str,
        breach_windows: int,
        window_s: int,
        settle_s: float,
        spawn_rate: float | None = None,
        start_rate_per_s: float | None = None,
        step_rate_per_s: float | None = None,
        max_rate_per_s: float | None = None,
    ) -> None:
        if step_users < 1 or start_users < 1 or max_users < start_users:
            raise ValueError("need start_users >= 1, step_users >= 1 and max_users >= start_users")
        if window_s < 1 or settle_s < 0 or settle_s + window_s > step_s:
            raise ValueError("need window_s >= 1 and settle_s + window_s <= step_s")
        if breach_windows < 1:
            raise ValueError("breach_windows must be >= 1")
        if start_rate_per_s is not None and not start_rate_per_s > 0:
            raise ValueError("start_rate_per_s must be > 0")
        self.start_rate_per_s = start_rate_per_s
        self.step_rate_per_s = step_rate_per_s or start_rate_per_s
        self.max_rate_per_s = max_rate_per_s
        self.start_users = start_users
        self.step_users = step_users
        self.step_s = step_s
        self.max_users = max_users
        self.tier = tier
        self.breach_windows = breach_windows
        self.window_s = int(window_s)
        self.settle_s = settle_s
        self.spawn_rate = spawn_rate
        self.steps: list[Step] = []
        self.streak = 0
        self.done = False
        self.stopped_because: str | None = None
        self.broke_at: Step | None = None

    def _rate(self, before: int, users: int) -> float:
        if self.spawn_rate is not None:
            return self.spawn_rate
        return ramp_rate(before, users, max(self.settle_s, self.step_s * DEFAULT_RAMP_FRACTION))

    @property
    def rate_mode(self) -> bool:
        """Steps are arrival rates (open model) from a fixed pool of ``max_users`` users."""
        return self.start_rate_per_s is not None

    def _start_step(self, users: int, now: float, rate_per_s: float | None = None) -> None:
        step = Step(len(self.steps), users, now, rate_per_s=rate_per_s)
        step.next_window_t = math.ceil(now + self.settle_s)
        self.steps.append(step)

    def target(self, now: float) -> tuple[int, float] | None:
        """``(users, spawn_rate)`` to run at ``now``, or None once the search is over."""
        if self.done:
            return None
        if not self.steps:
            if self.rate_mode:
                self._start_step(self.max_users, now, self.start_rate_per_s)
            else:
                self._start_step(self.start_users, now)
        current = self.steps[-1]
        if self.rate_mode and now - current.started_at >= self.step_s:
            assert current.rate_per_s is not None and self.step_rate_per_s is not None
            rate = current.rate_per_s + self.step_rate_per_s
            if self.max_rate_per_s is not None and rate > self.max_rate_per_s + 1e-9:
                self.stop(f"max_rate_per_s {self.max_rate_per_s:g} reached without {self.tier} breaking")
                return None
            current.ended_at = now
            self._start_step(self.max_users, now, rate)
            current = self.steps[-1]
        elif now - current.started_at >= self.step_s:
            users = current.users + self.step_users
            if users > self.max_users:
                self.stop(f"max_users {self.max_users} reached without {self.tier} breaking")
                return None
            current.ended_at = now
            self._start_step(users, now)
            current = self.steps[-1]
        before = self.steps[-2].users if len(self.steps) > 1 else 0
        return current.users, self._rate(before, current.users)

    def stop(self, reason: str) -> None:
        """End the search (the next ``target()`` returns None)."""
        if not self.done:
            self.done = True
            self.stopped_because = reason
            if self.steps and self.steps[-1].ended_at is None:
                self.steps[-1].ended_at = self.steps[-1].started_at + self.step_s

    def windows_due(self, safe_t: int) -> list[tuple[int, int]]:
        """Windows ``(start_t, end_t)`` not graded yet whose data is complete by ``safe_t``."""
        due: list[tuple[int, int]] = []
        for step in self.steps:
            assert step.next_window_t is not None
            nominal_end = step.started_at + self.step_s
            end = nominal_end if step.ended_at is None else min(step.ended_at, nominal_end)
            while step.next_window_t + self.window_s <= min(end, safe_t):
                due.append((step.next_window_t, step.next_window_t + self.window_s))
                step.next_window_t += self.window_s
        return due

    def observe(self, grade: WindowGrade) -> None:
        """Record a graded window; stops the search on the ``breach_windows``-th failure in a row."""
        step = next((s for s in self.steps
                     if s.started_at <= grade.start_t and grade.end_t <= s.started_at + self.step_s + 1e-9), None)
        if step is None:
            return
        step.windows.append(grade)
        if grade.tiers.get(self.tier, False):
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= self.breach_windows and not self.done:
            self.broke_at = step
            self.stop(f"{self.tier} failed {self.streak} consecutive {self.window_s} s windows at {self._level(step)}")

    def _level(self, step: Step) -> str:
        return f"{step.rate_per_s:g} arrivals/s" if step.rate_per_s is not None else f"{step.users} users"

    def knee(self, tier: str) -> Step | None:
        """The highest step at which ``tier`` held in every graded window."""
        held = [s for s in self.steps if s.held(tier)]
        return max(held, key=lambda s: (s.rate_per_s or 0.0, s.users)) if held else None

    def result(self, tiers: list[str], percentile: str = "p95") -> s.Capacity:
        """The record's ``capacity`` section (numbers rounded for JSON); ``latency_ms`` is the worst
        graded window's latency at ``percentile`` (the SLA's)."""

        def point(step: Step | None) -> s.CapacityPoint | None:
            if step is None:
                return None
            rps = step.rps()
            worst = step.worst_latency_ms()
            return s.CapacityPoint(users=step.users, rate_per_s=step.rate_per_s,
                                   rps=None if rps is None else round(rps, 3),
                                   latency_ms=None if worst is None else round(worst, 3))

        def error_ratio(step: Step) -> float | None:
            requests = sum(w.requests for w in step.windows)
            return round(sum(w.failures for w in step.windows) / requests, 6) if requests else None

        return s.Capacity(
            tier=self.tier,
            percentile=percentile,
            mode="rate" if self.rate_mode else "users",
            complete=self.done and self.broke_at is not None,
            stopped_because=self.stopped_because or "the run ended before the tier broke",
            knee=point(self.knee(self.tier)),
            broke_at_users=self.broke_at.users if self.broke_at else None,
            broke_at_rate_per_s=self.broke_at.rate_per_s if self.broke_at else None,
            tiers={t: point(self.knee(t)) for t in tiers},
            steps=[
                s.CapacityStep(
                    users=step.users,
                    rate_per_s=step.rate_per_s,
                    started_at_epoch_s=round(step.started_at, 3),
                    windows=len(step.windows),
                    rps=None if step.rps() is None else round(step.rps() or 0.0, 3),
                    latency_ms=step.worst_latency_ms(),
                    error_ratio=error_ratio(step),
                    passed={t: step.held(t) for t in tiers} if step.windows else None,
                )
                for step in self.steps
            ],
        )
