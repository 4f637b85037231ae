"""Probe measurement, the orchestrator's timeouts, the graders and the health timeline (pure)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from reliability.health.base import Deadline, Finding, ProbeResult, ProbeTimeout, Status, measure
from reliability.health.cli import format_table
from reliability.health.graph import diagnose, health_score, overall_status
from reliability.health.http import grade_health_reply
from reliability.health.orchestrator import Component, HealthCheck, HealthReport
from reliability.health.postgres import grade_activity
from reliability.health.prometheus import grade_query
from reliability.health.redis import grade_info
from reliability.health.spec import PostgresProbeSpec, RedisProbeSpec
from reliability.health.timeline import ComponentInfo, HealthTimeline
from tests.support.fakes import FakeClock

H, D, X = Status.HEALTHY, Status.DEGRADED, Status.DOWN


class FakeProbe:
    """A probe at our own seam: runs ``behaviour(deadline)``."""

    kind = "fake"
    target = "nowhere"

    def __init__(self, behaviour: Callable[[Deadline], Finding]) -> None:
        self.behaviour = behaviour
        self.closed = False

    def check(self, deadline: Deadline) -> Finding:
        return self.behaviour(deadline)

    def close(self) -> None:
        self.closed = True


def test_deadline_counts_down_and_then_raises() -> None:
    clock = FakeClock()
    deadline = Deadline(0.5, clock)
    clock.now = 0.2
    assert deadline.remaining_s() == pytest.approx(0.3)
    clock.now = 0.5
    with pytest.raises(ProbeTimeout, match="no answer within 500 ms"):
        deadline.remaining_s()


def test_measure_turns_errors_into_down_and_scrubs_secrets() -> None:
    def fail(_d: Deadline) -> Finding:
        raise ConnectionError("password authentication failed for postgresql://app:hunter2@db/app")

    result = measure(FakeProbe(fail), 1.0, secrets=("postgresql://app:hunter2@db/app", "hunter2"))
    assert result.status is X
    assert "hunter2" not in result.detail and "***" in result.detail

    def leak(_d: Deadline) -> Finding:
        return Finding(H, "fine", {"note": "token hunter2", "nested": [{"k": "hunter2"}]})

    assert "hunter2" not in repr(measure(FakeProbe(leak), 1.0, secrets=("hunter2",)).data)


def test_measure_names_the_bound_on_timeouts_and_late_answers() -> None:
    def socket_timeout(_d: Deadline) -> Finding:
        raise TimeoutError("timed out")

    assert measure(FakeProbe(socket_timeout), 0.25).detail == "no answer within 250 ms"
    clock = FakeClock()

    def slow(_d: Deadline) -> Finding:
        clock.now += 0.3
        return Finding(H, "fine")

    late = measure(FakeProbe(slow), 0.25, clock=clock)
    assert late.status is X and late.latency_ms == pytest.approx(300.0)


def test_a_hanging_probe_costs_its_timeout_not_the_round() -> None:
    release = threading.Event()

    def hang(_d: Deadline) -> Finding:
        release.wait(10)
        return Finding(H)

    check = HealthCheck([
        Component("db", FakeProbe(lambda d: Finding(H, "ok")), 0.5),
        Component("api", FakeProbe(hang), 0.3, ("db",)),
        Component("ws", FakeProbe(lambda d: Finding(X, "refused")), 0.5, ("api",)),
    ])
    started = time.monotonic()
    report = check.run()
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 0.45
    assert report.results["api"].status is X and report.results["api"].detail == "no answer within 300 ms"
    assert report.diagnosis.root_causes == ("api",) and report.diagnosis.affected == ("ws",)
    assert report.status is X and report.score == pytest.approx(100 / 3)
    check.close()
    assert all(c.probe.closed for c in check.components.values())  # type: ignore[attr-defined]


def test_a_slow_healthy_answer_is_degraded() -> None:
    clock = FakeClock()

    def slow(_d: Deadline) -> Finding:
        clock.now += 0.2
        return Finding(H, "ok")

    check = HealthCheck([Component("api", FakeProbe(slow), 0.5, degraded_ms=100)], clock=clock)
    result = check.run().results["api"]
    assert result.status is D and result.detail.startswith("slow: 200 ms > 100 ms; ok")


@pytest.mark.parametrize(("code", "body", "status"), [
    (200, {"status": "healthy"}, H),
    (200, {"status": "degraded", "components": {"cache": {"status": "down"}}}, D),
    (200, {"status": "OK"}, H),
    (200, {"status": "mysterious"}, D),
    (200, None, H),
    (503, {"status": "down"}, X),
    (500, None, X),
])
def test_http_grading(code: int, body: object, status: Status) -> None:
    assert grade_health_reply(code, body).status is status


def test_http_grading_keeps_the_body_components() -> None:
    f = grade_health_reply(200, {"status": "degraded", "components": {"db": {"status": "up"}, "cache": "down"}})
    assert f.data["components"] == {"db": "up", "cache": "down"}
    assert f.detail == "HTTP 200, status degraded, db up, cache down"


def test_prometheus_grading() -> None:
    def body(*values: str) -> dict[str, object]:
        result = [{"metric": {"job": "t", "instance": f"h:{i}"}, "value": [0, v]} for i, v in enumerate(values)]
        return {"status": "success", "data": {"result": result}}

    assert grade_query("up", body("1", "1")).status is H
    down = grade_query("up", body("1", "0"))
    assert down.status is D and down.data["zero_series"] == ["t/h:1"] and "zero: t/h:1" in down.detail
    assert grade_query("up", body()).status is D
    assert grade_query("up", {"status": "error", "error": "parse error"}).status is X


def test_postgres_grading() -> None:
    spec = PostgresProbeSpec(type="postgres", dsn=SecretStr("postgresql://x"), max_connections_ratio=0.8,
                             slow_query_ms=500)
    assert grade_activity(10, 100, 0, 0.1, spec).status is H
    busy = grade_activity(80, 100, 0, 0.0, spec)
    assert busy.status is D and "connections at 80% of max_connections" in busy.detail
    slow = grade_activity(3, 100, 2, 4.2, spec)
    assert slow.status is D and "2 queries running > 500 ms (longest 4.2 s)" in slow.detail
    assert slow.data == {"connections": 3, "max_connections": 100, "slow_queries": 2, "longest_query_s": 4.2}


def test_redis_grading_uses_the_hit_ratio_since_the_last_check() -> None:
    spec = RedisProbeSpec(type="redis", url=SecretStr("redis://x"), min_hit_ratio=0.5)
    info = {"used_memory": 50, "maxmemory": 100, "connected_clients": 3, "maxclients": 10,
            "keyspace_hits": 90, "keyspace_misses": 10}
    first = grade_info(info, None, spec)
    assert first.status is H and first.data["hit_ratio"] == 0.9 and first.data["memory_ratio"] == 0.5
    later = grade_info({**info, "keyspace_hits": 91, "keyspace_misses": 19}, (90, 10), spec)
    assert later.status is D and later.data["hit_ratio"] == 0.1
    full = grade_info({**info, "used_memory": 95, "connected_clients": 9}, None, spec)
    assert "memory at 95% of maxmemory" in full.detail and "clients at 90% of maxclients" in full.detail
    assert grade_info({**info, "maxmemory": 0}, None, spec).data["memory_ratio"] is None


DEPS = {"db": (), "cache": (), "api": ("db", "cache")}


def _report(at: float, **statuses: Status) -> HealthReport:
    full = {n: statuses.get(n, H) for n in DEPS}
    results = {n: ProbeResult(s, 2.0, f"{n} {s.value}", {"connections": 7} if n == "db" else {})
               for n, s in full.items()}
    return HealthReport(at, results, diagnose(full, DEPS), health_score(full, {}),
                        overall_status(full, {"cache": False}), {"db": "postgres", "cache": "redis", "api": "http"})


def _timeline() -> HealthTimeline:
    infos = {n: ComponentInfo("x", n, DEPS[n], n != "cache") for n in DEPS}
    timeline = HealthTimeline(started_at=1000.0, interval_s=1.0, components=infos)
    for i in range(10):
        at = 1000.5 + i
        if 3 <= i < 6:
            report = _report(at, cache=X, api=D)
        elif i == 8:
            report = _report(at, db=X, api=X)
        else:
            report = _report(at)
        timeline.add(report, {"pid": 42, "cpu_pct": 10.0 + i, "rss_mb": 50.0})
    return timeline


def test_timeline_transitions_incidents_and_uptime() -> None:
    section = _timeline().to_record(uptime_pct=95).model_dump(mode="json", by_alias=True)
    assert section["rounds"] == 10 and section["interval_s"] == 1.0
    changes = [(c["t"], c["component"], c["from"], c["to"]) for c in section["transitions"]]
    assert changes == [(3.5, "cache", "healthy", "down"), (3.5, "api", "healthy", "degraded"),
                       (6.5, "cache", "down", "healthy"), (6.5, "api", "degraded", "healthy"),
                       (8.5, "db", "healthy", "down"), (8.5, "api", "healthy", "down"),
                       (9.5, "db", "down", "healthy"), (9.5, "api", "down", "healthy")]
    first, second = section["incidents"]
    assert (first["start_t"], first["end_t"], first["duration_s"]) == (3.5, 6.5, 3.0)
    assert first["root_causes"] == ["cache"] and first["affected"] == ["api"] and first["worst_status"] == "degraded"
    assert second["root_causes"] == ["db"] and second["worst_status"] == "down" and not second["ongoing"]
    assert section["root_causes"] == [{"component": "cache", "rounds": 3, "first_t": 3.5},
                                      {"component": "db", "rounds": 1, "first_t": 8.5}]
    cache = section["components"]["cache"]
    assert (cache["rounds"], cache["down"], cache["uptime_ratio"], cache["critical"]) == (10, 3, 0.7, False)
    assert section["components"]["api"]["uptime_ratio"] == 0.9
    assert section["uptime_ratio"] == 0.9  # the non-critical cache being down does not count
    assert section["uptime_criterion"] == {"name": "health_uptime", "threshold": 0.95, "actual": 0.9,
                                           "passed": False}
    row = section["timeline"][3]
    assert row["t"] == 3.5 and row["epoch_s"] == 1003.5 and row["status"] == "degraded"
    assert row["components"]["cache"] == {"status": "down", "latency_ms": 2.0}
    assert row["root_causes"] == ["cache"]
    assert row["resources"] == {"pid": 42, "cpu_pct": 13.0, "rss_mb": 50.0, "db_connections": 7}


def test_uptime_criterion_without_rounds_fails_with_no_data() -> None:
    c = HealthTimeline(0.0, 1.0).criterion(99.0)
    assert (c.name, c.actual, c.passed, c.scope) == ("health_uptime", None, False, "health")


def test_an_incident_still_open_at_the_end_is_ongoing() -> None:
    timeline = HealthTimeline(0.0, 1.0)
    timeline.add(_report(1.0))
    timeline.add(_report(2.0, cache=X))
    timeline.add(_report(3.0, cache=X))
    (incident,) = timeline.incidents()
    assert incident.ongoing and incident.duration_s == 2.0


def test_table_lists_components_and_the_diagnosis() -> None:
    text = format_table(_report(0.0, cache=X, api=D))
    lines = text.splitlines()
    assert lines[0].split() == ["component", "probe", "status", "latency", "detail"]
    assert lines[2].split()[:3] == ["cache", "redis", "down"]
    assert lines[-1] == "health: degraded, score 50.0/100; root cause: cache; affected: api; healthy: db"


PURE_HEALTH = ["spec", "base", "graph", "orchestrator", "timeline", "resources", "cli", "http", "postgres", "redis",
               "websocket", "prometheus", "gateway"]


def test_health_core_imports_neither_locust_nor_gevent_and_config_loads_no_driver() -> None:
    code = (
        "import sys\nimport reliability.config\n"
        "drivers = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'redis', 'websocket'))\n"
        + "".join(f"import reliability.health.{m}\n" for m in PURE_HEALTH)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "print(drivers, bad)\nsys.exit(1 if drivers or bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
