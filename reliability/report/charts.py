"""Chart geometry for the HTML report: plain SVG, computed here, drawn by the template.

Python computes numbers only (scaled coordinates, ticks, bands); ``templates/report.html.j2``
turns them into ``<svg>`` elements with autoescaping on, so no markup is built from strings here
and nothing from the target can reach the page unescaped. Long runs are thinned to ``MAX_POINTS``
per series by keeping each bucket's maximum, so spikes survive the thinning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reliability.report.data import (
    Record,
    Second,
    down_error_ratio,
    duration_s,
    latency_threshold_ms,
    started_epoch_s,
    timeline,
    timeline_end_s,
)
from reliability.report.facts import fault_windows, health_components

WIDTH = 900
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 10, 26
MAX_POINTS = 1200
_TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)

Point = tuple[float, float | None]  # (x, y); y None breaks the line


@dataclass(frozen=True)
class Tick:
    """An axis label at ``pos`` SVG units, e.g. ``Tick(64.0, "0s")``."""

    pos: float  # in SVG units along the axis
    label: str


@dataclass(frozen=True)
class Line:
    """One series as polylines, e.g. ``Line("p95", "s0", ("64,170 80,168",))``."""

    label: str
    css: str
    segments: tuple[str, ...]  # SVG polyline "points" strings; a gap in the data starts a new one


@dataclass(frozen=True)
class Band:
    """Shading across the plot, e.g. ``Band(240.0, 180.0, "fault: db down", "fault")``."""

    x: float
    width: float
    label: str
    css: str  # fault | recovery


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line, such as the latency threshold."""

    y: float
    label: str
    css: str


