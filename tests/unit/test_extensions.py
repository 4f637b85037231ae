"""The fault schedule and the alerts against a run context of our own: a fake clock stepped by the
test, a real WindowStore fed second by second, a fault whose effect the store sees, and a webhook
sender that records. No Locust: the extensions read only the :class:`RunContext`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent

from reliability.alerts import Delivery
from reliability.config import ScenarioSpec, parse_scenario
from reliability.extension import Contribution, RunContext, complete_until
from reliability.faults.schedule import ScheduledFaultSpec
from reliability.metrics.windows import WindowStore
from reliability.revert.ledger import RevertLedger
from reliability.schema import sections as s
from reliability.shapes.runtime import ScheduleExtension
from reliability.sla import evaluate
from reliability.web.alerting import AlertingExtension
from tests.support.fakes import FakeClock
from tests.support.processes import assert_imports_without

T0 = 1_800_000_000


@dataclass(frozen=True)
class Check:
    healthy: bool
    detail: str
    latency_ms: float | None = 1.0


@dataclass
class SlowBackend:
    """A fault whose effect is what the load sees: 300 ms responses while it is injected."""

    name: str
    kind: str = "test.slow"
    dead_man_s: float | None = 30.0
    active: bool = False
    calls: list[str] = field(default_factory=list)

    def inject(self) -> None:
        self.calls.append("inject")
        self.active = True

    def revert(self) -> None:
        self.calls.append("revert")
        self.active = False

    def verify(self) -> Check:
        return Check(not self.active, "answers in 10 ms")


def run_context(scenario: ScenarioSpec, clock: FakeClock, stops: list[str], **extra: Any) -> RunContext:
    return RunContext(scenario, WindowStore(clock=clock), clock=clock, started_at=clock(), stop=stops.append,
                      **extra)


def load_second(run: RunContext, clock: FakeClock, latency_ms: float, requests: int = 50,
                failures: int = 0) -> None:
    """One second of traffic, recorded as it happens, then the second after it begins."""
    start = int(clock.now)
    for k in range(requests):
        clock.now = start + k / requests
        run.store.record("GET", "/items", latency_ms, k < failures, "HTTP 500" if k < failures else None)
    run.store.note_users(start, 10)
    clock.now = start + 1.0


def only_fault(result: Contribution) -> s.Fault:
    faults = result.sections["faults"]
    assert isinstance(faults, list) and len(faults) == 1 and isinstance(faults[0], s.Fault)
    return faults[0]


def settle() -> None:
    """Let the greenlets the extension spawned (inject, revert, verify) run to their end."""
    for _ in range(20):
        gevent.sleep(0)


def test_the_data_complete_rule_is_one_rule() -> None:
    assert complete_until(100.7, 1) == 100  # local: second 99 has ended, so it is complete
    assert complete_until(100.7, 4) == 97  # master: 3 s of worker reports still to come
    scenario = ScenarioSpec()
    assert RunContext(scenario, WindowStore(), data_lag_s=4).complete_until(100.7) == 97


def test_the_schedule_injects_reverts_and_returns_its_sections(tmp_path: Path) -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = parse_scenario({"faults": [{"name": "slow db", "at_s": 10, "hold_s": 5, "factory": "mod:Fault"}]})
    faults: dict[str, SlowBackend] = {}

    def build(spec: ScheduledFaultSpec, name: str) -> SlowBackend:
        faults[name] = SlowBackend(name)
        return faults[name]

    ledger = RevertLedger(tmp_path / "journal.jsonl", environ={}, spawn_guard=False)
    ext = ScheduleExtension(scenario, builder=build, ledger=ledger)
    run = run_context(scenario, clock, stops)
    ext.on_test_start(run)
    fault = faults["slow db"]
    for _ in range(30):
        load_second(run, clock, 300.0 if fault.active else 10.0)
        ext.on_tick(run, clock.now)
        settle()
    ext.on_test_stop(run)
    run.ended_at = clock.now
    result = ext.finish(run)

    assert fault.calls == ["inject", "revert"] and not fault.active
    assert stops == []  # nothing asked the runner to stop
    assert result.inconclusive == () and result.criteria == ()
    section = only_fault(result)
    assert section.name == "slow db" and section.state == "reverted" and section.verified_healthy is True
    assert section.injected_at_s == 10.0 and section.reverted_at_s == 15.0
    assert section.time_to_detect_s is not None and section.time_to_detect_s <= 1.0
    assert section.degradation is not None and section.degradation.peak_latency_ms is not None
    assert 280.0 <= section.degradation.peak_latency_ms <= 320.0  # 300 ms within histogram precision
    assert isinstance(result.sections["recovery"], s.Recovery)
    assert result.phases is not None
    # healthy again in the first second after the revert: no recovery phase
    assert [result.phases.get(t, "baseline") for t in range(T0 + 9, T0 + 16)] == ["baseline"] + ["fault"] * 5 + [
        "baseline"]


def test_a_fault_that_cannot_be_built_makes_the_run_inconclusive(tmp_path: Path) -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = parse_scenario({"faults": [{"name": "x", "at_s": 10, "hold_s": 5, "factory": "mod:Fault"}]})

    def build(spec: ScheduledFaultSpec, name: str) -> SlowBackend:
        raise ValueError("no such backend")

    ext = ScheduleExtension(scenario, builder=build,
                            ledger=RevertLedger(tmp_path / "j.jsonl", environ={}, spawn_guard=False))
    run = run_context(scenario, clock, stops)
    ext.on_test_start(run)
    for _ in range(12):
        load_second(run, clock, 10.0)
        ext.on_tick(run, clock.now)
    run.ended_at = clock.now
    result = ext.finish(run)
    assert result.inconclusive == ("fault x could not be built: ValueError: no such backend",)
    assert only_fault(result).state == "skipped"


@dataclass
class Receiver:
    """Records what the alerting extension posts (a sender at our own seam, not a mock of HTTP)."""

    bodies: list[Mapping[str, Any]] = field(default_factory=list)

    def __call__(self, url: str, body: Mapping[str, Any], timeout_s: float) -> Delivery:
        self.bodies.append(body)
        return Delivery(200, None, 1.0, 1)


def alerts_scenario(**alerts: Any) -> ScenarioSpec:
    return parse_scenario({"sla": {"tier": "gold"},
                           "alerts": {"webhooks": ["http://127.0.0.1:9/hook"], "min_window_s": 2, "clear_s": 3,
                                      **alerts}})


def drive_alerts(ext: AlertingExtension, run: RunContext, clock: FakeClock,
                 seconds: list[tuple[int, int]]) -> None:
    """``seconds``: (requests, failures) per second, each fed then ticked."""
    for requests, failures in seconds:
        load_second(run, clock, 10.0, requests, failures)
        ext.on_tick(run, clock.now)
        settle()


def test_alerts_fire_page_and_recover_reading_only_complete_seconds() -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = alerts_scenario()
    receiver = Receiver()
    ext = AlertingExtension(scenario.alerts, send=receiver, clock=clock)  # type: ignore[arg-type]
    run = run_context(scenario, clock, stops, run_time_s=20.0)
    ext.on_test_start(run)
    assert ext.run_length_s == 20.0 and ext.run_length_source == "run time"  # the context's -t
    drive_alerts(ext, run, clock, [(50, 0)] * 10 + [(50, 25)] * 6 + [(50, 0)] * 25)
    ext.on_test_stop(run)
    result = ext.finish(run)

    alerts = result.sections["alerts"]
    assert isinstance(alerts, s.Alerts) and result.inconclusive == () and stops == []
    kinds = [e.kind for e in alerts.events]
    assert kinds[0] == "breach" and "recovery" in kinds and kinds[-1] == "recovery", kinds
    assert alerts.peak_severity == "page" and alerts.open_at_end is False
    assert [b["kind"] for b in receiver.bodies] == kinds  # every event delivered, in order
    assert all(b["scenario"] == scenario.name and b["tier"] == "gold" for b in receiver.bodies)
    # the series holds exactly the seconds the rule says are complete, never the one still filling
    assert ext.series is not None and ext.series.end_t == run.complete_until(clock.now)


def test_alerts_on_a_master_wait_for_the_workers_reports() -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = alerts_scenario(run_length_s=60)
    ext = AlertingExtension(scenario.alerts, send=Receiver(), clock=clock)  # type: ignore[arg-type]
    run = run_context(scenario, clock, stops, role="master", data_lag_s=4, run_time_s=120.0)
    ext.on_test_start(run)
    assert ext.run_length_s == 60.0 and ext.run_length_source == "alerts.run_length_s"
    drive_alerts(ext, run, clock, [(50, 25)] * 3)
    assert ext.alerts is not None and ext.alerts.events == []  # the failing seconds are not complete yet
    drive_alerts(ext, run, clock, [(50, 25)] * 4)
    assert [e.kind for e in ext.alerts.events] == ["breach"]
    result: Contribution = ext.finish(run)
    alerts = result.sections["alerts"]
    assert isinstance(alerts, s.Alerts) and alerts.open_at_end is True  # the run ended with it open


def test_the_extensions_import_without_locust() -> None:
    assert_imports_without(["reliability.shapes.runtime", "reliability.web.alerting", "reliability.health.monitor"],
                           ("locust",))


_: Callable[..., Any] = run_context  # keeps the helper's signature checked by mypy


def drive_alerts_with_verdict(ext: AlertingExtension, run: RunContext, clock: FakeClock,
                              seconds: list[tuple[int, int]], window_s: int = 5) -> list[str]:
    """As :func:`drive_alerts`, with the rolling verdict the plugin puts on the context each tick
    (real :func:`reliability.sla.evaluate` over the last ``window_s`` complete seconds)."""
    kinds: list[str] = []
    for requests, failures in seconds:
        load_second(run, clock, 10.0, requests, failures)
        end = run.complete_until(clock.now)
        run.live = evaluate(run.store.snapshot(max(end - window_s, int(run.started_at or 0)), end), run.sla)
        ext.on_tick(run, clock.now)
        settle()
        assert ext.alerts is not None
        kinds.append(",".join(e.kind for e in ext.alerts.events))
    return kinds


def test_a_thin_rolling_window_is_neither_a_breach_nor_a_recovery() -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = alerts_scenario(clear_s=2)
    ext = AlertingExtension(scenario.alerts, send=Receiver(), clock=clock)  # type: ignore[arg-type]
    run = run_context(scenario, clock, stops, run_time_s=60.0)
    ext.on_test_start(run)
    # a ramp: 20 clean requests a second cannot show gold's 0.5 % (0 of 100: 95 % CI 0 % .. 3.7 %)
    drive_alerts_with_verdict(ext, run, clock, [(20, 0)] * 8)
    assert run.live is not None and {c.name: c.state for c in run.live.criteria}["error_ratio"] == "inconclusive"
    assert ext.alerts is not None and ext.alerts.events == []
    # 300 a second, 10 % errors: a breach on evidence
    drive_alerts_with_verdict(ext, run, clock, [(300, 30)] * 4)
    assert [e.kind for e in ext.alerts.events][:1] == ["breach"]
    # back to a thin clean trickle: the burn windows go quiet, the verdict has no evidence either way
    thin = drive_alerts_with_verdict(ext, run, clock, [(20, 0)] * 40)
    assert "recovery" not in thin[-1] and ext.alerts.severity is not None
    assert ext.alerts.level is None  # nothing fires: only the missing evidence holds the incident
    # enough clean requests to pass on evidence: then the recovery
    drive_alerts_with_verdict(ext, run, clock, [(300, 0)] * 10)
    assert [e.kind for e in ext.alerts.events][-1] == "recovery"


def closed_model_second(run: RunContext, clock: FakeClock, frozen: range, users: int = 10, rps: int = 100) -> None:
    """One second of a closed-model run against a target frozen through the seconds ``frozen``
    (offsets from T0): each user's request sent as the freeze began completes when it ends, and
    Locust reports it only then; meanwhile the users send nothing."""
    start = int(clock.now)
    offset = start - T0
    if offset not in frozen:
        for k in range(rps):
            run.store.record_request("GET", "/items", 10.0, False, None, sent_s=start + k / rps)
    if offset == frozen.stop:
        for u in range(users):
            sent = T0 + frozen.start + u / 1000
            run.store.record_request("GET", "/items", (start - sent) * 1000.0, False, None, sent_s=sent)
    run.store.note_users(start, users)
    clock.now = start + 1.0


def test_a_freeze_pages_once_its_requests_complete_and_dates_the_outage() -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = alerts_scenario(run_length_s=600, sla_breach=False)  # the burn rates alone
    receiver = Receiver()
    ext = AlertingExtension(scenario.alerts, send=receiver, clock=clock)  # type: ignore[arg-type]
    run = run_context(scenario, clock, stops, run_time_s=600.0)
    ext.on_test_start(run)
    frozen = range(30, 34)  # 4 s
    for _ in range(34):
        closed_model_second(run, clock, frozen)
        ext.on_tick(run, clock.now)
        settle()
    assert ext.alerts is not None and ext.alerts.events == []  # nothing has completed: nothing is known
    closed_model_second(run, clock, frozen)  # the freeze ends: the held requests complete
    ext.on_tick(run, clock.now)
    settle()
    assert [(e.kind, e.severity) for e in ext.alerts.events] == [("breach", "page")]
    breach = ext.alerts.events[0]
    assert breach.t_s == 35.0 and breach.down_since_s == 30.0 and breach.time_to_detect_s == 5.0
    assert breach.burns[0].long_by == breach.burns[0].short_by == "seconds"
    # the same windows as uptime: second 30 slow (its requests took 4 s), 31-33 stalled
    uptime = evaluate(run.store.snapshot(T0, T0 + 35), run.sla).uptime
    assert (uptime.slow_windows, uptime.stalled_windows) == (1, 3)
    assert ext.series is not None and ext.series.seconds(T0, T0 + 35)[:2] == (35, 4)
    ext.on_test_stop(run)
    alerts = ext.finish(run).sections["alerts"]
    assert isinstance(alerts, s.Alerts) and alerts.uptime_slo == 0.999 and alerts.uptime_budget_ratio is not None
    assert alerts.events[0].time_to_detect_s == 5.0 and alerts.events[0].down_since_s == 30.0
    assert receiver.bodies[0]["time_to_detect_s"] == 5.0 and receiver.bodies[0]["uptime_budget_remaining"] < 0


def test_a_late_failure_burns_budget_in_the_second_it_was_sent() -> None:
    clock, stops = FakeClock(float(T0)), list[str]()
    scenario = alerts_scenario(run_length_s=600, sla_breach=False)
    ext = AlertingExtension(scenario.alerts, send=Receiver(), clock=clock)  # type: ignore[arg-type]
    run = run_context(scenario, clock, stops, run_time_s=600.0)
    ext.on_test_start(run)
    for i in range(12):
        start = int(clock.now)
        for k in range(100):
            run.store.record_request("GET", "/items", 10.0, False, None, sent_s=start + k / 100)
        if i == 10:  # 60 requests sent at +5 s time out 3 s later (fewer completions meanwhile: not stalled)
            for k in range(60):
                run.store.record_request("GET", "/items", 3000.0, True, "timeout", sent_s=T0 + 5 + k / 100)
        clock.now = start + 1.0
        ext.on_tick(run, clock.now)
        settle()
    assert ext.series is not None and ext.series.counts(T0 + 5, T0 + 6) == (160, 60)
    assert ext.alerts is not None and [(e.kind, e.severity) for e in ext.alerts.events] == [("breach", "page")]
    firing = [b for b in ext.alerts.events[0].burns if b.firing]
    assert firing and all(b.long_by == b.short_by == "requests" for b in firing)  # 37 % of +5 s failed
    assert ext.alerts.events[0].down_since_s == 5.0  # that second is down for uptime too (errors)
