"""A real run whose request names and error messages carry terminal escapes, bidi overrides and
10 kB of text: the terminal, the Locust log and every report show them neutralized and shortened;
the record keeps the full, raw names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.slow

LOCUSTFILE = '''
import time
from locust import User, constant, task
import reliability.plugin  # noqa: F401

LONG = "/api/" + "a" * 10_000
EVIL = "/x\\x1b[2J\\x1b[31m\\u202egnp.exe\\r"


class Reporter(User):
    wait_time = constant(0.05)

    @task
    def report(self):
        fire = self.environment.events.request.fire
        fire(request_type="GET", name=LONG, response_time=5.0, response_length=0, exception=None, context={})
        fire(request_type="GET", name=EVIL, response_time=7.0, response_length=0,
             exception=RuntimeError("boom\\x1b[5m\\u202e" + "e" * 5000), context={})
'''
LONG = "/api/" + "a" * 10_000
EVIL = "/x\x1b[2J\x1b[31m\u202egnp.exe\r"
UNSAFE = ("\x1b", "\u202e", "\r")


def test_hostile_names_are_shown_safely_and_kept_whole_in_the_record(tmp_path: Path) -> None:
    (tmp_path / "reporter.py").write_text(LOCUSTFILE)
    (tmp_path / "s.yaml").write_text(f"name: hygiene\nload: {{locustfile: '{tmp_path / 'reporter.py'}', users: 2, "
                                     "spawn_rate: 2, run_time_s: 4s}\nsla: {tier: bronze, status_interval_s: 1}\n")
    record = tmp_path / "out" / "run.json"
    done = subprocess.run([sys.executable, "-m", "reliability.cli", "run", str(tmp_path / "s.yaml"), "--workers", "0",
                           "--run-record", str(record), "--locust-stats"], cwd=ROOT, capture_output=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    terminal = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert record.is_file(), terminal[-3000:]
    raw = json.loads(record.read_text())
    names = {e["name"] for e in raw["endpoints"]}
    assert LONG in names and EVIL in names  # the record keeps them whole and raw
    outputs = {"terminal": terminal}
    for suffix in (".html", ".junit.xml", ".md"):
        outputs[suffix] = record.with_suffix(suffix).read_text()
    for where, text in outputs.items():
        assert not [ch for ch in UNSAFE if ch in text.replace("\r\n", "\n")], where
        assert "a" * 1000 not in text and "e" * 1000 not in text, where
    assert "\\x1b[2J" in outputs[".html"] and "\\u202e" in outputs[".md"]
    assert max(len(line) for line in terminal.splitlines()) <= 700
