"""``reliability revert [JOURNAL ...]``: list what revert journals say is still applied, and undo it.

Without a JOURNAL it looks at every journal in the journal directory (``$RELIABILITY_JOURNAL_DIR``,
default ``~/.local/state/reliability/journals``); it works after a reboot too (journals are on
persistent storage and name everything needed, secrets by environment variable). ``--list`` only
lists. Each undo is retried with backoff for up to ``--deadline`` seconds. An undo that runs a
command, signals processes or calls a URL other than a chaos proxy's or the target's admin API
(``shell``, ``webhook``, ``process.*``) is only replayed with ``--allow-unsafe-faults``, as its
fault was only injected with it: a journal is a file anyone with write access could have written.

Exit status: 0 when nothing is left applied, 1 when something is (listed on stderr with how to undo
it by hand), 2 on bad usage or an unsafe undo without ``--allow-unsafe-faults``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reliability.faults.optin import FLAG, unsafe_undo
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
    parser.add_argument(FLAG, dest="allow_unsafe_faults", action="store_true",
                        help="also replay undos that run commands, signal processes or call URLs "
                             "(shell, webhook, process.* faults)")


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
    states = [read_journal(path) for path in paths]
    if not args.list and not args.allow_unsafe_faults:
        unsafe = [(state.path, entry) for state in states for entry in state.applied()
                  if unsafe_undo(entry.kind, entry.actions)]
        if unsafe:
            listed = ", ".join(f"{entry.name} ({entry.kind})" for _path, entry in unsafe)
            print(f"error: {unsafe[0][0]}: the undo of {listed[:300]} runs commands, signals processes or calls "
                  f"URLs; pass {FLAG} to run it (nothing was undone)", file=sys.stderr)
            return 2
    left = 0
    for state in states:
        path = state.path
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
