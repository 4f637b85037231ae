"""docker-compose.yml is for users: parse it and check it against the code (Docker does not run here).

Services, ports, health checks, the `reliability run` master/worker/suite commands (parsed by the
real command-line parser and turned into the Locust command lines they would start) and every
environment variable name (one the code or a shipped scenario really reads).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.cli import build_parser
from reliability.runner.cli import WORKERS_ENV, overrides_from_args, settings_from_args
from reliability.runner.commands import plan_run
from reliability.runner.single import commands
from reliability.suite import read_run_file
from reliability.target.config import ADMIN_TOKEN_ENV, OPTIONS, PASSWORD_ENV

ROOT = Path(__file__).resolve().parents[2]
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")
IMAGE_ENV = {"postgres": {"POSTGRES_PASSWORD", "POSTGRES_DB"}}  # read by the official images


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} with the defaults (or ``env``), as `docker compose` would."""
    return _REF.sub(lambda m: (env or {}).get(m.group(1), m.group(2) or ""), value)


def command_of(compose: dict[str, Any], service: str) -> list[str]:
    return [interpolate(arg) for arg in compose["services"][service]["command"]]


def env_names_in_code() -> set[str]:
    """Upper-case string literals in the package and the locustfiles: the names looked up in
    ``os.environ`` are among them (constants such as ``PASSWORD_ENV = "..."`` included)."""
    names: set[str] = set()
    for path in [*(ROOT / "reliability").rglob("*.py"), *(ROOT / "locustfiles").glob("*.py")]:
        names |= set(re.findall(r"[\"']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)[\"']", path.read_text()))
    return names


def env_refs_in_scenarios() -> set[str]:
    return {m.group(1) for path in (ROOT / "scenarios").glob("*.yaml") for m in _REF.finditer(path.read_text())}


def test_services_ports_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "toxiproxy", "target", "prometheus", "master", "worker", "suite"}
    assert "ports" not in services["worker"] and "container_name" not in services["worker"]  # --scale worker=N
    for name in ("postgres", "redis", "toxiproxy", "target", "prometheus"):
        assert services[name]["healthcheck"]["test"], name
    assert services["toxiproxy"]["image"].startswith("ghcr.io/shopify/toxiproxy:")  # the real Toxiproxy
    assert "8089:8089" in services["master"]["ports"] and "8080:8080" in services["target"]["ports"]
    assert services["suite"]["profiles"] == ["suite"] and services["suite"]["network_mode"] == "service:target"


def test_target_env_names_are_the_ones_the_code_reads(compose: dict[str, Any]) -> None:
    known = {o.env for o in OPTIONS} | {PASSWORD_ENV, ADMIN_TOKEN_ENV}
    assert set(compose["services"]["target"]["environment"]) <= known
    flags = {o.flag for o in OPTIONS}
    target = compose["services"]["target"]["command"]
    assert target[:2] == ["reliability", "target"] and {a for a in target if a.startswith("--")} <= flags


def test_load_env_names_are_read_by_the_code_or_a_shipped_scenario(compose: dict[str, Any]) -> None:
    known = env_names_in_code() | env_refs_in_scenarios()
    assert WORKERS_ENV in known and "RELIABILITY_API_PASSWORD" in known
    for name, service in compose["services"].items():
        env = set(service.get("environment") or {})
        unknown = env - known - IMAGE_ENV.get(name, set())
        assert not unknown, f"{name}: {sorted(unknown)} are read by nothing"


def test_master_and_workers_are_reliability_run_and_agree(compose: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    master_cmd, worker_cmd = command_of(compose, "master"), command_of(compose, "worker")
    assert master_cmd[:2] == worker_cmd[:2] == ["reliability", "run"]
    master, worker = parser.parse_args(master_cmd[1:]), parser.parse_args(worker_cmd[1:])
    assert master.master and worker.worker and worker.workers == 1
    assert master.file == worker.file and (ROOT / master.file).exists()
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(WORKERS_ENV, interpolate(compose["services"]["master"]["environment"][WORKERS_ENV]))
    plan = plan_run(master.file, overrides_from_args(master))
    lead, none = commands(plan, settings_from_args(master))
    assert none == []
    assert lead is not None and lead[lead.index("--expect-workers") + 1] == "2"
    port = lead[lead.index("--master-bind-port") + 1]
    assert lead[lead.index("--master-bind-host") + 1] == "0.0.0.0"
    assert lead[lead.index("--web-port") + 1] == "8089" and "--headless" not in lead  # /metrics for Prometheus
    no_lead, workers = commands(plan, settings_from_args(worker))
    assert no_lead is None and len(workers) == 1
    assert workers[0][workers[0].index("--master-host") + 1] == "master"  # the service name
    assert workers[0][workers[0].index("--master-port") + 1] == port
    assert plan.host == "http://target:8080" and (ROOT / plan.locustfile).exists()


def test_the_suite_service_runs_a_shipped_suite(compose: dict[str, Any]) -> None:
    args = build_parser().parse_args(command_of(compose, "suite")[1:])
    suite, _ = read_run_file(ROOT / args.file)
    assert suite is not None and len(suite.entries) >= 4 and args.workers == 2
    assert {e.kind for e in suite.entries} == {"baseline", "load", "degradation", "capacity"}


def test_toxiproxy_sits_between_target_and_backends(compose: dict[str, Any]) -> None:
    proxies = json.loads((ROOT / "deploy/toxiproxy.json").read_text())
    listens = {p["name"]: p["listen"].rsplit(":", 1)[1] for p in proxies}
    upstreams = {p["name"]: p["upstream"] for p in proxies}
    assert upstreams == {"postgres": "postgres:5432", "redis": "redis:6379"}
    env = compose["services"]["target"]["environment"]
    assert f"toxiproxy:{listens['postgres']}" in env["RELIABILITY_TARGET_DSN"]
    assert f"toxiproxy:{listens['redis']}" in env["RELIABILITY_TARGET_REDIS_URL"]
    assert "${POSTGRES_PASSWORD" in env["RELIABILITY_TARGET_DSN"]  # secrets come from the environment
    # the db_slowness scenario's proxy name exists in Toxiproxy's config
    assert "proxy: postgres" in (ROOT / "scenarios/db_slowness.yaml").read_text()


def test_prometheus_scrapes_target_and_master() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"target:8080", "master:8089"}


def test_the_image_has_what_the_commands_use() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("reliability", "locustfiles", "scenarios"):
        assert re.search(rf"^COPY {folder} \./{folder}$", dockerfile, re.MULTILINE), folder


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin not available")
    proc = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "suite",
                           "config", "-q"], capture_output=True, text=True, timeout=60,
                          env={"POSTGRES_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
