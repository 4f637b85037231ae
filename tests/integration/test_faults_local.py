"""Process, webhook and shell faults against real child processes, a tiny HTTP receiver and
harmless commands."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from reliability.exceptions import FaultError
from reliability.faults import build_fault
from reliability.faults.spec import parse_fault_spec
from tests.support.waits import seconds_until

pytestmark = pytest.mark.timeout(60)

# A TCP echo server that prints its port, and (given a path) writes its pid there.
ECHO = """
import os, socket, sys
if len(sys.argv) > 1:
    open(sys.argv[1], "w").write(str(os.getpid()))
server = socket.create_server(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        try:
            conn.sendall(conn.recv(64))
        except OSError:
            pass  # a client that gave up while we were suspended
"""


def echo_answers(port: int, timeout_s: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"ping")
            return sock.recv(64) == b"ping"
    except OSError:
        return False


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """An echo server child: (process, port, pid file)."""
    pid_file = tmp_path / "echo.pid"
    proc = subprocess.Popen([sys.executable, "-c", ECHO, str(pid_file)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield proc, port, pid_file
    proc.kill()
    proc.wait(10)
    proc.stdout.close()


def test_suspend_stops_answers_until_resumed(echo: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, port, _pid_file = echo
    fault = build_fault(parse_fault_spec({"type": "process.suspend", "pid": proc.pid, "dead_man_s": 30}), "freeze")
    fault.revert()  # before inject
    assert echo_answers(port)
    fault.inject()
    try:
        assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED
        assert not echo_answers(port)
        assert not fault.verify().healthy
    finally:
        fault.revert()
    assert echo_answers(port, timeout_s=2.0)
    fault.revert()
    check = fault.verify()
    assert check.healthy and str(proc.pid) in check.detail, check


def test_suspend_watchdog_resumes_on_its_own(echo: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, port, _pid_file = echo
    fault = build_fault(parse_fault_spec({"type": "process.suspend", "pid": proc.pid, "dead_man_s": 0.5}), "nap")
    fault.inject()
    fault._lease.stop()  # type: ignore[attr-defined]  # as if the injector hung: no more renewals
    resumed = seconds_until(lambda: psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED, 3.0)
    assert resumed is not None and resumed < 1.5
    assert echo_answers(port, timeout_s=2.0)
    fault.revert()


def test_kill_then_restart_by_pid_file(tmp_path: Path, echo: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, port, pid_file = echo
    restart = [sys.executable, "-c", ECHO, str(pid_file), str(port)]
    fault = build_fault(parse_fault_spec({"type": "process.kill", "pid_file": str(pid_file), "signal": "SIGTERM",
                                          "restart_command": restart, "restart_timeout_s": 10}), "crash")
    fault.inject()
    proc.wait(5)  # psutil has reaped it already (it is our child), so no exit status is left to see
    assert not echo_answers(port)
    fault.revert()
    assert seconds_until(lambda: echo_answers(port), 10.0) is not None
    new_pid = int(pid_file.read_text())
    assert new_pid != proc.pid
    check = fault.verify()
    assert check.healthy and str(new_pid) in check.detail, check
    psutil.Process(new_pid).kill()
    fault.restarter.wait(5)  # type: ignore[attr-defined]


def test_kill_without_restart_is_refused_and_a_missing_process_fails(
        echo: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, _port, _pid_file = echo
    with pytest.raises(ValidationError, match="restart_command: required: without it the kill cannot be undone"):
        parse_fault_spec({"type": "process.kill", "pid": proc.pid})
    assert psutil.pid_exists(proc.pid)
    with pytest.raises(FaultError, match="no such process"):
        build_fault(parse_fault_spec({"type": "process.kill", "match": "no-such-process-xyz",
                                      "restart_command": "true"}), "n").inject()


class Receiver(BaseHTTPRequestHandler):
    """Records every call; answers the status the path names (/status/500), else 200."""

    calls: list[tuple[str, str, dict[str, object] | None]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, self.path, body))
        status = int(self.path.rsplit("/", 1)[1]) if self.path.startswith("/status/") else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str, dict[str, object] | None]]]]:
    calls: list[tuple[str, str, dict[str, object] | None]] = []
    handler = type("Handler", (Receiver,), {"calls": calls})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_calls_on_inject_and_revert(receiver: tuple[str, list[tuple[str, str, object]]]) -> None:
    url, calls = receiver
    fault = build_fault(parse_fault_spec({
        "type": "webhook",
        "inject": {"url": f"{url}/chaos/start", "body": {"fault": "db-down"}},
        "revert": {"url": f"{url}/chaos/stop", "method": "DELETE"},
        "verify_url": f"{url}/healthz",
    }), "hook")
    fault.revert()
    assert calls == []
    fault.inject()
    assert calls == [("POST", "/chaos/start", {"fault": "db-down"})]
    fault.revert()
    fault.revert()
    assert calls[1] == ("DELETE", "/chaos/stop", None) and len(calls) == 2
    check = fault.verify()
    assert check.healthy and "200" in check.detail and calls[2][:2] == ("GET", "/healthz")
    failing = build_fault(parse_fault_spec({"type": "webhook", "inject": {"url": f"{url}/status/500"},
                                                  "revert": {"url": f"{url}/status/200"}}), "bad")
    with pytest.raises(FaultError, match=r"^bad \(webhook\) inject: HTTP 500$"):
        failing.inject()


def test_shell_runs_inject_revert_and_verify(tmp_path: Path) -> None:
    flag = tmp_path / "paused"
    fault = build_fault(parse_fault_spec({
        "type": "shell", "inject": f"touch '{flag}'", "revert": ["rm", str(flag)], "verify": f"test ! -e '{flag}'",
    }), "sh")
    fault.inject()
    assert flag.exists()
    assert not fault.verify().healthy
    fault.revert()
    fault.revert()
    assert not flag.exists()
    assert fault.verify().healthy
    failing = build_fault(parse_fault_spec({"type": "shell", "inject": "echo nope >&2; exit 3", "revert": "true"}),
                          "fails")
    with pytest.raises(FaultError, match=r"^fails \(shell\) inject: exit 3: nope$"):
        failing.inject()
