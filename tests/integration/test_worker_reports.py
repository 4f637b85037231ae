"""The plugin on a real Locust master fed bad worker reports (see ``worker_reports_inproc.py``).

Those tests build a Locust ``Environment`` in-process, and importing locust monkey-patches the
process it runs in: they run in a pytest subprocess of their own, never in this one.
"""

from __future__ import annotations

import sys

from tests.support.processes import ROOT, run


def test_bad_worker_reports_on_a_real_master() -> None:
    done = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(ROOT / "tests/integration/worker_reports_inproc.py")], timeout_s=240)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
