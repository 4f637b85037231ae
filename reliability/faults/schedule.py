"""The fault schedule of a scenario (its ``faults:`` key): when each fault starts, how long it
is held, and what it is (a spec of :mod:`reliability.faults` or a factory import path)::

    faults:
      - name: redis down
        at_s: 30s
        hold_s: 20s
        fault: {type: redis.pause, url: "${REDIS_URL}"}
      - at_s: 90s
        hold_s: 10s
        factory: mypkg.faults:DiskFull   # any callable(name=..., **args) returning a Fault
        args: {path: /var/data}

Faults must be in order and not overlap, and the first must leave a baseline after
``recovery.warmup_s``; errors name their field: ``faults[1].at_s: starts at 20 s, before faults[0]
(redis down) ends at 50 s``. Nothing here imports locust or gevent.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from reliability.faults.spec import FaultSpec
from reliability.units import DurationS, FrozenSpec, LatencyMs, raise_at

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@functools.cache
def _fault_adapter() -> TypeAdapter[FaultSpec]:
    return TypeAdapter(FaultSpec)


class ScheduledFaultSpec(FrozenSpec):
    """Inject a fault ``at_s`` seconds after the test starts, hold it ``hold_s``, then revert it.

    Give either ``fault`` (a spec of one of reliability.faults' mechanisms) or ``factory`` (an
    import path ``module:callable`` called as ``callable(name=..., **args)``, returning an object
    with the Fault protocol: ``name, kind, dead_man_s, inject(), revert(), verify()``).
    """

    name: str | None = Field(default=None, min_length=1)
    at_s: DurationS = Field(ge=0)
    hold_s: DurationS = Field(gt=0)
    fault: FaultSpec | None = None
    factory: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    graceful_error_pct: float | None = Field(default=None, ge=0, le=100)
    fail_fast_ms: LatencyMs | None = Field(default=None, gt=0)

    @field_validator("fault", mode="before")
    @classmethod
    def _fault(cls, value: object) -> object:
        if value is None:
            return None
        try:
            return _fault_adapter().validate_python(value)
        except ValidationError as exc:
            # drop the union's tag from the path: fault.latency_ms, not fault.http.latency.latency_ms
            tag = value.get("type") if isinstance(value, dict) else None
            errors = [InitErrorDetails(type=PydanticCustomError("fault", str(e["msg"]).removeprefix("Value error, ")),
                                       loc=tuple(e["loc"][1:] if e["loc"][:1] == (tag,) else e["loc"]),
                                       input=e.get("input"))
                      for e in exc.errors(include_url=False)]
            raise ValidationError.from_exception_data("fault", errors) from None

    @model_validator(mode="after")
    def _one_source(self) -> ScheduledFaultSpec:
        if (self.fault is None) == (self.factory is None):
            raise ValueError("fault: give exactly one of fault (a fault spec) or factory ('module:callable')")
        if self.factory is not None and not _FACTORY.match(self.factory):
            raise ValueError(f"factory: expected 'package.module:callable', got {self.factory!r}")
        if self.args and self.factory is None:
            raise ValueError("args: only used with factory")
        return self

    @property
    def type(self) -> str:
        """The fault mechanism: the spec's ``type``, or the factory's import path."""
        return str(getattr(self.fault, "type", None) or self.factory)

    @property
    def end_s(self) -> float:
        return self.at_s + self.hold_s


def fault_names(faults: Sequence[ScheduledFaultSpec]) -> list[str]:
    """A unique display name per fault: its ``name``, else its type (numbered when repeated)."""
    base = [f.name or f.type.rsplit(":", 1)[-1] for f in faults]
    out = []
    for i, name in enumerate(base):
        if faults[i].name is None and base.count(name) > 1:
            name = f"{name}-{base[:i + 1].count(name)}"
        out.append(name)
    return out


def _check_schedule(faults: tuple[ScheduledFaultSpec, ...], info: ValidationInfo) -> tuple[ScheduledFaultSpec, ...]:
    recovery = info.data.get("recovery")  # the scenario's recovery section (validated before faults)
    names = fault_names(faults)
    seen: dict[str, int] = {}
    for i, fault in enumerate(faults):
        if names[i] in seen:
            raise_at((i, "name"), f"duplicate fault name {names[i]!r} (also faults[{seen[names[i]]}])", fault.name)
        seen[names[i]] = i
        warmup_s = getattr(recovery, "warmup_s", None)
        if i == 0 and isinstance(warmup_s, float) and fault.at_s <= warmup_s:
            raise_at((0, "at_s"), f"leaves no baseline: must be later than recovery.warmup_s "
                                   f"({warmup_s:g} s)", fault.at_s)
        if i > 0:
            before = faults[i - 1]
            if fault.at_s < before.end_s:
                raise_at((i, "at_s"), f"starts at {fault.at_s:g} s, before faults[{i - 1}] ({names[i - 1]}) "
                                       f"ends at {before.end_s:g} s; faults must be in order and not overlap",
                          fault.at_s)
    return faults


FaultSchedule = Annotated[tuple[ScheduledFaultSpec, ...], AfterValidator(_check_schedule)]


def schedule_end_s(faults: Sequence[ScheduledFaultSpec]) -> float | None:
    """When the last scheduled fault is reverted (seconds since the start), None without faults."""
    return max((f.end_s for f in faults), default=None)


def resolve_factory(path: str) -> Callable[..., Any]:
    """The callable named by ``module:attr`` (raises ValueError naming what is missing)."""
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name}: {exc}") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{module_name} has no {attr}")
    if not callable(obj):
        raise ValueError(f"{path} is not callable")
    result: Callable[..., Any] = obj
    return result
