"""Output files: atomic, and with the umask's permissions (mkstemp alone would make them 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.files import umask_mode, write_text_atomic
from reliability.record import write_json


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)], indirect=["umask"])
def test_outputs_follow_the_umask(umask: int, mode: int, tmp_path: Path) -> None:
    assert umask_mode() == mode
    path = write_text_atomic(tmp_path / "sub" / "report.md", "# hi\n")
    assert path.read_text() == "# hi\n" and stat.S_IMODE(path.stat().st_mode) == mode
    record = write_json({"schema_version": 2}, tmp_path / "run.json")
    assert stat.S_IMODE(record.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "sub"]  # no temp file left
