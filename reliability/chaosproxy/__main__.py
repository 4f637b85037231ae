"""``python -m reliability.chaosproxy [options]``: serve the chaos proxy until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from reliability.chaosproxy.app import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.chaosproxy",
        description="Serve a TCP chaos proxy with a Toxiproxy-compatible HTTP API.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
