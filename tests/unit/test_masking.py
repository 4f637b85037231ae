"""The one masking function: URL userinfo, query parameters, libpq key=value, known values; the
data and log-record variants; and what a scenario or suite takes from ``${ENV}``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reliability.config import parse_scenario
from reliability.exceptions import ScenarioError
from reliability.masking import (
    MaskingFilter,
    install_log_masking,
    is_secret_name,
    mask,
    mask_data,
    passwords_in,
    secrets_of_env_value,
)
from reliability.suite import parse_suite


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:pw@db:5432/items", "postgresql://app:***@db:5432/items"),
        ("postgresql://app:pa#ss@db:5432/items", "postgresql://app:***@db:5432/items"),
        ("postgresql://app:p@ss/w#rd@db/items", "postgresql://app:***@db/items"),
        ("redis://:hunter2@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://u:pw@localhost:6379", "redis://u:***@localhost:6379"),
        ("password = 'it\\'s x' host=db", "password = *** host=db"),
        ("host=db dbname=items", "host=db dbname=items"),
        ("postgresql://app@db/items?password=pw&sslmode=require", "postgresql://app@db/items?password=***&sslmode=require"),
        ("http://h/x?user=a&pass=p#w&z=1", "http://h/x?user=a&pass=***&z=1"),
        ("http://h/x?API_KEY=k", "http://h/x?API_KEY=***"),
        ("host=db user=app password=hunter2 dbname=items", "host=db user=app password=*** dbname=items"),
        ("host=db password='it\\'s x' dbname=i", "host=db password=*** dbname=i"),
        ("a postgresql://u:p1@h and redis://:p2@r done", "a postgresql://u:***@h and redis://:***@r done"),
        ("http://127.0.0.1:8080/api/items?limit=5", "http://127.0.0.1:8080/api/items?limit=5"),
        ("postgresql://app@db/items", "postgresql://app@db/items"),
        ("ratio=0.5 passed=3", "ratio=0.5 passed=3"),
    ],
)
def test_mask_hides_passwords_by_their_syntax(text: str, shown: str) -> None:
    assert mask(text) == shown


def test_mask_hides_known_values_and_their_encoded_form() -> None:
    assert mask("token s3cr3t/x and s3cr3t%2Fx", ("s3cr3t/x",)) == "token *** and ***"
    assert mask("dsn host=h password=abc-def", ("abc-def", "")) == "dsn host=h password=***"


def test_passwords_in_finds_each_form_decoded() -> None:
    assert passwords_in("postgresql://app:pa%23ss@db/items?sslpassword=k3y") == ("pa%23ss", "pa#ss", "k3y")
    assert passwords_in("host=db password='a b'") == ("a b",)
    assert passwords_in(None) == () and passwords_in("http://h/x") == ()


def test_env_values_are_secret_by_name_or_by_content() -> None:
    assert is_secret_name("DB_PASSWORD") and is_secret_name("API_TOKEN") and is_secret_name("PGPASSWORD")
    assert is_secret_name("aws_secret_access_key") and is_secret_name("AUTH")
    assert not is_secret_name("TARGET_URL") and not is_secret_name("passed") and not is_secret_name("USERS")
    assert secrets_of_env_value("API_TOKEN", "t0ken-value") == ("t0ken-value",)
    assert secrets_of_env_value("PG_DSN", "postgresql://u:dbpw1@h/d") == ("dbpw1",)
    assert secrets_of_env_value("TARGET_URL", "http://127.0.0.1:8080") == ()
    assert secrets_of_env_value("API_TOKEN", "ab") == ()  # too short to hide everywhere


def test_mask_data_masks_strings_keys_and_secret_named_values() -> None:
    data = {"error": "connect postgresql://u:pw@h failed", "password": "plain", "max_tokens": "5",
            "n": 3, "items": [("x s3cret-1",)], "s3cret-1": True}
    assert mask_data(data, ("s3cret-1",)) == {
        "error": "connect postgresql://u:***@h failed", "password": "***", "max_tokens": "5",
        "n": 3, "items": [["x ***"]], "***": True,
    }


def test_log_filter_masks_message_arguments_and_traceback() -> None:
    logger = logging.getLogger("test.masking")
    logger.propagate = False
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    logger.addHandler(handler)
    try:
        masker = install_log_masking(logger, ("t0ken-abc",))
        assert isinstance(masker, MaskingFilter) and install_log_masking(logger) is masker
        logger.warning("dsn %s token %s", "postgresql://u:pw@h/d", "t0ken-abc")
        try:
            raise ValueError("failed with t0ken-abc")
        except ValueError:
            logger.exception("boom redis://:rpw@h")
    finally:
        logger.removeHandler(handler)
    assert records[0] == "dsn postgresql://u:***@h/d token ***"
    assert records[1].startswith("boom redis://:***@h") and "ValueError: failed with ***" in records[1]
    assert "t0ken-abc" not in "".join(records) and "rpw" not in "".join(records)


def test_scenario_tracks_interpolated_secrets_and_errors_do_not_echo_them() -> None:
    env = {"PG_DSN": "postgresql://u:dbpw-123@h/d", "API_TOKEN": "tok-456", "HOST": "http://127.0.0.1:1"}
    spec = parse_scenario({"target": {"dsn": "${PG_DSN}", "host": "${HOST}"}, "description": "${API_TOKEN}"},
                          "s.yaml", env)
    assert set(spec.secrets) == {"dbpw-123", "tok-456"}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"load": {"run_time_s": "${API_TOKEN}"}}, "s.yaml", env)
    assert str(caught.value).startswith("s.yaml: load.run_time_s: ") and "tok-456" not in str(caught.value)
    assert "***" in str(caught.value)


def test_suite_files_interpolate_and_track_secrets(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("")
    (tmp_path / "one.yaml").write_text("load: {locustfile: x.py}\n")
    env = {"TOKEN_A": "tok-suite-1", "NAME": "from env"}
    suite = parse_suite({"name": "${NAME}", "defaults": {"env": {"API_TOKEN": "${TOKEN_A}", "MODE": "fast"}},
                         "scenarios": [{"scenario": "one.yaml"}]}, str(tmp_path / "suite.yaml"), env)
    assert suite.spec.name == "from env" and suite.entries[0].env["API_TOKEN"] == "tok-suite-1"
    assert "tok-suite-1" in suite.env_secrets() and "fast" not in suite.env_secrets()
    with pytest.raises(ScenarioError, match="environment variable MISSING is not set"):
        parse_suite({"name": "${MISSING}", "scenarios": [{"scenario": "one.yaml"}]}, "suite.yaml", env)
