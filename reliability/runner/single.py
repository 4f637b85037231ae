"""One scenario's processes, from start to exit code: which commands a layout runs, running them
under a :class:`~reliability.runner.swarm.Swarm`, and the summary printed after the run.

``reliability run`` (:mod:`reliability.runner.cli`) parses the command line into a
:class:`SwarmSettings` and a plan and calls :func:`execute`; a suite
(:mod:`reliability.runner.sequence`) calls it once per scenario.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from reliability.exceptions import ReliabilityError
from reliability.jsontypes import JsonObject
from reliability.masking import mask
from reliability.record import read_json
from reliability.runner.commands import (
    DEFAULT_MASTER_PORT,
    MasterSettings,
    RunPlan,
    local_command,
    master_command,
    shell_line,
    worker_command,
)
from reliability.runner.swarm import Outcome, Swarm
from reliability.schema import RunRecord, parse_record
from reliability.sla import OUTCOMES

EXIT_INCONCLUSIVE = 4


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SwarmSettings:
    """Which processes to run and how: ``role`` is ``swarm`` (master + workers here), ``local``,
    ``master`` (workers elsewhere) or ``worker`` (to a master elsewhere)."""

    role: str
    workers: int
    master_host: str = "127.0.0.1"
    master_port: int = DEFAULT_MASTER_PORT
    bind_host: str = "127.0.0.1"
    bind_port: int | None = None
    expect_timeout_s: float = 60.0
    stop_timeout_s: float = 60.0
    web_host: str = "127.0.0.1"
    web_port: int | None = None
    rebalance: bool = True
    web_origins: tuple[str, ...] = ()

    def with_workers(self, workers: int) -> SwarmSettings:
        """The same settings for ``workers`` workers (``swarm`` becomes ``local`` at 0)."""
        role = self.role
        if role in ("swarm", "local"):
            role = "swarm" if workers > 0 else "local"
        return replace(self, role=role, workers=workers)


@dataclass(frozen=True)
class Execution:
    """One run's end: the exit code we report and the record it wrote (None when it wrote none)."""

    exit_code: int
    record: JsonObject | None  # as read, of any schema version
    outcome: Outcome | None = None


def commands(plan: RunPlan, settings: SwarmSettings) -> tuple[list[str] | None, list[list[str]]]:
    """(the lead's command or None, the workers' commands) for this layout."""
    if settings.role == "local":
        return local_command(plan), []
    if settings.role == "worker":
        return None, [worker_command(plan, settings.master_host, settings.master_port)] * settings.workers
    port = settings.bind_port or (free_port() if settings.role == "swarm" else DEFAULT_MASTER_PORT)
    master = MasterSettings(workers=settings.workers, bind_host=settings.bind_host, bind_port=port,
                            expect_timeout_s=settings.expect_timeout_s, rebalance=settings.rebalance,
                            web_host=settings.web_host, web_port=settings.web_port,
                            web_origins=settings.web_origins)
    workers = [worker_command(plan, "127.0.0.1", port)] * settings.workers if settings.role == "swarm" else []
    return master_command(plan, master), workers


def _describe(settings: SwarmSettings) -> str:
    return {
        "local": "a local runner",
        "swarm": f"a master and {settings.workers} local worker process(es)",
        "master": f"a master waiting for {settings.workers} worker(s) from other hosts",
        "worker": f"{settings.workers} worker process(es) for the master at "
                  f"{settings.master_host}:{settings.master_port}",
    }[settings.role]


def _fresh_record(path: Path, since: float) -> JsonObject | None:
    """The record at ``path`` if this run wrote it (not a stale one from an earlier run)."""
    try:
        if path.stat().st_mtime < since - 1:
            return None
        return read_json(path)
    except (OSError, ValueError, ReliabilityError):
        return None


def partial_ranges(record: RunRecord) -> list[tuple[int, int]]:
    """The seconds (since start) flagged partial in the record's timeline, as inclusive ranges."""
    seconds = sorted(int(row.t) for row in record.timeline if row.partial)
    ranges: list[tuple[int, int]] = []
    for t in seconds:
        if ranges and t == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], t)
        else:
            ranges.append((t, t))
    return ranges


