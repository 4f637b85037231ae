"""Schema checks for tests: run records against the JSON Schema the package ships, and reports
against external schemas.

The external schemas are found in ``$RELIABILITY_SCHEMAS_DIR``, else ``../shared/schemas`` next to
the repository (Jenkins' JUnit ``junit-10.xsd``, the Compose Specification's ``compose-spec.json``).
Tests skip with the reason when one is absent.

Example::

    record = assert_valid_record(tmp_path / "run.json")
    validate_junit(junit_xml)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reliability.schema import SCHEMA_PATH
from tests.support.processes import ROOT


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


def find_schema(name: str) -> Path | None:
    folder = os.environ.get("RELIABILITY_SCHEMAS_DIR")
    path = (Path(folder) if folder else ROOT.parent / "shared" / "schemas") / name
    return path if path.is_file() else None


def schema_path(name: str) -> Path:
    path = find_schema(name)
    if path is None:
        pytest.skip(f"{name} not found in $RELIABILITY_SCHEMAS_DIR or ../shared/schemas next to the repository")
    return path


def validate_junit(xml_text: str, required: bool = True) -> bool:
    """Raise unless ``xml_text`` is valid against Jenkins' xUnit junit-10.xsd. Without the schema:
    skip the test (``required``) or return False."""
    if not required and find_schema("junit-10.xsd") is None:
        return False
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(schema_path("junit-10.xsd")))
    schema.validate(xml_text)
    return True
