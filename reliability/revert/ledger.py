"""The master's side of the revert journal for one run: open it, start the guard, write each
fault's undo before its inject, renew the lease while something is applied, record every revert
attempt, and close it.

Example::

    ledger = RevertLedger()
    ledger.open()                                   # journal + guard
    ledger.intend("db-lag", fault, dead_man_s=10)   # raises UndoError: the fault is refused
    fault.inject(); ledger.injected("db-lag", ok=True)
    ...
    ledger.attempt("db-lag", 1, ok=True); ledger.reverted("db-lag")
    ledger.close()

Blocking calls are short (an fsync per line); renewals are not fsynced (the guard reads the page
cache, and after a crash a renewal has no value). Imports neither locust nor gevent: under the
gevent-patched master the renewal thread is a greenlet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reliability.jsontypes import JsonValue
from reliability.revert import guard
from reliability.revert.journal import (
    DEFAULT_REVERT_DEADLINE_S,
    FaultEntry,
    Journal,
    JournalState,
    JournalTail,
    Undo,
    UndoError,
    journal_files,
    new_journal_path,
    read_journal,
    run_identity,
)

logger = logging.getLogger("reliability.faults")

# What the master logs when it starts its last reverts and the record: a supervisor seeing it
# must let the master finish (``reliability run`` waits instead of interrupting it).
FINISHING_LINE = "finishing the run: reverting, verifying and writing the record"
GUARD_READY_S = 10.0
GUARD_EXIT_S = 3.0
DEFAULT_DEAD_MAN_S = 10.0
DEADLINE_ENV = "RELIABILITY_REVERT_DEADLINE_S"
DONE_SUFFIX = ".done"


class Journalled(Protocol):
    """What the ledger needs of a fault: its name and kind. ``undo(environ)``, ``dead_man_s`` and
    ``backend`` are used when it has them (a custom fault may not)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


def describe_undo(fault: Journalled, environ: Mapping[str, str]) -> Undo:
    """The fault's undo: its ``undo(environ)``; for a custom fault without one, its own
    ``dead_man_s`` expiry; else UndoError (the fault is refused)."""
    undo = getattr(fault, "undo", None)
    if callable(undo):
        described = undo(environ)
        if not isinstance(described, Undo):
            raise UndoError(f"{fault.name}: undo() returned {type(described).__name__}, not an Undo")
        return described
    dead_man_s = getattr(fault, "dead_man_s", None)
    if dead_man_s is not None:
        return Undo(f"custom {fault.kind} {fault.name}", (), expires_s=float(dead_man_s))
    raise UndoError(f"{fault.name}: its undo cannot be described: a custom fault needs undo() (returning "
                    "reliability.revert.journal.Undo) or a dead_man_s after which it ends by itself")


def backend_of(fault: Journalled) -> str:
    return str(getattr(fault, "backend", None) or f"custom {fault.kind} {fault.name}")


@dataclass(frozen=True)
class Conflict:
    """A fault another journal says is still applied on a backend this run uses."""

    journal: Path
    entry: FaultEntry
    owner_alive: bool | None

    def line(self) -> str:
        who = "its run is still going" if self.owner_alive else "its run is over"
        return (f"{self.entry.name} ({self.entry.kind}) on {self.entry.backend}, from {self.journal} ({who}; "
                f"state {self.entry.state})")


def conflicts(backends: Iterable[str], directory: Path, exclude: Path | None = None) -> list[Conflict]:
    """Faults still applied, according to the journals in ``directory``, on any of ``backends``."""
    wanted = set(backends)
    found = []
    for path in journal_files(directory):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        state = read_journal(path)
        hits = [entry for entry in state.applied() if entry.backend in wanted]
        if hits:
            alive = state.master_alive
            found += [Conflict(path, entry, alive) for entry in hits]
    return found


