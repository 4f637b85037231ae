"""`reliability run` end to end: a master and worker subprocesses on loopback against the reference
target backed by real PostgreSQL and Redis.

The locustfile (written per test) dumps every sample each load generator took, with its time, so
the merged verdict can be checked against a local evaluation of exactly the same requests. Every
test also checks that no process the command started is left running.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reliability.config import load_scenario
from reliability.metrics.windows import WindowStore
from reliability.sla import evaluate
from tests.support.locust_runs import Run, scenario, start
from tests.support.schemas import assert_valid_record
from tests.support.servers import RedisServer, TargetServer, free_port, redis_answers
from tests.support.waits import seconds_until

pytestmark = pytest.mark.slow


def samples(directory: Path) -> dict[str, list[list[Any]]]:
    """Worker (or 'local') id -> its samples ``[epoch_s, type, name, ms, failed]``."""
    out = {}
    for path in directory.glob("*.json"):
        out[(directory / f"{path.stem}.id").read_text()] = json.loads(path.read_text())
    return out


def test_two_workers_grade_like_a_local_evaluation_of_the_same_requests(backed_target: TargetServer,
                                                                         runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "users: 6, spawn_rate: 6, run_time_s: 8s")
    run, record_path = start(runs, tmp_path, path, "--workers", "2", "--host", backed_target.url)
    code = run.finish()
    assert code == 0, run.output[-3000:]
    assert run.leftovers() == []
    record = assert_valid_record(record_path)
    by_worker = samples(run.samples)
    assert len(by_worker) == 2 and set(by_worker) == set(record["workers"]["seen"])
    # the same requests, graded by one WindowStore in this process: what a local run would report
    spec = load_scenario(path)
    clock = [0.0]
    store = WindowStore(clock=lambda: clock[0], timeline_quantiles=(0.5, 0.95, 0.99))
    for at, request_type, name, ms, failed in sorted(s for rows in by_worker.values() for s in rows):
        clock[0] = at
        store.record(request_type, name, ms, failed, "failed" if failed else None)
    local = evaluate(store.snapshot(), spec.sla)
    merged = record["sla"]
    assert record["totals"]["requests"] == local.requests == sum(len(rows) for rows in by_worker.values())
    assert merged["passed"] is local.passed is True and merged["highest_tier_met"] == local.highest_tier_met
    expected = {(c.name, c.scope): c.actual for c in local.criteria}
    for c in merged["criteria"]:
        want = expected[(c["name"], c["scope"])]
        assert c["actual"] == pytest.approx(want, rel=0.005, abs=1e-9), c  # within histogram precision
    assert record["run"]["mode"] == "master" and record["run"]["workers"] == 2
    assert "[run] SLA bronze (p95): MET" in run.output and "SLA live" in run.output  # streamed status
    assert (tmp_path / "run.html").exists() and (tmp_path / "run.junit.xml").exists()


def test_a_killed_worker_makes_exit_4_and_is_named(backed_target: TargetServer,
                                                   runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "users: 6, spawn_rate: 6, run_time_s: 15s")
    run, record_path = start(runs, tmp_path, path, "--workers", "2", "--host", backed_target.url)
    victim = run.workers(2)[0]
    run.wait_for("SLA live")
    killed = (run.samples / f"{victim.pid}.id").read_text()
    victim.kill()
    code = run.finish()
    assert code == 4, run.output[-3000:]
    assert run.leftovers() == []
    record = assert_valid_record(record_path)
    assert [w["id"] for w in record["workers"]["lost"]] == [killed]
    [reason] = [r for r in record["sla"]["inconclusive"] if killed in r]
    first, last = record["workers"]["lost"][0]["partial_s"]
    assert f"seconds +{first}..+{last} have partial data" in reason
    partial = [row["t"] for row in record["timeline"] if row["partial"]]
    assert partial == list(range(first, last + 1))
    assert f"[run] worker lost: {killed}" in run.output and "[run] exit 4 (INCONCLUSIVE)" in run.output


def test_sigterm_stops_the_master_first_and_it_reverts_the_fault(backed_target: TargetServer,
                                                                 redis_server: RedisServer, runs: list[Run],
                                                                 tmp_path: Path) -> None:
    dead_man_s = 20
    path = scenario(tmp_path, body=f"""sla: {{tier: bronze}}
