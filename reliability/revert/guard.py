"""The revert guard: a small detached process that undoes what a dead or hung master left applied.

The master starts one per run (:func:`spawn`) before its first fault. The guard runs in its own
session and process group, with no terminal, so SIGKILL of the master or of ``reliability run``,
Ctrl-C in their terminal or the terminal closing do not reach it. It reads the run's journal
(:mod:`reliability.revert.journal`) as it grows:

* the master's lines (``undo``, ``inject``, ``renew`` ...) are its lease: while a fault is applied
  the master writes a ``renew`` line every third of the shortest ``dead_man_s`` or more often;
* when the master's process is gone (or is a zombie, or the host rebooted) the guard undoes every
  applied fault at once; when the master is alive but silent for a fault's ``dead_man_s`` (hung,
  SIGSTOPped), it undoes that fault;
* each undo is retried with backoff (0.5 s doubling to 10 s) until it works or the run's
  ``revert_deadline_s`` passes; every attempt is appended to the journal. At the deadline it writes
  an ``abandoned`` line and logs, loudly, what is left and how to undo it (``reliability revert``);
* it exits when nothing is applied and the master has ended or is gone.

Faults only a backend's expiry undoes (a TTL, a session timeout) need no call: the guard marks them
``expired`` once that time has passed. If the guard itself is killed, the master (when alive)
still reverts, and ``reliability revert`` finds what the journal says is left.

Run by hand: ``python -m reliability.revert.guard JOURNAL``. Imports neither locust nor gevent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reliability.revert.journal import (
    FaultEntry,
    Journal,
    JournalTail,
    UndoError,
    describe_action,
)
from reliability.revert.undo import backoff_s, undo_fault

POLL_S = 0.1
ALIVE_CHECK_S = 0.25
DEFAULT_DEAD_MAN_S = 10.0
LOG_SUFFIX = ".guard.log"


@dataclass
class _Retry:
    attempts: int = 0
    first_at: float = 0.0
    next_at: float = 0.0


def log_path(journal: Path) -> Path:
    return journal.with_name(journal.name + LOG_SUFFIX)


def spawn(journal: Path, environ: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start the guard for ``journal`` detached (own session, no terminal); its output goes to
    ``<journal>.guard.log``. The caller need not wait for it."""
    journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log_path(journal), "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "reliability.revert.guard", str(journal)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True,
            start_new_session=True, env=dict(os.environ if environ is None else environ),
        )


def left_message(entries: list[FaultEntry], journal: Path) -> str:
    """What is still applied and how to undo it, for people."""
    lines = [f"STILL APPLIED ({len(entries)} fault(s)); run `reliability revert {journal}` or undo by hand:"]
    for entry in entries:
        lines.append(f"  {entry.name} ({entry.kind}) on {entry.backend}: last error: {entry.last_error}")
        lines += [f"    {describe_action(action)}" for action in entry.actions]
    return "\n".join(lines)


def warm_up() -> None:
    """Import what the undo actions need now, while nothing is due: an undo after a death then
    starts at once instead of after a second of imports on a busy machine."""
    import importlib

    for module in ("reliability.faults.httpcall", "redis", "psutil"):
        try:
            importlib.import_module(module)
        except ImportError:  # reported by the undo that needs it
            continue


class Guard:
    """The guard's loop over one journal (see the module docstring); ``run()`` returns the exit
    code: 0 when nothing is left applied, 1 when it gave up on something.

    Example::

        Guard(Path("run.jsonl")).run()
    """

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 out: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.environ = os.environ if environ is None else environ
        self.clock = clock
        self.sleep = sleep
        self.out = out or (lambda line: print(line, flush=True))
        self.tail = JournalTail(path)
        self.journal = Journal(path)
        self._retries: dict[str, _Retry] = {}
        self._heard_at = clock()
        self._alive: bool | None = True
        self._alive_checked = -1e9

    def _say(self, text: str) -> None:
        self.out(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} revert guard: {text}")

    def _master_alive(self) -> bool | None:
        now = self.clock()
        if now - self._alive_checked >= ALIVE_CHECK_S:
            self._alive_checked = now
            self._alive = self.tail.state.master_alive
        return self._alive

    def step(self) -> bool:
        """One pass; False when the guard is done."""
        before = self.tail.state.last_master_t
        self.tail.poll()
        state = self.tail.state
        if state.last_master_t != before:
            self._heard_at = self.clock()  # a line from the master: its lease is renewed
        alive = self._master_alive()
        now = self.clock()
        pending = [f for f in state.faults.values() if f.state == "pending"]
        for entry in pending:
            if entry.expired(time.time(), state.last_renew_t):
                self.journal.append("expired", fault=entry.name, by="guard")
                self._say(f"{entry.name} ({entry.kind}): dropped by the backend's own expiry")
                continue
            lapse = entry.dead_man_s or DEFAULT_DEAD_MAN_S
            if alive is not False and now - self._heard_at < lapse:
                continue
            if not entry.actions:
                continue  # expiry only: wait for it
            self._try(entry, "the master is gone" if alive is False else f"no renewal for {lapse:g} s")
        remaining = [f for f in state.faults.values() if f.state == "pending"]
        if not remaining and (state.ended or alive is False):
            abandoned = [f for f in state.faults.values() if f.state == "abandoned"]
            self._exit_code = 1 if abandoned else 0
            return False
        return True

    def _try(self, entry: FaultEntry, why: str) -> None:
        now = self.clock()
        retry = self._retries.setdefault(entry.name, _Retry(first_at=now, next_at=now))
        if now < retry.next_at:
            return
        retry.attempts += 1
        if retry.attempts == 1:
            self._say(f"{entry.name} ({entry.kind}) on {entry.backend}: undoing ({why})")
        try:
            outcome = undo_fault(entry, self.environ)
        except UndoError as exc:
            error = str(exc)
            self.journal.append("attempt", fault=entry.name, by="guard", n=retry.attempts, ok=False, error=error)
            self._say(f"{entry.name}: attempt {retry.attempts} failed: {error}")
            deadline_s = self.tail.state.revert_deadline_s
            delay = backoff_s(retry.attempts)
            if now + delay - retry.first_at > deadline_s:
                self.journal.append("abandoned", fault=entry.name, by="guard", error=error)
                entry.last_error = error
                self._say(f"GAVE UP after {retry.attempts} attempt(s) over {now - retry.first_at:.1f} s.\n"
                          + left_message([entry], self.path))
                return
            retry.next_at = now + delay
            return
        self.journal.append("attempt", fault=entry.name, by="guard", n=retry.attempts, ok=True, error=None)
        self.journal.append("reverted", fault=entry.name, by="guard")
        self._say(f"{entry.name}: undone ({outcome})")

    def run(self) -> int:
        self._exit_code = 0
        warm_up()
        self.tail.poll()
        self._heard_at = self.clock()
        self.journal.append("guard", pid=os.getpid())
        self._say(f"watching {self.path} (master pid {self.tail.state.run.get('pid')})")
        try:
            while self.step():
                self.sleep(POLL_S)
        finally:
            self.journal.close()
            self.tail.close()
        self._say("nothing left applied; exiting" if self._exit_code == 0 else "exiting with faults left applied")
        return self._exit_code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m reliability.revert.guard JOURNAL", file=sys.stderr)
        return 2
    for name in ("SIGINT", "SIGHUP"):  # a terminal's signals are not for us
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    return Guard(Path(args[0])).run()


if __name__ == "__main__":
    raise SystemExit(main())
