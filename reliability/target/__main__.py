"""``python -m reliability.target [options]``: serve the reference target until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from reliability.target.app import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.target",
        description="Serve the reference system under test (HTTP API, WebSocket, health, metrics).",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
