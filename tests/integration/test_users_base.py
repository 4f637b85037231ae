"""The users' shared plumbing: backoff, settings, and a package that imports lazily.

Runs in the pytest process: ``reliability.users._base`` and the package itself import no locust.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from reliability.users._base import Backoff, setting
from tests.support.harness import REPO_ROOT


def test_backoff_doubles_from_initial_to_cap_and_resets() -> None:
    backoff = Backoff(initial_s=0.1, max_s=2.0, jitter_ratio=0.0)
    assert backoff.delay_s() == 0.0
    delays = []
    for _ in range(8):
        backoff.failed()
        delays.append(backoff.delay_s())
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
    backoff.succeeded()
    assert backoff.delay_s() == 0.0


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_backoff_jitter_stays_within_ratio_and_cap(rand: float) -> None:
    backoff = Backoff(initial_s=0.1, max_s=2.0, jitter_ratio=0.25, rand=lambda: rand)
    backoff.failed()
    assert 0.075 <= backoff.delay_s() <= 0.125
    for _ in range(100):  # no overflow after many failures
        backoff.failed()
    assert 1.5 <= backoff.delay_s() <= 2.0


def test_backoff_pause_sleeps_only_after_failures() -> None:
    slept: list[float] = []
    backoff = Backoff(jitter_ratio=0.0)
    backoff.pause(slept.append)
    backoff.failed()
    backoff.pause(slept.append)
    assert slept == [0.1]


@pytest.mark.parametrize("kwargs", [{"initial_s": 0}, {"initial_s": 3, "max_s": 2}, {"factor": 0.5},
                                    {"jitter_ratio": 1.0}])
def test_backoff_rejects_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_setting_prefers_attribute_then_environment_and_never_echoes_values() -> None:
    assert setting("attr", "X_URL", "User", "url", environ={"X_URL": "env"}) == "attr"
    assert setting(None, "X_URL", "User", "url", environ={"X_URL": "env"}) == "env"
    with pytest.raises(ValueError, match="User: set the class attribute `url` or the environment variable X_URL"):
        setting(None, "X_URL", "User", "url", environ={"X_URL": ""})


def test_package_import_does_not_import_locust_until_a_user_is_asked_for() -> None:
    code = (
        "import sys, reliability.users as u\n"
        "assert 'locust' not in sys.modules and 'psycopg' not in sys.modules\n"
        "assert sorted(u.__all__) == ['ApiUser', 'PostgresUser', 'RedisUser', 'TokenAuthMixin', 'WebSocketUser']\n"
        "assert u.PostgresUser.abstract and u.RedisUser.abstract and u.WebSocketUser.abstract\n"
        "assert u.ApiUser.abstract and 'locust' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


def test_locust_is_imported_before_every_driver() -> None:
    """Each user module patches the process before its driver loads (no MonkeyPatchWarning)."""
    for module in ("postgres", "redis", "websocket", "http"):
        done = subprocess.run([sys.executable, "-W", "error", "-c", f"import reliability.users.{module}"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                              env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
