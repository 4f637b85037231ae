"""Reading a run record for the renderers: the typed record and the formatting of its values.

The renderers read a :class:`~reliability.schema.RunRecord` (``render`` turns any record, of any
version, into one with :func:`reliability.schema.parse_record`, which drops what does not fit), so
``None`` is "not measured" everywhere. Times are turned into seconds since the run started here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from reliability.jsontypes import JsonData
from reliability.schema import RunRecord, parse_record
from reliability.schema import sections as s

Record = RunRecord

RecordLike = RunRecord | Mapping[str, JsonData]  # the public functions also take a decoded JSON record


def as_record(record: RecordLike) -> RunRecord:
    """``record`` as a typed run record (a mapping of any schema version is parsed leniently)."""
    return record if isinstance(record, RunRecord) else parse_record(record)


# below this a number is seconds since the run started, above it epoch seconds (year 2001+)
_EPOCH_FLOOR_S = 1e9


def num(value: object) -> float | None:
    """A finite number, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _epoch_of(value: object) -> float | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return num(value)


def started_epoch_s(record: Record) -> float | None:
    return _epoch_of(record.run.started_at)


def rel_s(value: object, started_epoch: float | None) -> float | None:
    """Seconds since the run started from relative seconds, epoch seconds or an ISO string."""
    if isinstance(value, str):
        epoch = _epoch_of(value)
        return None if epoch is None or started_epoch is None else epoch - started_epoch
    seconds = num(value)
    if seconds is None or seconds < _EPOCH_FLOOR_S:
        return seconds
    return None if started_epoch is None else seconds - started_epoch


@dataclass(frozen=True)
class Second:
    """One row of the record's per-second timeline."""

    t_s: float
    users: float | None
    requests: int
    failures: int
    p95_ms: float | None
    phase: str | None
    partial: bool
    state: str | None = None  # the record's verdict on this second (up, errors, stalled, slow)

    @property
    def rps(self) -> float:
        return float(self.requests)

    @property
    def error_ratio(self) -> float | None:
        return self.failures / self.requests if self.requests else None


def timeline(record: Record) -> list[Second]:
    rows = [Second(t_s=row.t, users=None if row.users is None else float(row.users), requests=row.requests,
                   failures=row.failures, p95_ms=row.p95_ms, phase=row.phase, partial=row.partial)
            for row in record.timeline]
    rows.sort(key=lambda r: r.t_s)
    return rows


def timeline_end_s(record: Record) -> float | None:
    """One past the last second of the timeline."""
    return max(row.t for row in record.timeline) + 1 if record.timeline else None


def duration_s(record: Record) -> float | None:
    run_s = record.run.duration_s
    return run_s if run_s is not None else timeline_end_s(record)


def total_criterion(record: Record, name: str) -> s.Criterion | None:
    return next((c for c in record.sla.criteria if c.name == name and c.scope == "total"), None)


def latency_threshold_ms(record: Record) -> float | None:
    """The SLA's total p95 threshold: the per-second timeline holds p95, so only p95 compares."""
    criterion = total_criterion(record, "p95_ms")
    return None if criterion is None else criterion.threshold


def down_error_ratio(record: Record) -> float:
    ratio = record.sla.down_error_ratio
    return 0.05 if ratio is None else ratio


def is_down(second: Second, down_ratio: float) -> bool:
    """The README's definition: a window with traffic is down at/above the ratio or with no success."""
    if second.requests <= 0:
        return False
    return second.failures >= second.requests or second.failures / second.requests >= down_ratio


def verdict(record: Record) -> tuple[str, str]:
    """(label, css class): MET / NOT MET / INCONCLUSIVE / UNKNOWN."""
    if record.sla.inconclusive:
        return "INCONCLUSIVE", "warn"
    if record.sla.passed is True:
        return "MET", "ok"
    if record.sla.passed is False:
        return "NOT MET", "bad"
    return "UNKNOWN", "warn"


# ---- formatting: "n/a" marks what the record did not measure

NA = "n/a"


def fmt_ms(value: object) -> str:
    v = num(value)
    return NA if v is None else f"{v:,.1f} ms"


def fmt_pct(ratio: object, digits: int = 2) -> str:
    v = num(ratio)
    return NA if v is None else f"{v * 100:.{digits}f} %"


def fmt_s(value: object) -> str:
    v = num(value)
    return NA if v is None else f"{v:,.1f} s"


def fmt_num(value: object, digits: int = 1) -> str:
    v = num(value)
    if v is None:
        return NA
    return f"{v:,.0f}" if v == int(v) and abs(v) < 1e15 else f"{v:,.{digits}f}"


def fmt_bool(value: object, yes: str = "yes", no: str = "no") -> str:
    if value is True:
        return yes
    if value is False:
        return no
    return NA


def fmt_money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def is_ratio_name(name: str) -> bool:
    return name.endswith(("error_ratio", "uptime", "availability", "_ratio"))


def fmt_criterion(name: str, value: object) -> str:
    """Criterion values the way the README writes them: ms for latencies, % for ratios."""
    if name.endswith("_ms"):
        return fmt_ms(value)
    if is_ratio_name(name):
        return fmt_pct(value, 3)
    return fmt_num(value, 3)


def fmt_margin(name: str, value: object) -> str:
    v = num(value)
    if v is None:
        return NA
    sign = "+" if v >= 0 else "-"
    return sign + fmt_criterion(name, abs(v))
