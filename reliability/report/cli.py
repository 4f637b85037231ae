"""``reliability report RUN.json`` and ``reliability compare BASE.json NEW.json``.

Each command is a pair: ``add_*_arguments(parser)`` fills an argparse (sub)parser and
``run_*(args) -> int`` runs it, so the main CLI can mount them and tests can call
``run_report(parser.parse_args([...]))`` directly. Problems with the input files print one line
on stderr and exit 2; ``compare`` exits 1 on a regression, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from reliability.exceptions import InputError, ReliabilityError
from reliability.inputfile import load_json_file
from reliability.jsontypes import JsonObject
from reliability.report import FORMATS, RegressionThresholds, compare, md_escape, render, write_reports
from reliability.report.compare import ComparisonResult, comparison_rows
from reliability.report.spec import CostSpec
from reliability.schema import RunRecord, parse_record
from reliability.textsafe import MAX_TEXT_CHARS, display

EXIT_OK = 0
EXIT_BAD_INPUT = 2
_HEAD = ["section", "subject", "metric", "base", "new", "change", "status"]


class RecordError(ReliabilityError):
    """A run record file cannot be read or is not a JSON object.

    Example: ``RecordError("run.json: not a JSON run record: Expecting value: line 1 column 1")``.
    """


def load_json_record(path: str) -> JsonObject:
    """A run or suite record file as decoded JSON (a clear one-line error when it is not one)."""
    try:
        data = load_json_file(path)
    except InputError as exc:
        if exc.reason.startswith("cannot read file: "):
            raise RecordError(f"{path}: cannot read run record: {exc.reason.removeprefix('cannot read file: ')}") \
                from None
        raise RecordError(f"{path}: not a JSON run record: {exc.reason}") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a run record is a JSON object, got {type(data).__name__}")
    return data


def load_record(path: str) -> RunRecord:
    """A run record file of any schema version as a typed record."""
    return parse_record(load_json_record(path))


def _scenario_cost(path: str | None) -> CostSpec | None:
    if path is None:
        return None
    # imported here: reliability.config imports this package for CostSpec
    from reliability.config import load_scenario

    return load_scenario(path).cost


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("record", metavar="RUN.json", help="run record written by a load test")
    parser.add_argument("-f", "--format", action="append", choices=FORMATS, dest="formats",
                        help="output format (repeat for several); default: html, junit and md")
    parser.add_argument("-o", "--output-dir", default=None,
                        help="directory for the reports (default: next to the record)")
    parser.add_argument("--scenario", default=None, metavar="FILE",
                        help="scenario YAML whose cost section prices the degradation "
                             "(default: the record's own cost_model, if any)")
    parser.add_argument("--stdout", action="store_true", help="print the one chosen format instead of writing files")


def run_report(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    formats = tuple(args.formats or FORMATS)
    try:
        record = load_json_record(args.record)  # a run record or a suite record
        cost = _scenario_cost(args.scenario)
    except ReliabilityError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD_INPUT
    if args.stdout:
        if len(formats) != 1:
            print("error: --stdout needs exactly one --format", file=err)
            return EXIT_BAD_INPUT
        out.write(render(record, formats[0], cost=cost))
        return EXIT_OK
    for path in write_reports(record, args.record, cost=cost, formats=formats, directory=args.output_dir):
        print(path, file=out)
    return EXIT_OK


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    d = RegressionThresholds()
    parser.add_argument("base", metavar="BASE.json", help="run record to compare against")
    parser.add_argument("new", metavar="NEW.json", help="run record under review")
    parser.add_argument("--latency-increase-pct", type=float, default=d.latency_increase_pct,
                        help="latency regression: grew by more than this percent (default %(default)s) ...")
    parser.add_argument("--latency-increase-ms", type=float, default=d.latency_increase_ms,
                        help="... and by more than this many ms (default %(default)s)")
    parser.add_argument("--error-increase-pct", type=float, default=d.error_ratio_increase * 100,
                        help="error ratio regression, in percentage points (default %(default)s)")
    parser.add_argument("--uptime-decrease-pct", type=float, default=d.uptime_decrease * 100,
                        help="uptime regression, in percentage points (default %(default)s)")
    parser.add_argument("--throughput-decrease-pct", type=float, default=d.throughput_decrease_pct,
                        help="requests/s regression, in percent (default %(default)s)")
    parser.add_argument("--recovery-increase-pct", type=float, default=d.recovery_increase_pct,
                        help="fault detection/recovery time regression, in percent (default %(default)s) ...")
    parser.add_argument("--recovery-increase-s", type=float, default=d.recovery_increase_s,
                        help="... and in seconds (default %(default)s)")
    parser.add_argument("--score-decrease", type=float, default=d.resilience_score_decrease,
                        help="resilience score regression, in points (default %(default)s)")
    parser.add_argument("--min-endpoint-requests", type=int, default=d.min_endpoint_requests,
                        help="endpoints with fewer requests in either run are shown, "
                             "never flagged (default %(default)s)")
    parser.add_argument("--all", action="store_true", help="list unchanged metrics too")
    parser.add_argument("--markdown", default=None, metavar="FILE",
                        help="also append the comparison as Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)")


def thresholds_from_args(args: argparse.Namespace) -> RegressionThresholds:
    return RegressionThresholds(
        latency_increase_pct=args.latency_increase_pct,
        latency_increase_ms=args.latency_increase_ms,
        error_ratio_increase=args.error_increase_pct / 100.0,
        uptime_decrease=args.uptime_decrease_pct / 100.0,
        throughput_decrease_pct=args.throughput_decrease_pct,
        recovery_increase_pct=args.recovery_increase_pct,
        recovery_increase_s=args.recovery_increase_s,
        resilience_score_decrease=args.score_decrease,
        min_endpoint_requests=args.min_endpoint_requests,
    )


def format_text(result: ComparisonResult, show_all: bool = False) -> str:
    body = [[display(c) for c in row] for row in comparison_rows(result, only_changes=not show_all)]
    rows = [_HEAD, *body] if body else []
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD) - 1)] if rows else []
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    lines += [f"note: {display(n, MAX_TEXT_CHARS)}" for n in result.notes]
    count = len(result.regressions)
    lines.append(f"{count} regression(s)" if count else "no regression")
    return "\n".join(lines) + "\n"


def format_markdown(result: ComparisonResult, show_all: bool = False) -> str:
    count = len(result.regressions)
    summary = f"❌ Run comparison: {count} regression(s)" if count else "✅ Run comparison: no regression"
    lines = [f"## {summary}", "", "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    lines += ["| " + " | ".join(md_escape(display(c)) for c in row) + " |"
              for row in comparison_rows(result, only_changes=not show_all)]
    lines += [""] + [f"- {md_escape(display(n, MAX_TEXT_CHARS))}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def run_compare(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        base = load_record(args.base)
        new = load_record(args.new)
    except ReliabilityError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD_INPUT
    result = compare(base, new, thresholds_from_args(args))
    out.write(format_text(result, args.all))
    if args.markdown:
        with Path(args.markdown).open("a", encoding="utf-8") as fh:
            fh.write(format_markdown(result, args.all))
    return result.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m reliability.report.cli report|compare ...``)."""
    parser = argparse.ArgumentParser(prog="reliability")
    sub = parser.add_subparsers(dest="command", required=True)
    add_report_arguments(sub.add_parser("report", help="render HTML, JUnit XML and Markdown from a run record"))
    add_compare_arguments(sub.add_parser("compare", help="compare two run records; exit 1 on a regression"))
    args = parser.parse_args(argv)
    return run_report(args) if args.command == "report" else run_compare(args)


if __name__ == "__main__":
    sys.exit(main())
