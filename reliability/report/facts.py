"""The facts the renderers show about the record's ``faults`` and ``health`` sections.

Read from the typed sections (:class:`reliability.schema.sections.Fault`, ``Health``): a fault's
times are its relative ``*_at_s`` (else its ISO ``*_at``), its peak latency is
``degradation.peak_latency_ms`` at ``degradation.percentile`` (a version 1 record's
``peak_p99_ms`` arrives here renamed). Health states come from the per-round ``health.timeline``.
Renderers use only what is here.
"""

from __future__ import annotations

from dataclasses import dataclass

from reliability.report.data import Record, duration_s, rel_s, started_epoch_s, timeline
from reliability.schema import sections as s


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
    percentile: str | None  # of peak_latency_ms (the SLA's)
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


def fault_facts(fault: s.Fault, record: Record) -> FaultFacts:
    started = started_epoch_s(record)
    degradation = fault.degradation or s.Degradation()
    check = fault.post_revert_check
    ttr = fault.time_to_recover_s
    reverted = fault.reverted_at_s if fault.reverted_at_s is not None else rel_s(fault.reverted_at, started)
    # a note from the analysis means its metrics are unavailable (no baseline, say): then a missing
    # time to recover or detect is "not measured", not "never"
    unmeasured = bool(fault.note)
    recovered = fault.recovered
    if ttr is not None:
        recovered = True
    elif unmeasured:
        recovered = None
    elif recovered is None and reverted is not None and fault.analysed:
        recovered = False  # measured, and no recovery was found before the run ended
    return FaultFacts(
        name=fault.name or "fault",
        kind=fault.kind if fault.kind is not None else fault.type,
        percentile=degradation.percentile,
        injected_s=fault.injected_at_s if fault.injected_at_s is not None else rel_s(fault.injected_at, started),
        reverted_s=reverted,
        time_to_detect_s=fault.time_to_detect_s,
        peak_latency_ms=degradation.peak_latency_ms,
        peak_error_ratio=degradation.peak_error_ratio,
        min_throughput_ratio=degradation.min_throughput_ratio,
        time_to_recover_s=ttr,
        recovered=recovered,
        graceful=fault.graceful,
        fail_fast=fault.fail_fast,
        budget_consumed=fault.budget_consumed,
        burn_rate=fault.burn_rate,
        verified_healthy=fault.verified_healthy if fault.verified_healthy is not None
        else (check.healthy if check is not None else None),
        problems=tuple(p for p in (fault.inject_error, fault.revert_error, fault.note) if p),
        detection_measured=fault.analysed and not unmeasured,
    )


def faults(record: Record) -> list[FaultFacts]:
    return [fault_facts(f, record) for f in record.faults or []]


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
    if record.faults:
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
    """Per component: uptime and its status changes, from the health rounds."""
    health = record.health
    if health is None:
        return []
    started = started_epoch_s(record)
    rounds = [(t, r.components) for r in health.timeline
              if (t := rel_s(r.epoch_s if r.epoch_s is not None else r.t, started)) is not None]
    out = []
    for name, comp in health.components.items():
        raw = [(t, by_name[name].status or "unknown") for t, by_name in rounds if name in by_name]
        raw.sort(key=lambda st: st[0])
        changes = [st for i, st in enumerate(raw) if i == 0 or st[1] != raw[i - 1][1]]
        out.append(ComponentHealth(name, comp.uptime_ratio, tuple(changes)))
    return out
