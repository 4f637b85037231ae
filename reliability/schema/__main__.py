"""``python -m reliability.schema`` prints the record's JSON Schema; ``--write`` updates the shipped file."""

from __future__ import annotations

import sys

from reliability.schema.schema import render_schema, write_schema


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        print(f"wrote {write_schema()}")
        return 0
    if argv:
        print("usage: python -m reliability.schema [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(render_schema())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
