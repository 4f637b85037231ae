"""A throwaway Prometheus (Debian's ``prometheus`` binary) for tests.

Runs from a temporary directory on a free loopback port with its own config and TSDB, scraping
the given ``host:port`` targets every second, so ``up`` follows a target within about a second.
Never the system service. Skips the calling test when the binary is not installed.

Example::

    with PrometheusServer(["127.0.0.1:8080"]) as prom:
        urllib.request.urlopen(f"{prom.url}/api/v1/query?query=up")
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

import pytest

from tests.servers import _ChildServer

SCRAPE_INTERVAL_S = 1


class PrometheusServer(_ChildServer):
    """``prometheus`` scraping ``targets`` (job ``target``) every second; see the module docstring."""

    name = "prometheus"

    def __init__(self, targets: Sequence[str], port: int | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("prometheus is not installed (apt-get install prometheus)")
        self.binary = binary
        self.targets = list(targets)
        super().__init__(port, "reliability-prometheus-")
        self.config = self.base / "prometheus.yml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str] | None]:
        quoted = ", ".join(f'"{t}"' for t in self.targets)
        self.config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL_S * 500}ms\n"
            "scrape_configs:\n"
            "  - job_name: target\n"
            f"    static_configs: [{{targets: [{quoted}]}}]\n"
        )
        return [
            self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.base / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ], None

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_until_scraped(self, timeout_s: float = 20.0) -> None:
        """Wait until ``up`` has a series for every target (Prometheus syncs new targets only
        after about 5 s)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/query?query=up", timeout=1) as response:
                    if len(json.load(response)["data"]["result"]) >= len(self.targets):
                        return
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus did not scrape {self.targets} within {timeout_s:.0f} s")
