"""Perform a journal's undo actions, from whichever process has to: the master, the guard, or
``reliability revert`` after a reboot.

Actions are plain data (see :mod:`reliability.revert.journal`): ``http``, ``redis``, ``command``
and ``signal``. ``${env:NAME}`` references are expanded from the environment right before the
call, and error text never shows their values. Every call is bounded in time.

Example::

    perform({"do": "http", "method": "DELETE", "url": "http://127.0.0.1:8474/proxies/pg/toxics/chaos-x",
             "ok_also": [404]})
    undo_fault(entry)        # every action of a journal entry, in order; UndoError on the first failure

Imports neither locust nor gevent; redis-py and psutil only when an action needs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping

from reliability.jsontypes import JsonValue, as_array, as_number, as_object, as_str
from reliability.revert.journal import ENV_REF, Action, FaultEntry, UndoError, expand

ONE_LINE_CHARS = 300
DETACHED_GRACE_S = 2.0


def _argv(command: JsonValue) -> list[str]:
    """A journalled command (a string for ``/bin/sh -c``, or a list of words) as argv."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return [as_str(word, "command[]") for word in as_array(command, "command")]


def _seconds(action: Action, key: str, default: float) -> float:
    value = action.get(key)
    return as_number(value, key) if value else default


def _scrub(text: str, template: Action, environ: Mapping[str, str]) -> str:
    """``text`` with the values of every variable ``template`` references masked."""
    names = set(ENV_REF.findall(str(template)))
    for name in names:
        value = environ.get(name)
        if value:
            text = text.replace(value, "***")
    line = " ".join(text.split())
    return line[:ONE_LINE_CHARS]


def _http(action: Action, environ: Mapping[str, str]) -> str:
    from reliability.faults.httpcall import call

    url = expand(as_str(action.get("url"), "url"), environ)
    headers = {key: as_str(value, f"headers.{key}")
               for key, value in expand(as_object(action.get("headers") or {}, "headers"), environ).items()}
    body = expand(action.get("body"), environ)
    reply = call(as_str(action.get("method"), "method"), url, body, headers, _seconds(action, "timeout_s", 10.0))
    if reply.ok or reply.status in as_array(action.get("ok_also") or [], "ok_also"):
        return f"HTTP {reply.status}"
    raise UndoError(reply.error_text())


def _redis(action: Action, environ: Mapping[str, str]) -> str:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    url = expand(as_str(action.get("url"), "url"), environ)
    client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0, retry=Retry(NoBackoff(), 0))
    try:
        for command in as_array(action.get("commands"), "commands"):
            client.execute_command(*expand(as_array(command, "commands[]"), environ))  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError) as exc:
        raise UndoError(str(exc) or type(exc).__name__) from None
    finally:
        client.close()
    return "ok"


def _command(action: Action, environ: Mapping[str, str]) -> str:
    argv = _argv(expand(action.get("command"), environ))
    timeout_s = _seconds(action, "timeout_s", 60.0)
    env = dict(environ)
    if action.get("detach"):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        try:
            code = proc.wait(min(timeout_s, DETACHED_GRACE_S))
        except subprocess.TimeoutExpired:
            return f"started (pid {proc.pid}, still running)"
        if code != 0:
            raise UndoError(f"exit {code}")
        return "exit 0"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
                              check=False, env=env)
    except subprocess.TimeoutExpired:
        raise UndoError(f"timed out after {timeout_s:g} s") from None
    if done.returncode != 0:
        output = (done.stdout + " " + done.stderr).strip()
        raise UndoError(f"exit {done.returncode}" + (f": {output}" if output else ""))
    return "exit 0"


def _signal(action: Action, _environ: Mapping[str, str]) -> str:
    from reliability.revert.journal import process_started

    signum = signal.Signals[as_str(action.get("signal"), "signal")]
    sent = []
    for item in as_array(action.get("processes"), "processes"):
        proc = as_object(item, "processes[]")
        pid = int(as_number(proc.get("pid"), "processes[].pid"))
        started = None if proc.get("started") is None else as_number(proc.get("started"), "processes[].started")
        now_started = process_started(pid)
        if now_started is None or (started is not None and abs(now_started - started) >= 1.0):
            continue  # gone, or the pid belongs to another process now: nothing of ours to undo
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue
        sent.append(str(pid))
    return f"sent to {', '.join(sent)}" if sent else "no such process (nothing to do)"


HANDLERS = {"http": _http, "redis": _redis, "command": _command, "signal": _signal}


def perform(action: Action, environ: Mapping[str, str] | None = None) -> str:
    """Run one action; its one-line outcome, or UndoError with a one-line reason (secrets masked)."""
    env = os.environ if environ is None else environ
    handler = HANDLERS.get(str(action.get("do")))
    if handler is None:
        raise UndoError(f"unknown undo action {action.get('do')!r}")
    try:
        return handler(action, env)
    except UndoError as exc:
        raise UndoError(_scrub(str(exc), action, env)) from None
    except Exception as exc:  # OSError, timeouts, driver errors: one line, retried by the caller
        raise UndoError(_scrub(f"{type(exc).__name__}: {exc}", action, env)) from None


def undo_fault(entry: FaultEntry, environ: Mapping[str, str] | None = None) -> str:
    """Every action of ``entry`` in order (stops at the first failure, raising UndoError)."""
    outcomes = []
    for action in entry.actions:
        try:
            outcomes.append(perform(action, environ))
        except UndoError as exc:
            raise UndoError(f"{action.get('do')}: {exc}") from None
    return "; ".join(outcomes) or "nothing to call (the backend's expiry undoes it)"


def backoff_s(attempt: int, first_s: float = 0.5, cap_s: float = 10.0) -> float:
    """Delay before retry number ``attempt`` (1-based): 0.5, 1, 2, 4 ... capped at ``cap_s``."""
    return float(min(cap_s, first_s * 2 ** max(0, attempt - 1)))


def retry_until(entry: FaultEntry, deadline_s: float,
                on_attempt: Callable[[int, bool, str | None], object] | None = None,
                environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], object] = time.sleep) -> tuple[bool, str]:
    """Undo ``entry``, retrying with backoff until it works or ``deadline_s`` passes.

    ``on_attempt(n, ok, error)`` is told about every attempt. Returns (done, last outcome or error).
    """
    deadline = clock() + deadline_s
    attempt = 0
    while True:
        attempt += 1
        try:
            outcome = undo_fault(entry, environ)
        except UndoError as exc:
            if on_attempt is not None:
                on_attempt(attempt, False, str(exc))
            if clock() + backoff_s(attempt) > deadline:
                return False, str(exc)
            sleep(backoff_s(attempt))
            continue
        if on_attempt is not None:
            on_attempt(attempt, True, None)
        return True, outcome
