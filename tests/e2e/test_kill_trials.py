"""Kill trials: signals to the local runner, the master and ``reliability run`` while a fault is
held, as users break things. The backend must be restored every time (within ``dead_man_s`` + 2 s
after a SIGKILL), and whenever the process survived to write a record, the record must tell the
truth. Two trials freeze the backend (SIGSTOP Redis) when the revert is due.

CI runs a few trials per kind; ``RELIABILITY_KILL_TRIALS=full`` runs every kind x runner x signal
(``RELIABILITY_KILL_TRIALS_REPEAT=N`` times each) and ``RELIABILITY_KILL_TRIALS_LOG=FILE`` appends
one JSON line per trial (kind, runner, signal, seconds to restore) for the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import redis

from reliability.faults.postgres import app_name
from reliability.faults.proxy import ToxiproxyClient
from reliability.revert.journal import read_journal
from reliability.revert.ledger import FINISHING_LINE
from tests.support.clients import faults_now
from tests.support.locust_runs import LocustRun, Run, launch, scenario
from tests.support.processes import chaos_proxy
from tests.support.schemas import assert_valid_record
from tests.support.servers import (
    PostgresServer,
    RedisServer,
    ServerError,
    TargetServer,
    ToxiproxyServer,
    toxiproxy_binary,
)
from tests.support.waits import seconds_until

pytestmark = pytest.mark.slow

DEAD_MAN_S = 3.0
BODY = """sla: {{tier: bronze}}
recovery: {{warmup_s: 0.5s}}
shape: {{type: steady, users: 2, ramp_s: 1s, tail_s: 2s}}
faults:
  - name: held
    at_s: 1s
    hold_s: 60s
    fault: {fault}
"""
KINDS = ("redis.memory", "proxy.latency", "proxy.down", "shell", "webhook", "process.kill", "http.error")
RUNNERS = ("local", "master", "run")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
CI_TRIALS = [
    ("redis.memory", "local", signal.SIGINT), ("redis.memory", "local", signal.SIGTERM),
    ("redis.memory", "local", signal.SIGHUP), ("redis.memory", "local", signal.SIGKILL),
    ("redis.memory", "master", signal.SIGKILL), ("redis.memory", "run", signal.SIGKILL),
    ("proxy.latency", "local", signal.SIGKILL), ("proxy.down", "master", signal.SIGTERM),
    ("shell", "run", signal.SIGHUP), ("webhook", "local", signal.SIGKILL),
    ("process.kill", "master", signal.SIGKILL), ("http.error", "run", signal.SIGINT),
]


def _trials() -> list[tuple[str, str, signal.Signals]]:
    if os.environ.get("RELIABILITY_KILL_TRIALS") != "full":
        return CI_TRIALS
    repeat = int(os.environ.get("RELIABILITY_KILL_TRIALS_REPEAT", "1"))
    return [(k, r, s) for k in KINDS for r in RUNNERS for s in SIGNALS] * repeat


@dataclass
class Subject:
    """One kind's fault (a YAML flow mapping) and how to tell whether it is applied."""

    fault: str
    applied: Callable[[], bool]


@pytest.fixture(scope="module")
def toxiproxy_api() -> Iterator[str]:
    """The real Toxiproxy when it is here (that is what the compose stack runs), else our proxy."""
    if toxiproxy_binary() is not None:
        try:
            with ToxiproxyServer() as server:
                yield server.url
            return
        except ServerError:
            pass
    with chaos_proxy() as served:
        yield served.url


def _maxmemory(server: RedisServer) -> int:
    client = redis.Redis(port=server.port, socket_timeout=2)
    try:
        return int(client.config_get("maxmemory")["maxmemory"])
    finally:
        client.close()


