"""Rows of the report's tables as display strings, shared by the HTML and Markdown renderers.

Values are formatted, not escaped: each renderer escapes for its own format.
"""

from __future__ import annotations

from typing import TypedDict

from reliability.report.data import (
    NA,
    Record,
    fmt_bool,
    fmt_criterion,
    fmt_margin,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
)
from reliability.report.facts import FaultFacts
from reliability.schema import sections as s

STAT_COLUMNS = ("requests", "failures", "error ratio", "p50", "p95", "p99", "max", "mean", "req/s")


def stat_cells(row: s.Stats) -> list[str]:
    return [fmt_num(row.requests), fmt_num(row.failures), fmt_pct(row.error_ratio, 3), fmt_ms(row.p50_ms),
            fmt_ms(row.p95_ms), fmt_ms(row.p99_ms), fmt_ms(row.max_ms), fmt_ms(row.mean_ms), fmt_num(row.rps)]


def criterion_interval(c: s.Criterion) -> str:
    """``95 % CI 180 ms .. 215 ms`` (``-inf``/``+inf`` for an unbounded side), or n/a."""
    if c.confidence is None:
        return NA
    low_s = "-inf" if c.ci_low is None else fmt_criterion(c.name, c.ci_low)
    high_s = "+inf" if c.ci_high is None else fmt_criterion(c.name, c.ci_high)
    return f"{c.confidence * 100:g} % CI {low_s} .. {high_s}"


def criterion_status(c: s.Criterion) -> str:
    """pass / fail / inconclusive (records without an outcome: from ``passed``)."""
    if c.outcome in ("pass", "fail", "inconclusive"):
        return c.outcome
    return "pass" if c.passed is True else "fail"


def criterion_row(c: s.Criterion) -> dict[str, str]:
    status = criterion_status(c)
    return {
        "name": c.name,
        "scope": c.scope,
        "needs": f"{c.comparator} {fmt_criterion(c.name, c.threshold)}",
        "actual": "no data" if c.actual is None else fmt_criterion(c.name, c.actual),
        "margin": fmt_margin(c.name, c.margin),
        "interval": criterion_interval(c),
        "samples": fmt_num(c.samples),
        "status": status,
        "css": {"pass": "ok", "fail": "bad"}.get(status, "warn"),
    }


def peak_label(facts: list[FaultFacts], record: Record) -> str:
    """The percentile the faults' peak latency is at ("p99"): the analysis's, else the SLA's."""
    return next((f.percentile for f in facts if f.percentile), None) or record.sla.percentile or "p95"


def fault_row(f: FaultFacts) -> dict[str, str]:
    recover = fmt_s(f.time_to_recover_s) if f.time_to_recover_s is not None else (
        "never" if f.recovered is False else NA)
    return {
        "name": f.name,
        "kind": f.kind or NA,
        "window": NA if f.injected_s is None
        else f"+{f.injected_s:.0f}s .. " + (f"+{f.reverted_s:.0f}s" if f.reverted_s is not None else "not reverted"),
        "detect": fmt_s(f.time_to_detect_s),
        "peak_latency": fmt_ms(f.peak_latency_ms),
        "peak_errors": fmt_pct(f.peak_error_ratio),
        "min_throughput": fmt_pct(f.min_throughput_ratio, 0),
        "recover": recover,
        "graceful": fmt_bool(f.graceful),
        "fail_fast": fmt_bool(f.fail_fast),
        "budget": fmt_pct(f.budget_consumed, 1),
        "burn_rate": NA if f.burn_rate is None else f"{f.burn_rate:.1f}x",
        "verified": fmt_bool(f.verified_healthy),
        "problems": "; ".join(f.problems),
    }


class CapacityView(TypedDict):
    """The capacity search as the reports show it: a row per tier, the knee and notes."""

    rows: list[dict[str, str]]
    knee: str
    notes: str


def capacity_view(record: Record) -> CapacityView | None:
    """Rows per tier, the knee and why the search stopped; a tier whose value is null was never held."""
    capacity = record.capacity
    if capacity is None:
        return None
    rows = [{"tier": tier, "users": fmt_num(v.users) if v else "not held", "rps": fmt_num(v.rps) if v else NA}
            for tier, v in capacity.tiers.items()]
    knee = capacity.knee
    knee_text = ""
    if knee is not None:
        parts = [("users", knee.users), ("rate_per_s", knee.rate_per_s), ("rps", knee.rps),
                 (f"{capacity.percentile or 'p95'}_ms", knee.latency_ms)]
        knee_text = ", ".join(f"{k} {fmt_num(v)}" for k, v in parts if v is not None or k != "rate_per_s")
    notes = []
    if capacity.tier:
        notes.append(f"searched for tier {capacity.tier}")
    if capacity.broke_at_rate_per_s is not None:
        notes.append(f"broke at {fmt_num(capacity.broke_at_rate_per_s)} arrivals/s")
    elif capacity.broke_at_users is not None:
        notes.append(f"broke at {fmt_num(capacity.broke_at_users)} users")
    if capacity.stopped_because:
        notes.append(f"stopped: {capacity.stopped_because}")
    return {"rows": rows, "knee": knee_text, "notes": "; ".join(notes)}


