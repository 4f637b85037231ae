"""docker-compose.yml is for users: parse it and check it against the code (Docker does not run here)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.target.config import OPTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_present(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"postgres", "redis", "toxiproxy", "target", "prometheus", "master", "worker"}
    assert "ports" not in compose["services"]["worker"]  # workers scale with --scale worker=N


def test_target_env_names_are_the_ones_the_code_reads(compose: dict[str, Any]) -> None:
    known = {o.env for o in OPTIONS} | {"RELIABILITY_TARGET_PASSWORD", "RELIABILITY_ADMIN_TOKEN"}
    assert set(compose["services"]["target"]["environment"]) <= known


def test_commands_use_files_and_options_that_exist(compose: dict[str, Any]) -> None:
    for name in ("master", "worker"):
        command = compose["services"][name]["command"]
        assert (ROOT / command[command.index("-f") + 1]).exists()
    master = compose["services"]["master"]["command"]
    assert (ROOT / master[master.index("--scenario") + 1]).exists()
    target = compose["services"]["target"]["command"]
    flags = {o.flag for o in OPTIONS}
    assert {a for a in target if a.startswith("--")} <= flags


def test_toxiproxy_sits_between_target_and_backends(compose: dict[str, Any]) -> None:
    proxies = json.loads((ROOT / "deploy/toxiproxy.json").read_text())
    listens = {p["name"]: p["listen"].rsplit(":", 1)[1] for p in proxies}
    env = compose["services"]["target"]["environment"]
    assert f"toxiproxy:{listens['postgres']}" in env["RELIABILITY_TARGET_DSN"]
    assert f"toxiproxy:{listens['redis']}" in env["RELIABILITY_TARGET_REDIS_URL"]
    assert "${POSTGRES_PASSWORD" in env["RELIABILITY_TARGET_DSN"]  # secrets come from the environment


def test_prometheus_scrapes_target_and_master() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"target:8080", "master:8089"}


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin not available")
    proc = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60,
                          env={"POSTGRES_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
