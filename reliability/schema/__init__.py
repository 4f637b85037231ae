"""The run record's contract: typed sections, the shipped JSON Schema and a reader for every version.

* :mod:`reliability.schema.sections`: the pydantic models (``RunRecord`` and one per section);
* :func:`json_schema` / ``record.schema.json`` (in this package): the JSON Schema generated from
  them, for validating records in your own pipeline (``python -m reliability.schema`` prints it);
* :func:`parse_record`: any record (version 1 or 2, partial or from a newer writer) as a
  ``RunRecord``, upgrading version 1 and dropping what does not fit;
* :mod:`reliability.schema.suite`: the suite record (``kind: suite``) and its lenient reader
  :func:`parse_suite_record`.

Example::

    from reliability.schema import parse_record
    record = parse_record(json.loads(Path("reports/run-1.json").read_text()))
    record.sla.passed, record.totals.latency_ms
"""

from __future__ import annotations

from reliability.schema.read import parse_record, upgrade_v1
from reliability.schema.schema import SCHEMA_PATH, json_schema, write_schema
from reliability.schema.sections import FEATURE_SECTIONS, SCHEMA_VERSION, RunRecord
from reliability.schema.suite import SUITE_SCHEMA_VERSION, SuiteRecord, is_suite_record, parse_suite_record

__all__ = ["FEATURE_SECTIONS", "SCHEMA_PATH", "SCHEMA_VERSION", "SUITE_SCHEMA_VERSION", "RunRecord", "SuiteRecord",
           "is_suite_record", "json_schema", "parse_record", "parse_suite_record", "upgrade_v1", "write_schema"]