def summarize(record: RunRecord, path: Path) -> list[str]:
    """The lines printed after a run: verdict, workers lost and joined, partial data, record path."""
    sla = record.sla
    outcome = OUTCOMES.get(sla.exit_code, "?") if sla.exit_code is not None else "?"
    lines = [f"SLA {sla.tier} ({sla.percentile}): {outcome}; highest tier met: {sla.highest_tier_met or 'none'}"]
    lines += [f"  inconclusive: {reason}" for reason in sla.inconclusive]
    workers = record.workers
    if workers.seen:
        lines.append(f"workers seen: {len(workers.seen)}")
    for lost in workers.lost:
        lines.append(f"worker lost: {lost.id} (detected {lost.detected_at}, "
                     f"last report {lost.last_report_at or 'never'})")
    for joined in workers.joined:
        lines.append(f"worker joined mid-run: {joined.id} at {joined.at}; counted from its join")
    ranges = partial_ranges(record)
    if ranges:
        shown = ", ".join(f"+{a}s" if a == b else f"+{a}..+{b}s" for a, b in ranges)
        count = sum(b - a + 1 for a, b in ranges)
        lines.append(f"partial data (a worker's reports lost) in {count} second(s): {shown}")
    lines.append(f"run record: {path} (reports next to it)")
    return lines


def execute(plan: RunPlan, settings: SwarmSettings, received: list[int], *, env: Mapping[str, str] | None = None,
            out: TextIO | None = None) -> Execution:
    """Run one scenario's processes to the end; see the module docstring for the exit code."""
    swarm = Swarm(out, env, stop_timeout_s=settings.stop_timeout_s, received=received)
    lead_cmd, worker_cmds = commands(plan, settings)
    started = time.time()
    swarm.say(f"{plan.scenario.name}: {_describe(settings)}; locustfile {plan.locustfile}"
              + (f", host {plan.host}" if plan.host else ""))
    try:
        lead_name = "local runner" if settings.role == "local" else "master"
        lead = swarm.spawn(lead_name, lead_cmd, lead=True) if lead_cmd is not None else None
        workers = [swarm.spawn(f"worker-{i}", cmd, prefix=f"[worker-{i}] ") for i, cmd in enumerate(worker_cmds, 1)]
        swarm.start_readers()
        outcome = swarm.supervise(lead, workers)
    finally:
        swarm.shutdown()
    if lead_cmd is None:
        swarm.say(f"workers done (exit {outcome.exit_code})")
        return Execution(outcome.exit_code, None, outcome)
    record = _fresh_record(plan.record_path, started)
    code = outcome.exit_code
    if outcome.gave_up_waiting:
        swarm.say(f"not every one of the {settings.workers} worker(s) connected within "
                  f"{settings.expect_timeout_s:g} s: inconclusive")
        code = EXIT_INCONCLUSIVE
    elif record is None and outcome.workers_gone:
        swarm.say("every worker exited before the run ended and no record was written: inconclusive")
        code = EXIT_INCONCLUSIVE
    if record is not None:
        for line in summarize(parse_record(record), plan.record_path):
            swarm.say(line)
    elif code in OUTCOMES:
        swarm.say(f"no run record was written to {plan.record_path}")
    swarm.say(f"exit {code}" + (f" ({OUTCOMES[code]})" if code in OUTCOMES else ""))
    return Execution(code, record, outcome)


def print_dry_run(plan: RunPlan, settings: SwarmSettings, out: TextIO, secrets: Sequence[str] = ()) -> None:
    """The commands a run would start, masked (a host or option may carry a password)."""
    lead, workers = commands(plan, settings)
    hidden = (*secrets, *plan.scenario.secrets)
    out.write(mask(f"# {plan.scenario.name}: {_describe(settings)}", hidden) + "\n")
    for command in ([lead] if lead else []) + workers:
        out.write(mask(shell_line(command), hidden) + "\n")
