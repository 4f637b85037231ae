"""Process faults: suspend / resume and kill / restart a process, found by pid, pid file or a
command-line substring (psutil).

Example::

    fault = ProcessSuspendFault(ProcessSuspendSpec(type="process.suspend", pid_file="/run/redis.pid"), "freeze")
    fault.inject()    # SIGSTOP: the process holds its sockets but answers nothing
    fault.revert()    # SIGCONT

Dead-man for a suspension: a detached watchdog (``/bin/sh``, its own session, so it outlives
us) sends SIGCONT by itself ``dead_man_s`` after it was started; while the fault is held a new
watchdog replaces the old one every third of that. A kill has no dead-man: what restarts the
process is ``restart_command`` (run detached on revert) or a supervisor (systemd, Docker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import psutil

from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, Lease, one_line, probe, renew_interval_s, wait_until
from reliability.faults.spec import Command, ProcessKillSpec, ProcessSuspendSpec
from reliability.revert.journal import Undo, UndoError, command_action, reference_secrets, signal_action

WATCHDOG = 'sleep "$1"; shift; kill -CONT "$@" 2>/dev/null'
KILL_WAIT_S = 10.0
STOP_WAIT_S = 1.0


def command_argv(command: Command) -> list[str]:
    """A string runs through ``/bin/sh -c``; a list is the argv itself."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


def current_user() -> str:
    """The name of the user this process runs as."""
    return str(psutil.Process().username())


class _ProcessFault:
    kind = ""

    def __init__(self, spec: ProcessSuspendSpec | ProcessKillSpec, name: str) -> None:
        self.name = name
        self.pid = spec.pid
        self.pid_file = spec.pid_file
        self.match = spec.match
        self.user = spec.user
        self.dead_man_s: float | None = spec.dead_man_s

    @property
    def backend(self) -> str:
        return f"process {self.target}"

    @property
    def target(self) -> str:
        if self.pid is not None:
            return f"pid {self.pid}"
        if self.pid_file is not None:
            return f"pid file {self.pid_file}"
        return f"processes matching {self.match!r} of user {self.user or current_user()}"

    def _fail(self, action: str, exc: BaseException | str) -> FaultError:
        reason = exc if isinstance(exc, str) else one_line(exc)
        return FaultError(f"{self.name} ({self.kind}) {action} on {self.target}: {reason}")

    def find(self) -> list[psutil.Process]:
        """The live processes this fault targets (empty if none)."""
        pids: list[int] = []
        if self.pid is not None:
            pids = [self.pid]
        elif self.pid_file is not None:
            try:
                pids = [int(Path(self.pid_file).read_text().split()[0])]
            except (OSError, ValueError, IndexError):
                return []
        else:
            me = os.getpid()
            user = self.user or current_user()  # never another user's processes by accident
            for proc in psutil.process_iter(["cmdline", "username"]):
                cmdline = " ".join(proc.info.get("cmdline") or [])
                if (proc.pid != me and self.match is not None and self.match in cmdline and WATCHDOG not in cmdline
                        and proc.info.get("username") == user):
                    pids.append(proc.pid)
        found = []
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                continue
        return found


