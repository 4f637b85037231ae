"""``process.*`` faults with ``match:`` act only on one user's processes: the current user's by
default, ``user:``'s when given. Real processes: one of ours and one of another user (started
with ``subprocess.Popen(user=...)``), both with the same marker on their command line."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import uuid
from collections.abc import Iterator

import psutil
import pytest

from reliability.faults import build_fault, parse_fault_spec

OTHER = "postgres"  # exists wherever the PostgreSQL tests run
try:
    pwd.getpwnam(OTHER)
    HAVE_OTHER = True
except KeyError:
    HAVE_OTHER = False

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not HAVE_OTHER,
                                reason=f"needs root and a {OTHER!r} user to start another user's process")


@pytest.fixture
def sleepers() -> Iterator[tuple[str, psutil.Process, psutil.Process]]:
    marker = f"reliability-match-{uuid.uuid4().hex[:12]}"
    argv = ["/bin/sh", "-c", "sleep 60; :", marker]  # sh stays (the marker is its $0)
    mine = subprocess.Popen(argv, start_new_session=True)
    theirs = subprocess.Popen(argv, user=OTHER, group=OTHER, cwd="/", start_new_session=True)
    try:
        yield marker, psutil.Process(mine.pid), psutil.Process(theirs.pid)
    finally:
        for proc in (mine, theirs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the shell and its sleep
            proc.wait(10)


def test_match_hits_only_the_current_users_processes(sleepers: tuple[str, psutil.Process, psutil.Process]) -> None:
    marker, mine, theirs = sleepers
    fault = build_fault(parse_fault_spec({"type": "process.suspend", "match": marker}), "freeze")
    assert [p.pid for p in fault.find()] == [mine.pid]  # type: ignore[attr-defined]
    fault.inject()
    try:
        assert mine.status() == psutil.STATUS_STOPPED
        assert theirs.status() != psutil.STATUS_STOPPED
    finally:
        fault.revert()
    assert mine.status() != psutil.STATUS_STOPPED


def test_user_picks_whose_processes_match_may_hit(sleepers: tuple[str, psutil.Process, psutil.Process]) -> None:
    marker, mine, theirs = sleepers
    fault = build_fault(parse_fault_spec({"type": "process.kill", "match": marker, "user": OTHER,
                                          "signal": "SIGTERM", "restart_command": "true"}), "kill")
    assert [p.pid for p in fault.find()] == [theirs.pid]  # type: ignore[attr-defined]
    fault.inject()
    theirs.wait(10)
    assert mine.is_running() and mine.status() != psutil.STATUS_ZOMBIE
    nobody = build_fault(parse_fault_spec({"type": "process.kill", "match": marker, "user": "no-such-user-x",
                                           "restart_command": "true"}),
                         "none")
    assert nobody.find() == []  # type: ignore[attr-defined]
