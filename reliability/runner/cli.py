"""``reliability run SCENARIO|SUITE``: Locust as a local swarm (a master and N workers on this
machine, the default), a local runner (``--workers 0``), or one side of a multi-host swarm
(``--master`` here, ``--worker`` on the load machines).

The master (or local runner) grades the run and writes the record and reports, exactly as a plain
``locust`` run with the plugin does; this command starts the processes, streams the master's
output (the live SLA status), stops everything in order on Ctrl-C or SIGTERM, prints a summary and
exits with the master's code: 0 met, 3 not met, 4 inconclusive (also when the workers did not all
connect in time, or every worker exited before the run ended).

Example::

    reliability run scenarios/api_gold.yaml -f locustfiles/api.py --workers 2
    reliability run scenarios/suite_readiness.yaml        # a suite: scenarios in order, one record
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from reliability.config import parse_duration_s
from reliability.exceptions import ReliabilityError, ScenarioError
from reliability.runner.commands import DEFAULT_MASTER_PORT, RunOverrides, plan_run
from reliability.runner.single import EXIT_INCONCLUSIVE, SwarmSettings, execute, print_dry_run
from reliability.runner.swarm import stop_requests
from reliability.suite import read_run_file

WORKERS_ENV = "RELIABILITY_WORKERS"
EXIT_USAGE = 2


def default_workers(environ: Mapping[str, str] = os.environ) -> int:
    """``$RELIABILITY_WORKERS``, else one worker per CPU this process may use."""
    value = environ.get(WORKERS_ENV)
    if value:
        try:
            count = int(value)
        except ValueError:
            raise ReliabilityError(f"{WORKERS_ENV} must be a whole number, got {value!r}") from None
        if count < 0:
            raise ReliabilityError(f"{WORKERS_ENV} must be >= 0, got {count}")
        return count
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="SCENARIO|SUITE", help="scenario YAML, or a suite YAML listing scenarios")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--master", action="store_true",
                      help="run only the master here; --workers N workers connect from other hosts")
    role.add_argument("--worker", action="store_true",
                      help="run only --workers N workers here, connecting to --master-host")
    parser.add_argument("-w", "--workers", type=int, default=None,
                        help=f"worker processes (default ${WORKERS_ENV}, else one per CPU); 0 runs a local runner")
    parser.add_argument("-f", "--locustfile", default=None, help="locustfile (default: the scenario's load.locustfile)")
    parser.add_argument("-H", "--host", default=None, help="target URL (default: the scenario's target.host)")
    parser.add_argument("-u", "--users", type=int, default=None, help="users (default: the scenario's load.users)")
    parser.add_argument("-r", "--spawn-rate", type=float, default=None, help="users started per second")
    parser.add_argument("-t", "--run-time", default=None, help="run length, e.g. 90s or 5m (default: load.run_time_s)")
    parser.add_argument("--sla-tier", default=None, help="SLA tier to grade against (default: the scenario's)")
    parser.add_argument("--run-record", default=None,
                        help="record path (default reports/run-<UTC>.json; a suite's: reports/suite-<UTC>.json)")
    parser.add_argument("--master-host", default="127.0.0.1", help="--worker: the master's address (127.0.0.1)")
    parser.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT,
                        help=f"--worker: the master's port ({DEFAULT_MASTER_PORT})")
    parser.add_argument("--master-bind-host", default=None,
                        help="--master: address to listen on for workers (default: all); a local swarm uses 127.0.0.1")
    parser.add_argument("--master-bind-port", type=int, default=None,
                        help=f"port the master listens on (--master: {DEFAULT_MASTER_PORT}; local swarm: a free one)")
    parser.add_argument("--expect-workers-timeout", type=float, default=60.0,
                        help="seconds to wait for every worker to connect; then exit 4 (60)")
    parser.add_argument("--stop-timeout", type=float, default=60.0,
                        help="seconds the master may take to stop after Ctrl-C/SIGTERM before it is killed (60)")
    parser.add_argument("--web-port", type=int, default=None,
                        help="serve the master's web UI (and /metrics) on this port instead of running headless")
    parser.add_argument("--web-host", default="127.0.0.1", help="address of the web UI (127.0.0.1)")
    parser.add_argument("--web-origin", action="append", default=[], metavar="URL",
                        help="another origin the web UI is reached at (a reverse proxy, a compose service name "
                             "for Prometheus); repeatable")
    parser.add_argument("--no-rebalancing", action="store_true",
                        help="do not re-spread users when a worker joins or goes missing")
    parser.add_argument("--allow-unsafe-faults", action="store_true",
                        help="run shell, webhook, process.* and factory faults (they act on this machine)")
    parser.add_argument("--locust-stats", action="store_true", help="also print Locust's request table while running")
    parser.add_argument("--dry-run", action="store_true", help="print the commands that would run, then exit")


def overrides_from_args(args: argparse.Namespace) -> RunOverrides:
    run_time_s = None
    if args.run_time is not None:
        try:
            run_time_s = parse_duration_s(args.run_time)
        except ValueError as exc:
            raise ReliabilityError(f"--run-time: {exc}") from None
    return RunOverrides(locustfile=args.locustfile, host=args.host, users=args.users, spawn_rate=args.spawn_rate,
                        run_time_s=run_time_s, run_record=args.run_record, sla_tier=args.sla_tier,
                        locust_stats=args.locust_stats, allow_unsafe_faults=args.allow_unsafe_faults)


def settings_from_args(args: argparse.Namespace, workers: int | None = None) -> SwarmSettings:
    """The process layout the command line asks for; ``workers`` is the scenario's own count, used
    when ``--workers`` is not given."""
    count = args.workers if args.workers is not None else workers
    if args.master:
        if count is None and not os.environ.get(WORKERS_ENV):
            raise ReliabilityError(f"--master needs the number of workers to wait for: --workers N or ${WORKERS_ENV}")
        role = "master"
    else:
        role = "worker" if args.worker else "swarm"
    if count is None:
        count = default_workers()
    if count < 0:
        raise ReliabilityError("--workers must be >= 0")
    if role in ("master", "worker") and count == 0:
        raise ReliabilityError(f"--{role} needs at least one worker")
    return SwarmSettings(
        role=role, workers=count, master_host=args.master_host, master_port=args.master_port,
        bind_host=args.master_bind_host or ("*" if role == "master" else "127.0.0.1"),
        bind_port=args.master_bind_port, expect_timeout_s=args.expect_workers_timeout,
        stop_timeout_s=args.stop_timeout, web_host=args.web_host, web_port=args.web_port,
        web_origins=tuple(getattr(args, "web_origin", None) or ()),
        rebalance=not args.no_rebalancing,
    ).with_workers(count)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The ``reliability run`` command (see the module docstring)."""
    out = out or sys.stdout
    try:
        suite, scenario = read_run_file(args.file)
        overrides = overrides_from_args(args)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INCONCLUSIVE
    if suite is not None:
        if args.master or args.worker:
            raise ReliabilityError("a suite runs each scenario as a local swarm or a local runner; run single "
                                   "scenarios with --master / --worker across hosts")
        from reliability.runner.sequence import run_suite

        return run_suite(suite, overrides, lambda workers: settings_from_args(args, workers), dry_run=args.dry_run,
                         out=out)
    try:
        plan = plan_run(args.file, overrides, scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INCONCLUSIVE
    settings = settings_from_args(args)
    if args.dry_run:
        print_dry_run(plan, settings, out)
        return 0
    with stop_requests() as received:
        return execute(plan, settings, received, out=out).exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``python -m reliability.runner.cli SCENARIO ...``."""
    parser = argparse.ArgumentParser(prog="reliability run")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except ReliabilityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
