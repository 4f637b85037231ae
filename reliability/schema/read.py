"""Reading any run record as a :class:`~reliability.schema.sections.RunRecord`.

Version 1 records (the percentile in key names: ``peak_p99_ms``, ``p99_ms``) are upgraded to
version 2 first. A record is then read leniently: a value that does not fit its field (a
mistyped value, an undeclared key from a newer writer, a truncated list item) is dropped and
the field keeps its default, "not measured", so a report can always be rendered. Use
``RunRecord.model_validate`` (or the JSON Schema) to check a record strictly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from reliability.jsontypes import JsonArray, JsonObject, JsonValue
from reliability.schema.sections import SCHEMA_VERSION, CostModel, RunRecord

M = TypeVar("M", bound=BaseModel)

_PCT_KEY = re.compile(r"^(p\d+(?:\.\d+)?)_ms$")
_PEAK_KEY = re.compile(r"^peak_(p\d+(?:\.\d+)?)_ms$")
_MAX_PASSES = 1000
_EPOCH_FLOOR_S = 1e9  # below: seconds since the start; above: epoch seconds


def parse_record(data: object) -> RunRecord:
    """``data`` (a decoded JSON record of any version) as a ``RunRecord``; never raises."""
    raw: JsonObject = copy.deepcopy(dict(data)) if isinstance(data, Mapping) else {}
    if raw.get("schema_version", 1) == 1:
        upgrade_v1(raw)
    raw["schema_version"] = SCHEMA_VERSION
    if "cost_model" in raw:
        try:  # a price list read in part would price the run wrongly: all of it or none
            CostModel.model_validate(raw["cost_model"])
        except ValidationError:
            del raw["cost_model"]
    return lenient(RunRecord, raw)


def lenient(model: type[M], raw: JsonObject) -> M:
    """``raw`` as ``model``, dropping (in place) each value that does not fit until the rest does;
    the model's defaults when nothing does."""
    for _ in range(_MAX_PASSES):
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            for error in reversed(exc.errors()):  # the last first: earlier list indices stay valid
                _drop(raw, error["loc"])
    return model()


def _drop(data: JsonObject, loc: tuple[int | str, ...]) -> None:
    """Remove the deepest value on ``loc`` that exists (union tags in ``loc`` are skipped)."""
    parent: JsonObject | JsonArray | None = None
    key: int | str | None = None
    node: JsonValue = data
    for part in loc:
        if isinstance(node, dict):
            if isinstance(part, str) and part in node:  # else a union member's tag, or a key pydantic
                parent, key, node = node, part, node[part]  # names differently: skipped
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, key, node = node, part, node[part]
        else:
            break
    if isinstance(parent, dict) and isinstance(key, str):
        del parent[key]
        return
    if isinstance(parent, list) and isinstance(key, int):
        del parent[key]
        return
    data.clear()


def upgrade_v1(record: JsonObject) -> JsonObject:
    """Rename version 1's percentile-named keys in place (and return ``record``)."""
    sla = record.get("sla")
    label = sla.get("percentile") if isinstance(sla, dict) else None
    label = label if isinstance(label, str) else "p95"
    totals = record.get("totals")
    if isinstance(totals, dict):
        extra = [k for k in totals if _PCT_KEY.match(k) and k not in ("p50_ms", "p95_ms", "p99_ms")]
        totals.setdefault("percentile", label)
        totals.setdefault("latency_ms", totals.get(f"{label}_ms"))
        for k in extra:
            del totals[k]
    run = record.get("run")
    started = _epoch(run.get("started_at")) if isinstance(run, dict) else None
    for fault in _dicts(record.get("faults")):
        degradation = fault.get("degradation")
        if isinstance(degradation, dict):
            _upgrade_degradation(degradation)
        _upgrade_fault_times(fault, started)
        # version 1: a time_to_recover_s key (even null) meant "measured"; version 2 says so in recovered
        if "time_to_recover_s" in fault and fault.get("recovered") is None and not fault.get("note"):
            fault["recovered"] = fault["time_to_recover_s"] is not None
    for stage in _dicts(record.get("stages")):
        _rename(stage, f"{label}_ms", "latency_ms")
        if "latency_ms" in stage:
            stage.setdefault("percentile", label)
    capacity = record.get("capacity")
    if isinstance(capacity, dict):
        capacity.setdefault("percentile", label)
        tiers = capacity.get("tiers")
        points = [capacity.get("knee"), *(tiers.values() if isinstance(tiers, dict) else ()),
                  *_dicts(capacity.get("steps"))]
        for point in points:
            if isinstance(point, dict):
                _rename(point, f"{label}_ms", "latency_ms")
    return record


def _upgrade_degradation(degradation: JsonObject) -> None:
    label = next((m.group(1) for k in degradation if (m := _PEAK_KEY.match(k))), None)
    if label is None:
        return
    degradation.setdefault("percentile", label)
    _rename(degradation, f"peak_{label}_ms", "peak_latency_ms")
    _rename(degradation, f"baseline_{label}_ms", "baseline_latency_ms")
    _rename(degradation, f"{label}_ms", "latency_ms")


def _upgrade_fault_times(fault: JsonObject, started: float | None) -> None:
    """Version 1 readers took seconds (since start, or epoch) in ``injected_at`` etc. too."""
    for key in ("inject_started_at", "injected_at", "reverted_at"):
        value = fault.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        del fault[key]
        seconds = float(value)
        if seconds >= _EPOCH_FLOOR_S:
            if started is None:
                continue
            seconds -= started
        fault.setdefault(f"{key}_s", seconds)


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _rename(mapping: JsonObject, old: str, new: str) -> None:
    if old in mapping:
        value = mapping.pop(old)
        mapping.setdefault(new, value)


def _dicts(value: JsonValue) -> list[JsonObject]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
