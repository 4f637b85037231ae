"""The revert guard undoes what a killed or hung injector left applied, on real backends.

A driver process (``tests/support/revert_driver.py``) plays the master: journal, guard,
inject. The tests SIGKILL or SIGSTOP it and watch the backend come back, then read the journal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import redis

from reliability.faults.base import renew_interval_s
from reliability.revert.journal import read_journal
from tests.support.servers import RedisServer
from tests.support.waits import seconds_until

DEAD_MAN_S = 2.0
ROOT = Path(__file__).resolve().parents[2]


def maxmemory(server: RedisServer) -> int:
    client = redis.Redis(port=server.port, socket_timeout=1)
    try:
        return int(client.config_get("maxmemory")["maxmemory"])
    finally:
        client.close()


@contextmanager
def driver(spec: dict[str, Any], journal: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.revert_driver", json.dumps(spec), str(journal)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "INJECTED", line + proc.stdout.read()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def guard_gone(journal: Path, timeout_s: float = 10.0) -> bool:
    pid = read_journal(journal).guard_pid
    return pid is not None and seconds_until(lambda: not psutil.pid_exists(pid) or
                                     psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout_s) is not None


def memory_spec(server: RedisServer) -> dict[str, Any]:
    return {"type": "redis.memory", "url": server.url, "maxmemory_bytes": 1_000_000, "dead_man_s": DEAD_MAN_S}


def test_sigkill_of_the_injector_the_guard_restores_redis_memory(redis_server: RedisServer, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    before = maxmemory(redis_server)
    with driver(memory_spec(redis_server), journal) as proc:
        assert maxmemory(redis_server) == 1_000_000
        proc.send_signal(signal.SIGKILL)
        took = seconds_until(lambda: maxmemory(redis_server) == before, DEAD_MAN_S + 2)
    assert took is not None, "the guard did not restore maxmemory"
    assert seconds_until(lambda: read_journal(journal).faults["held"].state == "reverted", 2) is not None
    [entry] = read_journal(journal).faults.values()
    assert (entry.state, entry.reverted_by) == ("reverted", "guard")
    assert entry.actions[0]["commands"][0] == ["CONFIG", "SET", "maxmemory", str(before)]
    assert guard_gone(journal), "the guard should exit once nothing is applied"


def test_a_hung_injector_loses_its_lease(redis_server: RedisServer, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    before = maxmemory(redis_server)
    with driver(memory_spec(redis_server), journal) as proc:
        time.sleep(DEAD_MAN_S)  # renewals keep the guard off while the injector lives
        assert maxmemory(redis_server) == 1_000_000
        proc.send_signal(signal.SIGSTOP)
        took = seconds_until(lambda: maxmemory(redis_server) == before, DEAD_MAN_S + 2)
        proc.send_signal(signal.SIGCONT)
    # the lease lapses dead_man_s after the last renewal the guard heard, and SIGSTOP lands anywhere
    # in a renewal interval: never sooner than dead_man_s minus one interval (0.1 s for clock reads)
    assert took is not None and took >= DEAD_MAN_S - renew_interval_s(DEAD_MAN_S) - 0.1, took
    assert seconds_until(lambda: read_journal(journal).faults["held"].state == "reverted", 2) is not None
    assert read_journal(journal).faults["held"].reverted_by == "guard"


def test_a_frozen_backend_is_restored_once_it_comes_back(redis_server: RedisServer, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    before = maxmemory(redis_server)
    server = psutil.Process(redis_server.pid)
    with driver(memory_spec(redis_server), journal) as proc:
        server.suspend()
        try:
            proc.send_signal(signal.SIGKILL)
            time.sleep(7)  # attempts time out (5 s) while Redis is frozen
        finally:
            server.resume()
        took = seconds_until(lambda: maxmemory(redis_server) == before, 15)
    assert took is not None, "not restored after Redis came back"
    assert seconds_until(lambda: read_journal(journal).faults["held"].state == "reverted", 2) is not None
    entry = read_journal(journal).faults["held"]
    assert entry.state == "reverted"
    assert entry.attempts[0]["ok"] is False and entry.attempts[0]["error"]
    assert entry.attempts[-1]["ok"] is True


def test_the_guard_gives_up_at_the_deadline_and_revert_finishes_later(redis_server: RedisServer,
                                                                      tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    before = maxmemory(redis_server)
    env = {"RELIABILITY_REVERT_DEADLINE_S": "1"}
    with driver(memory_spec(redis_server), journal, env) as proc:
        redis_server.stop()
        proc.send_signal(signal.SIGKILL)
        assert seconds_until(lambda: read_journal(journal).faults["held"].state == "abandoned", 10) is not None
        # the guard journals "abandoned" first, then writes its log: wait for the log too
        guard_log = journal.with_name(journal.name + ".guard.log")
        assert seconds_until(lambda: "STILL APPLIED" in guard_log.read_text(), 10) is not None
    log = guard_log.read_text()
    assert "GAVE UP" in log and "STILL APPLIED" in log and "CONFIG SET maxmemory" in log
    listed = subprocess.run([sys.executable, "-m", "reliability.cli", "revert", "--list", str(journal)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert listed.returncode == 1 and "held (redis.memory)" in listed.stdout, listed
    redis_server.start()
    # Redis restarted empty, with its default maxmemory: restore what the journal says anyway
    client = redis.Redis(port=redis_server.port)
    client.config_set("maxmemory", "1000000")
    client.close()
    done = subprocess.run([sys.executable, "-m", "reliability.cli", "revert", str(journal)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done
    assert maxmemory(redis_server) == before
    assert read_journal(journal).faults["held"].reverted_by == "cli"


def test_shell_and_secrets_by_reference(tmp_path: Path) -> None:
    flag = tmp_path / "applied"
    journal = tmp_path / "run.jsonl"
    spec = {"type": "shell", "inject": f"echo \"$CHAOS_TOKEN\" > '{flag}'",
            "revert": f"test \"$(cat '{flag}')\" = 's3cr3t-value' && rm '{flag}'", "dead_man_s": DEAD_MAN_S}
    with driver(spec, journal, {"CHAOS_TOKEN": "s3cr3t-value"}) as proc:
        assert flag.exists()
        proc.send_signal(signal.SIGKILL)
        assert seconds_until(lambda: not flag.exists(), DEAD_MAN_S + 2) is not None
    assert "s3cr3t-value" not in journal.read_text()
