"""Checking run records against the JSON Schema the package ships (for fixtures and e2e runs)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from reliability.schema import SCHEMA_PATH


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


VALIDATOR = _validator()


def schema_errors(record: Mapping[str, Any]) -> list[str]:
    """Every way ``record`` breaks the shipped schema, as ``path: message`` lines."""
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in sorted(VALIDATOR.iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))]


def assert_valid_record(record: Mapping[str, Any] | Path) -> dict[str, Any]:
    """Fail with every schema error of ``record`` (a decoded record or a file); return the record."""
    data: dict[str, Any] = (json.loads(record.read_text(encoding="utf-8")) if isinstance(record, Path)
                            else dict(record))
    errors = schema_errors(data)
    assert not errors, "run record breaks the schema:\n" + "\n".join(errors[:30])
    return data
