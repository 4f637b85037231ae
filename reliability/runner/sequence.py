"""A suite run: each scenario in order through the same processes as a single ``reliability run``,
then one combined record and one readiness report.

Files, for ``--run-record reports/suite.json`` (default ``reports/suite-<UTC>.json``)::

    reports/suite.json, suite.html, suite.junit.xml, suite.md     # combined record + readiness report
    reports/suite/01-baseline.json (+ .html, .junit.xml, .md)      # each scenario's own record and reports

Every scenario's plan (locustfile, host) is checked before the first one starts. Ctrl-C or SIGTERM
stops the scenario that is running (its master reverts faults and writes its record) and the
suite; the combined record is still written, with the scenarios that did not run marked so.
Exit code: the readiness grading's (0 ready, 3 not ready, 4 inconclusive).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from reliability.exceptions import ScenarioError
from reliability.masking import mask
from reliability.record import write_json
from reliability.report import write_reports
from reliability.report.readiness import grade_suite
from reliability.runner.commands import RunOverrides, RunPlan, plan_run
from reliability.runner.single import EXIT_INCONCLUSIVE, SwarmSettings, execute, print_dry_run
from reliability.runner.swarm import stop_requests
from reliability.suite import ScenarioResult, Suite, SuiteEntry, build_suite_record, outcome


def default_suite_record_path(now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return Path("reports") / f"suite-{stamp}.json"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "scenario"


def _entry_overrides(entry: SuiteEntry, cli: RunOverrides, record_path: Path) -> RunOverrides:
    """The command line wins over the entry, the entry over the suite's defaults (already merged)."""
    return RunOverrides(
        locustfile=cli.locustfile or entry.locustfile, host=cli.host or entry.host,
        users=cli.users if cli.users is not None else entry.users,
        spawn_rate=cli.spawn_rate if cli.spawn_rate is not None else entry.spawn_rate,
        run_time_s=cli.run_time_s if cli.run_time_s is not None else entry.run_time_s,
        run_record=str(record_path), sla_tier=cli.sla_tier or entry.sla_tier, locust_stats=cli.locust_stats,
        allow_unsafe_faults=cli.allow_unsafe_faults,
    )


SettingsFor = Callable[[int | None], SwarmSettings]
"""The process layout for a scenario whose entry asks for this many workers (None: not set)."""


def _plans(suite: Suite, settings_for: SettingsFor, cli: RunOverrides,
           folder: Path) -> list[tuple[SuiteEntry, RunPlan, SwarmSettings]]:
    plans = []
    for entry in suite.entries:
        record = folder / f"{entry.index:02d}-{_slug(entry.name)}.json"
        try:
            plan = plan_run(entry.scenario_path, _entry_overrides(entry, cli, record), entry.scenario)
        except ScenarioError as exc:
            raise ScenarioError(suite.path, f"scenarios[{entry.index - 1}]", str(exc)) from None
        plans.append((entry, plan, settings_for(entry.workers)))
    return plans


def run_suite(suite: Suite, cli: RunOverrides, settings_for: SettingsFor, *, dry_run: bool = False,
              out: TextIO | None = None) -> int:
    """Run every scenario of ``suite`` in order; write the combined record and readiness report.
    ``cli``: the command line's overrides (they win over each entry's)."""
    out = out or sys.stdout
    record_path = Path(cli.run_record) if cli.run_record else default_suite_record_path()
    folder = record_path.with_suffix("")
    try:
        plans = _plans(suite, settings_for, cli, folder)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INCONCLUSIVE
    if dry_run:
        secrets = suite.env_secrets()
        for entry, plan, settings in plans:
            env = " ".join(f"{k}={v}" for k, v in entry.env.items())
            out.write(mask(f"# {entry.index}. {entry.name} ({entry.kind}){' with ' + env if env else ''}", secrets)
                      + "\n")
            print_dry_run(plan, settings, out, secrets)
        return 0
    results: list[ScenarioResult] = []
    started = time.time()
    interrupted: str | None = None
    with stop_requests() as received:
        for entry, plan, settings in plans:
            if received:
                break
            out.write(f"[suite] {entry.index}/{len(plans)} {entry.name} ({entry.kind})\n")
            out.flush()
            begun = time.time()
            execution = execute(plan, settings, received, env=dict(entry.env), out=out)
            results.append(ScenarioResult(
                entry, execution.exit_code, os.path.relpath(plan.record_path, record_path.parent),
                execution.record, started_at=begun, ended_at=time.time(),
                problem=None if execution.record is not None else f"no run record (exit {execution.exit_code})"))
            if suite.spec.stop_on_failure and outcome(results[-1]) in ("inconclusive", "error"):
                interrupted = f"stop_on_failure: {entry.name} was {outcome(results[-1])}"
                break
        if received:
            interrupted = f"{signal.Signals(received[0]).name} received"
    combined = build_suite_record(suite, results, started_at=started, ended_at=time.time(), interrupted=interrupted)
    readiness = grade_suite(combined)
    combined.readiness = readiness.to_section()
    written = write_json(combined.to_json_dict(), record_path)
    write_reports(combined, written)
    out.write(f"[suite] production readiness: {readiness.status.upper()}\n")
    for dim in readiness.dimensions:
        score = "" if dim.score is None else f" ({dim.score:.0f})"
        out.write(f"[suite]   {dim.name}: {dim.status}{score}\n")
    for blocker in readiness.blockers:
        out.write(f"[suite]   blocker: {blocker}\n")
    out.write(f"[suite] combined record: {written} (readiness report next to it)\n")
    out.flush()
    return readiness.exit_code
