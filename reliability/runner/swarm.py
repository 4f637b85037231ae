"""Locust processes as children: a lead (master or local runner) and workers. Streams their output,
stops them in order and never leaves one behind.

Order on Ctrl-C, SIGTERM or SIGHUP: the lead gets SIGINT first (Locust stops the test; the plugin
reverts faults, grades the run and writes the record) and is waited for; the workers then quit on
the master's word, and any still running get SIGTERM, then SIGKILL. A second signal sends the lead
SIGTERM, a third kills everything. The children run in their own process group, so a terminal's
Ctrl-C reaches only this process (which keeps that order), and on Linux they get SIGTERM should
this process die without cleaning up (``PR_SET_PDEATHSIG``).

Example::

    with stop_requests() as received:
        swarm = Swarm(received=received)
        try:
            master = swarm.spawn("master", master_cmd, lead=True)
            workers = [swarm.spawn(f"worker-{i}", cmd, prefix=f"[worker-{i}] ") for i, cmd in ...]
            swarm.start_readers()
            outcome = swarm.supervise(master, workers)
        finally:
            swarm.shutdown()
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

from reliability.revert.ledger import FINISHING_LINE
from reliability.textsafe import neutralize, shorten_line

GAVE_UP_LINE = "Gave up waiting for workers to connect"  # Locust's words when --expect-workers-max-wait ends
FINISHING_EXTRA_S = 120.0  # more time for a lead that said it is reverting and writing the record
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
PR_SET_PDEATHSIG = 1
POLL_S = 0.1
WORKERS_GONE_GRACE_S = 8.0  # > the ~5 s Locust takes to call a silent worker missing
KILL_WAIT_S = 5.0
TAIL_LINES = 30


@dataclass
class Child:
    """One child process and the last lines it printed."""

    name: str
    proc: subprocess.Popen[str]
    prefix: str = ""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass(frozen=True)
class Outcome:
    """How the lead (or, without one, the workers) ended.

    ``exit_code`` is the lead's (a signal death as 128 + signal number); ``gave_up_waiting`` when
    the master stopped waiting for its workers; ``workers_gone`` when every worker had exited while
    the lead still ran; ``signals`` the stop signals this process received."""

    exit_code: int
    gave_up_waiting: bool = False
    workers_gone: bool = False
    signals: tuple[int, ...] = ()


def exit_status(returncode: int) -> int:
    """A shell's view of a child's end: 128 + N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody will stop us
            os._exit(1)

    return setup


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """While inside, Ctrl-C, SIGTERM and SIGHUP are appended to the yielded list instead of
    interrupting this process; a :class:`Swarm` given the list acts on them (main thread only)."""
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.getsignal(sig) for sig in FORWARDED_SIGNALS}
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, note)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Swarm:
    """Starts, watches and stops the Locust processes of one run; see the module docstring."""

    def __init__(self, out: TextIO | None = None, env: Mapping[str, str] | None = None,
                 stop_timeout_s: float = 60.0, worker_grace_s: float = 10.0, received: list[int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stdout
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.stop_timeout_s = stop_timeout_s
        self.worker_grace_s = worker_grace_s
        self.clock = clock
        self.children: list[Child] = []
        self.lead: Child | None = None
        self.received = received if received is not None else []  # stop signals, see stop_requests()
        self.gave_up_waiting = False
        self.lead_finishing = False  # the lead logged FINISHING_LINE: let it finish, never interrupt it
        self._lock = threading.Lock()
        self._preexec = _die_with_parent()

    # -- output ------------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        """One line of our own, between the children's lines."""
        self._write(f"[run] {shorten_line(neutralize(message))}\n")

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):  # our stdout is gone (closed pipe): keep supervising
                pass

    def _read(self, child: Child) -> None:
        assert child.proc.stdout is not None
        for line in child.proc.stdout:
            child.tail.append(line)
            if child is self.lead and GAVE_UP_LINE in line:
                self.gave_up_waiting = True
            if child is self.lead and FINISHING_LINE in line:
                self.lead_finishing = True
            self._write(child.prefix + shorten_line(neutralize(line.rstrip("\r\n"))) + "\n")

    # -- processes ---------------------------------------------------------------------------------

    def spawn(self, name: str, command: Sequence[str], *, lead: bool = False, prefix: str = "") -> Child:
        """Start one child (stdout and stderr merged into one pipe we read); ``lead`` marks the
        master or local runner, which is stopped first."""
        proc = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=self.env, process_group=0 if os.name == "posix" else None, preexec_fn=self._preexec,
        )
        child = Child(name, proc, prefix)
        self.children.append(child)
        if lead:
            self.lead = child
        return child

    def start_readers(self) -> None:
        """Stream every child's output. Called once all children are started: a ``preexec_fn`` must
        not run while another thread might hold a lock the child would need."""
        for child in self.children:
            if child.reader is None:
                child.reader = threading.Thread(target=self._read, args=(child,), name=f"reader-{child.name}",
                                                daemon=True)
                child.reader.start()

    # -- supervision -------------------------------------------------------------------------------

    def _signal(self, child: Child, sig: int) -> None:
        if child.alive:
            with suppress(ProcessLookupError):
                child.proc.send_signal(sig)

    def _escalate(self, count: int, lead: Child | None, workers: Sequence[Child]) -> None:
        name = signal.Signals(self.received[count - 1]).name
        if count == 1 and lead is not None:
            self.say(f"{name}: stopping the {lead.name} (it reverts faults and writes the record), then the workers")
            self._signal(lead, signal.SIGINT)
        elif count == 1 or (count == 2 and lead is None):
            self.say(f"{name}: stopping the workers")
            for worker in workers:
                self._signal(worker, signal.SIGTERM)
        elif count == 2 and lead is not None and self.lead_finishing:
            self.say(f"{name} again: the {lead.name} is reverting faults and writing the record; waiting for it "
                     "(a third signal kills every process; the revert guard then undoes what is left)")
        elif count == 2 and lead is not None:
            self.say(f"{name} again: sending SIGTERM to the {lead.name}")
            self._signal(lead, signal.SIGTERM)
        else:
            self.say(f"{name} again: killing every process")
            for child in self.children:
                self._signal(child, signal.SIGKILL)

    def supervise(self, lead: Child | None, workers: Sequence[Child]) -> Outcome:
        """Wait until the lead exits (without a lead: until every worker has), acting on stop
        requests; stop the lead when every worker is gone, kill it if it outlives its stop timeout."""
        handled = 0
        stop_sent: float | None = None
        gone_since: float | None = None
        while True:
            if lead is not None and not lead.alive:
                break
            if lead is None and not any(w.alive for w in workers):
                break
            now = self.clock()
            while handled < len(self.received):
                handled += 1
                self._escalate(handled, lead, workers)
                if stop_sent is None:
                    stop_sent = now
            if lead is not None and workers and gone_since is None and not any(w.alive for w in workers):
                gone_since = now
            if gone_since is not None and stop_sent is None and now - gone_since >= WORKERS_GONE_GRACE_S \
                    and not self.lead_finishing:
                self.say(f"every worker has exited; stopping the {lead.name if lead else 'run'}")
                if lead is not None:
                    self._signal(lead, signal.SIGINT)
                stop_sent = now
            timeout_s = self.stop_timeout_s + (FINISHING_EXTRA_S if self.lead_finishing else 0.0)
            if stop_sent is not None and now - stop_sent > timeout_s:
                late = [lead] if lead is not None else [w for w in workers if w.alive]
                self.say(f"{', '.join(c.name for c in late)} did not stop within {timeout_s:g} s: killing")
                for child in late:
                    self._signal(child, signal.SIGKILL)
                stop_sent = now  # wait for them to go
            time.sleep(POLL_S)
        if lead is not None:
            code = exit_status(lead.proc.wait())
        else:
            codes = [exit_status(w.proc.wait()) for w in workers]
            code = next((c for c in codes if c != 0), 0)
        self._join_reader(lead)
        return Outcome(code, self.gave_up_waiting, gone_since is not None, tuple(self.received))

    def _join_reader(self, child: Child | None) -> None:
        if child is not None and child.reader is not None:
            child.reader.join(KILL_WAIT_S)

    def _wait(self, children: Sequence[Child], timeout_s: float) -> None:
        deadline = self.clock() + timeout_s
        while any(c.alive for c in children) and self.clock() < deadline:
            time.sleep(POLL_S)

    def shutdown(self) -> None:
        """Stop whatever still runs: the lead first (SIGINT, then SIGKILL after its stop timeout),
        then the workers (their grace to quit on the master's word, SIGTERM, SIGKILL). Idempotent."""
        lead = self.lead
        if lead is not None and lead.alive:
            self._signal(lead, signal.SIGINT)
            self._wait([lead], self.stop_timeout_s + (FINISHING_EXTRA_S if self.lead_finishing else 0.0))
        workers = [c for c in self.children if c is not lead]
        self._wait(workers, self.worker_grace_s)
        for sig, wait_s in ((signal.SIGTERM, KILL_WAIT_S), (signal.SIGKILL, KILL_WAIT_S)):
            left = [c for c in self.children if c.alive]
            if not left:
                break
            if sig == signal.SIGTERM and workers:
                self.say(f"{len(left)} process(es) still running: sending SIGTERM")
            for child in left:
                self._signal(child, sig)
            self._wait(left, wait_s)
        for child in self.children:
            with suppress(subprocess.TimeoutExpired):
                child.proc.wait(KILL_WAIT_S)
            self._join_reader(child)
            if child.proc.stdout is not None:
                child.proc.stdout.close()
