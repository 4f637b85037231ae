"""Production readiness of a suite: scalability, reliability, performance and monitoring, graded from
the run records a suite record embeds, and the list of what blocks readiness.

The suite record is a typed :class:`~reliability.schema.SuiteRecord`, each scenario's embedded run
record a :class:`~reliability.schema.RunRecord` (any version, read leniently). What a record did not measure makes
a dimension "not measured", never an error. The rules, each with its evidence in the findings:

* **performance** (baseline and load scenarios): each one's SLA verdict for its tier;
* **scalability** (load and capacity scenarios): the highest stage of each load scenario meets the
  tier; throughput per user at the highest stage is at least ``SCALING_EFFICIENCY_MIN`` of the
  lowest stage's; a capacity knee leaves ``KNEE_HEADROOM`` over the most users any scenario ran;
* **reliability** (degradation scenarios): every fault degrades gracefully, recovers (within the
  scenario's ``recovery.target_s``, else 30 s) and the system is healthy after the revert;
* **monitoring**: health probes ran, and every fault was detected (within 10 s).

A required scenario that is inconclusive, failed to run or was skipped makes the whole grading
inconclusive (exit 4); any failed or unmeasured dimension makes it "not ready" (exit 3); else
"ready" (exit 0), warnings allowed.

Example::

    readiness = grade_suite(suite_record)
    readiness.status, readiness.blockers   # ("not ready", ("reliability: redis outage: ..."))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reliability.report.data import (
    Record,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_s,
)
from reliability.report.facts import faults
from reliability.report.rules import SLOW_DETECTION_S, SLOW_RECOVERY_S
from reliability.schema import SuiteRecord
from reliability.schema import sections as s
from reliability.schema.suite import SuiteDimension, SuiteReadiness

DIMENSIONS = ("scalability", "reliability", "performance", "monitoring")
SCALING_EFFICIENCY_MIN = 0.8
KNEE_HEADROOM = 1.25
PASS, WARN, FAIL, NOT_MEASURED = "pass", "warn", "fail", "not measured"
READY, NOT_READY, INCONCLUSIVE = "ready", "not ready", "inconclusive"
EXIT_CODES = {READY: 0, NOT_READY: 3, INCONCLUSIVE: 4}


@dataclass
class DimensionGrade:
    """One dimension: ``status`` pass | warn | fail | not measured, a 0-100 ``score`` (share of
    checks passed; None when nothing was measured), the evidence and what blocks readiness.

    Example::

        DimensionGrade("performance", PASS, 100.0, ["baseline: gold met (p95 45.0 ms, ...)"], [])
    """

    name: str
    status: str = NOT_MEASURED
    score: float | None = None
    findings: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    _checks: list[bool] = field(default_factory=list, repr=False)

    def check(self, ok: bool, finding: str, *, blocker: str | None = None) -> None:
        """Count one check; a failed one with ``blocker`` blocks readiness, without it warns."""
        self._checks.append(ok)
        self.findings.append(finding)
        if not ok and blocker:
            self.blockers.append(blocker)
        self.status = FAIL if self.blockers else (WARN if not all(self._checks) else PASS)
        self.score = round(100.0 * sum(self._checks) / len(self._checks), 1)

    def note(self, finding: str) -> None:
        """Evidence that is not a check (e.g. a scenario left out of the grading)."""
        self.findings.append(finding)

    def to_section(self) -> SuiteDimension:
        return SuiteDimension(name=self.name, status=self.status, score=self.score, findings=list(self.findings),
                              blockers=list(self.blockers))


@dataclass(frozen=True)
class Readiness:
    """The suite's grade: ``status`` ready | not ready | inconclusive and its exit code, the four
    dimensions, and every blocker (scenario problems first, then by dimension)."""

    status: str
    exit_code: int
    dimensions: tuple[DimensionGrade, ...]
    blockers: tuple[str, ...]

    def to_section(self) -> SuiteReadiness:
        """The suite record's ``readiness`` section."""
        return SuiteReadiness(status=self.status, exit_code=self.exit_code, blockers=list(self.blockers),
                              dimensions=[d.to_section() for d in self.dimensions])


@dataclass(frozen=True)
class _Run:
    name: str
    kind: str
    required: bool
    record: Record  # the scenario's run record, as embedded in the suite record


def _blocker(run: _Run, message: str) -> str | None:
    """A failed check of a required scenario blocks readiness; of an optional one it only warns."""
    return message if run.required else None


