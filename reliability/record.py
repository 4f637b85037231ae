"""The run record: the one contract between measuring and presenting (JSON, versioned).

``build_record`` turns a final verdict, the window store and what the runner saw into a
``RunRecord`` dict; ``write_record`` writes it atomically. Reports re-render from the file alone.
Later features add keys; the keys here stay.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from pydantic import BaseModel

from reliability.metrics.windows import EndpointStats, Snapshot, WindowStore
from reliability.sla import Criterion, Verdict
from reliability.units import iso as iso  # re-exported: its home is reliability.units
from reliability.units import percentile_label
from reliability.units import round_finite as _num

SCHEMA_VERSION = 1


class RunInfo(TypedDict):
    started_at: str
    ended_at: str
    duration_s: float
    mode: str  # local | master
    workers: int
    locust_version: str
    reliability_version: str
    scenario: str | None
    aborted: str | None


class RunRecord(TypedDict, total=False):
    schema_version: int
    run: RunInfo
    sla: dict[str, Any]
    totals: dict[str, Any]
    uptime: dict[str, Any]
    endpoints: list[dict[str, Any]]
    components: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    generators: list[dict[str, Any]]
    workers: dict[str, Any]
    cost_model: dict[str, Any]  # the scenario's cost section, so reports can price the run later
    cache: list[dict[str, Any]]


@dataclass
class GeneratorUsage:
    """CPU and memory samples of one load-generating process (local runner or a worker)."""

    id: str
    role: str  # local | worker
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (epoch s, cpu %, rss MB)
    saturation_pct: float = 90.0

    def add(self, t: float, cpu_pct: float, rss_mb: float) -> None:
        self.samples.append((t, cpu_pct, rss_mb))
        if len(self.samples) > 2000:  # keep long runs bounded: thin the older half
            self.samples = self.samples[:1000:2] + self.samples[1000:]

    @property
    def saturated(self) -> bool:
        """CPU above the limit in two consecutive samples: latencies include queueing in the tool."""
        return any(a[1] > self.saturation_pct and b[1] > self.saturation_pct
                   for a, b in zip(self.samples, self.samples[1:], strict=False))

    def to_dict(self) -> dict[str, Any]:
        cpus = [s[1] for s in self.samples]
        rss = [s[2] for s in self.samples]
        return {
            "id": self.id,
            "role": self.role,
            "cpu_max_pct": max(cpus) if cpus else None,
            "cpu_mean_pct": sum(cpus) / len(cpus) if cpus else None,
            "rss_max_mb": max(rss) if rss else None,
            "saturated": self.saturated,
            "samples": [[round(t, 3), round(c, 1), round(m, 1)] for t, c, m in self.samples],
        }


def _criterion(c: Criterion) -> dict[str, Any]:
    return {
        "name": c.name,
        "scope": c.scope,
        "comparator": c.comparator,
        "threshold": c.threshold,
        "actual": _num(c.actual, 6),
        "margin": _num(c.margin, 6),
        "passed": c.passed,
    }


def _stats(stats: EndpointStats, duration_s: float) -> dict[str, Any]:
    h = stats.hist
    return {
        "requests": stats.requests,
        "failures": stats.failures,
        "error_ratio": _num(stats.error_ratio, 6),
        "p50_ms": _num(h.quantile(0.5)),
        "p95_ms": _num(h.quantile(0.95)),
        "p99_ms": _num(h.quantile(0.99)),
        "max_ms": _num(h.max_ms if h.count else None),
        "mean_ms": _num(h.sum_ms / h.count if h.count else None),
        "rps": _num(stats.requests / duration_s if duration_s > 0 else None),
    }


def sla_section(verdict: Verdict, down_error_ratio: float) -> dict[str, Any]:
    return {
        "tier": verdict.tier,
        "percentile": percentile_label(verdict.percentile),
        "passed": verdict.passed,
        "exit_code": verdict.exit_code,
        "inconclusive": list(verdict.inconclusive),
        "highest_tier_met": verdict.highest_tier_met,
        "next_tier": verdict.next_tier,
        "blocked_by": [_criterion(c) for c in verdict.blocked_by],
        "criteria": [_criterion(c) for c in verdict.criteria],
        "tiers": [{"tier": t.tier, "passed": t.passed} for t in verdict.tiers],
        "down_error_ratio": down_error_ratio,
    }


def build_record(
    *,
    verdict: Verdict,
    snapshot: Snapshot,
    store: WindowStore,
    run: RunInfo,
    down_error_ratio: float,
    generators: Sequence[GeneratorUsage] = (),
    workers: Mapping[str, Any] | None = None,
    cache: Mapping[tuple[str, str], tuple[int, int]] | None = None,
    sections: Mapping[str, object] | None = None,
    phases: Mapping[int, str] | None = None,
) -> RunRecord:
    """The whole record, once. ``sections``: what features add (faults, health, alerts ...; a
    pydantic model is dumped to JSON); ``phases``: each timeline second's phase (epoch second ->
    fault | recovery; baseline where absent), for runs with a fault schedule (None: no phases)."""
    duration = run["duration_s"]
    started = datetime.fromisoformat(run["started_at"].replace("Z", "+00:00")).timestamp()
    sla_q = verdict.percentile / 100.0
    totals = _stats(snapshot.total, duration)
    if sla_q not in (0.5, 0.95, 0.99):
        totals[f"{percentile_label(verdict.percentile)}_ms"] = _num(snapshot.total.latency_ms(sla_q))
    timeline: list[dict[str, Any]] = [
        {"t": t - int(started), "epoch_s": t, "users": users, "requests": reqs, "failures": fails,
         "p95_ms": _num(p95), "partial": partial}
        for t, users, reqs, fails, p95, partial in store.timeline(0.95)
    ]
    if phases is not None:
        for row in timeline:
            row["phase"] = phases.get(row["epoch_s"], "baseline")
    record: RunRecord = {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "sla": sla_section(verdict, down_error_ratio),
        "totals": totals,
        "uptime": {
            "window_s": verdict.uptime.window_s,
            "windows": verdict.uptime.windows,
            "up_windows": verdict.uptime.up_windows,
            "ratio": _num(verdict.uptime.ratio, 6),
            "request_availability": _num(verdict.uptime.request_availability, 6),
            "partial_windows": verdict.uptime.partial_windows,
        },
        "endpoints": [
            {"type": e.request_type, "name": e.name, "component": e.component, **_stats(e, duration)}
            for e in snapshot.endpoints
        ],
        "components": [{"component": c.name, **_stats(c, duration)} for c in snapshot.components],
        "timeline": timeline,
        "errors": [{"type": rt, "name": n, "message": m, "count": c} for rt, n, m, c in store.errors()],
        "generators": [g.to_dict() for g in generators],
        "workers": dict(workers or {}),
        "cache": [
            {"type": rt, "name": name, "hits": hits, "misses": misses,
             "hit_ratio": _num(hits / (hits + misses), 6) if hits + misses else None}
            for (rt, name), (hits, misses) in sorted((cache or {}).items())
        ],
    }
    extra = cast(dict[str, object], record)
    for name, value in (sections or {}).items():
        extra[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return record


def default_record_path(directory: str | os.PathLike[str] = "reports", now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(directory) / f"run-{stamp}.json"


def write_record(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a record."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_record(path: str | os.PathLike[str]) -> RunRecord:
    with open(path, encoding="utf-8") as fh:
        data: RunRecord = json.load(fh)
    return data
