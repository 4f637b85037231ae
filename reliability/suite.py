"""Suite files: scenarios run in order by ``reliability run SUITE.yaml``, with one combined record.

Example suite (paths are relative to the suite file)::

    name: checkout readiness
    defaults: {locustfile: ../locustfiles/api.py, workers: 2}
    scenarios:
      - {scenario: api_gold.yaml, name: baseline}
      - {scenario: gold_high_load.yaml, time_scale: 0.2}
      - {scenario: redis_outage.yaml, env: {TARGET_REDIS_URL: "redis://127.0.0.1:6379/0"}}
      - {scenario: capacity_search.yaml, required: false}

A file is a suite when its top level has a ``scenarios:`` list (a scenario file never does).
``load_suite(path)`` validates the suite and every scenario it names, and raises
:class:`~reliability.exceptions.ScenarioError` with one line such as
``scenarios/suite.yaml: scenarios[2].scenario: scenarios/missing.yaml: cannot read file: ...``.

Each scenario's ``kind`` (what it tells the readiness grading) is inferred unless given:
``capacity`` for a capacity search, ``degradation`` when it has faults, ``load`` for any other
shape, ``baseline`` otherwise. ``build_suite_record`` embeds each scenario's run record.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from reliability import __version__
from reliability.config import (
    ScenarioSpec,
    interpolate,
    interpolated_secrets,
    load_scenario,
    parse_scenario,
    read_scenario_file,
    validation_error,
)
from reliability.exceptions import ScenarioError
from reliability.inputfile import YamlValue
from reliability.jsontypes import JsonValue
from reliability.masking import secrets_of_env_value
from reliability.schema import SUITE_SCHEMA_VERSION as SUITE_SCHEMA_VERSION  # re-exported: its old home
from reliability.schema import RunRecord, parse_record
from reliability.schema.suite import SuiteInfo, SuiteRecord, SuiteScenario
from reliability.units import DurationS, FrozenSpec, iso

KINDS = ("baseline", "load", "degradation", "capacity")
Kind = Literal["baseline", "load", "degradation", "capacity"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SuiteDefaultsSpec(FrozenSpec):
    """Settings every scenario of the suite gets unless its entry sets its own."""

    locustfile: str | None = None
    host: str | None = None
    workers: int | None = Field(default=None, ge=0, le=1024)
    time_scale: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    sla_tier: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _env_names(self) -> SuiteDefaultsSpec:
        for name in self.env:
            if not _ENV_NAME.match(name):
                raise ValueError(f"env.{name}: not a valid environment variable name")
        return self


class SuiteEntrySpec(SuiteDefaultsSpec):
    """One scenario of the suite. ``required: false`` keeps its result out of the blockers."""

    scenario: str = Field(min_length=1)
    name: str | None = None
    kind: Kind | None = None
    required: bool = True
    users: int | None = Field(default=None, ge=0, le=1_000_000)
    spawn_rate: float | None = Field(default=None, gt=0, le=100_000)
    run_time_s: DurationS | None = Field(default=None, gt=0)


class SuiteSpec(FrozenSpec):
    """A whole suite file; see the module docstring."""

    version: int = Field(default=1, ge=1, le=1)
    name: str = "unnamed suite"
    description: str = ""
    stop_on_failure: bool = False  # stop after a scenario that is inconclusive or could not run
    defaults: SuiteDefaultsSpec = SuiteDefaultsSpec()
    scenarios: tuple[SuiteEntrySpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class SuiteEntry:
    """A suite entry resolved: its scenario parsed, defaults applied, name and kind decided."""

    index: int
    name: str
    kind: str
    required: bool
    scenario_path: str
    scenario: ScenarioSpec
    locustfile: str | None
    host: str | None
    workers: int | None
    sla_tier: str | None
    users: int | None
    spawn_rate: float | None
    run_time_s: float | None
    env: Mapping[str, str]


@dataclass(frozen=True)
class Suite:
    """A validated suite file and its entries in order."""

    path: str
    spec: SuiteSpec
    entries: tuple[SuiteEntry, ...]
    secrets: tuple[str, ...] = ()  # what the file took from ${ENV} that must be masked

    def env_secrets(self) -> tuple[str, ...]:
        """Everything to mask when showing the suite: its own interpolated secrets, those of its
        scenarios, the passwords in ``env:`` values and the values of secret-named ``env:`` keys."""
        found = list(self.secrets)
        for entry in self.entries:
            found += entry.scenario.secrets
            for name, value in entry.env.items():
                found += secrets_of_env_value(name, value)
        return tuple(dict.fromkeys(found))


def is_suite_document(data: YamlValue) -> bool:
    """True for a YAML document that is a suite (a top-level ``scenarios:`` list)."""
    return isinstance(data, dict) and isinstance(data.get("scenarios"), list)


def infer_kind(scenario: ScenarioSpec) -> str:
    """What a scenario measures: capacity search, fault schedule, other load shape, or neither."""
    if scenario.shape is not None and scenario.shape.type == "capacity_search":
        return "capacity"
    if scenario.faults:
        return "degradation"
    if scenario.shape is not None:
        return "load"
    return "baseline"


def _resolve(source: str, spec: SuiteSpec) -> tuple[SuiteEntry, ...]:
    base = Path(source).parent
    d = spec.defaults
    entries: list[SuiteEntry] = []
    names: set[str] = set()
    for i, e in enumerate(spec.scenarios):
        path = os.path.normpath(base / e.scenario)
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            raise ScenarioError(source, f"scenarios[{i}].scenario", str(exc)) from None
        name = e.name or (scenario.name if scenario.name != ScenarioSpec().name else Path(path).stem)
        if name in names:
            raise ScenarioError(source, f"scenarios[{i}].name", f"{name!r} is used twice; give each entry its own name")
        names.add(name)
        env = {**d.env, **e.env}
        time_scale = e.time_scale if e.time_scale is not None else d.time_scale
        if time_scale is not None:
            env["RELIABILITY_TIME_SCALE"] = f"{time_scale:g}"
        entries.append(SuiteEntry(
            index=i + 1, name=name, kind=e.kind or infer_kind(scenario), required=e.required, scenario_path=path,
            scenario=scenario, locustfile=_relative(base, e.locustfile or d.locustfile),
            host=e.host or d.host, workers=e.workers if e.workers is not None else d.workers,
            sla_tier=e.sla_tier or d.sla_tier, users=e.users, spawn_rate=e.spawn_rate, run_time_s=e.run_time_s,
            env=env,
        ))
    return tuple(entries)


def _relative(base: Path, locustfile: str | None) -> str | None:
    """A suite's locustfile is relative to the suite file (unless absolute or Locust's own forms)."""
    if locustfile is None or Path(locustfile).is_absolute() or "," in locustfile or "://" in locustfile:
        return locustfile
    return os.path.normpath(base / locustfile)


def parse_suite(data: YamlValue, source: str = "<suite>", env: Mapping[str, str] | None = None) -> Suite:
    """Validate an already-loaded suite document; ``source`` names it in errors and anchors paths.
    ``${VAR}`` references are taken from ``env`` (default ``os.environ``), as in scenario files."""
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "the top level must be a mapping of keys to values")
    used: dict[str, str] = {}
    data = interpolate(data, "", source, os.environ if env is None else env, used)
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_error(source, exc, used) from None
    return Suite(source, spec, _resolve(source, spec), interpolated_secrets(used))


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and validate a suite file and every scenario it lists."""
    return parse_suite(read_scenario_file(path), str(path))


