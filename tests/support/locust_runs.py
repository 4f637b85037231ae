"""Locust and ``reliability run`` as subprocesses, with their output read as it comes.

* :func:`launch` starts Locust on a scenario (headless local, a master with workers, or the web UI
  with autostart) against a host, as a :class:`LocustRun`; :func:`running` cleans it up;
* :class:`Run` is a ``reliability run`` command and every process below it; :func:`start` adds
  one to the ``runs`` fixture's list (killed at the end of the test), and :func:`scenario` writes
  a scenario whose locustfile (``READER_LOCUSTFILE``) dumps every sample each load generator took.

Example::

    with running(launch(tmp_path, scenario_yaml, target.url, workers=1)) as run:
        assert run.finish() == 0
        record = run.record()
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.processes import ROOT, locust_cmd
from tests.support.schemas import assert_valid_record
from tests.support.servers import free_port
from tests.support.waits import wait_until

DEGRADATION_LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/degradation_user.py")
API_LOCUSTFILE = str(ROOT / "locustfiles/api.py")

READER_LOCUSTFILE = '''
import json, os, random, time
from locust import constant, events, task
from locust.runners import MasterRunner
import reliability.plugin  # noqa: F401
from reliability.users.http import ApiUser

OUT = os.environ["SAMPLES_DIR"]
samples = []


class Reader(ApiUser):
    wait_time = constant(0.1)

    @task(3)
    def get(self):
        self.call("GET", f"/api/items/{random.randint(1, 50)}", name="/api/items/[id]")

    @task(1)
    def list(self):
        self.call("GET", "/api/items?limit=20", name="/api/items")


@events.request.add_listener
def _keep(request_type, name, response_time, exception=None, **_kw):
    samples.append([time.time(), request_type, name, response_time, exception is not None])


@events.init.add_listener
def _who(environment, runner=None, **_kw):
    # at init, not test_start: a worker joining mid-run can get its spawn (and test_start) while it
    # is still connecting, before environment.runner is set
    if not isinstance(runner, MasterRunner):
        with open(os.path.join(OUT, f"{os.getpid()}.id"), "w") as fh:
            fh.write(getattr(runner, "client_id", "local"))


@events.quitting.add_listener
def _dump(environment, **_kw):
    if not isinstance(environment.runner, MasterRunner):
        with open(os.path.join(OUT, f"{os.getpid()}.json"), "w") as fh:
            json.dump(samples, fh)
'''


@dataclass
class LocustRun:
    """A Locust master (or local runner) subprocess, its workers, and the master's output lines."""

    master: subprocess.Popen[str]
    workers: list[subprocess.Popen[bytes]]
    record_path: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.master.stdout is not None
        for line in self.master.stdout:
            self.lines.append((time.time(), line))

    def output(self) -> str:
        return "".join(line for _, line in self.lines)

    def wait_for(self, needle: str, timeout_s: float = 30.0) -> float:
        """When ``needle`` appeared in the master's output (waits for it)."""

        def seen_at() -> float | None:
            at = next((at for at, line in list(self.lines) if needle in line), None)
            if at is None and self.master.poll() is not None and self.reader is not None \
                    and not self.reader.is_alive():
                raise AssertionError(f"{needle!r} not seen; output:\n{self.output()[-4000:]}")
            return at

        return wait_until(seen_at, timeout_s, interval_s=0.02, what=repr(needle),
                          detail=lambda: f"output:\n{self.output()[-4000:]}")

    def finish(self, timeout_s: float = 90.0) -> int:
        code = self.master.wait(timeout_s)
        if self.reader is not None:
            self.reader.join(10)
        return code

    def record(self) -> dict[str, Any]:
        assert self.record_path.exists(), self.output()[-4000:]
        return assert_valid_record(self.record_path)

    def cleanup(self) -> None:
        procs: list[subprocess.Popen[Any]] = [self.master, *self.workers]
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        if self.master.stdout is not None:
            self.master.stdout.close()


