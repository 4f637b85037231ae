"""A secret planted in the environment appears in no output of a real run: not in the record, the
HTML, JUnit and Markdown reports, the Locust log, the reference target's start-up log, nor the
``--dry-run`` output of a scenario or of a suite.

The secrets reach the run the ways a careless user would let them: a DSN with an unencoded ``#``
in its password, a ``?password=`` query parameter, a token interpolated into a shell fault whose
output echoes it, and suite ``env:`` values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.processes import ROOT
from tests.support.servers import PostgresServer, TargetServer

pytestmark = pytest.mark.slow

DB_PASSWORD = "Pl4nted#Db-Secr3t"  # the "#" would end a URL's userinfo for a naive parser
TOKEN = "tok-Pl4nted-9f2c71e0"
QUERY_PASSWORD = "QueryPl4nted-55aa"
TARGET_PASSWORD = "TargetPl4nted-31bb"
PLANTED = (DB_PASSWORD, TOKEN, QUERY_PASSWORD, TARGET_PASSWORD)

LOCUSTFILE = '''
from locust import constant, task
import reliability.plugin  # noqa: F401
from reliability.users.http import ApiUser


class Reader(ApiUser):
    wait_time = constant(0.2)

    @task
    def get(self):
        self.call("GET", "/api/items?limit=5", name="/api/items")
'''


def leaked(text: str) -> list[str]:
    """The planted secrets (as written or percent-encoded) found in ``text``."""
    return [s for s in PLANTED for form in {s, quote(s, safe="")} if form in text]


@pytest.fixture
def planted_env(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    base = postgres_server.dsn  # trust authentication: any password is accepted
    env = {
        "PLANTED_PG_DSN": base.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@"),
        "PLANTED_API_TOKEN": TOKEN,
        "PLANTED_QUERY_PW": QUERY_PASSWORD,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run_cli(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "reliability.cli", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout_s, check=False)


def test_a_planted_secret_appears_in_no_output_of_a_run(planted_env: dict[str, str], postgres_server: PostgresServer,
                                                        tmp_path: Path) -> None:
    target_dsn = f"{postgres_server.dsn}?password={TARGET_PASSWORD}&sslmode=disable"
    target = TargetServer(extra_args=("--dsn", target_dsn))
    target.start()
    try:
        locustfile = tmp_path / "reader.py"
        locustfile.write_text(LOCUSTFILE)
        scenario = tmp_path / "planted.yaml"
        scenario.write_text(f"""
name: planted secrets
target: {{host: "{target.url}", dsn: "${{PLANTED_PG_DSN}}"}}
load: {{locustfile: "{locustfile}"}}
sla: {{tier: bronze}}
recovery: {{warmup_s: 1s, windows: 2}}
shape: {{type: steady, users: 2, ramp_s: 1s, duration_s: 3s, tail_s: 1s}}
faults:
  - name: leaky shell
    at_s: 2s
    hold_s: 1s
    fault:
      type: shell
      inject: >-
        echo dsn ${{PLANTED_PG_DSN}} token=${{PLANTED_API_TOKEN}}
        url http://h/x?password=${{PLANTED_QUERY_PW}} >&2; exit 3
      revert: "true"
""")
        record = tmp_path / "out" / "run.json"
        args = ("run", str(scenario), "--workers", "0", "--run-record", str(record), "--allow-unsafe-faults")
        dry = run_cli(*args, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        done = run_cli(*args)
        target.stop()
        outputs = {
            "dry-run": dry.stdout + dry.stderr,
            "locust log": done.stdout + done.stderr,
            "target log": target.logfile.read_text(errors="replace"),
        }
        for suffix in (".json", ".html", ".junit.xml", ".md"):
            path = record.with_suffix(suffix)
            assert path.is_file(), (suffix, done.stdout[-2000:], done.stderr[-2000:])
            outputs[suffix] = path.read_text()
    finally:
        target.close()
    assert {name: leaked(text) for name, text in outputs.items() if leaked(text)} == {}
    # the secrets were really there to leak: the fault's error is in the record, masked
    assert "token=***" in outputs[".json"] and "password=***" in outputs[".json"], outputs[".json"][-3000:]
    assert "postgres:***@127.0.0.1" in outputs[".json"]
    assert "store: postgresql" in outputs["target log"] and "password=***" in outputs["target log"]
    assert "exit 3" in outputs["locust log"]


def test_suite_dry_run_masks_env_values_and_interpolates(planted_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text(LOCUSTFILE)
    (tmp_path / "one.yaml").write_text("name: one\nload: {locustfile: x.py}\ntarget: {dsn: '${PLANTED_PG_DSN}'}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text("""
name: planted suite
defaults: {env: {API_TOKEN: "${PLANTED_API_TOKEN}"}}
scenarios:
  - scenario: one.yaml
    env: {TARGET_REDIS_URL: "redis://:${PLANTED_QUERY_PW}@127.0.0.1:6379/0", PLAIN: visible-value}
""")
    dry = run_cli("run", str(suite), "--workers", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert leaked(dry.stdout + dry.stderr) == []
    assert "API_TOKEN=***" in dry.stdout and "redis://:***@127.0.0.1:6379/0" in dry.stdout
    assert "PLAIN=visible-value" in dry.stdout  # only secrets are hidden