def _sla_summary(record: Record) -> str:
    sla, totals = record.sla, record.totals
    state = "met" if sla.passed is True else "not met"
    return (f"{sla.tier or 'sla'} {state} (p95 {fmt_ms(totals.p95_ms)}, errors "
            f"{fmt_pct(totals.error_ratio, 3)}, {fmt_num(totals.rps)} req/s, highest tier met: "
            f"{sla.highest_tier_met or 'none'})")


def _failed_criteria(record: Record) -> str:
    out = []
    for c in record.sla.criteria:
        if c.passed is False:
            shown = fmt_ms(c.actual) if c.name.endswith("_ms") else fmt_num(c.actual, 4)
            out.append(f"{c.name} = {shown} (needs {c.comparator} {fmt_num(c.threshold, 4)})")
    return "; ".join(out) or "verdict not met"


def _performance(runs: Sequence[_Run]) -> DimensionGrade:
    grade = DimensionGrade("performance")
    for run in runs:
        if run.kind not in ("baseline", "load"):
            continue
        ok = run.record.sla.passed is True
        grade.check(ok, f"{run.name}: {_sla_summary(run.record)}",
                    blocker=_blocker(run, f"performance: {run.name}: {_failed_criteria(run.record)}"))
    return grade


def _peak_users(runs: Sequence[_Run]) -> float:
    return max((float(row.users or 0) for run in runs if run.kind != "capacity"
                for row in run.record.timeline), default=0.0)


def _stages(record: Record) -> list[s.Stage]:
    return sorted((st for st in record.stages or [] if (st.requests or 0) > 0 and st.users > 0),
                  key=lambda st: st.users)


def _scalability(runs: Sequence[_Run]) -> DimensionGrade:
    grade = DimensionGrade("scalability")
    for run in runs:
        stages = _stages(run.record)
        if run.kind != "load" or not stages:
            continue
        top = stages[-1]
        users = fmt_num(top.users)
        tier = run.record.sla.tier or "the tier"
        held = top.passed is True
        grade.check(held, f"{run.name}: {tier} {'held' if held else 'not met'} at {users} users "
                          f"({top.name}: {top.percentile or 'p95'} {fmt_ms(top.latency_ms)}, {fmt_num(top.rps)} req/s)",
                    blocker=_blocker(run, f"scalability: {run.name}: {tier} not met at {users} users"))
        low = stages[0]
        if len(stages) > 1 and low.rps and top.rps is not None:
            per_user_low = low.rps / (low.users or 1)
            per_user_top = top.rps / (top.users or 1)
            efficiency = per_user_top / per_user_low
            grade.check(efficiency >= SCALING_EFFICIENCY_MIN,
                        f"{run.name}: throughput per user at {users} users is {fmt_pct(efficiency, 0)} of that at "
                        f"{fmt_num(low.users)} users (needs >= {fmt_pct(SCALING_EFFICIENCY_MIN, 0)})")
    peak = _peak_users(runs)
    for run in runs:
        capacity = run.record.capacity
        if run.kind != "capacity" or capacity is None:
            continue
        knee = capacity.knee
        tier = capacity.tier or "the tier"
        if knee is None:
            grade.note(f"{run.name}: no knee found for {tier}"
                       + (f" ({capacity.stopped_because})" if capacity.stopped_because else ""))
            continue
        knee_users = knee.users
        found = f"{run.name}: {tier} holds up to {fmt_num(knee_users)} users ({fmt_num(knee.rps)} req/s)"
        if peak:
            grade.check(knee_users >= KNEE_HEADROOM * peak,
                        f"{found}; the most users tested were {fmt_num(peak)} (needs {KNEE_HEADROOM:g}x headroom)")
        else:
            grade.check(True, found)
    return grade


def _recovery_target_s(record: Record) -> float:
    return (record.recovery.target_s if record.recovery is not None else None) or SLOW_RECOVERY_S