def launch(tmp_path: Path, scenario: str, host: str, env: dict[str, str] | None = None, *, workers: int = 0,
           web: bool = False, run_time: str = "90s", locustfile: str = DEGRADATION_LOCUSTFILE) -> LocustRun:
    """Start Locust on ``scenario`` (YAML text): headless local, a master with ``workers``, or the
    web UI with autostart (and autoquit once the shape ends)."""
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(scenario)
    record = tmp_path / "run.json"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    args = ["-f", locustfile, "--host", host, "--scenario", str(scenario_path), "--run-record", str(record),
            "--only-summary", "-t", run_time, "--sla-status-interval", "2"]
    if web:
        args += ["--autostart", "--autoquit", "1", "--web-host", "127.0.0.1", "--web-port", str(free_port())]
    else:
        args += ["--headless"]
    port = free_port()
    if workers:
        args += ["--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
                 "--master-bind-port", str(port)]
    master = subprocess.Popen(locust_cmd(*args), cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    procs = [subprocess.Popen(locust_cmd("-f", locustfile, "--worker", "--master-host", "127.0.0.1",
                                         "--master-port", str(port)),
                              cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    run = LocustRun(master, procs, record)
    run.reader = threading.Thread(target=run._read, daemon=True)
    run.reader.start()
    return run


@contextmanager
def running(run: LocustRun) -> Iterator[LocustRun]:
    try:
        yield run
    finally:
        run.cleanup()


class Run:
    """A `reliability run` subprocess, its output lines and every process it started."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.samples = tmp_path / "samples"
        self.samples.mkdir(exist_ok=True)
        env = {**os.environ, "SAMPLES_DIR": str(self.samples), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "reliability.cli", "run", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.seen: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def children(self) -> list[psutil.Process]:
        """Every process below this run now (remembered for :meth:`leftovers`)."""
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(p.pid for p in found)
        return found

    def workers(self, count: int, timeout_s: float = 30.0) -> list[psutil.Process]:
        def started() -> list[psutil.Process]:
            found = [p for p in self.children() if "--worker" in p.cmdline()]
            return found if len(found) >= count else []

        return wait_until(started, timeout_s, interval_s=0.1, what=f"{count} worker(s) to start",
                          detail=lambda: f"output:\n{self.output[-3000:]}")

    def wait_for(self, needle: str, timeout_s: float = 30.0) -> None:
        def seen() -> bool:
            self.children()
            return needle in self.output

        wait_until(seen, timeout_s, interval_s=0.1, what=repr(needle), detail=lambda: f"output:\n{self.output[-3000:]}")

    def finish(self, timeout_s: float = 90.0) -> int:
        while self.proc.poll() is None and timeout_s > 0:
            self.children()
            time.sleep(0.2)
            timeout_s -= 0.2
        code = self.proc.wait(5)
        self._reader.join(10)
        return code

    def leftovers(self) -> list[int]:
        """Processes this run started that still exist (zombies count as gone)."""
        alive = []
        for pid in self.seen:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def kill_all(self) -> None:
        for pid in [*self.leftovers(), self.proc.pid]:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start(runs: list[Run], tmp_path: Path, path: Path, *args: str) -> tuple[Run, Path]:
    """`reliability run SCENARIO ARGS --run-record <tmp>/run.json`, stopped at the end of the test."""
    record = tmp_path / "run.json"
    run = Run(tmp_path, str(path), *args, "--run-record", str(record))
    runs.append(run)
    return run, record


# The subject of these runs is the orchestration, not the evidence rule: 80 % intervals let the
# ~100-200 clean requests a loaded machine makes in a few seconds show bronze.
def scenario(tmp_path: Path, load: str = "", body: str = "sla: {tier: bronze, confidence: 0.8}\n") -> Path:
    """A scenario file using the sample-dumping locustfile; ``load`` adds to its ``load:`` mapping."""
    locustfile = tmp_path / "reader.py"
    locustfile.write_text(READER_LOCUSTFILE)
    path = tmp_path / "scenario.yaml"
    path.write_text(f"load: {{locustfile: {locustfile}{', ' + load if load else ''}}}\n{body}")
    return path


def shell_scenario(tmp_path: Path, marker: Path, extra: str = "") -> Path:
    """A valid scenario whose shell fault touches ``marker`` half a second into the run."""
    path = tmp_path / "shell.yaml"
    path.write_text(f"""\
name: shell fault
load: {{locustfile: {API_LOCUSTFILE}}}
recovery: {{warmup_s: 0s}}
faults:
  - name: touch
    at_s: 500ms
    hold_s: 1s
    fault: {{type: shell, inject: "touch {marker}", revert: "true"}}
{extra}""")
    return path
