"""Where the external schemas are: ``$RELIABILITY_SCHEMAS_DIR``, else ``../shared/schemas`` next to
the repository (Jenkins' JUnit ``junit-10.xsd``, the Compose Specification's ``compose-spec.json``).
Tests skip with the reason when a schema is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