recovery: {{warmup_s: 0.5s}}
shape: {{type: steady, users: 4, ramp_s: 1s, tail_s: 2s}}
faults:
  - name: cache paused
    at_s: 2s
    hold_s: 60s
    fault: {{type: redis.pause, url: "{redis_server.url}", dead_man_s: {dead_man_s}s}}
""")
    run, record_path = start(runs, tmp_path, path, "--workers", "1", "--host", backed_target.url)
    run.workers(1)
    run.wait_for("fault cache paused: injected")
    time.sleep(0.3)
    assert not redis_answers(redis_server.port), "the fault should be active before the signal"
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    code = run.finish(timeout_s=40)
    assert redis_answers(redis_server.port), "the run ended with the fault still active"
    assert time.monotonic() - sent < dead_man_s  # reverted by the master, not by the dead-man switch
    assert code == 4, run.output[-3000:]  # the fault was cut short: inconclusive
    assert run.leftovers() == []
    record = assert_valid_record(record_path)
    [fault] = record["faults"]
    assert fault["state"] == "reverted" and fault["reverted_because"].endswith("received")
    assert fault["verified_healthy"] is True
    assert record["run"]["mode"] == "master"
    assert "SIGTERM: stopping the master" in run.output
    assert "Traceback" not in run.output


def test_a_worker_joining_late_is_counted_from_its_join(backed_target: TargetServer,
                                                        runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "users: 6, spawn_rate: 6, run_time_s: 14s")
    port = free_port()
    first, record_path = start(runs, tmp_path, path, "--workers", "1", "--host", backed_target.url,
                               "--master-bind-port", str(port))
    first.wait_for("SLA live")
    late = Run(tmp_path, str(path), "--worker", "--workers", "1", "--master-port", str(port))
    runs.append(late)
    [late_worker] = late.workers(1)
    assert first.finish() == 0, first.output[-3000:]
    assert late.finish() == 0, late.output[-3000:]
    assert first.leftovers() == [] and late.leftovers() == []
    record = assert_valid_record(record_path)
    late_id = (late.samples / f"{late_worker.pid}.id").read_text()
    [joined] = record["workers"]["joined"]
    assert joined["id"] == late_id and set(record["workers"]["seen"]) == set(samples(first.samples))
    joined_at = datetime.fromisoformat(joined["at"].replace("Z", "+00:00")).timestamp()
    by_worker = samples(first.samples)
    late_samples = by_worker[late_id]
    assert late_samples, "the late worker got users (rebalancing)"
    assert min(s[0] for s in late_samples) >= joined_at - 1  # nothing of it before its join
    assert record["totals"]["requests"] == sum(len(rows) for rows in by_worker.values())  # all of it after
    assert record["workers"]["lost"] == [] and record["sla"]["inconclusive"] == []
    assert f"worker joined mid-run: {late_id}" in first.output


def test_ctrl_c_on_a_local_runner_still_grades_and_writes_the_record(backed_target: TargetServer,
                                                                   runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "users: 4, spawn_rate: 4, run_time_s: 60s")
    run, record_path = start(runs, tmp_path, path, "--workers", "0", "--host", backed_target.url)
    run.wait_for("SLA live")
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    assert run.finish(timeout_s=30) == 0, run.output[-3000:]
    assert time.monotonic() - sent < 20
    assert run.leftovers() == []
    record = assert_valid_record(record_path)
    [local] = samples(run.samples).values()
    assert record["run"]["mode"] == "local" and record["totals"]["requests"] == len(local)
    assert "SIGINT: stopping the local" in run.output


def test_its_processes_die_with_it_even_when_it_is_killed(backed_target: TargetServer,
                                                          runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "users: 2, spawn_rate: 2, run_time_s: 60s")
    run, _ = start(runs, tmp_path, path, "--workers", "1", "--host", backed_target.url)
    run.workers(1)
    run.wait_for("SLA live")
    assert len(run.children()) == 2
    run.proc.kill()  # no chance to clean up: the children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
    seconds_until(lambda: not run.leftovers(), 20, 0.2)
    assert run.leftovers() == []


def test_workers_that_never_connect_make_exit_4(runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "run_time_s: 5s", body="")
    run, _ = start(runs, tmp_path, path, "--master", "--workers", "2", "--host", "http://127.0.0.1:9",
                   "--master-bind-host", "127.0.0.1", "--master-bind-port", str(free_port()),
                   "--expect-workers-timeout", "2")
    assert run.finish(timeout_s=40) == 4, run.output[-3000:]
    assert "not every one of the 2 worker(s) connected within 2 s: inconclusive" in run.output
    assert run.leftovers() == []
