"""The run record: the one contract between measuring and presenting (JSON, versioned).

``build_record`` turns a final verdict, the window store and what the runner saw into a
:class:`~reliability.schema.RunRecord` (the sections are defined in :mod:`reliability.schema`);
``write_record`` writes it atomically, ``read_record`` reads any version back. Reports re-render
from the file alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from pydantic import TypeAdapter

from reliability.files import write_text_atomic
from reliability.inputfile import load_json_file
from reliability.jsontypes import JsonData, JsonObject
from reliability.metrics.windows import EndpointStats, Snapshot, WindowStore
from reliability.schema import SCHEMA_VERSION, RunRecord, parse_record
from reliability.schema import sections as s
from reliability.sla import Criterion, Verdict
from reliability.units import iso as iso  # re-exported: its home is reliability.units
from reliability.units import percentile_label
from reliability.units import round_finite as _num

__all__ = ["SCHEMA_VERSION", "GeneratorUsage", "RunRecord", "build_record", "default_record_path", "iso",
           "read_json", "read_record", "sla_section", "write_json", "write_record"]


USAGE_SAMPLE_S = 3.0  # seconds between a load generator's CPU and memory samples


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

    def to_section(self) -> s.Generator:
        cpus = [sample[1] for sample in self.samples]
        rss = [sample[2] for sample in self.samples]
        return s.Generator(
            id=self.id,
            role=self.role,
            cpu_max_pct=max(cpus) if cpus else None,
            cpu_mean_pct=sum(cpus) / len(cpus) if cpus else None,
            rss_max_mb=max(rss) if rss else None,
            saturated=self.saturated,
            samples=[(round(t, 3), round(c, 1), round(m, 1)) for t, c, m in self.samples],
        )


def _criterion(c: Criterion) -> s.Criterion:
    return s.Criterion(name=c.name, scope=c.scope, comparator=c.comparator, threshold=c.threshold,
                       actual=_num(c.actual, 6), margin=_num(c.margin, 6), passed=c.passed,
                       outcome=c.state, ci_low=_num(c.ci_low, 6), ci_high=_num(c.ci_high, 6),
                       confidence=c.confidence, samples=c.samples)


class _StatsFields(TypedDict):
    """The fields :class:`~reliability.schema.sections.Stats` declares, as keyword arguments."""

    requests: int
    failures: int
    error_ratio: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    rps: float | None


def _stats(stats: EndpointStats, duration_s: float) -> _StatsFields:
    """The :class:`~reliability.schema.sections.Stats` fields of ``stats``."""
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


def sla_section(verdict: Verdict, down_error_ratio: float) -> s.Sla:
    return s.Sla(
        tier=verdict.tier,
        percentile=percentile_label(verdict.percentile),
        passed=verdict.passed,
        exit_code=verdict.exit_code,
        inconclusive=list(verdict.inconclusive),
        highest_tier_met=verdict.highest_tier_met,
        next_tier=verdict.next_tier,
        blocked_by=[_criterion(c) for c in verdict.blocked_by],
        criteria=[_criterion(c) for c in verdict.criteria],
        tiers=[s.TierResult(tier=t.tier, passed=t.passed) for t in verdict.tiers],
        down_error_ratio=down_error_ratio,
        latency_basis=verdict.latency_basis,
    )


BASELINE_PHASE = "baseline"  # a timeline second outside every fault and recovery


def build_record(
    *,
    verdict: Verdict,
    snapshot: Snapshot,
    store: WindowStore,
    run: s.Run,
    down_error_ratio: float,
    generators: Sequence[GeneratorUsage] = (),
    workers: s.Workers | None = None,
    cache: Mapping[tuple[str, str], tuple[int, int]] | None = None,
    sections: Mapping[str, object] | None = None,
    phases: Mapping[int, str] | None = None,
) -> RunRecord:
    """The whole record, once. ``sections``: the feature sections (``faults``, ``health``,
    ``alerts`` ...; names of :data:`~reliability.schema.sections.FEATURE_SECTIONS`), each a schema
    model or its JSON form; ``phases``: epoch second -> fault | recovery for each timeline row
    (baseline where absent; None: no phases, a run without a fault schedule)."""
    duration = run.duration_s or 0.0
    started = datetime.fromisoformat((run.started_at or "").replace("Z", "+00:00")).timestamp()
    record = RunRecord(
        schema_version=SCHEMA_VERSION,
        run=run,
        sla=sla_section(verdict, down_error_ratio),
        totals=s.Totals(**_stats(snapshot.total, duration), percentile=percentile_label(verdict.percentile),
                        latency_ms=_num(snapshot.total.latency_ms(verdict.percentile / 100.0))),
        uptime=s.Uptime(
            window_s=verdict.uptime.window_s,
            windows=verdict.uptime.windows,
            up_windows=verdict.uptime.up_windows,
            ratio=_num(verdict.uptime.ratio, 6),
            request_availability=_num(verdict.uptime.request_availability, 6),
            partial_windows=verdict.uptime.partial_windows,
            edge_windows=verdict.uptime.edge_windows,
        ),
        endpoints=[s.EndpointStats(type=e.request_type, name=e.name, component=e.component, **_stats(e, duration))
                   for e in snapshot.endpoints],
        components=[s.ComponentStats(component=c.name, **_stats(c, duration)) for c in snapshot.components],
        timeline=[
            s.Second(t=t - int(started), epoch_s=t, users=users, requests=reqs, failures=fails, p95_ms=_num(p95),
                     partial=partial, phase=None if phases is None else phases.get(t, BASELINE_PHASE))
            for t, users, reqs, fails, p95, partial in store.timeline(0.95)
        ],
        errors=[s.ErrorCount(type=rt, name=n, message=m, count=c) for rt, n, m, c in store.errors()],
        generators=[g.to_section() for g in generators],
        workers=workers or s.Workers(),
        cache=[
            s.CacheCount(type=rt, name=name, hits=hits, misses=misses,
                         hit_ratio=_num(hits / (hits + misses), 6) if hits + misses else None)
            for (rt, name), (hits, misses) in sorted((cache or {}).items())
        ],
    )
    for name, value in (sections or {}).items():
        setattr(record, name, _feature_section(name, value))
    return record


def _feature_section(name: str, value: object) -> object:
    """``value`` validated as the record's ``name`` section (a model passes through as it is)."""
    if name not in s.FEATURE_SECTIONS:
        raise ValueError(f"unknown run-record section {name!r}; known: {', '.join(s.FEATURE_SECTIONS)}")
    annotation = RunRecord.model_fields[name].annotation
    assert annotation is not None
    return TypeAdapter(annotation).validate_python(value)


def default_record_path(directory: str | os.PathLike[str] = "reports", now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(directory) / f"run-{stamp}.json"


def write_record(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Write ``record`` as JSON atomically (temp file + rename) so a reader never sees half a record."""
    return write_json(record.to_json_dict(), path)


def write_json(data: Mapping[str, JsonData], path: str | os.PathLike[str]) -> Path:
    """Write a JSON document atomically (temp file + rename); the file's mode follows the umask
    (0644 by default), like Locust's own outputs."""
    return write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n", prefix=".run-")


def read_json(path: str | os.PathLike[str]) -> JsonObject:
    """A JSON document as written (a run record of any version, a suite record), read through
    :mod:`reliability.inputfile` (regular file, size limit, UTF-8, strict JSON); raises
    :class:`~reliability.exceptions.InputError`, or ValueError when it is not an object."""
    data = load_json_file(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def read_record(path: str | os.PathLike[str]) -> RunRecord:
    """A run record of any schema version, read leniently (see :func:`reliability.schema.parse_record`)."""
    return parse_record(read_json(path))
