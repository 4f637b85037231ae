"""Business impact: the scenario's cost model applied to the run's per-second timeline.

Three costs, each ``count x rate``: down seconds (the README's uptime definition) x
``per_downtime_minute`` / 60, failed requests x ``per_failed_request``, and seconds whose p95 was
over the latency threshold (and not already down) x ``per_slow_minute`` / 60. A down second is not
also charged as slow: an outage is priced once. Each fault is charged for the seconds from its
injection until it recovered (until the end of the run if it never did).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reliability.report.data import (
    RecordLike,
    Second,
    as_record,
    down_error_ratio,
    is_down,
    latency_threshold_ms,
    timeline,
)
from reliability.report.facts import fault_window, faults
from reliability.report.spec import CostSpec


@dataclass(frozen=True)
class CostBreakdown:
    """What a stretch of the run cost: counts and the money they add up to.

    Example::

        CostBreakdown(down_s=12, failed_requests=340, slow_s=20, downtime_cost=240.0,
                      failure_cost=17.0, slow_cost=50.0)  # .total == 307.0
    """

    down_s: int
    failed_requests: int
    slow_s: int
    downtime_cost: float
    failure_cost: float
    slow_cost: float

    @property
    def total(self) -> float:
        return self.downtime_cost + self.failure_cost + self.slow_cost


@dataclass(frozen=True)
class FaultCost:
    """What one fault cost, from its injection (``start_s``) until it recovered (``end_s``).

    Example::

        FaultCost("redis down", 55.0, 74.0, CostBreakdown(12, 541, 3, 240.0, 27.05, 7.5))
    """

    name: str
    start_s: float
    end_s: float
    cost: CostBreakdown


@dataclass(frozen=True)
class BusinessImpact:
    """The run's estimated cost of degradation, in total and per fault.

    Example::

        impact = estimate_impact(record, CostSpec(per_downtime_minute=600, per_failed_request=0.1))
        impact.run.total, [f.cost.total for f in impact.faults]
    """

    currency: str
    latency_threshold_ms: float | None
    run: CostBreakdown
    faults: tuple[FaultCost, ...]


def _breakdown(seconds: Iterable[Second], cost: CostSpec, down_ratio: float,
               threshold_ms: float | None) -> CostBreakdown:
    down = slow = failed = 0
    for s in seconds:
        failed += s.failures
        if is_down(s, down_ratio):
            down += 1
        elif threshold_ms is not None and s.p95_ms is not None and s.p95_ms > threshold_ms:
            slow += 1
    return CostBreakdown(
        down_s=down,
        failed_requests=failed,
        slow_s=slow,
        downtime_cost=down / 60.0 * cost.per_downtime_minute,
        failure_cost=failed * cost.per_failed_request,
        slow_cost=slow / 60.0 * cost.per_slow_minute if threshold_ms is not None else 0.0,
    )


def estimate_impact(record_like: RecordLike, cost: CostSpec) -> BusinessImpact:
    record = as_record(record_like)
    rows = timeline(record)
    down_ratio = down_error_ratio(record)
    threshold = cost.latency_threshold_ms if cost.latency_threshold_ms is not None else latency_threshold_ms(record)
    costs: list[FaultCost] = []
    for fault in faults(record):
        window = fault_window(fault, record)
        if window is None:
            continue
        end = window.recovered_s if window.recovered_s is not None else float("inf")
        inside = [s for s in rows if window.start_s <= s.t_s < end]
        costs.append(FaultCost(window.name, window.start_s, min(end, rows[-1].t_s + 1 if rows else end),
                                _breakdown(inside, cost, down_ratio, threshold)))
    return BusinessImpact(cost.currency, threshold, _breakdown(rows, cost, down_ratio, threshold), tuple(costs))


def cost_from_record(record_like: RecordLike) -> CostSpec | None:
    """The cost model carried in the record itself (``cost_model``), when its writer put one there."""
    record = as_record(record_like)
    if record.cost_model is None:
        return None
    try:
        return CostSpec.model_validate(record.cost_model.model_dump())
    except ValueError:
        return None
