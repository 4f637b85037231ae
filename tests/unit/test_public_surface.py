"""The pure core imports neither locust nor gevent, and the public names are exactly __all__."""

from __future__ import annotations

import subprocess
import sys

import reliability
import reliability.metrics

PURE = ["reliability", "reliability.metrics", "reliability.sla", "reliability.config", "reliability.record",
        "reliability.cli"]


def test_core_imports_without_locust_or_gevent() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PURE)
        + "reliability.cli.build_parser()\n"  # every command's module, as `reliability --help` loads them
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_exported_members() -> None:
    for module in (reliability, reliability.metrics):
        public = {name for name in dir(module) if not name.startswith("_")} - {"annotations"}
        submodules = {name for name in public if type(getattr(module, name)).__name__ == "module"}
        assert public - submodules == set(module.__all__) - {"__version__"}, module.__name__