class ProcessSuspendFault(_ProcessFault):
    """SIGSTOP the target (and its children with ``children: true``); SIGCONT on revert."""

    kind = "process.suspend"

    def __init__(self, spec: ProcessSuspendSpec, name: str) -> None:
        super().__init__(spec, name)
        self.children = spec.children
        self.suspended: list[psutil.Process] = []
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lease: Lease | None = None

    def _targets(self) -> list[psutil.Process]:
        targets = self.find()
        if self.children:
            targets += [child for proc in targets for child in _children(proc)]
        return targets

    def undo(self, _environ: Mapping[str, str]) -> Undo:
        """SIGCONT to the processes it will stop (found now, by pid and start time); the
        watchdog's ``dead_man_s`` first."""
        procs = []
        for proc in self._targets():
            with contextlib.suppress(psutil.Error):
                procs.append((proc.pid, proc.create_time()))
        return Undo(self.backend, (signal_action(procs, "SIGCONT"),), expires_s=self.dead_man_s)

    def inject(self) -> None:
        if self.suspended:
            return
        targets = self._targets()
        if not targets:
            raise self._fail("inject", "no such process")
        # Arm the watchdog first: even a crash between the two leaves nothing stopped for long.
        self._arm()
        try:
            for proc in targets:
                proc.suspend()
                self.suspended.append(proc)
        except psutil.Error as exc:
            self.revert()
            raise self._fail("inject", exc) from None
        # SIGSTOP takes effect when the target is next scheduled: return once it has.
        wait_until(lambda: all(_stopped(p) for p in self.suspended), STOP_WAIT_S, 0.005)
        if self.dead_man_s is not None:
            self._lease = Lease(self._arm, renew_interval_s(self.dead_man_s), self.name)
            self._lease.start()

    def still_applied(self) -> str | None:
        """None while every process it stopped is still stopped (its state read from the OS), else
        why not (resumed by someone else or by its watchdog, or gone)."""
        if not self.suspended:
            return "nothing is suspended"
        for proc in list(self.suspended):
            status = _status(proc)
            if status in (psutil.STATUS_DEAD, psutil.STATUS_ZOMBIE):
                return f"pid {proc.pid} has exited"
            if status != psutil.STATUS_STOPPED:
                return f"pid {proc.pid} is {status} again"
        return None

    def _arm(self) -> None:
        """Start a fresh watchdog, then retire the previous one."""
        old = self._watchdog
        if self.dead_man_s is not None:
            pids = [str(p.pid) for p in self.suspended] or [str(p.pid) for p in self.find()]
            self._watchdog = subprocess.Popen(
                ["/bin/sh", "-c", WATCHDOG, "reliability-watchdog", f"{self.dead_man_s:.3f}", *pids],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        _retire(old)

    def revert(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()
        watchdog, self._watchdog = self._watchdog, None
        _retire(watchdog)
        suspended, self.suspended = self.suspended, []
        for proc in suspended:
            try:
                proc.resume()
            except psutil.NoSuchProcess:
                continue
            except psutil.Error as exc:
                raise self._fail("revert", exc) from None
        wait_until(lambda: not any(_stopped(p) and p.is_running() for p in suspended), STOP_WAIT_S, 0.005)

    def _healthy(self) -> str:
        procs = self.find()
        if not procs:
            raise FaultError("no such process")
        stopped = [p.pid for p in procs if p.status() == psutil.STATUS_STOPPED]
        if stopped:
            raise FaultError(f"still stopped: {stopped}")
        return f"running: {', '.join(str(p.pid) for p in procs)}"

    def verify(self) -> FaultCheck:
        return probe(self.target, self._healthy)


def _status(proc: psutil.Process) -> str:
    """The process's state from the OS, ``dead`` once it is gone."""
    try:
        return str(proc.status()) if proc.is_running() else psutil.STATUS_DEAD
    except psutil.NoSuchProcess:
        return psutil.STATUS_DEAD


def _stopped(proc: psutil.Process) -> bool:
    return _status(proc) in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _retire(watchdog: subprocess.Popen[bytes] | None) -> None:
    if watchdog is not None and watchdog.poll() is None:
        # The whole session: the shell and its sleep.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watchdog.pid, signal.SIGKILL)
        watchdog.wait(5)


class ProcessKillFault(_ProcessFault):
    """Kill the target with ``signal``; on revert run ``restart_command`` detached and wait
    (up to ``restart_timeout_s``) for the process to be back, when it can be found again (by
    pid file or match)."""

    kind = "process.kill"

    def __init__(self, spec: ProcessKillSpec, name: str) -> None:
        super().__init__(spec, name)
        self.signal = signal.Signals[spec.signal]
        self.restart_command = spec.restart_command
        self.restart_timeout_s = spec.restart_timeout_s
        self.dead_man_s = None  # nothing brings a killed process back by itself: the revert guard does
        self.killed: list[int] = []
        self.down = False  # killed by us and not restarted yet
        self.restarter: subprocess.Popen[bytes] | None = None

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """``restart_command``, run detached (a server in the foreground keeps running)."""
        if self.restart_command is None:
            raise UndoError(f"{self.name}: a kill without restart_command cannot be undone")
        command = reference_secrets(self.restart_command, (), environ, self.name)
        return Undo(self.backend, (command_action(command, self.restart_timeout_s, detach=True),))

    @property
    def not_rechecked_because(self) -> str | None:
        """Why the hold is not re-verified: a restart gets a new pid, so by ``pid`` it cannot be seen."""
        if self.pid is not None:
            return "killed by pid: a restarted process has a new pid, so nothing can tell it is back"
        return None

    def still_applied(self) -> str | None:
        """None while no process is found by its pid file or command line (the OS's process table),
        else which are back (restarted by a supervisor, or by hand)."""
        back = self.find()
        return f"running again: pid {', '.join(str(p.pid) for p in back)}" if back else None

    def inject(self) -> None:
        if self.down:
            return
        targets = self.find()
        if not targets:
            raise self._fail("inject", "no such process")
        self.killed = []
        self.down = True
        try:
            for proc in targets:
                proc.send_signal(self.signal)
                self.killed.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
        except psutil.Error as exc:
            raise self._fail("inject", exc) from None
        _gone, alive = psutil.wait_procs(targets, timeout=KILL_WAIT_S)
        if alive:
            raise self._fail("inject", f"still alive after {KILL_WAIT_S:.0f}s: {[p.pid for p in alive]}")

    def revert(self) -> None:
        if not self.down or self.restart_command is None:
            return
        try:
            self.restarter = restarter = subprocess.Popen(
                command_argv(self.restart_command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            raise self._fail("restart", exc) from None
        self.down = False
        findable = self.pid is None
        # Back when it can be found again, or (by pid: not findable) when the command is done.
        wait_until(lambda: (findable and bool(self.find())) or restarter.poll() is not None, self.restart_timeout_s)
        if restarter.poll() not in (None, 0):
            raise self._fail("restart", f"restart command exited with {restarter.returncode}")
        if findable and not self.find():
            raise self._fail("restart", f"not back within {self.restart_timeout_s:.0f}s")

    def _healthy(self) -> str:
        if self.pid is None:
            procs = self.find()
            if not procs:
                raise FaultError("not running")
            return f"running: {', '.join(str(p.pid) for p in procs)}"
        if self.down:
            raise FaultError("killed, and there is no restart_command to bring it back")
        if self.restarter is not None and self.restarter.poll() not in (None, 0):
            raise FaultError(f"restart command exited with {self.restarter.returncode}")
        return "restart command ran" if self.restarter is not None else "not killed"

    def verify(self) -> FaultCheck:
        return probe(self.target, self._healthy)
