"""Exit codes that hold and verdicts on evidence, in real `locust --headless` subprocesses.

Other quitting listeners run after the plugin's (Locust fires them in reverse order of
registration): Locust's documented exit-code recipe and locust-plugins' checks (installed with the
test extra, imported by Locust automatically) must neither lower the SLA verdict's code nor have
their own failure hidden. Every run is bounded by ``-t`` or ``-i`` on loopback.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, Served, locust_cmd, run, serve
from tests.support.schemas import validate_junit

LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/verdict_user.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def pattern(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serve(["tests/support/pattern_server.py", *getattr(request, "param", ())]) as served:
        yield served


def _locust(tmp_path: Path, host: str, *extra: str, env: dict[str, str] | None = None, run_time: str = "6s",
            users: int = 10, tier: str = "gold") -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    record = tmp_path / "run.json"
    proc = run(locust_cmd("-f", LOCUSTFILE, "--headless", "-u", str(users), "-r", str(max(users, 1)), "-t", run_time,
                          "--host", host, "--run-record", str(record), "--sla-tier", tier, *extra),
               timeout_s=120, env=env)
    return proc, (json.loads(record.read_text()) if record.exists() else {})


def _needs_locust_plugins() -> None:
    # found, never imported here: importing it imports Locust, whose gevent monkey-patching after ssl
    # was loaded by earlier tests recurses in SSLContext; the locust subprocesses import it themselves
    if importlib.util.find_spec("locust_plugins") is None:
        pytest.skip("locust-plugins is not installed (pip install -e '.[test]')")


def _criteria(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in record["sla"]["criteria"]}


@pytest.mark.parametrize("pattern", [("--delay-ms", "5", "--fail-every", "40")], indirect=True)
def test_docs_recipe_setting_0_cannot_turn_not_met_into_success(pattern: Served, tmp_path: Path) -> None:
    # 2.5 % errors: the recipe's 5 % limit says fine (0), gold's 0.5 % says NOT MET
    proc, record = _locust(tmp_path, pattern.url, env={"EXIT_RECIPE": "1", "RECIPE_FAIL_RATIO": "0.05"})
    assert proc.returncode == 3, proc.stdout[-3000:]
    assert record["sla"]["exit_code"] == 3
    assert record["exit"]["code"] == 3 and record["exit"]["verdict"] == 3
    assert record["exit"]["others"] == [{"by": "verdict_user._", "code": 0}]


@pytest.mark.parametrize("pattern", [("--delay-ms", "5", "--fail-every", "500")], indirect=True)
def test_docs_recipe_failing_a_met_run_is_not_hidden(pattern: Served, tmp_path: Path) -> None:
    # 0.2 % errors: bronze (2 %) is met on evidence, the recipe's stricter 0.1 % limit fails the run
    proc, record = _locust(tmp_path, pattern.url, env={"EXIT_RECIPE": "1", "RECIPE_FAIL_RATIO": "0.001"},
                           tier="bronze", run_time="10s")
    assert record["totals"]["failures"] > 0, record["totals"]
    assert record["sla"]["exit_code"] == 0, record["sla"]
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert record["exit"] == {"code": 1, "verdict": 0, "others": [{"by": "verdict_user._", "code": 1}]}
    assert "exit code 1: SLA verdict 0; verdict_user._ set 1" in proc.stdout


@pytest.mark.parametrize("pattern", [("--delay-ms", "5")], indirect=True)
def test_locust_plugins_check_on_a_met_run_exits_1_not_3(pattern: Served, tmp_path: Path) -> None:
    _needs_locust_plugins()
    proc, record = _locust(tmp_path, pattern.url, "--check-rps", "1000000", tier="bronze", run_time="8s")
    assert "CHECK FAILED: total rps" in proc.stdout
    assert record["sla"]["exit_code"] == 0, record["sla"]
    # 3 would read as "SLA not met": another plugin's failure keeps Locust's generic failure code
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert record["exit"]["others"] == [{"by": "locust_plugins.do_checks", "code": 3}]
    assert "locust_plugins.do_checks set 3" in proc.stdout


def test_locust_plugins_check_cannot_turn_inconclusive_into_not_met(tmp_path: Path) -> None:
    _needs_locust_plugins()
    # no users, so no requests: the issue saw locust-plugins turn this inconclusive 4 into its 3
    proc, record = _locust(tmp_path, "http://127.0.0.1:9", "--check-rps", "10", users=0, run_time="3s")
    assert proc.returncode == 4, proc.stdout[-3000:]
    assert record["sla"]["exit_code"] == 4 and "no requests were made" in record["sla"]["inconclusive"]
    assert record["exit"]["others"] == [{"by": "locust_plugins.do_checks", "code": 3}]


@pytest.mark.parametrize("pattern", [("--delay-ms", "5")], indirect=True)
def test_five_requests_are_never_met(pattern: Served, tmp_path: Path) -> None:
    _needs_locust_plugins()  # its -i/--iterations: the short run the issue saw as Gold MET
    proc, record = _locust(tmp_path, pattern.url, "-i", "5", users=1)
    assert record["totals"]["requests"] == 5, proc.stdout[-3000:]
    assert proc.returncode == 4, proc.stdout[-3000:]
    sla = record["sla"]
    assert sla["passed"] is False and sla["highest_tier_met"] is None
    p95 = _criteria(record)["p95_ms"]
    assert p95["outcome"] == "inconclusive" and p95["ci_high"] is None  # 5 samples cannot bound a p95
    assert any(r.startswith("not enough evidence: p95_ms 95 % CI") for r in sla["inconclusive"])
    assert "only 5 requests, fewer than sla.min_requests (100)" in sla["inconclusive"]
    assert "INCONCLUSIVE" in proc.stdout


@pytest.mark.parametrize("pattern", [("--delay-ms", "5")], indirect=True)
def test_a_long_clean_run_passes_on_its_intervals(pattern: Served, tmp_path: Path) -> None:
    # bronze: its 2 % is shown by ~190 clean requests, within reach of a loaded machine in 10 s
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier step\n")
    proc, record = _locust(tmp_path, pattern.url, "--summary-file", str(tmp_path / "summary.md"), run_time="10s",
                           tier="bronze", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stdout[-3000:]
    # the Markdown summary is appended to GitHub's job summary and to --summary-file
    assert summary.read_text().startswith("# earlier step\n") and "SLA bronze (p95): MET" in summary.read_text()
    assert "SLA bronze (p95): MET" in (tmp_path / "summary.md").read_text()
    junit = (tmp_path / "run.junit.xml").read_text()
    validate_junit(junit, required=False)  # Jenkins' junit-10.xsd where it is at hand; real durations
    assert f'time="{record["run"]["duration_s"]:.3f}"' in junit
    crit = _criteria(record)
    n = record["totals"]["requests"]
    assert n >= 190
    err = crit["error_ratio"]
    assert err["outcome"] == "pass" and err["ci_low"] == 0 and 0 < err["ci_high"] < 0.02
    assert err["ci_high"] == pytest.approx(3.8415 / (n + 3.8415), rel=1e-3)  # Wilson at 0 failures
    assert err["samples"] == n and err["confidence"] == 0.95
    p95 = crit["p95_ms"]
    assert p95["outcome"] == "pass" and p95["ci_low"] <= p95["actual"] <= p95["ci_high"] < 1000
    assert record["exit"] == {"code": 0, "verdict": 0, "others": []}
    report = (tmp_path / "run.md").read_text()
    assert "95 % CI" in report


@pytest.mark.parametrize("pattern", [("--delay-ms", "5", "--fail-every", "3")], indirect=True)
def test_a_clear_failure_stays_not_met_when_user_code_raised(pattern: Served, tmp_path: Path) -> None:
    proc, record = _locust(tmp_path, pattern.url, env={"RAISE_ONCE": "1"})
    assert proc.returncode == 3, proc.stdout[-3000:]
    sla = record["sla"]
    assert any("user code raised" in r for r in sla["inconclusive"])
    err = _criteria(record)["error_ratio"]
    assert err["outcome"] == "fail" and err["ci_low"] > 0.005


@pytest.mark.parametrize("pattern", [("--delay-ms", "5")], indirect=True)
def test_confidence_and_min_requests_from_the_command_line(pattern: Served, tmp_path: Path) -> None:
    proc, record = _locust(tmp_path, pattern.url, "--sla-confidence", "0.99", "--sla-min-requests", "100000000")
    assert proc.returncode == 4, proc.stdout[-3000:]
    assert _criteria(record)["error_ratio"]["confidence"] == 0.99
    assert any("fewer than sla.min_requests (100000000)" in r for r in record["sla"]["inconclusive"])
