"""A corpus of hostile files (``tests/hostile/``, plus a FIFO, a directory and the big ones made
here) through ``reliability validate``, ``run --dry-run``, ``report``, ``health`` and
``locust --scenario``: each gives one ``file: ...`` line, no traceback, and no hang.

The ``reliability`` commands run in one process per command (``tests.support.hostile_cli``: the command
line's ``main`` per file under its own 10 s alarm); Locust runs as a real process per file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT

EXIT_USAGE = 2  # what Locust with the plugin exits with for a scenario it cannot use

pytestmark = pytest.mark.slow

CORPUS = ROOT / "tests" / "hostile"
HANG_S = 10.0
# a Locust process needs a few seconds to start on a loaded 2-core machine before it reads the
# file; a hang (the alias bomb before: 70 s, then MemoryError) is far beyond this bound
LOCUST_BOUND_S = HANG_S + 20.0
EMPTY_USER = ROOT / "tests" / "e2e" / "locustfiles" / "empty_user.py"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("hostile")
    for item in CORPUS.iterdir():
        shutil.copy(item, folder / item.name)
    os.mkfifo(folder / "fifo.yaml")
    (folder / "directory.yaml").mkdir()
    with (folder / "oversize.yaml").open("w") as fh:  # past the 4 MiB limit, valid YAML all along
        fh.write("description: |\n")
        line = "  " + "x" * 98 + "\n"
        fh.write(line * (5 * 1024 * 1024 // len(line)))
    (folder / "record_deep.json").write_text("[" * 200_000 + "]" * 200_000)
    wide = "\n".join(f"k{i}: [{', '.join(['*a'] * 50)}]" for i in range(5000))
    (folder / "wide_aliases.yaml").write_text(f"base: &a [1, 2, 3, 4, 5, 6, 7, 8]\n{wide}\n")
    return sorted(folder.iterdir())


def drive(command: list[str], files: list[Path]) -> dict[str, dict[str, Any]]:
    args = [sys.executable, "-m", "tests.support.hostile_cli", str(HANG_S), *command, "--", *map(str, files)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=HANG_S * len(files) + 60,
                          check=False, env={**os.environ, "HOSTILE_UNSET_VARIABLE": ""} | {"PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(files), done.stdout[-3000:]
    return {Path(row["file"]).name: row for row in rows}


def problems(rows: dict[str, dict[str, Any]], expected_codes: set[int]) -> dict[str, Any]:
    """Files that hung, raised, printed other than one ``error: FILE: ...`` line, or exited oddly."""
    bad: dict[str, Any] = {}
    for name, row in rows.items():
        lines = row["stderr"]
        if row["hung"] or row["escaped"] or row["code"] not in expected_codes or len(lines) != 1 \
                or not lines[0].startswith("error: ") or name not in lines[0] or "Traceback" in lines[0]:
            bad[name] = row
    return bad


def test_validate_gives_one_line_per_hostile_file(corpus: list[Path]) -> None:
    os.environ.pop("HOSTILE_UNSET_VARIABLE", None)
    rows = drive(["validate"], corpus)
    assert problems(rows, {1}) == {}
    assert "expands to more than" in rows["alias_bomb.yaml"]["stderr"][0]
    assert "a FIFO" in rows["fifo.yaml"]["stderr"][0]
    assert "duplicate key 'name'" in rows["duplicate_keys.yaml"]["stderr"][0]
    assert "sla.tiers.gold" in rows["nan_threshold.yaml"]["stderr"][0]
    assert "sla.abort.grace_s" in rows["nan_grace.yaml"]["stderr"][0]
    assert "user_scale" in rows["huge_user_scale.yaml"]["stderr"][0]
    assert "the file is empty" in rows["empty.yaml"]["stderr"][0]
    assert max(row["seconds"] for row in rows.values()) < HANG_S


def test_dry_run_gives_one_line_per_hostile_file(corpus: list[Path]) -> None:
    assert problems(drive(["run", "--dry-run", "--workers", "0"], corpus), {4}) == {}


def test_health_gives_one_line_per_hostile_file(corpus: list[Path]) -> None:
    assert problems(drive(["health"], corpus), {4}) == {}


def test_report_gives_one_line_per_hostile_file(corpus: list[Path]) -> None:
    rows = drive(["report", "--format", "md"], corpus)
    # a JSON object of the wrong shape is read leniently (every field "not measured"): it renders
    lenient = rows.pop("record_wrong_types.json")
    assert lenient["code"] == 0 and not lenient["escaped"] and not lenient["hung"], lenient
    assert problems(rows, {2}) == {}
    assert "NaN is not a JSON number" in rows["record_nan.json"]["stderr"][0]
    assert "duplicate key" in rows["record_duplicate_keys.json"]["stderr"][0]


def _locust(path: Path) -> tuple[str, int | None, float, str]:
    started = time.monotonic()
    cmd = [sys.executable, "-m", "locust", "-f", str(EMPTY_USER), "--headless", "-u", "1", "-t", "2s",
           "--scenario", str(path), "--run-record", str(path.parent / "records" / f"{path.name}.json")]
    try:
        done = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=LOCUST_BOUND_S,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        return path.name, None, time.monotonic() - started, str(exc.stderr or "")[-2000:]
    return path.name, done.returncode, time.monotonic() - started, done.stdout + done.stderr


def test_locust_scenario_gives_one_line_per_hostile_file(corpus: list[Path]) -> None:
    scenarios = [p for p in corpus if not p.name.startswith(("record_", "suite_"))]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(_locust, scenarios))
    bad = {}
    for name, code, _seconds, output in results:
        errors = [line for line in output.splitlines() if "ERROR" in line and name in line]
        if code != EXIT_USAGE or "Traceback" in output or len(errors) != 1:  # a bad scenario is a usage error
            bad[name] = (code, output[-1500:])
    assert bad == {}
