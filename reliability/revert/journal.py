"""The revert journal: how to undo each fault, written durably before the fault is injected.

One journal per run, an append-only JSON-lines file (mode 0600, each line fsynced before the call
it announces is made). Events, in the order a run writes them::

    {"ev": "run", "t": ..., "pid": 4242, "pid_started": ..., "host": "ci-7", "boot_id": "...",
     "revert_deadline_s": 900}
    {"ev": "guard", "t": ..., "pid": 4250}                                  # the guard is watching
    {"ev": "undo", "t": ..., "fault": "db-lag", "kind": "proxy.latency",
     "backend": "toxiproxy http://127.0.0.1:8474 proxy pg", "dead_man_s": 10, "expires_s": null,
     "actions": [{"do": "http", "method": "DELETE", "url": ".../toxics/chaos-db-lag", ...}]}
    {"ev": "inject", "t": ..., "fault": "db-lag", "ok": true}
    {"ev": "renew", "t": ...}                                               # the master's lease
    {"ev": "attempt", "t": ..., "fault": "db-lag", "by": "master", "n": 1, "ok": false, "error": "..."}
    {"ev": "reverted", "t": ..., "fault": "db-lag", "by": "master"}
    {"ev": "abandoned", "t": ..., "fault": "db-lag", "by": "guard", "error": "..."}
    {"ev": "end", "t": ...}                                                 # the master is done

A fault is *applied* from its ``undo`` line until a ``reverted`` line (an ``abandoned`` one means
the guard gave up: still applied, and ``reliability revert`` lists it). Secrets never appear in a
journal: a value that came from an environment variable is written as ``${env:NAME}`` and looked
up again when the undo runs (``reliability.revert.undo``); an undo that would need a secret no
environment variable holds cannot be described, and the fault is refused.

Where: ``$RELIABILITY_REVERT_JOURNAL`` (a file) if set, else a new file in
``$RELIABILITY_JOURNAL_DIR``, else in ``$XDG_STATE_HOME/reliability/journals`` (default
``~/.local/state/reliability/journals``): persistent storage, so it is still there after a reboot.

Example::

    journal = Journal(new_journal_path())
    journal.append("run", **run_identity())
    journal.append("undo", fault="f", kind="webhook", backend="...", actions=[...], dead_man_s=10, expires_s=None)
    state = read_journal(journal.path)
    [entry.name for entry in state.applied()]      # ['f']

Standard library only, and psutil to tell whether a process is still the same one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypedDict, overload

from reliability.jsontypes import JsonArray, JsonObject, JsonValue

JOURNAL_ENV = "RELIABILITY_REVERT_JOURNAL"
JOURNAL_DIR_ENV = "RELIABILITY_JOURNAL_DIR"
SUFFIX = ".jsonl"
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
# Environment variables whose values are treated as secrets wherever they show up in an undo.
SECRET_NAME = re.compile(r"PASS|TOKEN|SECRET|KEY|DSN|AUTH|CRED|COOKIE|SESSION", re.IGNORECASE)
SECRET_HEADER = re.compile(r"auth|token|key|secret|cookie|session|signature|password", re.IGNORECASE)
MIN_SECRET_CHARS = 4
DEFAULT_REVERT_DEADLINE_S = 900.0
APPLIED = ("pending", "abandoned")

Action = JsonObject
"""One undo action, a JSON object whose ``do`` key says what it is (see the builders below). Read
back from a journal it is JSON until :mod:`reliability.revert.undo` checks its fields to perform it."""


class RunIdentity(TypedDict):
    """Who injects: the fields of a journal's ``run`` line that identify the process."""

    pid: int
    pid_started: float | None
    host: str
    boot_id: str | None


class Attempt(TypedDict):
    """One journalled attempt to undo a fault (a field the line lacks is None)."""

    t: float | None
    by: str | None
    n: int | None
    ok: bool | None
    error: str | None


def _number_or_none(value: JsonValue) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int_or_none(value: JsonValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


class UndoError(Exception):
    """An undo cannot be described (the fault is refused) or performed (retried); one line."""


@dataclass(frozen=True)
class Undo:
    """How to undo one fault: ``actions`` in order (see :mod:`reliability.revert.undo`), and
    ``expires_s`` when the backend also drops the fault by itself that long after the last
    renewal (a TTL, a session timeout). ``backend`` names what is changed, so a later run on the
    same backend can be stopped while this is still applied.

    Example::

        Undo("redis redis://127.0.0.1:6379/0", (redis_action(url, [["CONFIG", "SET", "maxmemory", "0"]]),))
    """

    backend: str
    actions: tuple[Action, ...] = ()
    expires_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(self.actions))  # reference_secrets gives lists back
        if not self.actions and self.expires_s is None:
            raise UndoError("nothing undoes it: no undo action and no expiry")


