"""The run record reports the cache hit rate of RedisUser lookups, locally and merged on a master."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import ROOT, locust_cmd, run
from tests.support.schemas import assert_valid_record
from tests.support.servers import RedisServer

pytestmark = pytest.mark.slow


def test_hit_rate_lands_in_the_record(redis_server: RedisServer, tmp_path: Path) -> None:
    record_path = tmp_path / "run.json"
    proc = run(
        locust_cmd("-f", str(ROOT / "locustfiles/cache.py"), "--headless", "-u", "5", "-r", "5", "-t", "4s",
                   "--run-record", str(record_path), "--sla-tier", "bronze"),
        timeout_s=90, env={"RELIABILITY_REDIS_URL": redis_server.url, "RELIABILITY_CACHE_KEYS": "20"},
    )
    record = assert_valid_record(record_path)
    # the grade is not this test's subject: a loaded machine may make too few requests to show bronze
    assert proc.returncode == record["sla"]["exit_code"] and proc.returncode in (0, 4), proc.stdout[-3000:]
    (row,) = record["cache"]
    assert row["type"] == "redis"
    lookups = row["hits"] + row["misses"]
    # 20 keys: each key misses until the first user fills it (5 users may race on one key), then hits
    assert lookups > 100 and 1 <= row["misses"] <= 20 * 5 and row["hits"] > row["misses"]
    assert row["hit_ratio"] == pytest.approx(row["hits"] / lookups)
    endpoint = next(e for e in record["endpoints"] if e["name"] == row["name"])
    assert endpoint["requests"] == lookups  # every lookup is one sample, counted once
