"""The HTML report in real headless Chromium: no console errors, charts drawn, a screenshot taken.

Chromium is driven over the DevTools protocol with websocket-client (a project dependency): one
browser for the module, one page load per record fixture. Screenshots go to the test's tmp dir,
or to ``$REPORT_SCREENSHOT_DIR`` when set, for a person to look at.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from reliability.report import write_reports
from reliability.report.charts import health_rows
from reliability.schema import parse_record
from tests.support.records import NAMES, SCRIPT, hostile, load
from tests.support.waits import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; "
                                                          ".ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--hide-scrollbars", "about:blank"]
TIMEOUT_S = 20.0


class Page:
    """A DevTools session on one page target; events are kept for the checks."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT_S, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_for(self, event: str) -> None:
        """Read events until ``event``; a script's alert() is recorded and dismissed, or it would block."""
        deadline = time.monotonic() + TIMEOUT_S
        index = 0
        while True:
            while index < len(self.events):
                method = self.events[index].get("method")
                index += 1
                if method == event:
                    return
                if method == "Page.javascriptDialogOpening":
                    self.call("Page.handleJavaScriptDialog", accept=True)
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries (CSP violations, failed loads), dialogs."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {params.get('message')}")
        return out

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen([CHROMIUM, f"--user-data-dir={profile}", *FLAGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"

        def port_open() -> bool:
            if proc.poll() is not None:
                pytest.fail("chromium did not open its DevTools port")
            return port_file.exists() and bool(port_file.read_text().strip())

        wait_until(port_open, TIMEOUT_S, what="chromium to open its DevTools port")
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT_S) as response:
            targets = json.load(response)
        page = Page(next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"))
        for domain in ("Runtime", "Log", "Page"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1, mobile=False)
        yield page
        page.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _open(page: Page, html_path: Path) -> None:
    page.events.clear()
    page.call("Page.navigate", url=html_path.resolve().as_uri())
    page.wait_for("Page.loadEventFired")


def _screenshot(page: Page, target: Path) -> Path:
    size = page.call("Page.getLayoutMetrics")["cssContentSize"]
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                     clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
    target.write_bytes(base64.b64decode(shot["data"]))
    return target


def _shots_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("REPORT_SCREENSHOT_DIR")
    folder = Path(wanted) if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_report_renders_without_console_errors_and_draws_its_charts(browser: Page, name: str,
                                                                    tmp_path: Path) -> None:
    record = load(name)
    html_path = write_reports(record, tmp_path / f"{name}.json", formats=("html",))[0]
    _open(browser, html_path)
    assert browser.problems() == []
    drawn = browser.evaluate("""Array.from(document.querySelectorAll('figure.chart')).map(f => {
        const svg = f.querySelector('svg'); if (!svg) return [f.dataset.chart, 0, 0];
        const box = svg.getBoundingClientRect();
        const lines = Array.from(svg.querySelectorAll('polyline')).filter(p => p.getBBox().width > 0).length;
        return [f.dataset.chart, Math.round(box.width), lines]; })""")
    charts = {chart: (width, lines) for chart, width, lines in drawn}
    for chart in ("users", "rps", "p95", "errors", "gen-cpu", "gen-rss"):
        width, lines = charts[chart]
        assert width > 800 and lines >= 1, (chart, charts)
    assert browser.evaluate("document.querySelector('.verdict').textContent").startswith("SLA ")
    if name == "faults":
        # each fault shaded on the four timeline charts
        assert browser.evaluate("document.querySelectorAll('rect.band.fault').length") == 4 * len(record["faults"])
        # one bar per component, one rect per run of equal states: what the record's timeline holds
        # (api degraded in its first round, then healthy; the /health route is out of the faults' reach)
        rows = health_rows(parse_record(record))
        assert len(rows) == len(record["health"]["components"]) >= 2
        spans = sum(len(row.spans) for row in rows)
        assert spans > len(rows)
        assert browser.evaluate("document.querySelectorAll('.health svg rect').length") == spans
    shot = _screenshot(browser, _shots_dir(tmp_path) / f"report-{name}.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_hostile_names_stay_text_in_the_browser(browser: Page, tmp_path: Path) -> None:
    html_path = write_reports(hostile(), tmp_path / "hostile.json", formats=("html",))[0]
    _open(browser, html_path)
    assert browser.problems() == []  # no alert dialog, no CSP violation from an injected script
    assert browser.evaluate("document.scripts.length") == 0
    assert browser.evaluate("document.querySelectorAll('[onmouseover]').length") == 0
    assert browser.evaluate("document.querySelectorAll('b').length") == 0
    assert SCRIPT in browser.evaluate("document.body.innerText")
    _screenshot(browser, _shots_dir(tmp_path) / "report-hostile.png")