def http_action(method: str, url: str, body: JsonValue = None, headers: Mapping[str, str] | None = None,
                ok_also: Iterable[int] = (404,), timeout_s: float = 10.0) -> Action:
    """An HTTP call (2xx, or a status in ``ok_also``, is success)."""
    return {"do": "http", "method": method, "url": url, "body": body, "headers": dict(headers or {}),
            "ok_also": [code for code in sorted(ok_also)], "timeout_s": timeout_s}


def redis_action(url: str, commands: list[list[str]]) -> Action:
    """Redis commands sent in order on one connection."""
    return {"do": "redis", "url": url, "commands": [[*command] for command in commands]}


def command_action(command: str | list[str], timeout_s: float, detach: bool = False) -> Action:
    """A command (a string runs through ``/bin/sh -c``); exit 0 is success. ``detach``: it may
    keep running (a server restarted in the foreground): success if it has not failed within
    ``timeout_s``."""
    words: JsonValue = command if isinstance(command, str) else [*command]
    return {"do": "command", "command": words, "timeout_s": timeout_s, "detach": detach}


def signal_action(processes: Iterable[tuple[int, float | None]], signal_name: str) -> Action:
    """A signal to processes given as (pid, start time): a pid now held by another process is skipped."""
    return {"do": "signal", "signal": signal_name,
            "processes": [{"pid": pid, "started": started} for pid, started in processes]}


def _items(value: JsonValue) -> JsonArray:
    """A journalled list, or no items when the field is missing or not a list."""
    return value if isinstance(value, list) else []


def _words(value: JsonValue) -> str:
    return value if isinstance(value, str) else " ".join(str(part) for part in _items(value))


def describe_action(action: Action) -> str:
    """One line for people: what the action calls (secrets stay as ``${env:NAME}``)."""
    kind = action.get("do")
    if kind == "http":
        body = "" if action.get("body") is None else " " + json.dumps(action["body"], separators=(",", ":"))
        return f"{action.get('method')} {action.get('url')}{body}"
    if kind == "redis":
        return f"redis {action.get('url')}: " + "; ".join(_words(cmd) for cmd in _items(action.get("commands")))
    if kind == "command":
        return f"run {'(detached) ' if action.get('detach') else ''}{_words(action.get('command'))}"
    if kind == "signal":
        pids = [proc.get("pid") if isinstance(proc, dict) else proc for proc in _items(action.get("processes"))]
        return f"{action.get('signal')} to pid " + ", ".join(str(pid) for pid in pids)
    return f"unknown action {kind!r}"


def _secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """value -> variable name of the environment's secret-looking variables."""
    return {value: name for name, value in sorted(environ.items())
            if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_CHARS}


@overload
def reference_secrets(value: str, secrets: Iterable[str], environ: Mapping[str, str], what: str) -> str: ...

@overload
def reference_secrets(value: JsonObject, secrets: Iterable[str], environ: Mapping[str, str], what: str) -> JsonObject:
    ...

@overload
def reference_secrets(value: list[str], secrets: Iterable[str], environ: Mapping[str, str], what: str) -> list[str]:
    ...

@overload
def reference_secrets(value: tuple[JsonObject, ...], secrets: Iterable[str], environ: Mapping[str, str],
                      what: str) -> list[JsonObject]: ...

@overload
def reference_secrets(value: JsonValue, secrets: Iterable[str], environ: Mapping[str, str], what: str) -> JsonValue:
    ...

def reference_secrets(value: JsonValue | list[str] | tuple[JsonObject, ...], secrets: Iterable[str],
                      environ: Mapping[str, str], what: str) -> JsonValue | list[str] | list[JsonObject]:
    """``value`` (strings, lists, dicts) with every secret replaced by ``${env:NAME}``.

    ``secrets`` are values that must not be written (URL passwords, auth headers, tokens); each
    must be the value of some environment variable, else UndoError. Values of secret-looking
    variables (``*PASSWORD*``, ``*TOKEN*``, ...) are referenced wherever they appear.

    >>> reference_secrets({"url": "redis://:pw12@h"}, ["pw12"], {"REDIS_PW": "pw12"}, "f")
    {'url': 'redis://:${env:REDIS_PW}@h'}
    """
    by_value = _secret_values(environ)
    for secret in secrets:
        if not secret or secret in by_value:
            continue
        names = sorted(name for name, val in environ.items() if val == secret)
        if not names:
            raise UndoError(f"{what}: its undo needs a secret that no environment variable holds; "
                            "give it as ${VAR} in the scenario so the journal can refer to it")
        by_value[secret] = names[0]
    ordered = sorted(by_value.items(), key=lambda item: -len(item[0]))  # longest first: no partial overlap

    def walk(node: JsonValue) -> JsonValue:
        if isinstance(node, str):
            for secret, name in ordered:
                node = node.replace(secret, "${env:" + name + "}")
            return node
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    if isinstance(value, tuple):  # actions: each walked, so each comes back an object
        return [{key: walk(item) for key, item in action.items()} for action in value]
    if isinstance(value, list):  # a command's words (or any JSON array)
        return [walk(item) for item in value]
    return walk(value)


