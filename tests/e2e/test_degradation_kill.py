"""Nothing left broken: SIGINT, SIGTERM and SIGKILL to a Locust master (with one worker) while a
fault is active, twice each (an HTTP fault through the target's admin API, and a paused Redis).

SIGINT and SIGTERM: the master reverts the fault before it exits, verifies the backend and writes
the record (inconclusive: the fault was cut short). SIGKILL cannot be caught: the fault's dead-man
switch restores the backend within ``dead_man_s``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.clients import faults_now
from tests.support.locust_runs import launch, running
from tests.support.servers import RedisServer, TargetServer, redis_answers

pytestmark = pytest.mark.slow

DEAD_MAN_S = 3.0
SCENARIO = """
sla: {{tier: bronze}}
recovery: {{warmup_s: 0.5s}}
shape: {{type: steady, users: 4, ramp_s: 1s, tail_s: 2s}}
faults:
  - name: held
    at_s: 1s
    hold_s: 60s
    fault: {fault}
"""


@pytest.mark.parametrize("kind", ["http", "redis"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_signal_to_the_master_leaves_the_backend_healthy(sig: signal.Signals, kind: str, target_server: TargetServer,
                                                        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    healthy: Callable[[], bool]
    if kind == "http":
        fault = f'{{type: http.error, url: "{target_server.url}", status: 503, dead_man_s: {DEAD_MAN_S}}}'
        healthy = lambda: faults_now(target_server.url) is None  # noqa: E731
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")
        fault = f'{{type: redis.pause, url: "{redis.url}", dead_man_s: {DEAD_MAN_S}}}'
        healthy = lambda: redis_answers(redis.port)  # noqa: E731
    with running(launch(tmp_path, SCENARIO.format(fault=fault), target_server.url, workers=1)) as run:
        run.wait_for("fault held: injected")
        time.sleep(0.3)
        assert not healthy(), "the fault should be active before the signal"
        sent = time.monotonic()
        run.master.send_signal(sig)
        if sig == signal.SIGKILL:
            while not healthy():
                assert time.monotonic() - sent <= DEAD_MAN_S + 0.5, "the dead-man switch did not restore the backend"
                time.sleep(0.05)
            return
        code = run.finish(timeout_s=30)
        assert healthy(), "the master exited with the fault still active"
        record = run.record()
    # the fault was cut short: inconclusive, not a crash; but a clear failure stays a failure (exit 3),
    # and the 503s an http.error fault answers are one
    firm = [c["name"] for c in record["sla"]["criteria"] if c["outcome"] == "fail"]
    if kind == "http":
        assert "error_ratio" in firm, record["sla"]["criteria"]
    assert code == (3 if firm else 4), run.output()[-3000:]
    [held] = record["faults"]
    assert held["reverted_because"] == f"{sig.name} received"
    assert held["verified_healthy"] is True and held["post_revert_check"]["healthy"] is True
    assert any("reverted early" in reason for reason in record["sla"]["inconclusive"])
    assert "Traceback" not in run.output()
