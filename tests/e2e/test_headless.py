"""`locust --headless` with the plugin against a server whose pattern the test knows.

Each run is a real Locust subprocess (local, or a master with worker subprocesses) on loopback,
bounded by ``-t``; the pattern server records what it did, and the locustfile dumps every sample,
so the record's numbers are checked against ground truth rather than against themselves.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from reliability.record import USAGE_SAMPLE_S
from tests.support.processes import ROOT, Served, locust_cmd, run, serve
from tests.support.schemas import assert_valid_record
from tests.support.servers import free_port
from tests.support.waits import seconds_until

LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/pattern_user.py")
EMPTY = str(ROOT / "tests/e2e/locustfiles/empty_user.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def pattern(request: pytest.FixtureRequest) -> Iterator[Served]:
    args = getattr(request, "param", ())
    with serve(["tests/support/pattern_server.py", *args]) as served:
        yield served


def _server_stats(served: Served) -> dict[str, Any]:
    with urllib.request.urlopen(f"{served.url}/stats", timeout=10) as response:
        data: dict[str, Any] = json.load(response)
    return data


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _samples(directory: Path) -> tuple[list[float], int]:
    values: list[float] = []
    failures = 0
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        values.extend(data["samples"])
        failures += data["failures"]
    return values, failures


def _locust(tmp_path: Path, host: str, *extra: str, users: int = 10, run_time: str = "6s",
            locustfile: str = LOCUSTFILE) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    record = tmp_path / "run.json"
    (tmp_path / "samples").mkdir(exist_ok=True)
    proc = run(
        locust_cmd("-f", locustfile, "--headless", "-u", str(users), "-r", str(users), "-t", run_time,
                   "--host", host, "--run-record", str(record), "--sla-status-interval", "2", *extra),
        timeout_s=120, env={"SAMPLES_DIR": str(tmp_path / "samples")},
    )
    data = assert_valid_record(record) if record.exists() else {}
    return proc, data


@pytest.mark.parametrize("pattern", [("--delay-ms", "20", "--spread", "lognormal")], indirect=True)
def test_met_tier_exits_0_and_record_matches_ground_truth(pattern: Served, tmp_path: Path) -> None:
    # bronze: its 2 % error limit is shown by ~190 clean requests, within reach of a loaded machine
    proc, record = _locust(tmp_path, pattern.url, "--sla-tier", "bronze")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "SLA live" in proc.stdout and "SLA bronze (p95): MET" in proc.stdout
    samples, failures = _samples(tmp_path / "samples")
    server = _server_stats(pattern)
    totals = record["totals"]
    assert totals["requests"] == len(samples)
    assert totals["failures"] == failures == 0
    # at most one request per user was in flight when the run stopped
    assert len(samples) <= server["requests"] <= len(samples) + 10
    # percentiles: within 0.5 % of the exact value over every sample the users measured
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        exact = _exact(samples, q)
        assert abs(totals[key] - exact) / exact <= 0.005, (key, totals[key], exact)
    # and they reflect what the server did: its own delays plus a little loopback overhead
    server_p95 = _exact(server["delays"], 0.95)
    assert server_p95 <= totals["p95_ms"] <= server_p95 * 1.15 + 5
    assert record["uptime"]["ratio"] == 1.0
    assert record["sla"]["passed"] is True
    # p95 ~45 ms and no errors, but Platinum's 0.1 % needs ~3,840 clean requests to be shown at 95 %
    assert record["sla"]["highest_tier_met"] in ("bronze", "silver", "gold"), record["sla"]
    error_ratio = {c["name"]: c for c in record["sla"]["criteria"]}["error_ratio"]
    assert error_ratio["ci_low"] == 0 and error_ratio["ci_high"] == pytest.approx(
        3.8415 / (totals["requests"] + 3.8415), rel=1e-3)  # Wilson's upper bound at 0 failures
    assert record["run"]["mode"] == "local" and record["generators"][0]["role"] == "local"
    # CPU samples cover the run: the first a whole interval after the start, not Locust's start-up
    started = datetime.fromisoformat(record["run"]["started_at"].replace("Z", "+00:00")).timestamp()
    assert record["generators"][0]["samples"][0][0] >= started + USAGE_SAMPLE_S - 0.1
    assert sum(row["requests"] for row in record["timeline"]) == totals["requests"]
    # the reports are rendered next to the record at the end of every run
    assert "<svg" in (tmp_path / "run.html").read_text()
    assert "bronze" in (tmp_path / "run.md").read_text().lower()
    suite = ElementTree.parse(tmp_path / "run.junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) >= len(record["sla"]["criteria"]) and not suite.findall(".//failure")


@pytest.mark.parametrize("pattern", [("--delay-ms", "5", "--fail-every", "40")], indirect=True)
def test_breached_tier_exits_3_not_locusts_1(pattern: Served, tmp_path: Path) -> None:
    proc, record = _locust(tmp_path, pattern.url, "--sla-tier", "gold")
    assert proc.returncode == 3, proc.stdout[-3000:]
    samples, failures = _samples(tmp_path / "samples")
    assert record["totals"]["failures"] == failures > 0
    assert record["totals"]["error_ratio"] == pytest.approx(failures / len(samples), abs=1e-6)
    assert record["totals"]["error_ratio"] == pytest.approx(1 / 40, rel=0.1)
    failed = [c["name"] for c in record["sla"]["criteria"] if not c["passed"]]
    assert failed == ["error_ratio"]  # every second has 2.5 % errors, under the 5 % that makes it down
    # the seconds the run started and stopped in: the one it covered less than half of is not graded
    # (the stop's sliver may hold one failure in ten requests), so a 6 s run grades about 6 seconds
    uptime = record["uptime"]
    graded = [row for row in record["timeline"] if row["state"] not in (None, "edge")]
    assert len(graded) == uptime["windows"] and 5 <= uptime["windows"] <= 7, uptime
    assert uptime["edge_windows"] == sum(row["state"] == "edge" for row in record["timeline"]) <= 2
    assert record["sla"]["highest_tier_met"] is None  # 2.5 % errors is beyond even bronze's 2 %


@pytest.mark.parametrize("pattern", [("--delay-ms", "5", "--fail-every", "200")], indirect=True)
def test_failed_requests_do_not_turn_a_pass_into_exit_1(pattern: Served, tmp_path: Path) -> None:
    # 0.5 % errors: clearly under bronze's 2 % once a few hundred requests are in
    proc, record = _locust(tmp_path, pattern.url, "--sla-tier", "bronze", run_time="10s")
    assert record["totals"]["failures"] > 0
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_no_requests_exits_4(tmp_path: Path) -> None:
    proc, record = _locust(tmp_path, "http://127.0.0.1:9", locustfile=EMPTY, users=2, run_time="3s")
    assert proc.returncode == 4, proc.stdout[-3000:]
    assert record["sla"]["inconclusive"] == ["no requests were made"]
    assert record["generators"][0]["samples"]  # a run shorter than one CPU sampling interval has one
    assert record["sla"]["passed"] is False


@pytest.mark.parametrize("pattern", [("--delay-ms", "5", "--down-after", "3", "--down-for", "3")], indirect=True)
def test_uptime_matches_the_servers_outage(pattern: Served, tmp_path: Path) -> None:
    proc, record = _locust(tmp_path, pattern.url, "--sla-tier", "bronze", run_time="10s")
    assert proc.returncode == 3, proc.stdout[-3000:]
    # ground truth: the server's own per-second view (requests by the second they started in)
    log = _server_stats(pattern)["log"]
    per_second: Counter[int] = Counter()
    bad: Counter[int] = Counter()
    for started, _delay, status in log:
        per_second[int(started)] += 1
        bad[int(started)] += status != 200
    down = sum(1 for t, n in per_second.items() if bad[t] / n >= 0.05 or bad[t] == n)
    uptime = record["uptime"]
    # windows are keyed by completion time on the client: allow one boundary window either way
    assert abs(uptime["windows"] - len(per_second)) <= 1
    assert abs((uptime["windows"] - uptime["up_windows"]) - down) <= 1
    assert 2 <= uptime["windows"] - uptime["up_windows"] <= 4
    assert uptime["request_availability"] == pytest.approx(
        1 - record["totals"]["failures"] / record["totals"]["requests"])
    assert any(c["name"] == "uptime" and not c["passed"] for c in record["sla"]["criteria"])


@pytest.mark.parametrize("pattern", [("--delay-ms", "5")], indirect=True)
def test_sla_abort_stops_a_sustained_breach(pattern: Served, tmp_path: Path) -> None:
    # every request is slower than Platinum's 100 ms: the rolling verdict fails from the start
    urllib.request.urlopen(urllib.request.Request(f"{pattern.url}/pattern", data=b'{"delay_ms": 150}',
                                                  method="POST"), timeout=5).read()
    started = time.monotonic()
    proc, record = _locust(tmp_path, pattern.url, "--sla-tier", "platinum", "--sla-abort",
                           "--sla-abort-grace", "3", run_time="60s")
    assert proc.returncode == 3, proc.stdout[-3000:]
    assert time.monotonic() - started < 30
    assert "aborting: SLA platinum breached" in proc.stdout
    assert record["run"]["aborted"].startswith("SLA platinum breached")


def test_bad_scenario_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sla:\n  tier: diamond\n")
    proc, _record = _locust(tmp_path, "http://127.0.0.1:9", "--scenario", str(bad), run_time="3s")
    assert proc.returncode == 2
    assert f"{bad}: sla.tier: unknown tier 'diamond'" in proc.stdout
    assert "Traceback" not in proc.stdout


# -- distributed ----------------------------------------------------------------------------------


def _swarm(tmp_path: Path, host: str, workers: int, run_time: str, *extra: str,
           kill_one_after_s: float | None = None) -> tuple[int, str, dict[str, Any], list[str]]:
    port = free_port()
    record = tmp_path / "run.json"
    samples = tmp_path / "samples"
    samples.mkdir(exist_ok=True)
    env = {**os.environ, "SAMPLES_DIR": str(samples), "PYTHONUNBUFFERED": "1"}
    master = subprocess.Popen(
        locust_cmd("-f", LOCUSTFILE, "--headless", "--master", "--expect-workers", str(workers),
                   "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "-u", "12", "-r", "12",
                   "-t", run_time, "--host", host, "--run-record", str(record), *extra),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    procs = [
        subprocess.Popen(locust_cmd("-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1", "--master-port",
                                    str(port)), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    killed: list[str] = []
    try:
        if kill_one_after_s is not None:
            time.sleep(kill_one_after_s)
            victim = procs[0]
            id_file = samples / f"{victim.pid}.id"
            seconds_until(id_file.exists, 10, 0.2)
            killed.append(id_file.read_text())
            victim.send_signal(signal.SIGKILL)
        out, _ = master.communicate(timeout=120)
    finally:
        for p in (master, *procs):
            if p.poll() is None:
                p.kill()
            p.wait(10)
    data = assert_valid_record(record) if record.exists() else {}
    return master.returncode, out, data, killed


@pytest.mark.parametrize("pattern", [("--delay-ms", "20", "--spread", "lognormal")], indirect=True)
def test_master_with_two_workers_merges_exactly(pattern: Served, tmp_path: Path) -> None:
    code, out, record, _ = _swarm(tmp_path, pattern.url, 2, "8s", "--sla-tier", "gold")
    assert code == 0, out[-3000:]
    samples, failures = _samples(tmp_path / "samples")
    assert len(list((tmp_path / "samples").glob("*.json"))) == 2  # both workers reported their samples
    totals = record["totals"]
    assert totals["requests"] == len(samples)  # every worker's every request, incl. the final reports
    assert totals["failures"] == failures
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        exact = _exact(samples, q)
        assert abs(totals[key] - exact) / exact <= 0.005, (key, totals[key], exact)
    assert record["run"]["mode"] == "master" and record["run"]["workers"] == 2
    assert {g["role"] for g in record["generators"]} == {"worker", "master"}
    assert record["workers"]["lost"] == []


@pytest.mark.parametrize("pattern", [("--delay-ms", "10")], indirect=True)
def test_killed_worker_makes_the_run_inconclusive_and_is_named(pattern: Served, tmp_path: Path) -> None:
    code, out, record, killed = _swarm(tmp_path, pattern.url, 2, "14s", "--sla-tier", "bronze",
                                       kill_one_after_s=5)
    assert code == 4, out[-3000:]
    lost = [w["id"] for w in record["workers"]["lost"]]
    assert lost == killed
    assert any(killed[0] in reason for reason in record["sla"]["inconclusive"])
    assert record["uptime"]["partial_windows"] >= 1
    assert any(row["partial"] for row in record["timeline"])