def secret_headers(headers: Mapping[str, str]) -> list[str]:
    """The values of headers that carry credentials (Authorization, X-Api-Key, Cookie, ...)."""
    return [value for key, value in headers.items() if SECRET_HEADER.search(key) and value]


@overload
def expand(value: str, environ: Mapping[str, str]) -> str: ...

@overload
def expand(value: JsonObject, environ: Mapping[str, str]) -> JsonObject: ...

@overload
def expand(value: JsonArray, environ: Mapping[str, str]) -> JsonArray: ...

@overload
def expand(value: JsonValue, environ: Mapping[str, str]) -> JsonValue: ...

def expand(value: JsonValue, environ: Mapping[str, str]) -> JsonValue:
    """``value`` with ``${env:NAME}`` references replaced by the environment's values (UndoError
    naming the variable when it is not set)."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise UndoError(f"environment variable {name} is not set (this undo needs it)")
            return environ[name]

        return ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {key: expand(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, environ) for item in value]
    return value


# -- where journals live --------------------------------------------------------------------------------


def journal_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The directory journals go to (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get(JOURNAL_DIR_ENV):
        return Path(env[JOURNAL_DIR_ENV]).expanduser()
    state = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state) / "reliability" / "journals"


def new_journal_path(environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time) -> Path:
    """This run's journal: ``$RELIABILITY_REVERT_JOURNAL`` or a new file in :func:`journal_dir`."""
    env = os.environ if environ is None else environ
    if env.get(JOURNAL_ENV):
        return Path(env[JOURNAL_ENV]).expanduser()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    return journal_dir(env) / f"run-{stamp}-{os.getpid()}{SUFFIX}"


