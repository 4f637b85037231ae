"""Shell, webhook, process.* and factory faults run only with ``--allow-unsafe-faults``: without it
``locust --headless`` and ``reliability run`` stop with one line before anything runs; with it the
shell fault really runs. Also webhook URLs other than http(s) and ``user:`` without ``match:``."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from reliability.cli import main
from reliability.config import load_scenario
from reliability.exceptions import ScenarioError
from reliability.faults.optin import require_opt_in, unsafe_faults
from tests.support.locust_runs import shell_scenario
from tests.support.processes import ROOT, locust_cmd, run

EMPTY = str(ROOT / "tests/e2e/locustfiles/empty_user.py")


def test_the_opt_in_lists_every_unsafe_fault(tmp_path: Path) -> None:
    path = shell_scenario(tmp_path, tmp_path / "m", """\
  - {at_s: 5s, hold_s: 1s, fault: {type: webhook, inject: {url: "http://127.0.0.1:9/x"}, revert: {url: "http://127.0.0.1:9/y"}}}
  - {name: freeze, at_s: 10s, hold_s: 1s, fault: {type: process.suspend, match: "redis-server"}}
  - {name: kill, at_s: 15s, hold_s: 1s, fault: {type: process.kill, pid: 12345, restart_command: "true"}}
  - {name: mine, at_s: 20s, hold_s: 1s, factory: "os.path:join"}
  - {name: slow, at_s: 25s, hold_s: 1s, fault: {type: http.latency, url: "http://127.0.0.1:9", latency_ms: 5}}
""")
    scenario = load_scenario(str(path))
    assert unsafe_faults(scenario.faults) == [("touch", "shell"), ("webhook", "webhook"),
                                              ("freeze", "process.suspend"), ("kill", "process.kill"),
                                              ("mine", "factory os.path:join")]
    with pytest.raises(ScenarioError) as caught:
        require_opt_in(scenario, allowed=False, source=str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: faults: touch (shell), webhook (webhook), freeze (process.suspend), ")
    assert message.endswith("pass --allow-unsafe-faults to run them")
    require_opt_in(scenario, allowed=True, source=str(path))
    safe = tmp_path / "safe.yaml"
    safe.write_text("faults: [{at_s: 10s, hold_s: 1s, fault: {type: http.latency, url: 'http://127.0.0.1:9', "
                    "latency_ms: 5}}]\n")
    require_opt_in(load_scenario(str(safe)), allowed=False, source=str(safe))


@pytest.mark.parametrize(("fault", "field", "reason"), [
    ('{type: webhook, inject: {url: "file:///etc/passwd"}}', "faults[0].fault.inject.url", "scheme 'file'"),
    ('{type: webhook, inject: {url: "ftp://127.0.0.1/x"}}', "faults[0].fault.inject.url", "scheme 'ftp'"),
    ('{type: webhook, inject: {url: "http://127.0.0.1:9/x"}, verify_url: "file:///etc/hosts"}',
     "faults[0].fault.verify_url", "scheme 'file'"),
    ('{type: process.kill, pid: 5, user: postgres}', "faults[0].fault", "user: only used with match"),
])
def test_bad_webhook_schemes_and_user_without_match_are_one_line(tmp_path: Path, fault: str, field: str,
                                                                 reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"faults: [{{at_s: 1s, hold_s: 1s, fault: {fault}}}]\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert str(caught.value).startswith(f"{path}: {field}"), str(caught.value)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_locust_refuses_a_shell_fault_without_the_flag_and_runs_it_with(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    scenario = shell_scenario(tmp_path, marker)
    args = ["-f", EMPTY, "--headless", "-u", "1", "-r", "1", "-t", "8s", "--scenario", str(scenario),
            "--run-record", str(tmp_path / "run.json")]
    refused = run(locust_cmd(*args), timeout_s=60)
    assert refused.returncode == 2, refused.stdout[-3000:]  # a usage error, like any invalid scenario
    lines = [line for line in refused.stdout.splitlines() if "--allow-unsafe-faults" in line]
    assert len(lines) == 1 and "touch (shell) act(s) on this machine" in lines[0], refused.stdout[-3000:]
    assert "Traceback" not in refused.stdout
    assert not marker.exists()

    allowed = run(locust_cmd(*args), timeout_s=60, env={"LOCUST_ALLOW_UNSAFE_FAULTS": "true"})  # = the flag
    assert marker.exists(), allowed.stdout[-3000:]
    assert "--allow-unsafe-faults" not in allowed.stdout


def test_reliability_run_refuses_before_starting_and_passes_the_flag_on(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    scenario = shell_scenario(tmp_path, tmp_path / "m")
    assert main(["run", str(scenario), "--workers", "0", "--dry-run"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --allow-unsafe-faults to run them" in err
    assert main(["run", str(scenario), "--workers", "2", "--dry-run", "--allow-unsafe-faults"]) == 0
    master, *workers = [shlex.split(line) for line in capsys.readouterr().out.splitlines()
                        if not line.startswith("#")]
    assert "--allow-unsafe-faults" in master and not any("--allow-unsafe-faults" in w for w in workers)
