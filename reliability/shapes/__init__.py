"""Load shapes, capacity search and the fault schedule's recovery analysis.

Pure modules (no locust, no gevent), exported here:

* :mod:`~reliability.shapes.stages`: the five progressive levels and step / spike / soak /
  steady / custom stages as a :class:`StagePlan` (``plan.at(elapsed_s)``);
* :mod:`~reliability.shapes.spec`: the scenario's ``shape:``, ``faults:`` and ``recovery:``
  sections;
* :mod:`~reliability.shapes.capacity`: :class:`CapacitySearch`, the step-up controller and knee;
* :mod:`~reliability.shapes.recovery`: window labels (baseline / fault / recovery) and the
  per-fault recovery metrics over the per-second timeline.

At the edge: :mod:`reliability.shapes.locust_shapes` (the Locust ``LoadTestShape`` classes) and
:mod:`reliability.shapes.runtime` (the master-side feature that drives faults from a greenlet).

Example::

    from reliability.shapes import StagePlan, level_stages

    plan = StagePlan(level_stages(["BASELINE", "HIGH_LOAD"], time_scale=0.1))
    plan.at(5.0)   # (1000, ...): HIGH_LOAD after BASELINE's 3 s
"""

from __future__ import annotations

from reliability.shapes.capacity import CapacitySearch, WindowGrade
from reliability.shapes.recovery import FaultAnalysis, FaultTimes, RecoveryParams, SecondRow, WindowSla, analyze
from reliability.shapes.spec import (
    CapacitySearchSpec,
    LevelsShapeSpec,
    RecoverySpec,
    ScheduledFaultSpec,
    ShapeSpec,
    SoakShapeSpec,
    SpikeShapeSpec,
    StagesShapeSpec,
    SteadyShapeSpec,
    StepShapeSpec,
)
from reliability.shapes.stages import LEVEL_NAMES, LEVELS, Level, Stage, StagePlan, level_stages

__all__ = [
    "LEVELS",
    "LEVEL_NAMES",
    "CapacitySearch",
    "CapacitySearchSpec",
    "FaultAnalysis",
    "FaultTimes",
    "Level",
    "LevelsShapeSpec",
    "RecoveryParams",
    "RecoverySpec",
    "ScheduledFaultSpec",
    "SecondRow",
    "ShapeSpec",
    "SoakShapeSpec",
    "SpikeShapeSpec",
    "Stage",
    "StagePlan",
    "StagesShapeSpec",
    "SteadyShapeSpec",
    "StepShapeSpec",
    "WindowGrade",
    "WindowSla",
    "analyze",
    "level_stages",
]
