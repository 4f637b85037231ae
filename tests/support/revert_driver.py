"""A stand-in for a master: injects one fault with the revert journal and guard, then waits to be
killed (``python -m tests.support.revert_driver SPEC_JSON JOURNAL``). Prints ``INJECTED``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from reliability.faults import build_fault
from reliability.faults.spec import parse_fault_spec
from reliability.revert.ledger import RevertLedger


def main() -> None:
    spec = parse_fault_spec(json.loads(sys.argv[1]))
    fault = build_fault(spec, "held")
    ledger = RevertLedger(Path(sys.argv[2]))
    ledger.open()
    ledger.intend("held", fault, spec.dead_man_s)
    fault.inject()
    ledger.injected("held", True)
    print("INJECTED", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