def journal_files(directory: Path) -> list[Path]:
    """The journals in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SUFFIX}"))


# -- process identity -------------------------------------------------------------------------------


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def process_started(pid: int) -> float | None:
    """When ``pid`` started (psutil's create_time), None when unknown."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:  # no such process, no permission: unknown
        return None


def run_identity(pid: int | None = None) -> RunIdentity:
    """Fields of a ``run`` line: who injects (pid, its start time, host, boot)."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "pid_started": process_started(pid), "host": socket.gethostname(), "boot_id": boot_id()}


def process_alive(pid: int | None, started: float | None, host: str | None = None,
                  boot: str | None = None) -> bool | None:
    """Is the process that wrote a journal still running? None when this host cannot tell."""
    if pid is None:
        return None
    if host is not None and host != socket.gethostname():
        return None
    if boot is not None and boot_id() not in (None, boot):
        return False  # rebooted since
    import psutil  # a dependency of the toolkit; imported here so reading a journal does not need it

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


# -- writing -------------------------------------------------------------------------------------------


class Journal:
    """Appends events to one journal file, each line written and fsynced before ``append`` returns.

    Example::

        journal = Journal(path)
        journal.append("inject", fault="db-lag", ok=True)
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if created:  # the new directory entry must survive a crash too
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        return self._fd

    def append(self, event: str, durable: bool = True, **fields: JsonValue) -> None:
        """Write one event line, fsynced unless ``durable=False`` (OSError when the disk refuses).
        One ``write`` on an ``O_APPEND`` descriptor: lines of two writers never interleave."""
        entry: JsonObject = {"ev": event, "t": round(self.clock(), 3), **fields}
        data = (json.dumps(entry, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        fd = self._open()
        os.write(fd, data)
        if durable:
            os.fsync(fd)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# -- reading -------------------------------------------------------------------------------------------


def _actions(value: JsonValue) -> list[Action]:
    """The ``actions`` of an ``undo`` line; an item that is not an object is kept as an action no
    handler knows, so performing it fails (and says so) instead of the fault passing as undone."""
    items = value if isinstance(value, list) else []
    return [item if isinstance(item, dict) else {"do": "invalid", "value": item} for item in items]


@dataclass
class FaultEntry:
    """What a journal says about one fault. ``state``: pending (applied, being undone), reverted,
    expired (the backend's own expiry has run out), abandoned (the guard gave up: still applied)."""

    name: str
    kind: str
    backend: str
    actions: list[Action]
    dead_man_s: float | None
    expires_s: float | None
    undo_t: float
    state: str = "pending"
    injected: bool | None = None
    inject_error: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    reverted_by: str | None = None
    reverted_t: float | None = None
    last_error: str | None = None

    def expired(self, now: float, last_renew_t: float | None) -> bool:
        """An expiry-only fault whose backend has dropped it by now (one second of margin)."""
        if self.actions or self.expires_s is None:
            return False
        since = max(self.undo_t, last_renew_t or 0.0)
        return now >= since + self.expires_s + 1.0


@dataclass
class JournalState:
    """A journal read back (see :func:`read_journal`)."""

    path: Path
    run: JsonObject = field(default_factory=dict)
    faults: dict[str, FaultEntry] = field(default_factory=dict)
    ended: bool = False
    guard_pid: int | None = None
    last_master_t: float | None = None
    last_renew_t: float | None = None
    bad_lines: int = 0

    def feed(self, entry: JsonObject) -> None:
        """Apply one event."""
        event = entry.get("ev")
        t = _number_or_none(entry.get("t")) or 0.0
        if event == "run":
            self.run = entry
        elif event == "guard":
            self.guard_pid = _int_or_none(entry.get("pid"))
            return
        elif event == "end":
            self.ended = True
        elif event == "renew":
            self.last_renew_t = t
        fault = self.faults.get(str(entry.get("fault")))
        if event == "undo":
            self.faults[str(entry["fault"])] = FaultEntry(
                name=str(entry["fault"]), kind=str(entry.get("kind")), backend=str(entry.get("backend")),
                actions=_actions(entry.get("actions")), dead_man_s=_number_or_none(entry.get("dead_man_s")),
                expires_s=_number_or_none(entry.get("expires_s")), undo_t=t)
        elif fault is not None and event == "inject":
            fault.injected = bool(entry.get("ok"))
            fault.inject_error = _str_or_none(entry.get("error"))
        elif fault is not None and event == "attempt":
            ok = entry.get("ok")
            fault.attempts.append(Attempt(t=_number_or_none(entry.get("t")), by=_str_or_none(entry.get("by")),
                                          n=_int_or_none(entry.get("n")), ok=ok if isinstance(ok, bool) else None,
                                          error=_str_or_none(entry.get("error"))))
            if not ok:
                fault.last_error = _str_or_none(entry.get("error"))
        elif fault is not None and event in ("reverted", "expired"):
            fault.state = "reverted" if event == "reverted" else "expired"
            fault.reverted_by = _str_or_none(entry.get("by"))
            fault.reverted_t = t
        elif fault is not None and event == "abandoned":
            fault.state = "abandoned"
            fault.last_error = _str_or_none(entry.get("error")) or fault.last_error
        if entry.get("by", "master") == "master" and event != "guard":
            self.last_master_t = t

    def applied(self, now: float | None = None) -> list[FaultEntry]:
        """Faults the journal says are still applied (pending or abandoned), leaving out those
        only a backend expiry undoes once that expiry has run out (at ``now``, default: now)."""
        moment = time.time() if now is None else now
        return [f for f in self.faults.values()
                if f.state in APPLIED and not f.expired(moment, self.last_renew_t)]

    @property
    def revert_deadline_s(self) -> float:
        """How long the run said its faults may be retried (the default when it did not say)."""
        return _number_or_none(self.run.get("revert_deadline_s")) or DEFAULT_REVERT_DEADLINE_S

    @property
    def master_alive(self) -> bool | None:
        run = self.run
        return process_alive(_int_or_none(run.get("pid")), _number_or_none(run.get("pid_started")),
                             _str_or_none(run.get("host")), _str_or_none(run.get("boot_id")))


class JournalTail:
    """Reads a journal incrementally: each :meth:`poll` feeds the complete lines added since.

    Example::

        tail = JournalTail(path)
        new = tail.poll()        # number of events read; tail.state is up to date
    """

    def __init__(self, path: Path) -> None:
        self.state = JournalState(path)
        self._fh: IO[bytes] | None = None
        self._partial = b""

    def poll(self) -> int:
        if self._fh is None:  # kept open: a journal renamed once the run is done is still read to its end
            try:
                self._fh = open(self.state.path, "rb")  # noqa: SIM115 - closed in close()
            except FileNotFoundError:
                return 0
        data = self._fh.read()
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the rest
        count = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                self.state.bad_lines += 1  # a torn write from a crash: skip it, keep the rest
                continue
            if isinstance(entry, dict):
                self.state.feed(entry)
                count += 1
        return count

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()


def read_journal(path: Path) -> JournalState:
    """A whole journal, read once."""
    tail = JournalTail(path)
    tail.poll()
    tail.close()
    if tail._partial.strip():
        try:
            entry = json.loads(tail._partial)
        except ValueError:
            tail.state.bad_lines += 1
        else:
            if isinstance(entry, dict):
                tail.state.feed(entry)
    return tail.state
