"""The ``reliability`` command: ``validate``, ``target``, ``demo``.

Load runs themselves go through Locust (``locust -f FILE`` with ``import reliability.plugin`` in
the file); this command never imports locust in its own process, so ``validate`` and ``target``
stay free of gevent's monkey-patching. Errors print as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reliability import __version__
from reliability.exceptions import ReliabilityError

EXIT_USAGE = 2


def _cmd_validate(args: argparse.Namespace) -> int:
    from reliability.config import load_scenario

    failed = 0
    for path in args.files:
        try:
            spec = load_scenario(path)
        except ReliabilityError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        tiers = ", ".join(spec.sla.all_tiers())
        print(f"{path}: ok ({spec.name}; tier {spec.sla.tier} at p{spec.sla.percentile:g}; tiers: {tiers})")
    return 1 if failed else 0


def _cmd_target(args: argparse.Namespace) -> int:
    from reliability.target.app import run

    return run(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from reliability.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reliability", description="SLA grading and resilience testing for Locust")
    parser.add_argument("--version", action="version", version=f"locust-reliability {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser("validate", help="check scenario files; errors name file and field")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=_cmd_validate)

    target = sub.add_parser("target", help="run the reference system under test")
    from reliability.target.app import add_arguments as add_target_arguments

    add_target_arguments(target)
    target.set_defaults(func=_cmd_target)

    demo = sub.add_parser("demo", help="start the reference target, run a graded load test with a fault, clean up")
    from reliability.demo import add_arguments as add_demo_arguments

    add_demo_arguments(demo)
    demo.set_defaults(func=_cmd_demo)
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
