"""Locust command lines for one scenario: a local runner, a master, its workers. Pure: no processes.

Values come from the command line first, then the scenario file (``target.host``, ``load:``), then
defaults. A scenario with a ``shape:`` section drives (and ends) the load itself, so ``-u/-r/-t`` are
only passed for it when given on the command line.

Example::

    plan = plan_run("scenarios/api_gold.yaml", RunOverrides(locustfile="locustfiles/api.py"))
    master_command(plan, MasterSettings(workers=2, bind_host="127.0.0.1", bind_port=5557))
    worker_command(plan, "127.0.0.1", 5557)
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reliability.config import ScenarioSpec, load_scenario
from reliability.exceptions import ScenarioError
from reliability.faults.optin import require_opt_in
from reliability.record import default_record_path

DEFAULT_MASTER_PORT = 5557
# seconds Locust's web UI lingers after an autostarted run ends, so a last scrape can read it
WEB_AUTOQUIT_S = 5


@dataclass(frozen=True)
class RunOverrides:
    """What the command line says; ``None`` leaves the scenario's value (or the default)."""

    locustfile: str | None = None
    host: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    run_time_s: float | None = None
    run_record: str | None = None
    sla_tier: str | None = None
    locust_stats: bool = False
    allow_unsafe_faults: bool = False


@dataclass(frozen=True)
class RunPlan:
    """Everything the Locust processes of one run need, resolved.

    ``run_time_s`` is None when the scenario's shape decides how long the run lasts.
    """

    scenario_path: str
    scenario: ScenarioSpec
    locustfile: str
    host: str | None
    users: int | None
    spawn_rate: float | None
    run_time_s: float | None
    record_path: Path
    sla_tier: str | None = None
    locust_stats: bool = False
    allow_unsafe_faults: bool = False


@dataclass(frozen=True)
class MasterSettings:
    """How the master listens and waits for its workers; ``web_port`` None runs it headless."""

    workers: int
    bind_host: str
    bind_port: int
    expect_timeout_s: float = 60.0
    rebalance: bool = True
    web_host: str = "127.0.0.1"
    web_port: int | None = None
    web_origins: tuple[str, ...] = ()  # --web-origin: other origins the web UI is reached at


def _resolve_locustfile(value: str, scenario_path: str, from_scenario: bool) -> str:
    """A path that exists: as given (from the current directory), else next to the scenario file."""
    if "," in value or "://" in value:  # Locust's own forms: several files, or a URL
        return value
    candidates = [Path(value)]
    if from_scenario and not Path(value).is_absolute():
        candidates.append(Path(scenario_path).parent / value)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    where = "load.locustfile" if from_scenario else "--locustfile"
    tried = ", ".join(str(c) for c in candidates)
    raise ScenarioError(scenario_path, where, f"locustfile not found (tried {tried})")


def plan_run(scenario_path: str | os.PathLike[str], overrides: RunOverrides = RunOverrides(),
             scenario: ScenarioSpec | None = None) -> RunPlan:
    """Validate the scenario (unless given) and resolve every value the Locust commands need."""
    path = str(scenario_path)
    spec = scenario if scenario is not None else load_scenario(path)
    require_opt_in(spec, overrides.allow_unsafe_faults, path)  # before any process starts
    if overrides.locustfile:
        locustfile = _resolve_locustfile(overrides.locustfile, path, from_scenario=False)
    elif spec.load.locustfile:
        locustfile = _resolve_locustfile(spec.load.locustfile, path, from_scenario=True)
    else:
        raise ScenarioError(path, "load.locustfile", "no locustfile: set it in the scenario or pass "
                                                     "--locustfile (e.g. locustfiles/api.py)")
    shaped = spec.shape is not None
    load = spec.load
    return RunPlan(
        scenario_path=path,
        scenario=spec,
        locustfile=locustfile,
        host=overrides.host or spec.target.host,
        users=overrides.users if overrides.users is not None else (None if shaped else load.users),
        spawn_rate=overrides.spawn_rate if overrides.spawn_rate is not None else (None if shaped else load.spawn_rate),
        run_time_s=overrides.run_time_s if overrides.run_time_s is not None else (None if shaped else load.run_time_s),
        record_path=Path(overrides.run_record) if overrides.run_record else default_record_path(),
        sla_tier=overrides.sla_tier,
        locust_stats=overrides.locust_stats,
        allow_unsafe_faults=overrides.allow_unsafe_faults,
    )


def _locust(python: str) -> list[str]:
    return [python, "-m", "locust"]


def _load_args(plan: RunPlan) -> list[str]:
    args = ["-f", plan.locustfile]
    if plan.host:
        args += ["--host", plan.host]
    return args


def _grading_args(plan: RunPlan) -> list[str]:
    """What the process that grades the run (master or local runner) needs on top of the load."""
    args = ["--scenario", plan.scenario_path, "--run-record", str(plan.record_path)]
    if plan.users is not None:
        args += ["-u", str(plan.users)]
    if plan.spawn_rate is not None:
        args += ["-r", f"{plan.spawn_rate:g}"]
    if plan.run_time_s is not None:
        args += ["-t", f"{max(1, math.ceil(plan.run_time_s))}s"]  # Locust takes whole seconds
    if plan.sla_tier:
        args += ["--sla-tier", plan.sla_tier]
    if plan.allow_unsafe_faults:
        args.append("--allow-unsafe-faults")
    if not plan.locust_stats:
        args.append("--only-summary")
    return args


def local_command(plan: RunPlan, python: str = sys.executable) -> list[str]:
    """One headless local runner: generates the load and grades it."""
    return [*_locust(python), *_load_args(plan), "--headless", *_grading_args(plan)]


def master_command(plan: RunPlan, master: MasterSettings, python: str = sys.executable) -> list[str]:
    """The master: waits for ``master.workers`` workers (at most ``expect_timeout_s``), then runs
    and grades the test. With ``web_port`` it serves the web UI (and ``/metrics``) and starts by
    itself; otherwise it runs headless."""
    args = [*_locust(python), *_load_args(plan)]
    if master.web_port is None:
        args.append("--headless")
    else:
        args += ["--autostart", "--autoquit", str(WEB_AUTOQUIT_S), "--web-host", master.web_host,
                 "--web-port", str(master.web_port)]
        for origin in master.web_origins:
            args += ["--web-origin", origin]
    args += _grading_args(plan)
    args += ["--master", "--expect-workers", str(master.workers), "--master-bind-host", master.bind_host,
             "--master-bind-port", str(master.bind_port),
             "--expect-workers-max-wait", f"{max(1, math.ceil(master.expect_timeout_s))}"]
    if master.rebalance:
        args.append("--enable-rebalancing")  # a joining or lost worker's share of users is re-spread
    return args


def worker_command(plan: RunPlan, master_host: str, master_port: int, python: str = sys.executable) -> list[str]:
    """A worker: only users and metric recording; it takes everything else from the master."""
    return [*_locust(python), *_load_args(plan), "--worker", "--master-host", master_host,
            "--master-port", str(master_port)]


def shell_line(command: Sequence[str]) -> str:
    """A command as one line a shell would run (for ``--dry-run`` and logs)."""
    return shlex.join(command)
