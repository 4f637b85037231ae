"""Reading the run's closed seconds into a :class:`~reliability.alerts.CountSeries`, each with its
window state under the one rule uptime uses (:func:`reliability.sla.second_state`).

Not imported by :mod:`reliability.alerts` itself (the scenario config imports the alerts spec, and
the SLA module imports the config). Example (what the alerting extension does every tick)::

    read_seconds(series, store, scenario.sla, end_t=run.complete_until(now),
                 revise_s=int(scenario.sla.rolling_window_s))
"""

from __future__ import annotations

from reliability.alerts.burn import CountSeries
from reliability.config import SlaSpec
from reliability.metrics.windows import WindowStore
from reliability.sla import latency_basis, second_state


def read_seconds(series: CountSeries, store: WindowStore, sla: SlaSpec, end_t: int, revise_s: int) -> None:
    """Bring ``series`` up to ``end_t``: every second not read yet, and the last ``revise_s``
    seconds again. A request counts in the second it was sent (or scheduled), so one that
    completes late (a freeze, a timeout) changes a second already read, and the seconds a stall
    held it through are known only once it completes. A request that completes more than
    ``revise_s`` after its second was first read counts for uptime and the record, not here."""
    begin = max(series.start_t, min(series.end_t, end_t - revise_s))
    if end_t <= begin:
        return
    snapshot = store.snapshot(begin, end_t)
    basis = latency_basis(snapshot, sla)
    for second in snapshot.seconds:
        state = second_state(second, sla.down_error_ratio, sla.down_latency_threshold_ms, basis)
        series.put(second.t, second.requests, second.failures, state, second.held)
    series.extend_to(end_t)
