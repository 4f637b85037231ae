"""The plugin's request listener and its dispatch of the request event on a real Locust environment
(see ``plugin_listener_inproc.py`` and ``request_dispatch_inproc.py``).

Importing locust monkey-patches the process it runs in: those tests run in a pytest subprocess of
their own, never in this one.
"""

from __future__ import annotations

import sys

from tests.support.processes import ROOT, run


def test_the_request_listener_queues_every_kind_of_request_as_the_store_does() -> None:
    done = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(ROOT / "tests/integration/plugin_listener_inproc.py"),
                str(ROOT / "tests/integration/request_dispatch_inproc.py")], timeout_s=240)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
