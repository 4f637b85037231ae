"""Locust's conventions for the plugin's options and outputs, in real Locust subprocesses.

Every option from ``LOCUST_*`` variables, ``locust.conf`` and ``pyproject.toml``; usage errors
exit 2; outputs follow the umask; a hand-built ``Environment`` (examples/use_as_lib.py) is graded.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.plugin_options import OPTIONS
from tests.support.processes import ROOT, Served, locust_cmd, run, serve

LOCUSTFILE = str(ROOT / "tests/e2e/locustfiles/verdict_user.py")

pytestmark = pytest.mark.slow

# every option, one non-default value each (the flag as a config/env value "true")
VALUES = {
    "sla-tier": "silver", "sla-percentile": "p99", "run-record": "out/rec.json", "sla-abort": "true",
    "sla-abort-grace": "4", "sla-window": "30s", "sla-status-interval": "2", "sla-confidence": "0.9",
    "sla-min-requests": "7", "web-origin": "https://locust.example.com", "sla-latency-basis": "measured",
    "allow-unsafe-faults": "true", "revert-journal": "out/journal.json", "ignore-applied-faults": "true",
    "summary-file": "out/summary.md",
}


@pytest.fixture
def pattern() -> Iterator[Served]:
    with serve(["tests/support/pattern_server.py", "--delay-ms", "5"]) as served:
        yield served


def test_the_table_covers_every_option() -> None:
    assert {o.config_key for o in OPTIONS} == set(VALUES) | {"scenario"}
    out = subprocess.run([sys.executable, "-m", "reliability.cli", "options"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True).stdout
    for option in OPTIONS:
        assert option.flag in out and option.env_var in out


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "named.yaml"
    path.write_text("name: conventions\n")
    return path


@pytest.mark.parametrize("form", ["env", "locust.conf", "pyproject.toml"])
def test_every_option_from_env_and_config_files(form: str, pattern: Served, tmp_path: Path) -> None:
    values = {**VALUES, "scenario": str(_scenario(tmp_path))}
    env: dict[str, str] = {}
    if form == "env":
        env = {o.env_var: values[o.config_key] for o in OPTIONS}
    elif form == "locust.conf":
        (tmp_path / "locust.conf").write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    else:
        body = "".join(f'{k} = {json.dumps(True if v == "true" else v)}\n' for k, v in values.items())
        (tmp_path / "pyproject.toml").write_text(f"[tool.locust]\n{body}")
    proc = run(locust_cmd("-f", LOCUSTFILE, "--headless", "-u", "2", "-r", "2", "-t", "3s", "--host", pattern.url),
               cwd=tmp_path, env=env, timeout_s=90)
    assert proc.returncode in (0, 3, 4), proc.stdout[-3000:]
    assert ("grading against silver (p99), rolling window 30 s, 90 % intervals, min 7 requests, status every 2 s, "
            "abort after 4 s") in proc.stdout, proc.stdout[-3000:]
    record_path = tmp_path / "out/rec.json"
    record = json.loads(record_path.read_text())
    assert record["run"]["scenario"] == "conventions"
    assert record["sla"]["tier"] == "silver" and record["sla"]["percentile"] == "p99"
    assert record["sla"]["latency_basis"] == "measured"
    assert "SLA silver (p99)" in (tmp_path / "out/summary.md").read_text()
    assert {c["confidence"] for c in record["sla"]["criteria"]} == {0.9}
    # outputs follow the umask like Locust's own (pytest runs under the usual 022: 0644)
    umask = os.umask(0)
    os.umask(umask)
    for path in tmp_path.glob("out/rec*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


@pytest.mark.parametrize(("args", "message"), [
    (["--sla-tier", "diamond"], "sla.tier: unknown tier 'diamond'"),
    (["--sla-confidence", "often"], "sla.confidence"),
    (["--sla-percentile", "p200"], "sla.percentile"),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    proc = run(locust_cmd("-f", LOCUSTFILE, "--headless", "-u", "1", "-r", "1", "-t", "3s", "--host",
                          "http://127.0.0.1:9", "--run-record", str(tmp_path / "r.json"), *args), timeout_s=60)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert message in proc.stdout and "Traceback" not in proc.stdout


def test_a_hand_built_environment_is_graded(pattern: Served, tmp_path: Path) -> None:
    record_path = tmp_path / "lib.json"
    proc = run([sys.executable, str(ROOT / "examples/use_as_lib.py"), pattern.url, str(record_path)], timeout_s=90)
    assert proc.returncode == 0, proc.stdout[-3000:]
    record = json.loads(record_path.read_text())
    assert record["sla"]["tier"] == "bronze" and record["sla"]["exit_code"] == 0
    assert record["totals"]["requests"] > 100 and (tmp_path / "lib.junit.xml").exists()


def test_an_environment_without_install_says_so(pattern: Served, tmp_path: Path) -> None:
    script = tmp_path / "forgot.py"
    script.write_text(
        "import gevent\n"
        "from locust import FastHttpUser, constant, events, task\n"
        "from locust.env import Environment\n"
        "from locust.log import setup_logging\n"
        "import reliability.plugin  # noqa: F401\n"
        "class U(FastHttpUser):\n"
        "    wait_time = constant(0.1)\n"
        "    @task\n"
        "    def t(self):\n"
        "        self.client.get('/item')\n"
        "setup_logging('INFO')\n"
        f"env = Environment(user_classes=[U], events=events, host={pattern.url!r})\n"
        "env.create_local_runner().start(1, spawn_rate=1)\n"
        "gevent.sleep(1)\n"
        "env.runner.quit()\n"
    )
    proc = run([sys.executable, str(script)], timeout_s=60)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "reliability.plugin is imported but not installed on this Environment" in proc.stdout