@contextlib.contextmanager
def subject(kind: str, request: pytest.FixtureRequest, tmp_path: Path, target: TargetServer) -> Iterator[Subject]:
    if kind == "redis.memory":
        server: RedisServer = request.getfixturevalue("redis_server")
        yield Subject(f'{{type: redis.memory, url: "{server.url}", maxmemory_bytes: 1000000, '
                      f'dead_man_s: {DEAD_MAN_S}}}', lambda: _maxmemory(server) == 1_000_000)
    elif kind in ("proxy.latency", "proxy.down"):
        api: str = request.getfixturevalue("toxiproxy_api")
        client = ToxiproxyClient(api)
        name = f"trial-{uuid.uuid4().hex[:8]}"
        client.create_proxy(name, f"127.0.0.1:{target.port}")
        extra = ", latency_ms: 300" if kind == "proxy.latency" else ""

        def applied() -> bool:
            state = client.proxy(name)
            return bool(state["toxics"]) or not state["enabled"]

        try:
            yield Subject(f'{{type: {kind}, api_url: "{api}", proxy: {name}{extra}, dead_man_s: {DEAD_MAN_S}}}',
                          applied)
        finally:
            client.delete_proxy(name, missing_ok=True)
    elif kind == "shell":
        flag = tmp_path / "applied"
        yield Subject(f"{{type: shell, inject: \"touch '{flag}'\", revert: \"rm -f '{flag}'\", "
                      f"dead_man_s: {DEAD_MAN_S}}}", flag.exists)
    elif kind == "webhook":
        admin = f"{target.url}/admin/faults"
        yield Subject(f'{{type: webhook, inject: {{url: "{admin}", body: {{latency_ms: 1, route_prefix: /none}}}}, '
                      f'revert: {{method: DELETE, url: "{admin}"}}, dead_man_s: {DEAD_MAN_S}}}',
                      lambda: faults_now(target.url) is not None)
    elif kind == "process.kill":
        seconds = f"{time.time() % 1000 + 5000:.4f}"  # a unique argument to find the victim by
        # started through a shell that exits at once, so the victim is not our child (we would have
        # to reap it: a zombie counts as alive to the fault)
        subprocess.run(["/bin/sh", "-c", f"sleep {seconds} >/dev/null 2>&1 &"], check=True, timeout=10)

        def alive() -> bool:
            return any(p.info["cmdline"] == ["sleep", seconds] and p.info["status"] != psutil.STATUS_ZOMBIE
                       for p in psutil.process_iter(["cmdline", "status"]))

        try:
            yield Subject(f'{{type: process.kill, match: "sleep {seconds}", restart_command: "sleep {seconds} &", '
                          f'dead_man_s: {DEAD_MAN_S}}}', lambda: not alive())
        finally:
            for proc in psutil.process_iter(["cmdline"]):
                if proc.info["cmdline"] == ["sleep", seconds]:
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
    else:
        yield Subject(f'{{type: http.error, url: "{target.url}", route_prefix: /none, dead_man_s: {DEAD_MAN_S}}}',
                      lambda: faults_now(target.url) is not None)


class Runner:
    """The process under trial: a local runner, a master with one worker, or ``reliability run``."""

    def __init__(self, kind: str, tmp_path: Path, body: str, host: str, env: dict[str, str]) -> None:
        self.kind = kind
        self.locust: LocustRun | None = None
        self.run: Run | None = None
        if kind == "run":
            path = scenario(tmp_path, body=body)
            old = {key: os.environ.get(key) for key in env}
            os.environ.update(env)
            try:
                self.run = Run(tmp_path, str(path), "--workers", "0", "--host", host, "--allow-unsafe-faults",
                               "--run-record", str(tmp_path / "run.json"))
            finally:
                for key, value in old.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        else:
            self.locust = launch(tmp_path, body, host, {**env, "LOCUST_ALLOW_UNSAFE_FAULTS": "true"},
                                 workers=1 if kind == "master" else 0)

    def wait_for(self, needle: str) -> None:
        if self.locust is not None:
            self.locust.wait_for(needle, 40)
        else:
            assert self.run is not None
            self.run.wait_for(needle, 40)

    def signal(self, sig: signal.Signals) -> None:
        proc = self.locust.master if self.locust is not None else self.run.proc  # type: ignore[union-attr]
        proc.send_signal(sig)

    def finish(self) -> int:
        if self.locust is not None:
            return self.locust.finish(timeout_s=90)
        assert self.run is not None
        return self.run.finish(timeout_s=90)

    def output(self) -> str:
        if self.locust is not None:
            return self.locust.output()
        assert self.run is not None
        return self.run.output

    def cleanup(self) -> None:
        if self.locust is not None:
            self.locust.cleanup()
        if self.run is not None:
            self.run.kill_all()


