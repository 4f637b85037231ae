"""`reliability run SUITE.yaml` end to end: three short scenarios in order (a baseline with health
probes, a step load, a Redis outage on a master with one worker) against the reference target
backed by real PostgreSQL and Redis; one combined record, one readiness report, each scenario's own
record and reports, nothing left running and the backend healthy afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability.report.readiness import DIMENSIONS
from tests.support.locust_runs import READER_LOCUSTFILE, Run
from tests.support.schemas import assert_valid_record
from tests.support.servers import PostgresServer, RedisServer, TargetServer, redis_answers

pytestmark = pytest.mark.slow


def write_suite(tmp_path: Path, target: TargetServer, pg: PostgresServer, redis: RedisServer) -> Path:
    (tmp_path / "reader.py").write_text(READER_LOCUSTFILE)
    (tmp_path / "base.yaml").write_text(f"""name: baseline
load: {{users: 4, spawn_rate: 4, run_time_s: 5s}}
sla: {{tier: bronze, confidence: 0.8}}
health:
  interval_s: 1s
  timeout_s: 800ms
  components:
    db: {{probe: {{type: postgres, dsn: "{pg.dsn}"}}}}
    cache: {{probe: {{type: redis, url: "{redis.url}"}}, critical: false}}
    api: {{probe: {{type: http, url: "{target.url}/health"}}, depends_on: [db, cache]}}
""")
    (tmp_path / "steps.yaml").write_text("name: steps\nsla: {tier: bronze, confidence: 0.8}\n"
                                         "shape: {type: step, start_users: 2, step_users: 2, steps: 2, step_s: 3s}\n")
    (tmp_path / "outage.yaml").write_text(f"""name: redis outage
sla: {{tier: bronze, confidence: 0.8}}
recovery: {{warmup_s: 1s, windows: 2}}
shape: {{type: steady, users: 4, ramp_s: 1s, tail_s: 3s}}
faults:
  - name: cache paused
    at_s: 3s
    hold_s: 3s
    fault: {{type: redis.pause, url: "{redis.url}", dead_man_s: 10s}}
""")
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"""name: small readiness
defaults: {{locustfile: reader.py, host: "{target.url}", workers: 0}}
scenarios:
  - {{scenario: base.yaml}}
  - {{scenario: steps.yaml}}
  - {{scenario: outage.yaml, workers: 1}}
""")
    return suite


def test_a_suite_runs_in_order_and_writes_one_combined_record_and_readiness_report(
        backed_target: TargetServer, postgres_server: PostgresServer, redis_server: RedisServer,  # noqa: F811
        runs: list[Run], tmp_path: Path) -> None:  # noqa: F811
    suite = write_suite(tmp_path, backed_target, postgres_server, redis_server)
    record_path = tmp_path / "out" / "suite.json"
    run = Run(tmp_path, str(suite), "--run-record", str(record_path))
    runs.append(run)
    code = run.finish(timeout_s=150)
    assert run.leftovers() == []
    assert redis_answers(redis_server.port)
    record = json.loads(record_path.read_text())
    readiness = record["readiness"]
    assert code == readiness["exit_code"] and code in (0, 3), run.output[-4000:]
    out = run.output
    assert out.index("[suite] 1/3 baseline (baseline)") < out.index("[suite] 2/3 steps (load)") \
        < out.index("[suite] 3/3 redis outage (degradation)")
    assert f"[suite] production readiness: {readiness['status'].upper()}" in out
    rows = record["scenarios"]
    assert [(r["name"], r["kind"]) for r in rows] == [("baseline", "baseline"), ("steps", "load"),
                                                      ("redis outage", "degradation")]
    for row in rows:
        assert row["outcome"] in ("met", "not met") and row["record"]["totals"]["requests"] > 0, row["problem"]
        own = record_path.parent / row["record_path"]
        assert assert_valid_record(own)["sla"] == row["record"]["sla"]  # embedded as written
        assert own.with_suffix(".html").exists() and own.with_name(own.stem + ".junit.xml").exists()
    base, steps, outage = (r["record"] for r in rows)
    assert base["run"]["mode"] == "local" and base["health"]["rounds"] >= 3
    assert [s["users"] for s in steps["stages"]] == [2, 4]
    assert outage["run"]["mode"] == "master" and outage["run"]["workers"] == 1
    assert outage["faults"][0]["state"] == "reverted" and outage["faults"][0]["verified_healthy"] is True
    assert [d["name"] for d in readiness["dimensions"]] == list(DIMENSIONS)
    assert all(d["status"] != "not measured" for d in readiness["dimensions"]
               if d["name"] in ("performance", "reliability", "monitoring"))
    html = (record_path.parent / "suite.html").read_text()
    assert "Production readiness" in html and 'href="suite/03-redis-outage.html"' in html
    assert (record_path.parent / "suite.md").read_text().startswith("## ")
    assert (record_path.parent / "suite.junit.xml").exists()
