"""Run Locust users in a subprocess and read back what they recorded.

Importing locust monkey-patches the whole interpreter with gevent, so the user tests never import
it in the pytest process: :func:`start_harness` launches this file as a script, which builds a
``locust.env.Environment`` with the user classes of a given module, runs a ``LocalRunner`` for a
while and prints one JSON line: Locust's stats, every request sample, user errors and task
exceptions. The pytest side only parses that line.

The ``test_users_*.py`` modules use it. It imports nothing but the standard library until it runs
as the script (``sys.path[0]`` is then this folder: its sibling modules must not shadow a real one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_PREFIX = "HARNESS_RESULT "
MAX_SAMPLES = 200_000


@dataclass
class Sample:
    start_time: float
    response_time_ms: float
    request_type: str
    name: str
    ok: bool
    error: str
    context: dict[str, Any]

    @property
    def end_time(self) -> float:
        return self.start_time + self.response_time_ms / 1000.0


@dataclass
class HarnessResult:
    returncode: int
    stats: dict[str, dict[str, float]]
    samples: list[Sample]
    user_errors: list[str]
    exceptions: list[str]
    extra: dict[str, Any]
    stderr: str

    def named(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def assert_clean(self) -> None:
        """No crashed user, no task exception, no traceback, exit code 0."""
        assert self.returncode == 0, self.stderr[-3000:]
        assert self.user_errors == [], self.user_errors
        assert self.exceptions == [], self.exceptions
        assert "Traceback" not in self.stderr, self.stderr[-3000:]


class Harness:
    """A running harness subprocess; call :meth:`result` to wait for it and parse its output."""

    def __init__(self, proc: subprocess.Popen[str], timeout_s: float) -> None:
        self.proc = proc
        self.timeout_s = timeout_s
        self.started_at = time.time()

    def result(self) -> HarnessResult:
        try:
            out, err = self.proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"harness did not exit within {self.timeout_s:.0f}s:\n{err[-3000:]}") from None
        lines = [line for line in out.splitlines() if line.startswith(RESULT_PREFIX)]
        assert lines, f"harness printed no result (exit {self.proc.returncode}):\n{err[-3000:]}"
        data = json.loads(lines[-1][len(RESULT_PREFIX):])
        return HarnessResult(
            returncode=self.proc.returncode,
            stats=data["stats"],
            samples=[Sample(*row) for row in data["samples"]],
            user_errors=data["user_errors"],
            exceptions=data["exceptions"],
            extra=data["extra"],
            stderr=err,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def start_harness(tmp_path: Path, users_source: str, *, users: int, run_time_s: float,
                  spawn_rate: float = 1000.0, env: dict[str, str] | None = None,
                  host: str | None = None) -> Harness:
    """Write ``users_source`` to a module in ``tmp_path`` and run its user classes in a subprocess."""
    module = tmp_path / f"harness_users_{time.monotonic_ns()}.py"
    module.write_text(textwrap.dedent(users_source))
    spec = {"module": str(module), "users": users, "spawn_rate": spawn_rate, "run_time_s": run_time_s,
            "host": host}
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)],
        cwd=tmp_path, env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    return Harness(proc, timeout_s=run_time_s + 60)


def run_harness(tmp_path: Path, users_source: str, *, users: int, run_time_s: float,
                env: dict[str, str] | None = None, host: str | None = None) -> HarnessResult:
    harness = start_harness(tmp_path, users_source, users=users, run_time_s=run_time_s, env=env, host=host)
    try:
        return harness.result()
    finally:
        harness.kill()


def _main(spec_json: str) -> int:  # pragma: no cover - runs in the subprocess
    import locust  # noqa: F401  (first: patches the process)

    # isort: split
    import importlib.util
    import traceback

    import gevent
    from locust import User
    from locust.env import Environment

    spec = json.loads(spec_json)
    loaded = importlib.util.spec_from_file_location("harness_users", spec["module"])
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    sys.modules["harness_users"] = module
    loaded.loader.exec_module(module)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, User) and not v.abstract]

    env = Environment(user_classes=classes, host=spec["host"])
    samples: list[list[Any]] = []
    user_errors: list[str] = []

    def on_request(request_type: str, name: str, response_time: float, exception: BaseException | None,
                   start_time: float | None = None, context: dict[str, Any] | None = None,
                   **_kwargs: Any) -> None:
        if len(samples) < MAX_SAMPLES:
            samples.append([start_time or 0.0, response_time, request_type, name, exception is None,
                            type(exception).__name__ if exception else "", context or {}])

    def on_user_error(exception: BaseException, tb: Any, **_kwargs: Any) -> None:
        user_errors.append("".join(traceback.format_exception(type(exception), exception, tb)))

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    env.events.user_error.add_listener(on_user_error)  # type: ignore[no-untyped-call]
    runner = env.create_local_runner()
    runner.start(spec["users"], spawn_rate=spec["spawn_rate"])
    gevent.sleep(spec["run_time_s"])
    # read while the users still run (a pool, say, is closed by the last one to stop)
    extra = module.harness_report(env) if hasattr(module, "harness_report") else {}
    runner.quit()
    stats = {f"{e.method} {e.name}": {"requests": e.num_requests, "failures": e.num_failures,
                                     "avg_ms": e.avg_response_time}
             for e in env.stats.entries.values()}
    exceptions = [f"{e['count']}x {e['msg']}\n{e['traceback']}" for e in runner.exceptions.values()]
    print(RESULT_PREFIX + json.dumps({"stats": stats, "samples": samples, "user_errors": user_errors,
                                      "exceptions": exceptions, "extra": extra}), flush=True)
    return 0



class Restartable(Protocol):
    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass
class OutageRun:
    result: HarnessResult
    stopped_at: float
    started_at: float
    ended_at: float

    def before(self) -> list[Sample]:
        return [s for s in self.result.samples if s.end_time < self.stopped_at]

    def during(self) -> list[Sample]:
        return [s for s in self.result.samples if self.stopped_at <= s.end_time and s.start_time <= self.started_at]

    def after(self, settle_s: float) -> list[Sample]:
        return [s for s in self.result.samples if s.start_time >= self.started_at + settle_s]


def run_with_outage(tmp_path: Path, users_source: str, server: Restartable, *, users: int,
                    env: dict[str, str] | None = None, host: str | None = None, up_s: float = 2.5,
                    down_s: float = 2.5, recover_s: float = 4.0) -> OutageRun:
    """Run users; stop ``server`` after ``up_s``, start it again ``down_s`` later, run ``recover_s`` more."""
    harness = start_harness(tmp_path, users_source, users=users, run_time_s=up_s + down_s + recover_s,
                            env=env, host=host)
    try:
        time.sleep(up_s)
        stopped_at = time.time()  # when the stop begins: a fast shutdown fails queries at once
        server.stop()
        time.sleep(down_s)
        server.start()
        started_at = time.time()
        return OutageRun(harness.result(), stopped_at, started_at, time.time())
    finally:
        harness.kill()


def assert_outage_handled(run: OutageRun, users: int, settle_s: float = 2.5) -> None:
    """Successes before, failures (not a failure storm) during, only successes once recovered."""
    run.result.assert_clean()
    before, during, after = run.before(), run.during(), run.after(settle_s)
    assert before and all(s.ok for s in before), {(s.name, s.error) for s in before if not s.ok}
    failed = [s for s in during if not s.ok]
    assert failed, "stopping the server produced no failed sample"
    down_s = run.started_at - run.stopped_at
    assert len(failed) <= users * 15 * down_s, f"{len(failed)} failures in {down_s:.1f}s: reconnecting without backoff"
    assert after and all(s.ok for s in after), {(s.name, s.error) for s in after if not s.ok}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1]))