def _log(**fields: Any) -> None:
    path = os.environ.get("RELIABILITY_KILL_TRIALS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields) + "\n")


def _journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal.jsonl"
    done = path.with_name(path.name + ".done")
    return done if done.exists() else path


def _guard_gone(tmp_path: Path, timeout_s: float = 5.0) -> bool:
    pid = read_journal(_journal(tmp_path)).guard_pid
    if pid is None:
        return False

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return seconds_until(gone, timeout_s) is not None


@pytest.mark.parametrize(("kind", "runner", "sig"), _trials(),
                         ids=lambda v: v.name if isinstance(v, signal.Signals) else str(v))
def test_signal_during_a_hold_restores_the_backend(kind: str, runner: str, sig: signal.Signals,
                                                  target_server: TargetServer, request: pytest.FixtureRequest,
                                                  tmp_path: Path) -> None:
    env = {"RELIABILITY_REVERT_JOURNAL": str(tmp_path / "journal.jsonl")}
    with subject(kind, request, tmp_path, target_server) as fault:
        trial = Runner(runner, tmp_path, BODY.format(fault=fault.fault), target_server.url, env)
        try:
            trial.wait_for("fault held: injected")
            assert seconds_until(fault.applied, 5) is not None, "the fault should be applied before the signal"
            sent = time.monotonic()
            trial.signal(sig)
            limit = DEAD_MAN_S + 2 if sig == signal.SIGKILL else 60
            took = seconds_until(lambda: not fault.applied(), limit, 0.05)
            _log(kind=kind, runner=runner, signal=sig.name, restored_s=took)
            assert took is not None, f"not restored within {limit:g} s of {sig.name}:\n{trial.output()[-3000:]}"
            if sig == signal.SIGKILL:  # nothing survives to write a record (under `reliability run`, the
                # runner gets SIGTERM from the kernel and may revert first: the journal says who did)
                assert seconds_until(lambda: read_journal(_journal(tmp_path)).faults["held"].state == "reverted", 3)
                return
            code = trial.finish()
            elapsed = time.monotonic() - sent
            assert not fault.applied()
        finally:
            trial.cleanup()
    output = trial.output()
    assert code == 4, output[-3000:]  # cut short: inconclusive, not a crash
    record = assert_valid_record(tmp_path / "run.json")
    [held] = record["faults"]
    assert held["state"] == "reverted" and held["verified_healthy"] is True, held
    # the signal's own revert, or the test stop it causes, whichever greenlet gets there first
    assert held["reverted_because"].endswith("received") or held["reverted_because"] == "the test stopped", held
    assert held["revert_log"] and held["revert_log"][-1]["ok"] is True
    assert all(a["by"] == "master" for a in held["revert_log"])  # the master undid it itself
    assert read_journal(_journal(tmp_path)).applied() == []
    assert _guard_gone(tmp_path), "the revert guard outlived a clean end"
    assert "Traceback" not in output
    _log(kind=kind, runner=runner, signal=sig.name, exit_s=round(elapsed, 2))


def _freeze_at_signal(tmp_path: Path, target: TargetServer, server: RedisServer, dead_man_s: float,
                      sig: signal.Signals, frozen_s: float) -> Runner:
    """A local runner holding redis.memory on ``server``; Redis is frozen (SIGSTOP) when ``sig`` is
    sent and thawed ``frozen_s`` later. Returns the runner (cleaned up)."""
    fault = f'{{type: redis.memory, url: "{server.url}", maxmemory_bytes: 1000000, dead_man_s: {dead_man_s}}}'
    trial = Runner("local", tmp_path, BODY.format(fault=fault), target.url,
                   {"RELIABILITY_REVERT_JOURNAL": str(tmp_path / "journal.jsonl")})
    frozen = psutil.Process(server.pid)
    try:
        trial.wait_for("fault held: injected")
        frozen.suspend()
        try:
            trial.signal(sig)
            time.sleep(frozen_s)  # attempts time out meanwhile (5 s socket timeout)
        finally:
            frozen.resume()
        if sig != signal.SIGKILL:
            trial.finish()
    finally:
        trial.cleanup()
    return trial


def test_sigkill_with_the_backend_frozen_restores_it_when_it_returns(target_server: TargetServer,
                                                                    redis_server: RedisServer,
                                                                    tmp_path: Path) -> None:
    before = _maxmemory(redis_server)
    _freeze_at_signal(tmp_path, target_server, redis_server, DEAD_MAN_S, signal.SIGKILL, 8)
    took = seconds_until(lambda: _maxmemory(redis_server) == before, 15)
    assert took is not None, "not restored after Redis came back"
    _log(kind="redis.memory", runner="local", signal="SIGKILL+frozen", restored_after_thaw_s=took)
    assert seconds_until(lambda: read_journal(_journal(tmp_path)).faults["held"].state == "reverted", 3)
    attempts = read_journal(_journal(tmp_path)).faults["held"].attempts
    assert attempts[0]["ok"] is False and attempts[-1]["ok"] is True and attempts[-1]["by"] == "guard"


def test_sigterm_with_the_backend_frozen_records_every_attempt(target_server: TargetServer,
                                                              redis_server: RedisServer, tmp_path: Path) -> None:
    before = _maxmemory(redis_server)
    trial = _freeze_at_signal(tmp_path, target_server, redis_server, 30, signal.SIGTERM, 6)
    assert _maxmemory(redis_server) == before
    assert trial.locust is not None and trial.locust.master.returncode == 4, trial.output()[-3000:]
    record = assert_valid_record(tmp_path / "run.json")
    [held] = record["faults"]
    log = held["revert_log"]
    assert log[0]["ok"] is False and "imeout" in (log[0]["error"] or ""), log  # redis-py: "Timeout reading ..."
    assert log[-1]["ok"] is True and held["state"] == "reverted" and held["verified_healthy"] is True
    assert held["revert_attempts"] == len(log) and held["revert_error"] is None


def test_a_fault_that_vanishes_mid_hold_makes_the_run_inconclusive(target_server: TargetServer,
                                                                   tmp_path: Path) -> None:
    fault = (f'{{type: http.error, url: "{target_server.url}", route_prefix: /none, dead_man_s: 30}}')
    body = BODY.format(fault=fault).replace("hold_s: 60s", "hold_s: 9s").replace("tail_s: 2s", "tail_s: 3s")
    trial = Runner("local", tmp_path, body, target_server.url,
                   {"RELIABILITY_REVERT_JOURNAL": str(tmp_path / "journal.jsonl")})
    try:
        trial.wait_for("fault held: injected")
        time.sleep(1.0)
        request = urllib.request.Request(f"{target_server.url}/admin/faults", method="DELETE")
        with urllib.request.urlopen(request, timeout=5):
            pass  # someone else (a restarted target, an operator) ends the fault early
        code = trial.finish()
    finally:
        trial.cleanup()
    assert code == 4
    record = assert_valid_record(tmp_path / "run.json")
    [held] = record["faults"]
    assert held["lost_at_s"] is not None and held["lost_at_s"] < 1 + 9, held
    assert "no fault" in held["lost_detail"]
    assert any("found gone" in reason for reason in record["sla"]["inconclusive"])


def test_run_waits_for_a_master_still_finishing_past_its_stop_timeout(target_server: TargetServer,
                                                                      tmp_path: Path) -> None:
    """Ctrl-C, then Ctrl-C again while the master is still reverting (a revert that takes longer
    than ``--stop-timeout``): ``reliability run`` waits for it, so the revert completes and the
    record is written by the master, not cut short by a kill."""
    marker = tmp_path / "reverted"
    revert_s = 8
    fault = f"{{type: shell, inject: \"true\", revert: \"sleep {revert_s} && touch '{marker}'\", dead_man_s: 60}}"
    path = scenario(tmp_path, body=BODY.format(fault=fault))
    run = Run(tmp_path, str(path), "--workers", "0", "--host", target_server.url, "--allow-unsafe-faults",
              "--stop-timeout", "3", "--run-record", str(tmp_path / "run.json"))
    try:
        run.wait_for("fault held: injected", 40)
        run.proc.send_signal(signal.SIGINT)
        run.wait_for(FINISHING_LINE, 20)
        started = time.monotonic()
        run.proc.send_signal(signal.SIGINT)  # the second Ctrl-C, while the revert is still running
        run.wait_for("waiting for it", 10)
        code = run.finish(timeout_s=60)
        waited_s = time.monotonic() - started
    finally:
        run.kill_all()
    assert "did not stop within" not in run.output and "killing" not in run.output, run.output[-3000:]
    assert waited_s > 3 + 1, waited_s  # longer than the stop timeout: it waited instead of killing
    assert marker.exists()
    assert code == 4, run.output[-3000:]  # the fault was reverted early by the signal: inconclusive
    record = assert_valid_record(tmp_path / "run.json")
    [held] = record["faults"]
    assert held["state"] == "reverted" and held["reverted_by"] == "master", held
    assert held["revert_log"][-1]["ok"] is True
    assert held["hold_checks"] == 0 and "shell command" in (held["not_rechecked_because"] or ""), held


def test_a_lock_whose_session_is_terminated_mid_hold_is_found_gone(target_server: TargetServer,
                                                                   postgres_server: PostgresServer,
                                                                   tmp_path: Path) -> None:
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS trial_items (id int PRIMARY KEY)")
    fault = f'{{type: postgres.lock, dsn: "{postgres_server.dsn}", table: trial_items, dead_man_s: 30}}'
    body = BODY.format(fault=fault).replace("hold_s: 60s", "hold_s: 12s").replace("tail_s: 2s", "tail_s: 3s")
    trial = Runner("local", tmp_path, body, target_server.url,
                   {"RELIABILITY_REVERT_JOURNAL": str(tmp_path / "journal.jsonl")})
    try:
        trial.wait_for("fault held: injected")
        time.sleep(3.0)  # a check or two that find it applied
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:  # a DBA ends the lock early
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                         (app_name("held"),))
        code = trial.finish()
    finally:
        trial.cleanup()
    assert code == 4, trial.output()[-3000:]
    record = assert_valid_record(tmp_path / "run.json")
    [held] = record["faults"]
    assert held["hold_checks"] >= 2 and held["not_rechecked_because"] is None, held
    assert held["lost_at_s"] is not None and 1 + 3 < held["lost_at_s"] < 1 + 12, held
    assert "no lock held" in held["lost_detail"]
    assert any("found gone" in reason for reason in record["sla"]["inconclusive"])