@dataclass(frozen=True)
class Chart:
    """One time-series chart, already scaled to a ``WIDTH`` x ``HEIGHT`` viewBox.

    Example::

        chart = build_charts(record)[0]
        chart.id, chart.title, [line.label for line in chart.lines]   # "users", "Users", ["users"]
    """

    id: str
    title: str
    unit: str
    lines: tuple[Line, ...]
    bands: tuple[Band, ...]
    rules: tuple[Rule, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def band_kinds(self) -> tuple[str, ...]:
        """The kinds of shading on this chart, for its legend (fault, recovery, partial, knee)."""
        return tuple(dict.fromkeys(b.css for b in self.bands))

    @property
    def empty(self) -> bool:
        return not any(line.segments for line in self.lines)


def nice_step(span: float, count: int = 5) -> float:
    """A 1-2-2.5-5 x 10^n step giving about ``count`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def _time_label(seconds: float, span_s: float) -> str:
    if span_s < 120:
        return f"{seconds:g}s"
    minutes, secs = divmod(int(seconds), 60)
    if span_s < 7200:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}"


def _value_label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def thin(points: Sequence[Point], max_points: int = MAX_POINTS) -> list[Point]:
    """At most ``max_points`` points: each bucket keeps its first x and its largest y."""
    if len(points) <= max_points:
        return list(points)
    size = math.ceil(len(points) / max_points)
    out: list[Point] = []
    for i in range(0, len(points), size):
        bucket = points[i:i + size]
        ys = [y for _, y in bucket if y is not None]
        out.append((bucket[0][0], max(ys) if ys else None))
    return out


class _Scale:
    def __init__(self, x_max: float, y_max: float) -> None:
        self.x_max = x_max if x_max > 0 else 1.0
        self.y_max = y_max if y_max > 0 else 1.0

    def x(self, value: float) -> float:
        return round(LEFT + (WIDTH - RIGHT - LEFT) * min(max(value, 0.0), self.x_max) / self.x_max, 1)

    def y(self, value: float) -> float:
        bottom = HEIGHT - BOTTOM
        return round(bottom - (bottom - TOP) * min(max(value, 0.0), self.y_max) / self.y_max, 1)


def _segments(points: Sequence[Point], scale: _Scale) -> tuple[str, ...]:
    out: list[str] = []
    current: list[str] = []
    for x, y in thin(points):
        if y is None:
            if current:
                out.append(" ".join(current))
            current = []
            continue
        current.append(f"{scale.x(x)},{scale.y(y)}")
    if current:
        out.append(" ".join(current))
    # a lone point draws nothing as a polyline: give it a visible width
    return tuple(s if " " in s else f"{s} {float(s.split(',')[0]) + 2},{s.split(',')[1]}" for s in out)


@dataclass(frozen=True)
class Series:
    """Unscaled (seconds, value) points, e.g. ``Series("users", [(0, 10), (1, 20)])``."""

    label: str
    points: Sequence[Point]


def make_chart(chart_id: str, title: str, unit: str, series: Sequence[Series], *, x_max: float,
               bands: Sequence[tuple[float, float, str, str]] = (),
               rules: Sequence[tuple[float, str]] = ()) -> Chart:
    """Scale series (and reference lines) into a chart; the y axis starts at 0 and fits all."""
    ys = [y for s in series for _, y in s.points if y is not None] + [value * 1.1 for value, _ in rules]
    step = nice_step(max(ys, default=1.0) or 1.0)
    y_max = step * math.ceil((max(ys, default=1.0) or 1.0) / step)
    scale = _Scale(x_max, y_max)
    x_ticks = time_ticks(x_max)
    y_ticks = tuple(Tick(scale.y(v), _value_label(v))
                    for v in (i * step for i in range(int(round(y_max / step)) + 1)))
    return Chart(
        id=chart_id, title=title, unit=unit,
        lines=tuple(Line(s.label, f"s{i % 6}", _segments(s.points, scale)) for i, s in enumerate(series)),
        bands=tuple(Band(scale.x(a), max(scale.x(b) - scale.x(a), 2.0), label, css) for a, b, label, css in bands),
        rules=tuple(Rule(scale.y(value), label, "threshold") for value, label in rules),
        x_ticks=x_ticks, y_ticks=y_ticks,
    )


def _bands(record: Record, rows: Sequence[Second]) -> list[tuple[float, float, str, str]]:
    """Fault and recovery windows, seconds with partial data (a worker's report lost), the knee."""
    bands = []
    for w in fault_windows(record):
        bands.append((w.start_s, w.end_s, f"fault: {w.name}", "fault"))
        if w.recovered_s is not None and w.recovered_s > w.end_s:
            bands.append((w.end_s, w.recovered_s, f"recovery: {w.name}", "recovery"))
    start: float | None = None
    for i, row in enumerate(rows):
        if row.partial and start is None:
            start = row.t_s
        if start is not None and (not row.partial or i == len(rows) - 1):
            end = row.t_s + 1 if row.partial else row.t_s
            bands.append((start, end, f"partial data +{start:.0f}s .. +{end:.0f}s", "partial"))
            start = None
    knee = record.capacity.knee if record.capacity is not None else None
    knee_users = knee.users if knee is not None else None
    at = next((r.t_s for r in rows if knee_users is not None and (r.users or 0) >= knee_users), None)
    if at is not None:
        bands.append((at, at, f"knee: {knee_users:g} users", "knee"))
    return bands


def _timeline_series(rows: Sequence[Second], label: str, value: Callable[[Second], float | None]) -> Series:
    return Series(label, [(r.t_s, value(r)) for r in rows])


def time_span_s(record: Record) -> float:
    """The x axis of every chart: the run's duration, or the timeline's end if that is later."""
    return max(duration_s(record) or 0.0, timeline_end_s(record) or 0.0)


def time_ticks(x_max: float) -> tuple[Tick, ...]:
    scale = _Scale(x_max, 1.0)
    step = next((s for s in _TIME_STEPS_S if x_max / s <= 10), _TIME_STEPS_S[-1])
    return tuple(Tick(scale.x(t), _time_label(t, x_max)) for t in (i * step for i in range(int(x_max // step) + 1)))


def build_charts(record: Record) -> list[Chart]:
    """Users, requests/s, p95 with its threshold, error ratio; then generator CPU and memory."""
    rows = timeline(record)
    x_max = time_span_s(record)
    bands = _bands(record, rows)
    threshold = latency_threshold_ms(record)
    down_pct = down_error_ratio(record) * 100
    charts = [
        make_chart("users", "Users", "users", [_timeline_series(rows, "users", lambda r: r.users)],
                   x_max=x_max, bands=bands),
        make_chart("rps", "Requests per second", "req/s",
                   [_timeline_series(rows, "requests/s", lambda r: r.rps),
                    _timeline_series(rows, "failures/s", lambda r: float(r.failures))], x_max=x_max, bands=bands),
        make_chart("p95", "p95 latency per second", "ms", [_timeline_series(rows, "p95", lambda r: r.p95_ms)],
                   x_max=x_max, bands=bands,
                   rules=[(threshold, f"threshold {threshold:g} ms")] if threshold is not None else []),
        make_chart("errors", "Error ratio per second", "%",
                   [_timeline_series(rows, "error ratio",
                                     lambda r: None if r.error_ratio is None else r.error_ratio * 100)],
                   x_max=x_max, bands=bands, rules=[(down_pct, f"down at {down_pct:g} %")]),
    ]
    charts.extend(_generator_charts(record, x_max))
    return charts


def _generator_charts(record: Record, x_max: float) -> list[Chart]:
    started = started_epoch_s(record) or 0.0
    cpu: list[Series] = []
    rss: list[Series] = []
    for g in record.generators:
        rows = [(t - started if t >= 1e9 else t, sample) for sample in g.samples if (t := sample[0]) is not None]
        label = g.id or "generator"
        cpu.append(Series(label, [(t, sample[1]) for t, sample in rows]))
        rss.append(Series(label, [(t, sample[2]) for t, sample in rows]))
    if not cpu:
        return []
    return [make_chart("gen-cpu", "Load generator CPU", "%", cpu, x_max=x_max, rules=[(90.0, "saturation 90 %")]),
            make_chart("gen-rss", "Load generator memory (RSS)", "MB", rss, x_max=x_max)]


@dataclass(frozen=True)
class HealthSpan:
    """One status stretch of a component's health strip, in SVG units."""

    x: float
    width: float
    status: str
    css: str
    label: str


@dataclass(frozen=True)
class HealthRow:
    """A component's health strip, e.g. ``HealthRow("cache", 0.87, (HealthSpan(...), ...))``."""

    name: str
    uptime: float | None
    spans: tuple[HealthSpan, ...]


_STATUS_CSS = {"healthy": "ok", "up": "ok", "ok": "ok", "degraded": "warn", "down": "bad", "unhealthy": "bad"}


def health_rows(record: Record) -> list[HealthRow]:
    """Per component, the spans between state changes, coloured by status, on the charts' time axis."""
    end = time_span_s(record)
    scale = _Scale(end, 1.0)
    out = []
    for comp in health_components(record):
        spans = []
        for i, (t, status) in enumerate(comp.states):
            until = comp.states[i + 1][0] if i + 1 < len(comp.states) else max(end, t)
            spans.append(HealthSpan(scale.x(t), max(scale.x(until) - scale.x(t), 1.0), status,
                                    _STATUS_CSS.get(status.lower(), "unknown"),
                                    f"{comp.name}: {status} from +{t:.0f}s to +{until:.0f}s"))
        out.append(HealthRow(comp.name, comp.uptime_ratio, tuple(spans)))
    return out
