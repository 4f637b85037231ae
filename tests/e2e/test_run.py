"""`reliability run` end to end: a master and worker subprocesses on loopback against the reference
target backed by real PostgreSQL and Redis.

The locustfile (written per test) dumps every sample each load generator took, with its time, so
the merged verdict can be checked against a local evaluation of exactly the same requests. Every
test also checks that no process the command started is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from reliability.config import load_scenario
from reliability.metrics.windows import WindowStore
from reliability.sla import evaluate
from tests.e2e.test_degradation import backed_target, redis_answers  # noqa: F401  (fixture)
from tests.support.processes import ROOT
from tests.support.schemas import assert_valid_record
from tests.support.servers import RedisServer, TargetServer, free_port

pytestmark = pytest.mark.slow

LOCUSTFILE = '''
import json, os, random, time
from locust import constant, events, task
from locust.runners import MasterRunner
import reliability.plugin  # noqa: F401
from reliability.users.http import ApiUser

OUT = os.environ["SAMPLES_DIR"]
samples = []


class Reader(ApiUser):
    wait_time = constant(0.1)

    @task(3)
    def get(self):
        self.call("GET", f"/api/items/{random.randint(1, 50)}", name="/api/items/[id]")

    @task(1)
    def list(self):
        self.call("GET", "/api/items?limit=20", name="/api/items")


@events.request.add_listener
def _keep(request_type, name, response_time, exception=None, **_kw):
    samples.append([time.time(), request_type, name, response_time, exception is not None])


@events.init.add_listener
def _who(environment, runner=None, **_kw):
    # at init, not test_start: a worker joining mid-run can get its spawn (and test_start) while it
    # is still connecting, before environment.runner is set
    if not isinstance(runner, MasterRunner):
        with open(os.path.join(OUT, f"{os.getpid()}.id"), "w") as fh:
            fh.write(getattr(runner, "client_id", "local"))


@events.quitting.add_listener
def _dump(environment, **_kw):
    if not isinstance(environment.runner, MasterRunner):
        with open(os.path.join(OUT, f"{os.getpid()}.json"), "w") as fh:
            json.dump(samples, fh)
'''


class Run:
    """A `reliability run` subprocess, its output lines and every process it started."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.samples = tmp_path / "samples"
        self.samples.mkdir(exist_ok=True)
        env = {**os.environ, "SAMPLES_DIR": str(self.samples), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "reliability.cli", "run", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.seen: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def children(self) -> list[psutil.Process]:
        """Every process below this run now (remembered for :meth:`leftovers`)."""
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(p.pid for p in found)
        return found

    def workers(self, count: int, timeout_s: float = 30.0) -> list[psutil.Process]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [p for p in self.children() if "--worker" in p.cmdline()]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{count} worker(s) not started; output:\n{self.output[-3000:]}")

    def wait_for(self, needle: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.children()
            if needle in self.output:
                return
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not seen; output:\n{self.output[-3000:]}")

    def finish(self, timeout_s: float = 90.0) -> int:
        while self.proc.poll() is None and timeout_s > 0:
            self.children()
            time.sleep(0.2)
            timeout_s -= 0.2
        code = self.proc.wait(5)
        self._reader.join(10)
        return code

    def leftovers(self) -> list[int]:
        """Processes this run started that still exist (zombies count as gone)."""
        alive = []
        for pid in self.seen:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def kill_all(self) -> None:
        for pid in [*self.leftovers(), self.proc.pid]:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill_all()


def start(runs: list[Run], tmp_path: Path, path: Path, *args: str) -> tuple[Run, Path]:
    """`reliability run SCENARIO ARGS --run-record <tmp>/run.json`, stopped at the end of the test."""
    record = tmp_path / "run.json"
    run = Run(tmp_path, str(path), *args, "--run-record", str(record))
    runs.append(run)
    return run, record


# The subject of these runs is the orchestration, not the evidence rule: 80 % intervals let the
# ~100-200 clean requests a loaded machine makes in a few seconds show bronze.
def scenario(tmp_path: Path, load: str = "", body: str = "sla: {tier: bronze, confidence: 0.8}\n") -> Path:
    """A scenario file using the sample-dumping locustfile; ``load`` adds to its ``load:`` mapping."""
    locustfile = tmp_path / "reader.py"
    locustfile.write_text(LOCUSTFILE)
    path = tmp_path / "scenario.yaml"
    path.write_text(f"load: {{locustfile: {locustfile}{', ' + load if load else ''}}}\n{body}")
    return path


def samples(directory: Path) -> dict[str, list[list[Any]]]:
    """Worker (or 'local') id -> its samples ``[epoch_s, type, name, ms, failed]``."""
    out = {}
    for path in directory.glob("*.json"):
        out[(directory / f"{path.stem}.id").read_text()] = json.loads(path.read_text())
    return out


def test_two_workers_grade_like_a_local_evaluation_of_the_same_requests(backed_target: TargetServer,  # noqa: F811
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


def test_a_killed_worker_makes_exit_4_and_is_named(backed_target: TargetServer,  # noqa: F811
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


def test_sigterm_stops_the_master_first_and_it_reverts_the_fault(backed_target: TargetServer,  # noqa: F811
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


def test_a_worker_joining_late_is_counted_from_its_join(backed_target: TargetServer,  # noqa: F811
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


def test_ctrl_c_on_a_local_runner_still_grades_and_writes_the_record(backed_target: TargetServer,  # noqa: F811
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


def test_its_processes_die_with_it_even_when_it_is_killed(backed_target: TargetServer,  # noqa: F811
                                                          runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "users: 2, spawn_rate: 2, run_time_s: 60s")
    run, _ = start(runs, tmp_path, path, "--workers", "1", "--host", backed_target.url)
    run.workers(1)
    run.wait_for("SLA live")
    assert len(run.children()) == 2
    run.proc.kill()  # no chance to clean up: the children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
    deadline = time.monotonic() + 20
    while run.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.leftovers() == []


def test_workers_that_never_connect_make_exit_4(runs: list[Run], tmp_path: Path) -> None:
    path = scenario(tmp_path, "run_time_s: 5s", body="")
    run, _ = start(runs, tmp_path, path, "--master", "--workers", "2", "--host", "http://127.0.0.1:9",
                   "--master-bind-host", "127.0.0.1", "--master-bind-port", str(free_port()),
                   "--expect-workers-timeout", "2")
    assert run.finish(timeout_s=40) == 4, run.output[-3000:]
    assert "not every one of the 2 worker(s) connected within 2 s: inconclusive" in run.output
    assert run.leftovers() == []
