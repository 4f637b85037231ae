"""ApiUser (token login) against the reference target, run by Locust in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.harness import assert_outage_handled, run_harness, run_with_outage
from tests.support.servers import TargetServer

pytestmark = pytest.mark.timeout(90)

SHOPPER = """
    from locust import constant, task
    from reliability.users.http import ApiUser

    class Shopper(ApiUser):
        wait_time = constant(0.05)

        @task
        def crud(self):
            created = self.call("POST", "/api/items", name="create", json={"name": "n", "value": 1})
            if created.status_code != 201:
                return  # failed (and recorded): e.g. the target is down
            item = created.json()["id"]
            self.call("GET", f"/api/items/{item}", name="get")
            self.call("PUT", f"/api/items/{item}", name="put", json={"name": "m", "value": 2})
            self.call("GET", "/api/items?limit=5", name="list")
            self.call("DELETE", f"/api/items/{item}", name="delete")
"""


def test_login_once_then_authorized_requests(tmp_path: Path, target_server: TargetServer) -> None:
    result = run_harness(tmp_path, SHOPPER, users=3, run_time_s=2.0, host=target_server.url)
    result.assert_clean()
    logins = result.named("login")
    assert len(logins) == 3 and all(s.ok for s in logins)
    for name in ("create", "get", "put", "list", "delete"):
        samples = result.named(name)
        assert len(samples) > 10 and all(s.ok for s in samples), name
        assert all(s.context["component"] == "api" for s in samples)
    assert result.stats["POST login"]["failures"] == 0


def test_wrong_password_fails_logins_with_backoff(tmp_path: Path, target_server: TargetServer) -> None:
    result = run_harness(tmp_path, """
        from locust import constant, task
        from reliability.users.http import ApiUser

        class Intruder(ApiUser):
            wait_time = constant(0)

            @task
            def look(self):
                self.call("GET", "/api/items?limit=1", name="list")
    """, users=2, run_time_s=3.0, host=target_server.url, env={"RELIABILITY_API_PASSWORD": "wrong"})
    result.assert_clean()
    logins = result.named("login")
    assert logins and all(not s.ok for s in logins)
    assert 2 * 3 <= len(logins) <= 2 * 12  # retried after 0.1 s doubling to 2 s, not in a loop
    lists = result.named("list")
    assert lists and all(not s.ok for s in lists)  # sent without a token: the outage is visible


def test_target_restart_gives_failures_then_relogin_and_recovery(tmp_path: Path, target_server: TargetServer) -> None:
    run = run_with_outage(tmp_path, SHOPPER, target_server, users=3, host=target_server.url)
    assert_outage_handled(run, users=3)
    # the restarted target forgot every token: each user logged in again
    relogins = [s for s in run.after(0) if s.name == "login" and s.ok]
    assert len(relogins) >= 3
