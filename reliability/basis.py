"""Run-record sections for the corrected latency basis and the schedule's trust (pure).

``totals.corrected`` and each endpoint's ``corrected`` hold latency from the intended start with
the requests a stall prevented back-filled (see ``reliability.pacing``); the measured numbers stay
where they were. ``schedule`` says how well the generators kept the schedule; the timeline's
``state`` is each second's verdict under the one window rule (``sla.second_state``).
"""

from __future__ import annotations

from reliability.config import SlaSpec
from reliability.metrics.histogram import LatencyHistogram
from reliability.metrics.windows import EndpointStats, Snapshot
from reliability.schema import RunRecord
from reliability.schema import sections as s
from reliability.sla import Verdict, second_state
from reliability.units import round_finite as _num

METHOD = "intended-start+expected-interval"  # latency from the intended start; HdrHistogram back-fill
MIN_LAG_SAMPLES = 20  # fewer scheduled starts than this say nothing about a p99


def corrected_stats(stats: EndpointStats) -> s.Corrected | None:
    """The corrected block of one endpoint / the total, or None when it had no schedule."""
    h = stats.corrected
    if h is None:
        return None
    return s.Corrected(
        p50_ms=_num(h.quantile(0.5)),
        p95_ms=_num(h.quantile(0.95)),
        p99_ms=_num(h.quantile(0.99)),
        max_ms=_num(h.max_ms if h.count else None),
        requests=stats.requests + stats.backfilled,
        backfilled=stats.backfilled,
        method=METHOD,
    )


def schedule_section(lag: LatencyHistogram, sla: SlaSpec, paced_users: dict[str, float],
                     held_at_stop: int = 0) -> s.Schedule:
    """How late scheduled tasks started (ms) against the bound that keeps the run conclusive."""
    enough = lag.count >= MIN_LAG_SAMPLES
    p99 = lag.quantile(0.99) if lag.count else None
    return s.Schedule(
        scheduled_starts=lag.count,
        lag_p50_ms=_num(lag.quantile(0.5)),
        lag_p99_ms=_num(p99),
        lag_max_ms=_num(lag.max_ms if lag.count else None),
        lag_bound_ms=sla.schedule_lag_bound_ms,
        kept=None if not enough else bool(p99 is not None and p99 <= sla.schedule_lag_bound_ms),
        paced_users={name: {"interval_s": interval} for name, interval in sorted(paced_users.items())},
        held_at_stop=held_at_stop,
    )


def lag_problem(section: s.Schedule) -> str | None:
    """The inconclusive reason when the generators could not keep the schedule."""
    if section.kept is False:
        return (f"the load generator could not keep the schedule: start lag p99 {section.lag_p99_ms or 0.0:.1f} ms "
                f"> {section.lag_bound_ms or 0.0:g} ms, so latencies include the generator's own delay")
    return None


def annotate_record(record: RunRecord, snapshot: Snapshot, verdict: Verdict, sla: SlaSpec) -> None:
    """Add the corrected blocks, the latency basis and each timeline second's state to ``record``."""
    total = corrected_stats(snapshot.total)
    if total is not None:
        record.totals.corrected = total
        by_key = {(e.request_type, e.name): e for e in snapshot.endpoints}
        for row in record.endpoints:
            stats = by_key.get((row.type, row.name))
            row.corrected = corrected_stats(stats) if stats is not None else None
    states = {sec.t: second_state(sec, sla.down_error_ratio, sla.down_latency_threshold_ms, verdict.latency_basis)
              for sec in snapshot.seconds}
    corrected_ms = {sec.t: sec.corrected_ms for sec in snapshot.seconds if sec.corrected_ms is not None}
    for second in record.timeline:
        t = int(second.epoch_s) if second.epoch_s is not None else None
        second.state = states.get(t) if t is not None else None
        if t in corrected_ms:
            second.corrected_latency_ms = _num(corrected_ms[t])  # at the SLA percentile
    record.uptime.stalled_windows = verdict.uptime.stalled_windows
    record.uptime.slow_windows = verdict.uptime.slow_windows
    record.uptime.down_latency_ms = verdict.uptime.down_latency_ms
