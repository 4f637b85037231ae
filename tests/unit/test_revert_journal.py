"""The revert journal: what is written, how it reads back, secrets by reference, and the guard's
independence from locust and gevent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reliability.faults import build_fault
from reliability.faults.optin import unsafe_undo
from reliability.faults.spec import parse_fault_spec
from reliability.revert.journal import (
    Journal,
    JournalTail,
    Undo,
    UndoError,
    command_action,
    describe_action,
    expand,
    http_action,
    journal_dir,
    new_journal_path,
    read_journal,
    redis_action,
    reference_secrets,
    signal_action,
)
from reliability.revert.ledger import RevertLedger, conflicts, describe_undo


def test_applied_until_reverted_and_abandoned_stays_applied(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "r.jsonl", clock=lambda: 100.0)
    journal.append("run", pid=1)
    action = http_action("DELETE", "http://127.0.0.1:8474/proxies/pg/toxics/chaos-a")
    for name in ("a", "b", "c"):
        journal.append("undo", fault=name, kind="proxy.latency", backend="toxiproxy x proxy pg", actions=[action],
                       expires_s=None, dead_man_s=5)
    journal.append("attempt", fault="a", by="master", n=1, ok=False, error="HTTP 500")
    journal.append("attempt", fault="a", by="master", n=2, ok=True, error=None)
    journal.append("reverted", fault="a", by="master")
    journal.append("abandoned", fault="b", by="guard", error="connection refused")
    journal.close()
    state = read_journal(journal.path)
    assert [e.name for e in state.applied(100.0)] == ["b", "c"]
    assert state.faults["a"].attempts == [{"t": 100.0, "by": "master", "n": 1, "ok": False, "error": "HTTP 500"},
                                          {"t": 100.0, "by": "master", "n": 2, "ok": True, "error": None}]
    assert state.faults["b"].last_error == "connection refused"
    assert oct(journal.path.stat().st_mode & 0o777) == "0o600"


def test_expiry_only_faults_stop_counting_once_the_backend_dropped_them(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "r.jsonl", clock=lambda: 100.0)
    journal.append("undo", fault="lock", kind="postgres.lock", backend="postgres x", actions=[], expires_s=30,
                   dead_man_s=30)
    journal.close()
    state = read_journal(journal.path)
    assert [e.name for e in state.applied(120.0)] == ["lock"]
    assert state.applied(131.5) == []


def test_a_torn_last_line_is_read_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"ev":"run","t":1,"pid":5}\n{"ev":"undo","t":2,"fault":"f","kind":"k","backend":"b","actio')
    tail = JournalTail(path)
    assert tail.poll() == 1 and tail.state.faults == {}
    with open(path, "a") as fh:
        fh.write('ns":[],"expires_s":3}\n')
    assert tail.poll() == 1 and list(tail.state.faults) == ["f"]
    tail.close()


def test_secrets_are_written_as_references_and_expanded_at_undo_time() -> None:
    env = {"REDIS_PASSWORD": "hunter22", "HOME": "/root"}
    action = {"url": "redis://:hunter22@cache:6379/0", "commands": [["AUTH", "hunter22"]]}
    referenced = reference_secrets(action, ["hunter22"], env, "cache")
    assert "hunter22" not in json.dumps(referenced)
    assert referenced["url"] == "redis://:${env:REDIS_PASSWORD}@cache:6379/0"
    assert expand(referenced, env) == action
    with pytest.raises(UndoError, match="environment variable REDIS_PASSWORD is not set"):
        expand(referenced, {})
    # a secret-looking variable's value is referenced even where nobody said it was a secret
    assert reference_secrets("curl -H 'X: tok-123456'", (), {"API_TOKEN": "tok-123456"}, "f") == \
        "curl -H 'X: ${env:API_TOKEN}'"


def test_an_undo_needing_a_secret_in_clear_is_refused() -> None:
    spec = parse_fault_spec({"type": "webhook", "inject": {"url": "http://hooks/on"},
                             "revert": {"url": "http://hooks/off", "headers": {"Authorization": "Bearer literal"}}})
    fault = build_fault(spec, "hook", environ={})
    with pytest.raises(UndoError, match="no environment variable holds"):
        describe_undo(fault, {})
    undo = describe_undo(fault, {"HOOK_AUTH": "Bearer literal"})
    assert undo.actions[0]["headers"] == {"Authorization": "${env:HOOK_AUTH}"}
    assert describe_action(undo.actions[0]) == "POST http://hooks/off"


def test_every_kind_describes_its_undo_without_the_network() -> None:
    specs = {
        "proxy.latency": {"proxy": "pg", "latency_ms": 100},
        "proxy.down": {"proxy": "pg"},
        "http.error": {"url": "http://127.0.0.1:8080"},
        "postgres.lock": {"dsn": "postgresql://app:pw1234@db/app", "table": "items"},
        "redis.pause": {"url": "redis://127.0.0.1:6379/0"},
        "redis.slow": {"url": "redis://127.0.0.1:6379/0"},
        "load.spike": {"url": "http://127.0.0.1:8080/api"},
        "process.kill": {"pid": 999999, "restart_command": ["true"]},
        "shell": {"inject": "true", "revert": "echo undo"},
    }
    seen = {}
    for kind, fields in specs.items():
        fault = build_fault(parse_fault_spec({"type": kind, **fields}), "f", environ={})
        seen[kind] = describe_undo(fault, {"PG_PASSWORD": "pw1234"})
    assert describe_action(seen["proxy.latency"].actions[0]) == \
        "DELETE http://127.0.0.1:8474/proxies/pg/toxics/chaos-f"
    assert describe_action(seen["proxy.down"].actions[0]) == 'POST http://127.0.0.1:8474/proxies/pg {"enabled":true}'
    assert describe_action(seen["http.error"].actions[0]) == "DELETE http://127.0.0.1:8080/admin/faults"
    assert seen["postgres.lock"] == Undo("postgres postgresql://app:***@db/app", (), 30.0)
    assert seen["redis.pause"].actions == () and seen["redis.pause"].expires_s == pytest.approx(3.0)
    assert seen["redis.slow"].expires_s == pytest.approx(0.2)
    assert describe_action(seen["process.kill"].actions[0]) == "run (detached) true"
    assert describe_action(seen["shell"].actions[0]) == "run echo undo"


def test_a_custom_fault_needs_an_undo_or_its_own_expiry() -> None:
    class Custom:
        name, kind, dead_man_s = "c", "custom.thing", None

    with pytest.raises(UndoError, match="a custom fault needs undo"):
        describe_undo(Custom(), {})
    Custom.dead_man_s = 5.0  # type: ignore[assignment]
    assert describe_undo(Custom(), {}).expires_s == 5.0


def test_journal_location_and_conflicts(tmp_path: Path) -> None:
    assert journal_dir({"HOME": "/home/u"}) == Path("/home/u/.local/state/reliability/journals")
    assert journal_dir({"XDG_STATE_HOME": "/s", "HOME": "/h"}) == Path("/s/reliability/journals")
    assert new_journal_path({"RELIABILITY_REVERT_JOURNAL": str(tmp_path / "x.jsonl")}) == tmp_path / "x.jsonl"
    fresh = new_journal_path({"RELIABILITY_JOURNAL_DIR": str(tmp_path)}, clock=lambda: 0.0)
    assert fresh.parent == tmp_path and fresh.name.startswith("run-19700101T000000Z-")
    old = RevertLedger(tmp_path / "old.jsonl", environ={}, spawn_guard=False)
    old.open()
    fault = build_fault(parse_fault_spec({"type": "proxy.down", "proxy": "pg"}), "down", environ={})
    old.intend("down", fault, 5.0)
    found = conflicts({fault.backend}, tmp_path, exclude=tmp_path / "new.jsonl")  # type: ignore[attr-defined]
    assert [c.entry.name for c in found] == ["down"] and found[0].owner_alive is True
    assert conflicts({"redis redis://other"}, tmp_path) == []
    old.attempt("down", 1, True)
    old.reverted("down")
    old.close()
    assert not (tmp_path / "old.jsonl").exists() and (tmp_path / "old.jsonl.done").exists()
    assert conflicts({fault.backend}, tmp_path) == []  # type: ignore[attr-defined]


def test_the_guard_imports_neither_locust_nor_gevent(tmp_path: Path) -> None:
    journal = tmp_path / "done.jsonl"
    journal.write_text('{"ev":"run","t":1,"pid":999999999}\n{"ev":"end","t":2}\n')
    code = ("import sys; from reliability.revert import guard; rc = guard.main([sys.argv[1]]); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent', 'greenlet')); "
            "print(rc, bad)")
    done = subprocess.run([sys.executable, "-c", code, str(journal)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_undos_that_act_on_this_machine_are_unsafe_whatever_kind_the_journal_names() -> None:
    command = command_action("true", 5.0)
    assert unsafe_undo("shell", [command]) and unsafe_undo("webhook", [http_action("POST", "http://h/x")])
    assert unsafe_undo("process.kill", [command])
    assert unsafe_undo("process.suspend", [signal_action([(1, None)], "SIGCONT")])
    assert unsafe_undo("redis.memory", [command])  # a forged kind does not hide a command
    assert unsafe_undo("redis.memory", [http_action("POST", "http://h/x")])
    assert not unsafe_undo("proxy.latency", [http_action("DELETE", "http://127.0.0.1:8474/proxies/pg/toxics/t")])
    assert not unsafe_undo("http.error", [http_action("DELETE", "http://127.0.0.1:8080/admin/faults")])
    assert not unsafe_undo("redis.memory", [redis_action("redis://h", [["CONFIG", "SET", "maxmemory", "0"]])])
    assert not unsafe_undo("postgres.lock", [])


def test_revert_replays_a_command_undo_only_with_the_opt_in(tmp_path: Path) -> None:
    marker = tmp_path / "applied"
    marker.touch()
    journal = Journal(tmp_path / "foreign.jsonl")
    journal.append("undo", fault="owned", kind="shell", backend="shell x", dead_man_s=None, expires_s=None,
                   actions=[command_action(f"rm '{marker}'", 10.0)])
    journal.append("inject", fault="owned", ok=True, error=None)
    journal.close()

    def revert(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reliability.cli", "revert", *flags, str(journal.path)],
                              capture_output=True, text=True, timeout=60)

    refused = revert()
    assert refused.returncode == 2, refused
    [line] = refused.stderr.strip().splitlines()
    assert "owned (shell)" in line and "--allow-unsafe-faults" in line and "nothing was undone" in line
    assert marker.exists() and read_journal(journal.path).faults["owned"].state == "pending"
    listed = revert("--list")  # listing replays nothing: no flag needed
    assert listed.returncode == 1 and "owned (shell)" in listed.stdout, listed
    done = revert("--allow-unsafe-faults")
    assert done.returncode == 0, done
    assert not marker.exists() and read_journal(journal.path).faults["owned"].reverted_by == "cli"