def read_run_file(path: str | os.PathLike[str]) -> tuple[Suite | None, ScenarioSpec | None]:
    """``(suite, None)`` for a suite file, ``(None, scenario)`` for a scenario file."""
    data = read_scenario_file(path)  # read and parsed once
    if is_suite_document(data):
        return parse_suite(data, str(path)), None
    return None, parse_scenario(data, str(path))


# -- the combined record ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioResult:
    """How one entry of the suite ran: its exit code and run record (None when it did not run or
    wrote none), or why it did not run."""

    entry: SuiteEntry
    exit_code: int | None
    record_path: str | None
    record: RunRecord | Mapping[str, JsonValue] | None  # a record file as read, of any version
    started_at: float | None = None
    ended_at: float | None = None
    problem: str | None = None


def outcome(result: ScenarioResult) -> str:
    """met | not met | inconclusive | error | skipped."""
    if result.exit_code is None:
        return "skipped"
    return {0: "met", 3: "not met", 4: "inconclusive"}.get(result.exit_code, "error")


def _iso(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else iso(epoch_s)


def build_suite_record(suite: Suite, results: Sequence[ScenarioResult], *, started_at: float, ended_at: float,
                       interrupted: str | None = None) -> SuiteRecord:
    """The combined record: the suite, each scenario's result with its run record embedded, and
    the readiness grading (added by the caller from ``reliability.report.readiness``)."""
    ran = {r.entry.index for r in results}
    rows: list[SuiteScenario] = []
    for r in [*results, *(ScenarioResult(e, None, None, None, problem="not run: the suite stopped before it")
                          for e in suite.entries if e.index not in ran)]:
        e = r.entry
        rows.append(SuiteScenario(
            index=e.index, name=e.name, kind=e.kind, required=e.required,
            scenario_file=e.scenario_path, scenario=e.scenario.name,
            outcome=outcome(r), exit_code=r.exit_code, problem=r.problem,
            started_at=_iso(r.started_at), ended_at=_iso(r.ended_at),
            duration_s=None if r.started_at is None or r.ended_at is None else round(r.ended_at - r.started_at, 3),
            record_path=r.record_path, record=r.record if isinstance(r.record, RunRecord) else parse_record(r.record)
            if r.record else None,
        ))
    return SuiteRecord(
        suite=SuiteInfo(
            name=suite.spec.name, description=suite.spec.description, file=suite.path,
            started_at=_iso(started_at), ended_at=_iso(ended_at), duration_s=round(ended_at - started_at, 3),
            interrupted=interrupted, reliability_version=__version__,
        ),
        scenarios=rows,
    )

