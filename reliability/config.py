"""Scenario files: a typed spec parsed from YAML, with errors that name the file and the field.

Example scenario::

    name: checkout under load
    target:
      host: http://127.0.0.1:8080
      dsn: ${CHECKOUT_PG_DSN}          # secrets come from the environment
    sla:
      tier: gold
      percentile: p95
      rolling_window_s: 60
      tiers:
        gold: {uptime_pct: 99.9, p95_ms: 150, error_pct: 0.5}   # override a built-in tier
        internal: {rank: 0, uptime_pct: 95, p95_ms: 3000, error_pct: 10}
      endpoints:
        "GET /api/items": {p95_ms: 300}

``load_scenario(path)`` returns a frozen :class:`ScenarioSpec` or raises
:class:`~reliability.exceptions.ScenarioError` with one line such as
``scenarios/x.yaml: sla.tiers.gold.p95_ms: must be greater than 0``. Validation is pydantic's;
this module only maps its errors to field paths; units ("250ms", "2m", "p99.9") are parsed by
:mod:`reliability.units` (its parsers are re-exported here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from reliability.alerts.spec import AlertsSpec
from reliability.exceptions import InputError, ScenarioError
from reliability.faults.schedule import FaultSchedule
from reliability.health.spec import HealthSpec
from reliability.inputfile import YamlValue, load_yaml_file
from reliability.masking import mask, secrets_of_env_value
from reliability.report.spec import CostSpec
from reliability.shapes.spec import RecoveryField, RecoverySpec, ShapeField
from reliability.units import FrozenSpec
from reliability.units import parse_duration_s as parse_duration_s  # re-exported: the public home of the parsers
from reliability.units import parse_latency_ms as parse_latency_ms
from reliability.units import parse_percentile as parse_percentile
from reliability.units import percentile_label as percentile_label

_PERCENTILE_KEY = re.compile(r"^p(\d{1,2}(?:\.\d+)?)_ms$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _collect_percentiles(data: object) -> object:
    """Move ``pNN_ms`` keys into ``percentile_ms`` and parse latency units (of the unvalidated input,
    as a ``before`` validator gets it)."""
    if not isinstance(data, Mapping):
        return data
    out: dict[str, object] = {}
    pcts: dict[float, float] = {}
    for key, value in data.items():
        m = _PERCENTILE_KEY.match(str(key))
        if m:
            try:
                ms = parse_latency_ms(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
            if ms <= 0:
                raise ValueError(f"{key}: must be greater than 0")
            pcts[parse_percentile(m.group(1))] = ms
        elif key == "latency_ms" and value is not None:
            try:
                out[key] = parse_latency_ms(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        else:
            out[str(key)] = value
    if pcts:
        out["percentile_ms"] = pcts
    return out


class EndpointSlaSpec(FrozenSpec):
    """Latency and error thresholds; alone, extra criteria for one endpoint ("GET /api/items", or
    a bare name for any request type). Write ``p95_ms: 200`` (any percentile) or ``latency_ms``
    for the scenario's configured percentile."""

    error_pct: float | None = Field(default=None, ge=0, le=100)
    latency_ms: float | None = Field(default=None, gt=0)
    percentile_ms: dict[float, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _percentiles(cls, data: object) -> object:
        return _collect_percentiles(data)

    @property
    def error_ratio(self) -> float | None:
        return None if self.error_pct is None else self.error_pct / 100.0

    def latency_thresholds(self, default_percentile: float) -> dict[float, float]:
        """All latency thresholds, ``latency_ms`` placed at the scenario's percentile."""
        out = dict(self.percentile_ms)
        if self.latency_ms is not None:
            out.setdefault(default_percentile, self.latency_ms)
        return out


class TierSpec(EndpointSlaSpec):
    """Thresholds of one SLA tier; ``rank`` orders tiers from least to most demanding.

    Example: ``TierSpec(rank=3, uptime_pct=99.9, latency_ms=200, error_pct=0.5)`` (built-in gold).
    """

    rank: float | None = None
    uptime_pct: float | None = Field(default=None, ge=0, le=100)

    @property
    def uptime_ratio(self) -> float | None:
        return None if self.uptime_pct is None else self.uptime_pct / 100.0


BUILTIN_TIERS: Mapping[str, TierSpec] = {
    "bronze": TierSpec(rank=1, uptime_pct=99.0, latency_ms=1000, error_pct=2.0),
    "silver": TierSpec(rank=2, uptime_pct=99.5, latency_ms=500, error_pct=1.0),
    "gold": TierSpec(rank=3, uptime_pct=99.9, latency_ms=200, error_pct=0.5),
    "platinum": TierSpec(rank=4, uptime_pct=99.95, latency_ms=100, error_pct=0.1),
}


class AbortSpec(FrozenSpec):
    """Stop the run when the rolling verdict fails for ``grace_s`` in a row (like k6 abortOnFail)."""

    enabled: bool = False
    grace_s: float = 10.0

    @field_validator("grace_s", mode="before")
    @classmethod
    def _dur(cls, v: object) -> float:
        return parse_duration_s(v)


class SlaSpec(FrozenSpec):
    tier: str = "gold"
    percentile: float = 95.0
    rolling_window_s: float = Field(default=60.0, ge=5, le=3600)
    down_error_pct: float = Field(default=5.0, gt=0, le=100)
    # a second whose latency at the SLA percentile is above this is down (default: the least
    # demanding tier's latency threshold, e.g. bronze's 1000 ms: a second that misses every tier)
    down_latency_ms: float | None = Field(default=None, gt=0)
    # grade latency from the intended start when the run has it (paced users, arrival rate)
    latency_basis: Literal["corrected", "measured"] = "corrected"
    # schedule lag p99 above this makes the run inconclusive (default max(25 ms, 25 % of the tier's latency))
    max_schedule_lag_ms: float | None = Field(default=None, gt=0)
    status_interval_s: float = Field(default=5.0, gt=0)
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0)  # of every criterion's interval
    min_requests: int = Field(default=100, ge=0)  # fewer requests than this never make a MET
    abort: AbortSpec = AbortSpec()
    replace_builtin_tiers: bool = False
    tiers: dict[str, TierSpec] = Field(default_factory=dict)
    endpoints: dict[str, EndpointSlaSpec] = Field(default_factory=dict)

    @field_validator("percentile", mode="before")
    @classmethod
    def _pct(cls, v: object) -> float:
        return parse_percentile(v)

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, v: object) -> object:
        """0.95, "0.95", "95%" and 95 all mean 95 %."""
        if isinstance(v, str):
            text = v.strip()
            if text.endswith("%"):
                return float(text[:-1]) / 100.0
            v = float(text)
        if isinstance(v, int | float) and not isinstance(v, bool) and 1.0 < v <= 100.0:
            return v / 100.0
        return v

    @field_validator("rolling_window_s", "status_interval_s", mode="before")
    @classmethod
    def _dur(cls, v: object) -> float:
        return parse_duration_s(v)

    @field_validator("down_latency_ms", "max_schedule_lag_ms", mode="before")
    @classmethod
    def _ms(cls, v: object) -> float | None:
        return None if v is None else parse_latency_ms(v)

    @field_validator("tier", mode="before")
    @classmethod
    def _tier_name(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("tiers", mode="before")
    @classmethod
    def _tier_names(cls, v: object) -> object:
        if isinstance(v, Mapping):
            return {str(k).strip().lower(): t for k, t in v.items()}
        return v

    @model_validator(mode="after")
    def _check_tiers(self) -> SlaSpec:
        for name, tier in self.tiers.items():
            if name not in BUILTIN_TIERS and tier.rank is None:
                raise ValueError(f"tiers.{name}.rank: a custom tier needs a rank (bronze=1 .. platinum=4)")
        if self.tier not in self.all_tiers():
            raise ValueError(f"tier: unknown tier {self.tier!r}; known: {', '.join(self.all_tiers())}")
        return self

    def all_tiers(self) -> dict[str, TierSpec]:
        """Tiers by rank (least demanding first): built-ins, overridden or replaced by the file's."""
        merged: dict[str, TierSpec] = {} if self.replace_builtin_tiers else dict(BUILTIN_TIERS)
        for name, tier in self.tiers.items():
            base = merged.get(name)
            if base is not None and tier.rank is None:
                tier = tier.model_copy(update={"rank": base.rank})
            merged[name] = tier
        return dict(sorted(merged.items(), key=lambda kv: (kv[1].rank or 0.0, kv[0])))

    @property
    def down_error_ratio(self) -> float:
        return self.down_error_pct / 100.0

    def tier_latency_ms(self, tier: str | None = None) -> float | None:
        """The latency threshold of ``tier`` (default: the graded one) at the SLA percentile."""
        return self.all_tiers()[tier or self.tier].latency_thresholds(self.percentile).get(self.percentile)

    @property
    def down_latency_threshold_ms(self) -> float:
        """``down_latency_ms``, else the least demanding tier's latency threshold, else 1000 ms."""
        if self.down_latency_ms is not None:
            return self.down_latency_ms
        for name in self.all_tiers():  # least demanding first
            limit = self.tier_latency_ms(name)
            if limit is not None:
                return limit
        return 1000.0

    @property
    def schedule_lag_bound_ms(self) -> float:
        """``max_schedule_lag_ms``, else max(25 ms, 25 % of the graded tier's latency threshold): the
        lag adds to every corrected first request, so it must stay a small part of the budget."""
        if self.max_schedule_lag_ms is not None:
            return self.max_schedule_lag_ms
        limit = self.tier_latency_ms()
        return max(25.0, 0.25 * limit) if limit is not None else 25.0


class TargetSpec(FrozenSpec):
    """Where the load goes. Put secrets in ``${ENV_VAR}`` references, never in the file."""

    host: str | None = None
    dsn: str | None = None
    redis_url: str | None = None
    ws_url: str | None = None


class LoadSpec(FrozenSpec):
    locustfile: str | None = None
    users: int = Field(default=10, ge=0, le=1_000_000)
    spawn_rate: float = Field(default=10.0, gt=0, le=100_000)
    run_time_s: float = Field(default=60.0, gt=0)

    @field_validator("run_time_s", mode="before")
    @classmethod
    def _dur(cls, v: object) -> float:
        return parse_duration_s(v)


class ScenarioSpec(FrozenSpec):
    """A whole scenario file. Example in the module docstring."""

    version: int = Field(default=1, ge=1, le=1)
    name: str = "unnamed scenario"
    description: str = ""
    target: TargetSpec = TargetSpec()
    load: LoadSpec = LoadSpec()
    sla: SlaSpec = SlaSpec()
    components: dict[str, str] = Field(default_factory=dict)
    cost: CostSpec | None = None
    health: HealthSpec | None = None
    recovery: RecoveryField = RecoverySpec()
    faults: FaultSchedule = ()
    shape: ShapeField = None
    alerts: AlertsSpec | None = None
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to mask in every output: what the file took from ``${ENV}`` references whose
        name says secret (``${DB_PASSWORD}``), and the passwords inside interpolated URLs/DSNs."""
        return self._secrets


def interpolate(node: YamlValue, path: str, source: str, env: Mapping[str, str], used: dict[str, str]) -> YamlValue:
    """``node`` with every ``${VAR}`` / ``${VAR:-default}`` in its strings replaced from ``env``;
    each variable taken is noted in ``used`` (name -> value) so its value can be masked."""
    if isinstance(node, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                used[name] = env[name]
                return env[name]
            if default is not None:
                return default
            raise ScenarioError(source, path, f"environment variable {name} is not set")

        return _ENV_REF.sub(repl, node)
    if isinstance(node, dict):
        return {k: interpolate(v, f"{path}.{k!s}" if path else str(k), source, env, used) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, f"{path}[{i}]", source, env, used) for i, v in enumerate(node)]
    return node


def interpolated_secrets(used: Mapping[str, str]) -> tuple[str, ...]:
    """What to mask of the environment values a file took (see :func:`reliability.masking.secrets_of_env_value`)."""
    return tuple(dict.fromkeys(s for name, value in used.items() for s in secrets_of_env_value(name, value)))


def validation_error(source: str, exc: ValidationError, used: Mapping[str, str]) -> ScenarioError:
    """The first pydantic error as one ``file: field: reason`` line; values that came from the
    environment are masked in the reason (an error may echo its input)."""
    err = exc.errors(include_url=False)[0]
    path = _field_path(tuple(err["loc"]))
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    msg = msg.removeprefix("Value error, ")
    # errors raised in a model validator name their own sub-field: "tiers.x.rank: ..."
    if ": " in msg and re.match(r"^[\w.\[\]-]+: ", msg):
        sub, msg = msg.split(": ", 1)
        path = f"{path}.{sub}" if path else sub
    secrets = (*interpolated_secrets(used), *(v for v in used.values() if v.strip()))
    return ScenarioError(source, path, mask(msg, secrets))


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not str(item).startswith(("function-", "model-")):
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def parse_scenario(data: YamlValue, source: str = "<scenario>", env: Mapping[str, str] | None = None) -> ScenarioSpec:
    """Validate an already-loaded YAML document. ``source`` names it in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "the top level must be a mapping of keys to values")
    used: dict[str, str] = {}
    data = interpolate(data, "", source, os.environ if env is None else env, used)
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_error(source, exc, used) from None
    spec._secrets = interpolated_secrets(used)
    return spec


def read_scenario_file(path: str | os.PathLike[str]) -> YamlValue:
    """The YAML document in ``path``, unvalidated, read through :mod:`reliability.inputfile` (regular
    file, size, encoding, YAML limits); any problem, and an empty file, raise ScenarioError."""
    source = str(path)
    try:
        data = load_yaml_file(path)
    except InputError as exc:
        raise ScenarioError(source, "", exc.reason) from None
    if data is None:  # the same answer from validate, run, health and locust --scenario
        raise ScenarioError(source, "", "the file is empty (a scenario needs at least one key, such as name:)")
    return data


def load_scenario(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> ScenarioSpec:
    """Read and validate a scenario YAML file; raises ScenarioError naming file and field."""
    return parse_scenario(read_scenario_file(path), str(path), env)