def _reliability(runs: Sequence[_Run]) -> DimensionGrade:
    grade = DimensionGrade("reliability")
    for run in runs:
        if run.kind != "degradation":
            continue
        facts = faults(run.record)
        if not facts:
            grade.note(f"{run.name}: no fault ran")
        target = _recovery_target_s(run.record)
        for f in facts:
            where = f"{run.name}: fault '{f.name}'"
            if f.graceful is not None:
                peak = f"peak errors {fmt_pct(f.peak_error_ratio)}, peak p95 {fmt_ms(f.peak_latency_ms)}"
                verb = "degraded gracefully" if f.graceful else "was not graceful"
                grade.check(f.graceful, f"{where} {verb} ({peak})",
                            blocker=_blocker(run, f"reliability: {where} was not graceful ({peak})"))
            if f.recovered is False:
                grade.check(False, f"{where} did not recover before the run ended",
                            blocker=_blocker(run, f"reliability: {where} did not recover"))
            elif f.time_to_recover_s is not None:
                grade.check(f.time_to_recover_s <= target,
                            f"{where} recovered in {fmt_s(f.time_to_recover_s)} (target {fmt_s(target)})")
            if f.verified_healthy is False:
                grade.check(False, f"{where}: the health check after the revert failed",
                            blocker=_blocker(run, f"reliability: {where} left the system unhealthy after the revert"))
        score = run.record.resilience_score
        if score is not None:
            grade.note(f"{run.name}: resilience score {fmt_num(score)}")
    return grade


def _monitoring(runs: Sequence[_Run]) -> DimensionGrade:
    grade = DimensionGrade("monitoring")
    for run in runs:
        health = run.record.health
        if health is not None:
            components = ", ".join(health.components) or "none"
            uptime = health.uptime_ratio
            ran = bool(health.rounds or health.components or health.timeline)
            grade.check(ran, f"{run.name}: health probes ran ({fmt_num(health.rounds)} "
                                                    f"rounds; {components}; health uptime {fmt_pct(uptime, 3)})")
        for f in faults(run.record):
            if not f.detection_measured:
                continue
            where = f"{run.name}: fault '{f.name}'"
            if f.time_to_detect_s is None:
                grade.check(False, f"{where} was never detected",
                            blocker=_blocker(run, f"monitoring: {where} was never detected"))
            else:
                grade.check(f.time_to_detect_s <= SLOW_DETECTION_S,
                            f"{where} detected after {fmt_s(f.time_to_detect_s)} (limit {fmt_s(SLOW_DETECTION_S)})")
    if grade.score is not None and not any(r.record.health is not None for r in runs):
        grade.check(False, "no scenario ran health probes (add a health: section)")
    return grade


# which scenario kinds each dimension is graded from (monitoring: health and fault detection, any kind)
FED_BY = {"scalability": ("load", "capacity"), "reliability": ("degradation",),
          "performance": ("baseline", "load"), "monitoring": ("baseline", "load", "degradation", "capacity")}


def _unmeasured_blocker(grade: DimensionGrade, left_out: bool) -> str:
    if left_out:
        return f"{grade.name}: not measured (its scenarios were not graded; re-run them)"
    hint = {
        "performance": "add a baseline scenario",
        "scalability": "add a load scenario with levels (shape: levels) or a capacity search",
        "reliability": "add degradation scenarios (faults:)",
        "monitoring": "add a health: section and fault scenarios whose detection is measured",
    }[grade.name]
    return f"{grade.name}: not measured ({hint})"


def grade_suite(suite: SuiteRecord) -> Readiness:
    """Grade a suite record (``kind: suite``); see the module docstring."""
    runs: list[_Run] = []
    scenario_blockers: list[str] = []
    inconclusive = False
    left_out: list[tuple[str, str]] = []  # (kind, note)
    for row in suite.scenarios:
        name = row.name or f"scenario {row.index}"
        record = row.record
        status = row.outcome
        if status in ("met", "not met") and record is not None:
            runs.append(_Run(name, row.kind or "baseline", row.required, record))
            continue
        reasons = record.sla.inconclusive if record is not None else None
        why = "; ".join(reasons) if reasons else (
            row.problem or f"exit code {'none' if row.exit_code is None else row.exit_code}")
        left_out.append((row.kind, f"{name}: {status or 'not run'}, not graded ({why})"))
        if row.required:
            inconclusive = True
            scenario_blockers.append(f"re-run {name}: {status or 'not run'} ({why})")
    grades = {"scalability": _scalability(runs), "reliability": _reliability(runs),
              "performance": _performance(runs), "monitoring": _monitoring(runs)}
    for kind, note in left_out:
        for name, grade in grades.items():
            if kind in FED_BY[name]:
                grade.note(note)
    blockers = list(scenario_blockers)
    for name in DIMENSIONS:
        grade = grades[name]
        missed = any(kind in FED_BY[name] for kind, _ in left_out)
        blockers += grade.blockers if grade.status != NOT_MEASURED else [_unmeasured_blocker(grade, missed)]
    status = INCONCLUSIVE if inconclusive else (NOT_READY if blockers else READY)
    return Readiness(status, EXIT_CODES[status], tuple(grades[n] for n in DIMENSIONS), tuple(blockers))
