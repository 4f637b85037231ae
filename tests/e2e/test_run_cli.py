"""`reliability run` from the command line without starting Locust: the command lines it would run
(``--dry-run``), the process layouts, and one-line errors with their exit codes."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from reliability.cli import main
from reliability.runner.cli import WORKERS_ENV

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = str(ROOT / "locustfiles/api.py")


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> list[list[str]]:
    assert main(["run", *args, "--dry-run"]) == 0
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]


def value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_local_swarm_is_a_master_on_loopback_and_its_workers(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path, f"target: {{host: http://127.0.0.1:8080}}\nload: {{locustfile: {LOCUSTFILE}, "
                               "users: 40, spawn_rate: 8, run_time_s: 2m}\n")
    master, *workers = dry_run(capsys, scenario, "--workers", "3", "--run-record", "out/r.json")
    assert len(workers) == 3
    assert master[1:3] == ["-m", "locust"] and "--headless" in master and "--master" in master
    assert value(master, "--expect-workers") == "3" and value(master, "--master-bind-host") == "127.0.0.1"
    assert (value(master, "-u"), value(master, "-r"), value(master, "-t")) == ("40", "8", "120s")
    assert value(master, "--scenario") == scenario and value(master, "--run-record") == "out/r.json"
    assert value(master, "--host") == "http://127.0.0.1:8080" and "--enable-rebalancing" in master
    port = value(master, "--master-bind-port")
    for worker in workers:
        assert "--worker" in worker and value(worker, "--master-port") == port
        assert value(worker, "-f") == LOCUSTFILE and "--scenario" not in worker  # only the master grades


def test_zero_workers_is_a_local_runner_and_the_command_line_wins(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path, f"load: {{locustfile: {LOCUSTFILE}}}\n")
    [local] = dry_run(capsys, scenario, "--workers", "0", "-u", "5", "-t", "1m", "--sla-tier", "silver",
                      "-H", "http://h:1")
    assert "--master" not in local and "--headless" in local
    assert (value(local, "-u"), value(local, "-t"), value(local, "--sla-tier")) == ("5", "60s", "silver")
    assert value(local, "--host") == "http://h:1"


def test_a_shaped_scenario_leaves_users_and_run_time_to_its_shape(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path, "shape: {type: steady, users: 5, ramp_s: 1s, duration_s: 5s}\n")
    [local] = dry_run(capsys, scenario, "--workers", "0", "-f", LOCUSTFILE)
    assert not {"-u", "-r", "-t"} & set(local)


def test_workers_default_to_the_environment_then_the_cpus(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = write(tmp_path, f"load: {{locustfile: {LOCUSTFILE}}}\n")
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert len(dry_run(capsys, scenario)) == 3
    monkeypatch.delenv(WORKERS_ENV)
    assert len(dry_run(capsys, scenario)) == 1 + len(os.sched_getaffinity(0))


def test_multi_host_master_and_worker_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path, f"load: {{locustfile: {LOCUSTFILE}}}\n")
    [master] = dry_run(capsys, scenario, "--master", "--workers", "4", "--web-port", "8089")
    assert value(master, "--master-bind-host") == "*" and value(master, "--master-bind-port") == "5557"
    assert value(master, "--expect-workers") == "4" and "--autostart" in master and "--headless" not in master
    workers = dry_run(capsys, scenario, "--worker", "--workers", "2", "--master-host", "10.0.0.5")
    assert len(workers) == 2 and value(workers[0], "--master-host") == "10.0.0.5"
    assert value(workers[0], "--master-port") == "5557"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--master"], 2, "--master needs the number of workers to wait for"),
    (["--worker", "--workers", "0"], 2, "--worker needs at least one worker"),
    (["-t", "soon"], 2, "--run-time: expected a duration"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch, args: list[str], code: int,
                                          message: str) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    scenario = write(tmp_path, f"load: {{locustfile: {LOCUSTFILE}}}\n")
    assert main(["run", scenario, *args, "--dry-run"]) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_scenarios_are_one_line_and_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "sla: {tier: diamond}\n")
    assert main(["run", bad, "--dry-run"]) == 4
    assert f"error: {bad}: sla.tier: unknown tier 'diamond'" in capsys.readouterr().err
    missing = write(tmp_path, "load: {locustfile: nowhere.py}\n", "m.yaml")
    assert main(["run", missing, "--dry-run"]) == 4
    assert f"{missing}: load.locustfile: locustfile not found" in capsys.readouterr().err
    none = write(tmp_path, "name: x\n", "n.yaml")
    assert main(["run", none, "--dry-run"]) == 4
    assert "no locustfile" in capsys.readouterr().err


def test_a_suite_dry_run_lists_its_scenarios_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "name: one\n", "one.yaml")
    write(tmp_path, "name: two\nshape: {type: steady, users: 2, ramp_s: 1s, duration_s: 3s}\n", "two.yaml")
    suite = write(tmp_path, f"defaults: {{locustfile: {LOCUSTFILE}, workers: 0}}\nscenarios:\n"
                            "  - {scenario: one.yaml}\n  - {scenario: two.yaml, workers: 1, time_scale: 0.5}\n",
                  "suite.yaml")
    assert main(["run", suite, "--dry-run", "--run-record", str(tmp_path / "all.json")]) == 0
    out = capsys.readouterr().out
    assert "# 1. one (baseline)" in out and "# 2. two (load) with RELIABILITY_TIME_SCALE=0.5" in out
    assert out.index("# 1. one") < out.index("# 2. two")
    assert str(tmp_path / "all" / "01-one.json") in out and str(tmp_path / "all" / "02-two.json") in out
    assert main(["run", suite, "--master", "--workers", "2"]) == 2
    assert "a suite runs each scenario as a local swarm" in capsys.readouterr().err