def generator_row(g: s.Generator) -> dict[str, str]:
    return {"id": g.id or NA, "role": g.role or NA,
            "cpu_max": NA if g.cpu_max_pct is None else f"{g.cpu_max_pct:.1f} %",
            "cpu_mean": NA if g.cpu_mean_pct is None else f"{g.cpu_mean_pct:.1f} %",
            "rss_max": NA if g.rss_max_mb is None else f"{g.rss_max_mb:.1f} MB",
            "saturated": fmt_bool(g.saturated), "css": "bad" if g.saturated else ""}


def _delays(d: s.LoadDelay) -> str:
    return f"p50 {fmt_ms(d.p50)} · p99 {fmt_ms(d.p99)} · max {fmt_ms(d.max)}"


class LoadView(TypedDict):
    """The open-model load as the reports show it."""

    facts: list[tuple[str, str]]
    stages: list[dict[str, str]]
    short: bool  # achieved less than 99 % of the asked rate
    dropped: int
    card: str
    headline: str
    generators: list[dict[str, str]]


def load_view(record: Record) -> LoadView | None:
    """The open-model load (the record's ``load`` section): asked vs achieved rate, what happened
    to the arrivals, how punctual the generators were, and a row per rate stage; None without it."""
    load = record.load
    if load is None:
        return None
    ratio = load.achieved_ratio
    short = ratio is not None and ratio < 0.99
    facts = [
        ("model", f"{load.model}, {load.arrivals or NA} arrivals" + (f" (seed {load.seed})" if load.seed is not None
                                                                    else "")),
        ("rate asked / achieved", f"{fmt_num(load.asked_rate_per_s)} / {fmt_num(load.achieved_rate_per_s)} per s"
         + (f" ({fmt_pct(ratio, 1)})" if ratio is not None else "")),
        ("arrivals", f"{fmt_num(load.asked, 0)} asked · {fmt_num(load.scheduled)} scheduled · "
                     f"{fmt_num(load.started)} started"),
        ("late", f"{fmt_num(load.late)} (started > {fmt_ms(load.late_after_ms)} after their time)"),
        ("dropped", f"{fmt_num(load.dropped)} (no free user within {fmt_s(load.max_delay_s)})"),
        ("users", f"max {fmt_num(load.max_users)} · peak in flight {fmt_num(load.max_in_flight)} · "
                  f"{fmt_num(load.generators)} generator(s)"),
        ("at stop", f"{fmt_num(load.in_flight_at_stop)} in flight · {fmt_num(load.pending_at_stop)} pending"),
        ("schedule lag", _delays(load.schedule_lag_ms)),
        ("start delay", _delays(load.start_delay_ms)),
    ]
    stages = [{"name": st.name, "window": f"+{st.start_s:.0f}s .. +{st.start_s + st.duration_s:.0f}s",
               "rate": f"{fmt_num(st.from_rate_per_s)} → {fmt_num(st.to_rate_per_s)}",
               "asked": fmt_num(st.asked, 0), "scheduled": fmt_num(st.scheduled), "started": fmt_num(st.started),
               "dropped": fmt_num(st.dropped), "achieved": f"{fmt_num(st.achieved_rate_per_s)} of "
                                                         f"{fmt_num(st.asked_rate_per_s)}",
               "css": "bad" if st.dropped else ""} for st in load.stages]
    card = f"{fmt_num(load.achieved_rate_per_s)} of {fmt_num(load.asked_rate_per_s)}" + (
        f" ({fmt_pct(ratio, 1)})" if ratio is not None else "")
    return {"facts": facts, "stages": stages, "short": short, "dropped": load.dropped, "card": card,
            "headline": f"achieved {fmt_pct(ratio, 1)} of the asked rate" if ratio is not None else "",
            "generators": [{"id": g.id, "scheduled": fmt_num(g.scheduled), "started": fmt_num(g.started),
                            "dropped": fmt_num(g.dropped), "max_in_flight": fmt_num(g.max_in_flight)}
                           for g in load.per_generator]}
