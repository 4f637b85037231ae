"""docker-compose.yml is for users: parse it and check it against the code (Docker does not run here).

Services, ports, health checks, the `reliability run` master/worker/suite commands (parsed by the
real command-line parser and turned into the Locust command lines they would start) and every
environment variable name (one the code or a shipped scenario really reads).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.cli import build_parser
from reliability.exceptions import TargetError
from reliability.origins import OriginPolicy, is_loopback, parse_origins
from reliability.runner.cli import WORKERS_ENV, overrides_from_args, settings_from_args
from reliability.runner.commands import plan_run
from reliability.runner.single import commands
from reliability.suite import read_run_file
from reliability.target.config import ADMIN_TOKEN_ENV, OPTIONS, PASSWORD_ENV, config_from_namespace
from tests.support.schemas import schema_path  # noqa: E402

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
    assert "127.0.0.1:8089:8089" in services["master"]["ports"]
    assert "127.0.0.1:8080:8080" in services["target"]["ports"]
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


def _published(port: Any) -> tuple[str | None, str]:
    """(host address or None for all interfaces, the rest) of a short or long port entry."""
    if isinstance(port, dict):
        return port.get("host_ip"), f"{port.get('published')}:{port.get('target')}"
    parts = str(port).rsplit(":", 2)
    return (parts[0] if len(parts) == 3 else None), ":".join(parts[-2:])


def test_every_published_port_is_on_the_hosts_loopback_only(compose: dict[str, Any]) -> None:
    published = {name: [_published(p) for p in service.get("ports", [])]
                 for name, service in compose["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"toxiproxy", "target", "prometheus", "master"}
    for name, ports in published.items():
        for host, rest in ports:
            assert host == "127.0.0.1", f"{name} publishes {rest} on {host or 'all interfaces'}"


def test_the_admin_token_is_required_and_the_target_refuses_to_run_without_it(compose: dict[str, Any]) -> None:
    target = compose["services"]["target"]
    for env in (target["environment"], compose["x-load-env"]):
        assert re.fullmatch(r"\$\{RELIABILITY_ADMIN_TOKEN:\?[^}]+\}", env[ADMIN_TOKEN_ENV]), env[ADMIN_TOKEN_ENV]
    parser = build_parser()
    args = parser.parse_args([interpolate(a) for a in target["command"]][1:])
    env = {k: interpolate(str(v), {"POSTGRES_PASSWORD": "pw"}) for k, v in target["environment"].items()}
    assert not is_loopback(args.host)  # so the token is what protects the admin API
    with pytest.raises(TargetError, match=r"host: 0\.0\.0\.0 is not a loopback address: set RELIABILITY_ADMIN"):
        config_from_namespace(args, {**env, ADMIN_TOKEN_ENV: ""})
    config = config_from_namespace(args, {**env, ADMIN_TOKEN_ENV: "a-token"})
    # the master's http.* faults reach the admin API as TARGET_URL's host
    target_host = compose["x-load-env"]["TARGET_URL"].split("//", 1)[1].split(":", 1)[0]
    assert target_host in config.allowed_hosts
    assert OriginPolicy(config.host, extra_hosts=config.allowed_hosts).host_problem(f"{target_host}:8080") is None


def test_the_web_ui_is_loopback_only_on_the_host_and_answers_prometheus(compose: dict[str, Any],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    master = build_parser().parse_args(command_of(compose, "master")[1:])
    assert master.web_port == 8089 and "--web-login" not in command_of(compose, "master")
    assert [_published(p)[0] for p in compose["services"]["master"]["ports"]] == ["127.0.0.1"]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(WORKERS_ENV, "2")
    lead, _ = commands(plan_run(master.file, overrides_from_args(master)), settings_from_args(master))
    assert lead is not None
    origins = [lead[i + 1] for i, arg in enumerate(lead) if arg == "--web-origin"]
    policy = OriginPolicy(lead[lead.index("--web-host") + 1], extra_origins=parse_origins(origins))
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    scraped = [t for job in config["scrape_configs"] if job["job_name"] == "locust-master"
               for sc in job["static_configs"] for t in sc["targets"]]
    assert scraped and all(policy.host_problem(t) is None for t in scraped)
    assert policy.host_problem("127.0.0.1:8089") is None and policy.host_problem("evil.example:8089") is not None


def test_the_images_run_as_a_non_root_user(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert dockerfile.rindex("USER") > dockerfile.rindex("RUN ")  # nothing runs as root after it
    for name, service in compose["services"].items():
        if service.get("build"):
            user = interpolate(str(service.get("user", users[-1])))
            assert user.split(":")[0] not in ("0", "root", ""), name


def test_the_image_has_what_the_commands_use() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("reliability", "locustfiles", "scenarios"):
        assert re.search(rf"^COPY {folder} \./{folder}$", dockerfile, re.MULTILINE), folder


def test_the_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    """The Compose Specification's own JSON Schema, offline (no Docker engine or compose plugin here)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_path("compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # and the schema does catch a broken file: it is really checking
    broken = {**compose, "services": {**compose["services"], "master": {**compose["services"]["master"],
                                                                      "comand": ["typo"]}}}
    assert list(validator.iter_errors(broken))