class RevertLedger:
    """See the module docstring. ``spawn_guard=False`` for tests of the journal alone."""

    def __init__(self, path: Path | None = None, environ: Mapping[str, str] | None = None,
                 spawn_guard: bool = True, renew_every_s: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.environ = os.environ if environ is None else environ
        self.path = path or new_journal_path(self.environ, clock)
        self.journal = Journal(self.path, clock)
        self.spawn_guard = spawn_guard
        self.renew_every_s = renew_every_s
        self.deadline_s = float(self.environ.get(DEADLINE_ENV) or DEFAULT_REVERT_DEADLINE_S)
        self.guard_pid: int | None = None
        self.guard_error: str | None = None
        self._guard: subprocess.Popen[bytes] | None = None  # kept so it is reaped when the guard exits first
        self._applied: set[str] = set()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._opened = False
        self._lock = threading.Lock()

    def open(self) -> None:
        """Write the run line and start the guard (idempotent)."""
        if self._opened:
            return
        self._opened = True
        self.journal.append("run", **run_identity(), revert_deadline_s=self.deadline_s, cwd=os.getcwd())
        logger.info("revert journal: %s", self.path)
        if self.spawn_guard:
            try:
                self._guard = guard.spawn(self.path, self.environ)
            except OSError as exc:  # reported by wait_for_guard; the master's own reverts still run
                self.guard_error = f"{type(exc).__name__}: {exc}"
            else:
                self.guard_error = None
        self._renewer = threading.Thread(target=self._renew_loop, name="revert-lease", daemon=True)
        self._renewer.start()

    def wait_for_guard(self, timeout_s: float = GUARD_READY_S) -> bool:
        """True once the guard has written its line (it is watching); logs an error if not."""
        if not self.spawn_guard:
            return False
        if self.guard_pid is not None:
            return True
        tail = JournalTail(self.path)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                tail.poll()
                if tail.state.guard_pid is not None:
                    self.guard_pid = int(tail.state.guard_pid)
                    return True
                time.sleep(0.05)
        finally:
            tail.close()
        logger.error("the revert guard did not start (%s); if this process dies, faults stay applied until "
                     "`reliability revert %s`", self.guard_error or f"see {guard.log_path(self.path)}", self.path)
        return False

    def set_renew_every(self, dead_man_s: float) -> None:
        self.renew_every_s = min(self.renew_every_s, max(0.1, dead_man_s / 3.0))

    def intend(self, name: str, fault: Journalled, dead_man_s: float | None) -> Undo:
        """Describe the fault's undo and write it durably; UndoError if it cannot be described or
        written (then the fault must not be injected)."""
        undo = describe_undo(fault, self.environ)
        lapse = dead_man_s or getattr(fault, "dead_man_s", None) or DEFAULT_DEAD_MAN_S
        self.set_renew_every(float(lapse))
        self.wait_for_guard()
        try:
            with self._lock:
                self.journal.append("undo", fault=name, kind=fault.kind, backend=undo.backend,
                                    actions=[*undo.actions], expires_s=undo.expires_s, dead_man_s=float(lapse))
                self._applied.add(name)
        except OSError as exc:
            raise UndoError(f"{name}: cannot write the revert journal {self.path}: {exc}") from None
        return undo

    def _write(self, event: str, **fields: JsonValue) -> None:
        try:
            with self._lock:
                self.journal.append(event, True, **fields)
        except OSError as exc:  # the disk is full or gone: say so, never break the revert itself
            logger.error("cannot write the revert journal %s: %s", self.path, exc)

    def injected(self, name: str, ok: bool, error: str | None = None) -> None:
        self._write("inject", fault=name, ok=ok, error=error)

    def attempt(self, name: str, n: int, ok: bool, error: str | None = None) -> None:
        self._write("attempt", fault=name, by="master", n=n, ok=ok, error=error)

    def reverted(self, name: str) -> None:
        self._write("reverted", fault=name, by="master")
        self._applied.discard(name)

    def state(self) -> JournalState:
        """This run's journal as it stands (what the guard or ``reliability revert`` did included)."""
        return read_journal(self.path)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            if self._applied:
                try:
                    with self._lock:
                        self.journal.append("renew", durable=False)  # see the module docstring
                except OSError as exc:
                    logger.error("cannot renew the revert lease in %s: %s", self.path, exc)

    def close(self) -> None:
        """Write the end line; a journal with nothing left applied is renamed ``*.done`` once the
        guard has exited (it does when it reads the end line: no process is left behind)."""
        if not self._opened:
            return
        self._stop.set()
        self._write("end")
        self.journal.close()
        self._opened = False
        left = read_journal(self.path).applied()
        guard_proc, self._guard = self._guard, None
        if left:
            logger.error("revert journal %s: still applied: %s; the revert guard keeps trying; `reliability revert "
                         "%s` lists and undoes it", self.path, ", ".join(f"{e.name} ({e.kind})" for e in left),
                         self.path)
            return
        if guard_proc is not None:
            try:
                guard_proc.wait(GUARD_EXIT_S)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: reported, never fatal
                logger.warning("the revert guard (pid %s) is still running: see %s", guard_proc.pid,
                               guard.log_path(self.path))
        with contextlib.suppress(OSError):
            self.path.rename(self.path.with_name(self.path.name + DONE_SUFFIX))
