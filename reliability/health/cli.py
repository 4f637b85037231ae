"""``reliability health SCENARIO``: probe every component once and print a table.

Exit codes: 0 healthy, 1 degraded, 2 down (a critical component is down), 4 the scenario is
unusable (unreadable, invalid, or without a ``health:`` section). ``--json`` prints the round as
JSON instead of the table. Secrets never appear in either: details are scrubbed and DSNs masked.

Example::

    $ reliability health scenarios/health.yaml
    component  probe      status    latency  detail
    db         postgres   healthy     3.1 ms connections 4/100, 0 slow queries
    cache      redis      down        0.4 ms Error 111 connecting to 127.0.0.1:6379. Connection refused.
    api        http       degraded    5.2 ms HTTP 200, status degraded, db up, cache down
    health: degraded, score 66.7/100; root cause: cache; affected: api; healthy: db
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from reliability.exceptions import ReliabilityError
from reliability.health.base import Status
from reliability.health.orchestrator import HealthReport
from reliability.textsafe import MAX_TEXT_CHARS, display

EXIT_CODES = {Status.HEALTHY: 0, Status.DEGRADED: 1, Status.DOWN: 2}
EXIT_UNUSABLE = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``SCENARIO`` and ``--json`` to ``parser``."""
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML with a health: section")
    parser.add_argument("--json", action="store_true", help="print the round as JSON instead of a table")


def format_table(report: HealthReport) -> str:
    """The human-readable table and summary line for one round."""
    rows = [("component", "probe", "status", "latency", "detail")]
    for name, result in report.results.items():
        rows.append((display(name), report.kinds.get(name, ""), result.status.value, f"{result.latency_ms:.1f} ms",
                     display(result.detail, MAX_TEXT_CHARS)))  # the detail is the component's own text
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4]]
        lines.append("  ".join(cells).rstrip())
    d = report.diagnosis
    summary = f"health: {report.status.value}, score {report.score:.1f}/100"
    for label, names in (("root cause", d.root_causes), ("affected", d.affected), ("held", d.held),
                         ("healthy", d.healthy)):
        if names and (label != "healthy" or d.root_causes):
            summary += f"; {label}: {', '.join(names)}"
    lines.append(summary)
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``reliability health``: one round; exit 0 healthy, 1 degraded, 2 down."""
    from reliability.config import load_scenario
    from reliability.health.orchestrator import build_check

    out = out or sys.stdout
    try:
        spec = load_scenario(args.scenario)
    except ReliabilityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if spec.health is None:
        print(f"error: {args.scenario}: health: the scenario has no health section", file=sys.stderr)
        return EXIT_UNUSABLE
    check = build_check(spec.health)
    try:
        report = check.run()
    finally:
        check.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=1), file=out)
    else:
        print(format_table(report), file=out)
    return EXIT_CODES[report.status]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability health", description="one-shot health check")
    add_arguments(parser)
    return run(parser.parse_args(argv))

