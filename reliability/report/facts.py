"""One reading of the record's ``faults`` and ``health`` sections, whichever writer made them.

The fault runner writes ISO ``injected_at`` plus relative ``injected_at_s``, ``degradation``
with ``peak_latency_ms`` / ``lowest_throughput_ratio``, an ``error_budget`` block and a
``post_revert_check``; the flat form (``peak_p95_ms``, ``min_throughput_ratio``, ``burn_rate``,
``budget_consumed``, ``verified_healthy``) is read too. Health states come from a component's
``states`` list or from the per-round ``health.timeline``. Renderers use only what is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reliability.report.data import (
    Record,
    dicts,
    duration_s,
    mapping,
    num,
    rel_s,
    started_epoch_s,
    text,
    timeline,
)


def _first(*values: object) -> object:
    return next((v for v in values if v is not None), None)


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class FaultFacts:
    """A fault's times (seconds since start) and results; None is "not measured".

    Example::

        f = fault_facts({"name": "db down", "injected_at_s": 20, "reverted_at_s": 35,
                         "time_to_recover_s": 4.0, "graceful": True}, record)
        f.recovered_s  # 39.0
    """

    name: str
    kind: str | None
    injected_s: float | None
    reverted_s: float | None
    time_to_detect_s: float | None
    peak_latency_ms: float | None
    peak_error_ratio: float | None
    min_throughput_ratio: float | None
    time_to_recover_s: float | None
    recovered: bool | None  # None: recovery was not measured
    graceful: bool | None
    fail_fast: bool | None
    budget_consumed: float | None
    burn_rate: float | None
    verified_healthy: bool | None
    problems: tuple[str, ...]  # inject/revert errors and analysis notes, as the writer said them
    detection_measured: bool

    @property
    def recovered_s(self) -> float | None:
        if self.reverted_s is None or self.time_to_recover_s is None:
            return None
        return self.reverted_s + self.time_to_recover_s


def fault_facts(fault: Mapping[str, Any], record: Record) -> FaultFacts:
    started = started_epoch_s(record)
    degradation = mapping(fault.get("degradation"))
    budget = mapping(fault.get("error_budget"))
    check = fault.get("post_revert_check")
    ttr = num(fault.get("time_to_recover_s"))
    reverted = rel_s(_first(fault.get("reverted_at_s"), fault.get("reverted_at")), started)
    # a note from the analysis means its metrics are unavailable (no baseline, say): then a missing
    # time to recover or detect is "not measured", not "never"
    unmeasured = bool(fault.get("note"))
    recovered = _flag(fault.get("recovered"))
    if ttr is not None:
        recovered = True
    elif unmeasured:
        recovered = None
    elif recovered is None and reverted is not None and "time_to_recover_s" in fault:
        recovered = False  # measured, and no recovery was found before the run ended
    return FaultFacts(
        name=text(fault.get("name"), "fault"),
        kind=None if _first(fault.get("kind"), fault.get("type")) is None
        else text(_first(fault.get("kind"), fault.get("type"))),
        injected_s=rel_s(_first(fault.get("injected_at_s"), fault.get("injected_at")), started),
        reverted_s=reverted,
        time_to_detect_s=num(fault.get("time_to_detect_s")),
        peak_latency_ms=num(_first(degradation.get("peak_p95_ms"), degradation.get("peak_latency_ms"))),
        peak_error_ratio=num(degradation.get("peak_error_ratio")),
        min_throughput_ratio=num(_first(degradation.get("min_throughput_ratio"),
                                        degradation.get("lowest_throughput_ratio"))),
        time_to_recover_s=ttr,
        recovered=recovered,
        graceful=_flag(fault.get("graceful")),
        fail_fast=_flag(fault.get("fail_fast")),
        budget_consumed=num(_first(fault.get("budget_consumed"), budget.get("consumed"))),
        burn_rate=num(_first(fault.get("burn_rate"), budget.get("burn_rate"))),
        verified_healthy=_flag(_first(fault.get("verified_healthy"),
                                      check.get("healthy") if isinstance(check, Mapping) else None)),
        problems=tuple(text(fault.get(k)) for k in ("inject_error", "revert_error", "note") if fault.get(k)),
        detection_measured="time_to_detect_s" in fault and not unmeasured,
    )


def faults(record: Record) -> list[FaultFacts]:
    return [fault_facts(f, record) for f in dicts(record.get("faults"))]


@dataclass(frozen=True)
class FaultWindow:
    """When a fault was in force (``start_s``..``end_s``) and until when it recovered.

    Example::

        FaultWindow("db down", 20.0, 35.0, 39.0)  # reverted at +35 s, healthy again at +39 s
    """

    name: str
    start_s: float
    end_s: float
    recovered_s: float | None  # end of the recovery, None when it never recovered


def fault_window(fault: FaultFacts, record: Record) -> FaultWindow | None:
    if fault.injected_s is None:
        return None
    end = fault.reverted_s
    if end is None:  # never reverted: in force until the run ended
        end = duration_s(record) or fault.injected_s
    end = max(end, fault.injected_s)
    return FaultWindow(fault.name, fault.injected_s, end,
                       None if fault.time_to_recover_s is None else end + fault.time_to_recover_s)


def fault_windows(record: Record) -> list[FaultWindow]:
    """Windows from the ``faults`` list or, without one, from the timeline's phase labels."""
    if record.get("faults"):
        return [w for f in faults(record) if (w := fault_window(f, record)) is not None]
    out: list[FaultWindow] = []
    start: float | None = None
    fault_end = recovery_end = 0.0
    for row in timeline(record):
        if row.phase == "fault":
            if start is not None and recovery_end > fault_end:  # a new fault after a recovery
                out.append(FaultWindow("fault", start, fault_end, recovery_end))
                start = None
            start = row.t_s if start is None else start
            fault_end = recovery_end = row.t_s + 1
        elif row.phase == "recovery" and start is not None:
            recovery_end = row.t_s + 1
        elif start is not None:
            out.append(FaultWindow("fault", start, fault_end, recovery_end))
            start = None
    if start is not None:
        out.append(FaultWindow("fault", start, fault_end, recovery_end if recovery_end > fault_end else None))
    return out


@dataclass(frozen=True)
class ComponentHealth:
    """A component's health uptime and its status changes.

    Example::

        ComponentHealth("cache", 0.87, ((0.0, "healthy"), (55.5, "down"), (66.0, "healthy")))
    """

    name: str
    uptime_ratio: float | None
    states: tuple[tuple[float, str], ...]  # (t since start, status) at each change


def health_components(record: Record) -> list[ComponentHealth]:
    """Per component: uptime and its status changes, from ``states`` or the health rounds."""
    health = mapping(record.get("health"))
    started = started_epoch_s(record)
    rounds = [(t, mapping(r.get("components"))) for r in dicts(health.get("timeline"))
              if (t := rel_s(r.get("t"), started)) is not None]
    out = []
    for name, comp in mapping(health.get("components")).items():
        comp = mapping(comp)
        raw = [(t, text(s.get("status"), "unknown")) for s in dicts(comp.get("states"))
               if (t := rel_s(s.get("t"), started)) is not None]
        if not raw:
            raw = [(t, text(mapping(by_name.get(name)).get("status"), "unknown"))
                   for t, by_name in rounds if name in by_name]
        raw.sort(key=lambda st: st[0])
        changes = [st for i, st in enumerate(raw) if i == 0 or st[1] != raw[i - 1][1]]
        out.append(ComponentHealth(str(name), num(_first(comp.get("uptime"), comp.get("uptime_ratio"))),
                                   tuple(changes)))
    return out
