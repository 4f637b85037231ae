"""The scenario's health section: parsing, field-path errors, secrets kept out of reprs."""

from __future__ import annotations

from typing import Any

import pytest

from reliability.config import parse_scenario
from reliability.exceptions import ScenarioError
from reliability.health.spec import HealthSpec, probe_summary

HTTP = {"type": "http", "url": "http://127.0.0.1:8080/health"}


def _health(**section: Any) -> HealthSpec:
    spec = parse_scenario({"health": section}, "s.yaml", env={"PG_DSN": "postgresql://app:pg-s3cret@db:5432/app",
                                                              "RTOKEN": "tok-s3cret"})
    assert spec.health is not None
    return spec.health


def _error(**section: Any) -> str:
    with pytest.raises(ScenarioError) as info:
        _health(**section)
    return str(info.value)


def test_a_full_section_parses_with_units_and_env_secrets() -> None:
    health = _health(
        interval_s="2s", timeout_s="500ms", uptime_pct=99.5, resources={"port": 8080},
        components={
            "db": {"probe": {"type": "postgres", "dsn": "${PG_DSN}", "slow_query_ms": "2s"}},
            "cache": {"probe": {"type": "redis", "url": "redis://:r-pass@cache:6379/0"}, "critical": False},
            "api": {"probe": HTTP, "depends_on": ["db", "cache"], "degraded_ms": "250ms", "timeout_s": "1s"},
            "gw": {"probe": {"type": "gateway", "url": "http://h", "token": "${RTOKEN}"}, "depends_on": ["api"]},
        },
    )
    assert (health.interval_s, health.timeout_s, health.timeout_for("api"), health.timeout_for("db")) == (2, .5, 1, .5)
    db = health.components["db"].probe
    assert db.type == "postgres" and db.slow_query_ms == 2000
    assert health.components["api"].degraded_ms == 250 and not health.components["cache"].critical
    assert health.dependencies()["api"] == ("db", "cache")
    text = repr(health) + str(health)
    assert "pg-s3cret" not in text and "tok-s3cret" not in text and "r-pass" not in text
    assert {"postgresql://app:pg-s3cret@db:5432/app", "pg-s3cret", "tok-s3cret", "r-pass"} <= set(health.secrets())
    assert probe_summary(db) == "postgresql://app:***@db:5432/app"
    assert probe_summary(health.components["gw"].probe) == "http://h/api/items?limit=1"
    assert probe_summary(health.components["cache"].probe) == "redis://:***@cache:6379/0"
    prom = _health(components={"p": {"probe": {"type": "prometheus", "url": "http://u:basic-pw@h:9090"}}})
    assert probe_summary(prom.components["p"].probe) == "http://u:***@h:9090"


@pytest.mark.parametrize(("section", "message"), [
    ({"components": {"api": {"probe": HTTP, "depends_on": ["db"]}}},
     "s.yaml: health.components.api.depends_on[0]: unknown component 'db'; known: api"),
    ({"components": {"a": {"probe": HTTP, "depends_on": ["b"]}, "b": {"probe": HTTP, "depends_on": ["a"]}}},
     "s.yaml: health.components.a.depends_on: dependency cycle a -> b -> a"),
    ({"components": {"a": {"probe": HTTP, "depends_on": ["a"]}}},
     "s.yaml: health.components.a.depends_on: dependency cycle a -> a"),
    ({"timeout_s": "2s", "components": {"a": {"probe": HTTP}}},
     "s.yaml: health.timeout_s: 2 s is longer than interval_s (1 s)"),
    ({"components": {"a": {"probe": HTTP, "timeout_s": 3}}},
     "s.yaml: health.components.a.timeout_s: 3 s is longer than interval_s (1 s)"),
    ({"components": {"a": {"probe": {"type": "postgres"}}}}, "s.yaml: health.components.a.probe.postgres.dsn: "),
    ({"components": {"a": {"probe": {"type": "smtp"}}}}, "s.yaml: health.components.a.probe: "),
    ({"components": {"a": {"probe": HTTP, "retries": 3}}}, "s.yaml: health.components.a.retries: unknown key"),
    ({"components": {"a": {"probe": {"type": "gateway", "url": "http://h", "username": "u"}}}},
     "s.yaml: health.components.a.probe.gateway.token: give a token, or a username and a password"),
    ({"components": {"a": {"probe": HTTP, "weight": 0}}},
     "s.yaml: health.components: at least one component needs a weight above 0"),
    ({"resources": {"pid": 1, "port": 2}, "components": {"a": {"probe": HTTP}}},
     "s.yaml: health.resources.pid: give exactly one of pid and port"),
    ({"components": {}}, "s.yaml: health.components: "),
])
def test_bad_sections_name_the_field(section: dict[str, Any], message: str) -> None:
    assert _error(**section).startswith(message)


def test_a_missing_secret_names_the_variable_not_a_value() -> None:
    with pytest.raises(ScenarioError, match=r"health.components.db.probe.dsn: environment variable NOPE is not set"):
        parse_scenario({"health": {"components": {"db": {"probe": {"type": "postgres", "dsn": "${NOPE}"}}}}},
                       "s.yaml", env={})


def test_no_health_section_is_none() -> None:
    assert parse_scenario({}).health is None
