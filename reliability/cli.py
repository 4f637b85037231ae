"""The ``reliability`` command: ``validate``, ``demo``, ``target``, ``health``, ``report``, ``compare``.

Load runs themselves go through Locust (``locust -f FILE`` with ``import reliability.plugin`` in
the file); this command never imports locust in its own process, so ``validate`` and ``target``
stay free of gevent's monkey-patching. Errors print as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from reliability import __version__
from reliability.exceptions import ReliabilityError

EXIT_USAGE = 2


def _cmd_validate(args: argparse.Namespace) -> int:
    from reliability.suite import read_run_file

    failed = 0
    for path in args.files:
        try:
            suite, spec = read_run_file(path)
        except ReliabilityError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if suite is not None:
            names = ", ".join(entry.name for entry in suite.entries)
            print(f"{path}: ok (suite {suite.spec.name}; {len(suite.entries)} scenarios: {names})")
        elif spec is not None:
            tiers = ", ".join(spec.sla.all_tiers())
            print(f"{path}: ok ({spec.name}; tier {spec.sla.tier} at p{spec.sla.percentile:g}; tiers: {tiers})")
    return 1 if failed else 0


def _add_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")


# (command, help, module, function adding its arguments, function running it). Modules are
# imported when the parser is built, never locust: these commands run outside a Locust process.
COMMANDS: tuple[tuple[str, str, str, str, str], ...] = (
    ("run", "run a scenario or a suite: a master and local workers (or --workers 0, --master, --worker)",
     "reliability.runner.cli", "add_arguments", "run"),
    ("validate", "check scenario and suite files; errors name file and field", "reliability.cli", "_add_validate",
     "_cmd_validate"),
    ("demo", "start the reference target, run a graded load test with a fault, clean up", "reliability.demo",
     "add_arguments", "run_demo"),
    ("target", "run the reference system under test", "reliability.target.app", "add_arguments", "run"),
    ("health", "probe every component of a scenario once; exit 0 healthy, 1 degraded, 2 down",
     "reliability.health.cli", "add_arguments", "run"),
    ("report", "render a run record as HTML, JUnit XML and Markdown", "reliability.report.cli",
     "add_report_arguments", "run_report"),
    ("compare", "compare two run records; non-zero exit on a regression", "reliability.report.cli",
     "add_compare_arguments", "run_compare"),
    ("options", "list the Locust options the plugin adds, with their LOCUST_* variables and config keys",
     "reliability.plugin_options", "_add_options", "_cmd_options"),
    ("revert", "list what revert journals say is still applied and undo it (also after a reboot)",
     "reliability.revert.cli", "add_arguments", "run"),
    ("proxy", "run the chaos proxy (a Toxiproxy-compatible TCP proxy with an HTTP API)",
     "reliability.chaosproxy.app", "add_arguments", "run"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reliability", description="SLA grading and resilience testing for Locust")
    parser.add_argument("--version", action="version", version=f"locust-reliability {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, module_name, add, run in COMMANDS:
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        getattr(module, add)(command)
        command.set_defaults(func=getattr(module, run))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ReliabilityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
