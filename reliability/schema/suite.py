"""The suite record (``kind: suite``) as pydantic models: the suite, one row per scenario with its
run record embedded, and the readiness grading.

Written by ``reliability run SUITE.yaml`` (:func:`reliability.suite.build_suite_record`, the
grading added by the runner), read by the readiness report and grading in
:mod:`reliability.report`. Each embedded run record is a :class:`~reliability.schema.RunRecord`
read leniently (any version) and written as a run record file is (feature sections only when
present). :func:`parse_suite_record` reads a whole suite record leniently, as
:func:`~reliability.schema.parse_record` reads a run record.

Example::

    suite = parse_suite_record(json.loads(Path("reports/suite.json").read_text()))
    [(row.name, row.outcome, row.record.sla.passed if row.record else None) for row in suite.scenarios]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from reliability.jsontypes import JsonObject
from reliability.schema.read import lenient, parse_record
from reliability.schema.sections import RunRecord, Section

SUITE_SCHEMA_VERSION = 1


class SuiteInfo(Section):
    """The suite file and when the suite ran."""

    name: str = ""
    description: str = ""
    file: str | None = None
    started_at: str | None = None  # ISO 8601 UTC
    ended_at: str | None = None
    duration_s: float | None = None
    interrupted: str | None = None  # why the suite stopped early (a signal, stop_on_failure)
    reliability_version: str | None = None


class SuiteScenario(Section):
    """One entry of the suite: how it ran, and its run record (None when it did not run or wrote none)."""

    index: int = 0
    name: str = ""
    kind: str = "baseline"  # baseline | load | degradation | capacity
    required: bool = True
    scenario_file: str | None = None
    scenario: str | None = None  # the scenario's own name
    outcome: str = "skipped"  # met | not met | inconclusive | error | skipped
    exit_code: int | None = None
    problem: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    record_path: str | None = None  # relative to the suite record
    record: RunRecord | None = None

    @field_validator("record", mode="before")
    @classmethod
    def _any_version(cls, value: object) -> RunRecord | None:
        """An embedded record of any version, read leniently (never a validation error)."""
        if value is None or isinstance(value, RunRecord):
            return value
        return parse_record(value) if isinstance(value, dict) and value else None

    def to_json_dict(self) -> JsonObject:
        """The JSON form; the embedded record as a run record file holds it."""
        out = self.model_dump(mode="json", by_alias=True, exclude={"record"})
        out["record"] = None if self.record is None else self.record.to_json_dict()
        return out


class SuiteDimension(Section):
    """One graded dimension (scalability, reliability, performance, monitoring)."""

    name: str = ""
    status: str = "not measured"  # pass | warn | fail | not measured
    score: float | None = None  # 0-100: share of checks passed; None when nothing was measured
    findings: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)


class SuiteReadiness(Section):
    """The suite's grade: ready | not ready | inconclusive, its exit code and what blocks it."""

    status: str = "inconclusive"
    exit_code: int = 4
    blockers: list[str] = Field(default_factory=list)
    dimensions: list[SuiteDimension] = Field(default_factory=list)


class SuiteRecord(Section):
    """A whole suite record (``kind: suite``, ``schema_version`` 1)."""

    schema_version: int = SUITE_SCHEMA_VERSION
    kind: Literal["suite"] = "suite"
    suite: SuiteInfo = Field(default_factory=SuiteInfo)
    scenarios: list[SuiteScenario] = Field(default_factory=list)
    readiness: SuiteReadiness | None = None  # added by the runner once the suite is graded

    def to_json_dict(self) -> JsonObject:
        """The JSON form; ``readiness`` only once graded."""
        out = self.model_dump(mode="json", by_alias=True, exclude={"scenarios", "readiness"})
        out["scenarios"] = [row.to_json_dict() for row in self.scenarios]
        if self.readiness is not None:
            out["readiness"] = self.readiness.model_dump(mode="json", by_alias=True)
        return out


def is_suite_record(data: object) -> bool:
    """True for a decoded JSON document that is a suite record (``kind: suite``)."""
    return isinstance(data, Mapping) and data.get("kind") == "suite"


def parse_suite_record(data: object) -> SuiteRecord:
    """``data`` (a decoded suite record) as a ``SuiteRecord``; what does not fit is dropped, never raises."""
    raw: JsonObject = copy.deepcopy(dict(data)) if isinstance(data, Mapping) else {}
    raw["kind"] = "suite"
    return lenient(SuiteRecord, raw)
