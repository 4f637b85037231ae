"""``reliability revert [JOURNAL ...]``: list what revert journals say is still applied, and undo it.

Without a JOURNAL it looks at every journal in the journal directory (``$RELIABILITY_JOURNAL_DIR``,
default ``~/.local/state/reliability/journals``); it works after a reboot too (journals are on
persistent storage and name everything needed, secrets by environment variable). ``--list`` only
lists. Each undo is retried with backoff for up to ``--deadline`` seconds.

Exit status: 0 when nothing is left applied, 1 when something is (listed on stderr with how to undo
it by hand), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reliability.revert.journal import (
    FaultEntry,
    Journal,
    describe_action,
    journal_dir,
    journal_files,
    read_journal,
)
from reliability.revert.undo import retry_until

DEFAULT_DEADLINE_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journals", nargs="*", metavar="JOURNAL",
                        help="journal file(s) (default: every journal in the journal directory)")
    parser.add_argument("--list", action="store_true", help="only list what is still applied")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, metavar="SECONDS",
                        help=f"retry each undo for up to this long ({DEFAULT_DEADLINE_S:g})")


def _describe(entry: FaultEntry) -> list[str]:
    lines = [f"  {entry.name} ({entry.kind}) on {entry.backend}: {entry.state}"
             + (f", last error: {entry.last_error}" if entry.last_error else "")]
    if entry.actions:
        lines += [f"    undo: {describe_action(action)}" for action in entry.actions]
    else:
        lines.append(f"    undo: nothing to call; the backend drops it {entry.expires_s:g} s after the last renewal")
    return lines


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.journals] or journal_files(journal_dir())
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"error: no such journal: {missing[0]}", file=sys.stderr)
        return 2
    left = 0
    for path in paths:
        state = read_journal(path)
        applied = state.applied()
        if not applied:
            if args.journals:
                print(f"{path}: nothing applied")
            continue
        alive = state.master_alive
        owner = f"pid {state.run.get('pid')}" + (" (still running)" if alive else "")
        print(f"{path} (run by {owner}): {len(applied)} fault(s) still applied")
        for entry in applied:
            print("\n".join(_describe(entry)))
        if args.list:
            left += len(applied)
            continue
        journal = Journal(path)
        try:
            for entry in applied:
                if not entry.actions:
                    print(f"  {entry.name}: waiting is the undo (its backend expiry); nothing to call")
                    left += 1
                    continue

                def note(n: int, ok: bool, error: str | None, entry: FaultEntry = entry,
                         journal: Journal = journal) -> None:
                    journal.append("attempt", fault=entry.name, by="cli", n=n, ok=ok, error=error)
                    if not ok:
                        print(f"  {entry.name}: attempt {n} failed: {error}", file=sys.stderr)

                done, outcome = retry_until(entry, args.deadline, on_attempt=note)
                if done:
                    journal.append("reverted", fault=entry.name, by="cli")
                    print(f"  {entry.name}: undone ({outcome})")
                else:
                    left += 1
                    print(f"  {entry.name}: STILL APPLIED after {args.deadline:g} s of retries: {outcome}",
                          file=sys.stderr)
        finally:
            journal.close()
    if left:
        print(f"{left} fault(s) still applied ({time.strftime('%Y-%m-%d %H:%M:%S')})", file=sys.stderr)
        return 1
    if not args.journals and not args.list:
        print("nothing left applied")
    return 0
