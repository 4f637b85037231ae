"""The record's JSON Schema, generated from :mod:`reliability.schema.sections`.

``record.schema.json`` next to this module is the generated file shipped in the package; a test
checks that it is current. Regenerate it after changing a section::

    python -m reliability.schema --write
"""

from __future__ import annotations

import json
from pathlib import Path

from reliability.jsontypes import JsonObject, as_array, as_object
from reliability.schema.sections import FEATURE_SECTIONS, SCHEMA_VERSION, RunRecord

SCHEMA_PATH = Path(__file__).with_name("record.schema.json")
SCHEMA_ID = f"https://locust-reliability.invalid/schema/record-v{SCHEMA_VERSION}.json"


def json_schema() -> JsonObject:
    """The JSON Schema (2020-12) of a record as writers write it: every field of a section is
    required (``null`` is "not measured"); the feature sections may be absent."""
    schema: JsonObject = RunRecord.model_json_schema(mode="serialization", by_alias=True)
    schema["required"] = [name for name in as_array(schema["required"], "required") if name not in FEATURE_SECTIONS]
    as_object(schema["properties"], "properties")["schema_version"] = {"const": SCHEMA_VERSION,
                                                                       "title": "Schema Version"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    return json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(render_schema(), encoding="utf-8")
    return path
