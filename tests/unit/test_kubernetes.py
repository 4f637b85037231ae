"""deploy/kubernetes/: valid manifests (kubernetes-validate, offline, strict), and a master and workers
that find each other, mount what their commands read, and whose commands the real CLI accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.cli import build_parser
from reliability.config import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"


def _docs() -> list[dict[str, Any]]:
    return [d for path in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]


def _find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_every_manifest_is_valid_for_kubernetes() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = _docs()
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment", "Service"}
    for doc in docs:
        kv.validate(doc, kv.latest_version(), strict=True)  # raises on any invalid or unknown field


def test_the_validator_really_checks() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    broken = _find("Deployment", "reliability-worker")
    broken["spec"]["replicas"] = "four"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.latest_version(), strict=True)


def test_master_and_workers_find_each_other() -> None:
    master, workers = _find("Deployment", "reliability-master"), _find("Deployment", "reliability-worker")
    service = _find("Service", "reliability-master")
    assert service["spec"]["selector"] == master["spec"]["template"]["metadata"]["labels"]
    worker_cmd = _container(workers)["command"]
    assert worker_cmd[worker_cmd.index("--master-host") + 1] == service["metadata"]["name"]
    port = int(worker_cmd[worker_cmd.index("--master-port") + 1])
    assert port in {p["port"] for p in service["spec"]["ports"]}
    master_cmd = _container(master)["command"]
    assert int(master_cmd[master_cmd.index("--master-bind-port") + 1]) == port
    # the master waits for exactly as many workers as the Deployment runs
    assert int(_env(_container(master))["RELIABILITY_WORKERS"]) == workers["spec"]["replicas"]


def test_the_mounted_files_are_the_ones_the_commands_read(tmp_path: Path) -> None:
    config = _find("ConfigMap", "reliability-scenario")["data"]
    parse_scenario(yaml.safe_load(config["scenario.yaml"]), "scenario.yaml")
    compile(config["locustfile.py"], "locustfile.py", "exec")
    for name in config:
        (tmp_path / name).write_text(config[name])
    parser = build_parser()
    for deployment in (_find("Deployment", "reliability-master"), _find("Deployment", "reliability-worker")):
        container = _container(deployment)
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        argv = [arg.replace("$(TARGET_URL)", _env(container)["TARGET_URL"]) for arg in container["command"]]
        assert argv[0] == "reliability"
        for arg in argv:
            if arg.startswith("/config/"):
                assert "/config" in mounts and Path(arg).name in config, arg
        parser.parse_args(argv[1:])  # SystemExit(2) on anything the CLI does not take
        local = [arg.replace("/config/", f"{tmp_path}/").replace("/reports/", f"{tmp_path}/reports/") for arg in argv]
        dry = subprocess.run([sys.executable, "-m", "reliability.cli", *local[1:], "--dry-run"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env={"RELIABILITY_WORKERS": _env(container).get("RELIABILITY_WORKERS", "1"),
                                  "PATH": "/usr/bin:/bin"})
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "locust" in dry.stdout
