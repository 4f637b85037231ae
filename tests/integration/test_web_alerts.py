"""Alerting in a headless run: windows scaled to ``-t``, a page from the first errors, and a
``run_end`` alert when the run stops with the incident open; a dead receiver never holds it up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Served, locust_cmd, run, serve
from tests.support.schemas import assert_valid_record
from tests.support.weblocust import WEB_LOCUSTFILE, Hooks, hook_events

pytestmark = pytest.mark.slow


@pytest.fixture
def failing() -> Iterator[Served]:
    with serve(["tests/support/pattern_server.py", "--delay-ms", "5", "--fail-every", "2"]) as served:
        yield served


def test_headless_run_pages_and_ends_with_run_end(failing: Served, hooks: str, tmp_path: Path) -> None:
    scenario = tmp_path / "alerts.yaml"
    scenario.write_text(f"""\
name: headless alerts
alerts:
  min_window_s: 1s
  webhooks:
    - "{hooks}/json"
    - {{url: "http://127.0.0.1:1/dead", timeout_s: 1s}}
""")
    record = tmp_path / "run.json"
    started = time.monotonic()
    proc = run(locust_cmd("-f", WEB_LOCUSTFILE, "--headless", "-u", "5", "-r", "5", "-t", "6s", "--host", failing.url,
                          "--scenario", str(scenario), "--run-record", str(record)), timeout_s=90)
    assert time.monotonic() - started < 40, "a dead webhook held the run up"
    assert proc.returncode == 3, proc.stdout[-3000:]
    assert hook_events("/json") == [("breach", "page"), ("run_end", "page")]
    alerts = assert_valid_record(record)["alerts"]
    assert (alerts["run_length_s"], alerts["run_length_from"]) == (6.0, "run time")
    assert [(r["long_s"], r["short_s"]) for r in alerts["rules"]] == [(1, 1), (4, 1), (44, 4)]
    assert alerts["open_at_end"] is True and alerts["peak_severity"] == "page"
    deliveries = alerts["events"][0]["deliveries"]
    assert {d["webhook"] for d in deliveries} == {f"{hooks}/***", "http://127.0.0.1:1/***"}
    assert any(d["error"] and "refused" in d["error"] for d in deliveries)
    assert "alert breach (page)" in proc.stdout and Hooks.received
