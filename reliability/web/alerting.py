"""The ``alerts:`` feature on the master (or local runner): burn-rate alerts with escalation,
posted to webhooks from greenlets so a slow receiver never holds up the run.

Built by the plugin when the scenario has an ``alerts:`` section::

    features.append(AlertingExtension(scenario.alerts))

Every tick it reads the seconds that closed (``RunContext.complete_until``, the rule the live
verdict uses: on a master the workers' reports must be in), feeds them to
:class:`~reliability.alerts.BurnRateAlerts` with the rolling SLA verdict, and queues each event
for every webhook whose ``min_severity`` it reaches. One greenlet per webhook sends its queue in
order (breach, escalation, recovery arrive in that order); at the end the queues get a bounded
time to drain and the record gets an ``alerts`` section with every event and delivery.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping

import gevent
from gevent.queue import Full, Queue

from reliability.alerts import (
    DEFAULT_RUN_LENGTH_S,
    AlertEvent,
    AlertsSpec,
    BurnRateAlerts,
    BurnRule,
    CountSeries,
    Delivery,
    Severity,
    WebhookSpec,
    budget_ratio_for,
    budget_remaining,
    deliver,
    json_payload,
    scaled_rules,
    slack_payload,
    uptime_budget_ratio_for,
    wants,
    webhook_label,
)
from reliability.alerts.seconds import read_seconds
from reliability.evidence import PASS
from reliability.extension import Contribution, RunContext
from reliability.jsontypes import JsonObject, JsonValue
from reliability.schema import sections as s
from reliability.units import percentile_label

logger = logging.getLogger("reliability.alerts")

QUEUE_SIZE = 200
FLUSH_S = 10.0  # the most the end of a run waits for webhooks still sending

Sender = Callable[[str, Mapping[str, JsonValue], float], Delivery]  # url, JSON body, timeout (s)


def run_length_s(run: RunContext, spec: AlertsSpec) -> tuple[float, str]:
    """How long the run is meant to last, and where that came from: the section's
    ``run_length_s``, Locust's ``-t`` (or the web form's run time), the scenario's shape, else 10 min."""
    if spec.run_length_s is not None:
        return spec.run_length_s, "alerts.run_length_s"
    if run.run_time_s is not None:
        return run.run_time_s, "run time"
    shape = run.scenario.shape
    if shape is not None:
        try:
            from reliability.shapes.spec import schedule_end_s

            length = shape.length_s(schedule_end_s(run.scenario.faults))
        except (ValueError, TypeError):
            length = None
        if length:
            return float(length), "the scenario's shape"
    return DEFAULT_RUN_LENGTH_S, "default"


class _Webhook:
    """One receiver: a queue and the greenlet that sends it in order."""

    def __init__(self, spec: WebhookSpec, min_severity: Severity, send: Sender) -> None:
        self.spec = spec
        self.label = webhook_label(spec.url.get_secret_value())
        self.min_severity: Severity = spec.min_severity or min_severity
        self._send = send
        self.queue: Queue[tuple[s.AlertEvent, JsonObject] | None] = Queue(QUEUE_SIZE)
        self.pending = 0
        self.greenlet = gevent.spawn(self._loop)

    def put(self, entry: s.AlertEvent, body: JsonObject) -> None:
        try:
            self.queue.put_nowait((entry, body))
            self.pending += 1
        except Full:
            entry.deliveries.append(s.AlertDelivery(webhook=self.label, error="dropped: the send queue is full"))

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            entry, body = item
            try:
                delivery = self._send(self.spec.url.get_secret_value(), body, self.spec.timeout_s)
            except Exception as exc:  # a sender bug must not end the loop: later alerts still go out
                delivery = Delivery(None, f"{type(exc).__name__}", 0.0, 0)
            self.pending -= 1
            entry.deliveries.append(s.AlertDelivery.model_validate(
                {"webhook": self.label, "format": self.spec.format, **delivery.to_dict()}))
            if not delivery.ok:
                logger.warning("alert %s to %s not delivered: %s", entry.kind, self.label, delivery.error)

    def close(self, deadline: float) -> None:
        """Send what is queued until ``deadline`` (monotonic), then stop."""
        with contextlib.suppress(Full):  # full: the greenlet is stopped at the deadline instead
            self.queue.put_nowait(None)
        self.greenlet.join(timeout=max(0.0, deadline - time.monotonic()))
        if not self.greenlet.dead:
            self.greenlet.kill(block=False)


class AlertingExtension:
    """The ``alerts`` extension of the plugin; see the module docstring.

    Example (what the plugin does)::

        plugin.add_extension(AlertingExtension(scenario.alerts))
    """

    name = "alerts"

    def __init__(self, spec: AlertsSpec, *, send: Sender = deliver, clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self._send = send
        self.clock = clock
        self.rules: tuple[BurnRule, ...] = ()
        self.run_length_s = DEFAULT_RUN_LENGTH_S
        self.run_length_source = "default"
        self.budget_ratio: float | None = None
        self.uptime_budget_ratio: float | None = None
        self.alerts: BurnRateAlerts | None = None
        self.series: CountSeries | None = None
        self.start_t = 0
        self.entries: list[s.AlertEvent] = []  # the record's events, with their deliveries
        self.webhooks: list[_Webhook] = []
        self._run: RunContext | None = None
        self._closed = False

    # -- plugin hooks ------------------------------------------------------------------------------

    def on_test_start(self, run: RunContext) -> None:
        self._run = run
        started = run.started_at
        self.start_t = int(started)
        self.run_length_s, self.run_length_source = run_length_s(run, self.spec)
        tier = run.sla.all_tiers()[run.sla.tier]
        self.budget_ratio = budget_ratio_for(self.spec, tier.error_ratio, tier.uptime_ratio)
        self.uptime_budget_ratio = uptime_budget_ratio_for(self.spec, tier.uptime_ratio, self.budget_ratio)
        self.rules = scaled_rules(self.run_length_s, self.spec.min_window_s)
        self.alerts = BurnRateAlerts(self.rules, self.budget_ratio, self.uptime_budget_ratio,
                                     min_requests=self.spec.min_requests, clear_s=self.spec.clear_s,
                                     sla_breach=self.spec.sla_breach, started_at=started,
                                     rolling_s=int(run.sla.rolling_window_s))
        self.series = CountSeries(self.start_t)
        self.entries = []
        self._closed = False
        self.webhooks = [_Webhook(hook, self.spec.min_severity, self._send) for hook in self.spec.webhooks]
        rules = "; ".join(f"{r.severity} at {r.burn_rate:g}x over {r.long_s}/{r.short_s} s" for r in self.rules)
        slo = "none" if self.budget_ratio is None else f"{(1 - self.budget_ratio) * 100:g} %"
        logger.info("alerts: SLO %s, windows for a %g s run (%s): %s; %d webhook(s)", slo, self.run_length_s,
                    self.run_length_source, rules, len(self.webhooks))

    def on_tick(self, run: RunContext, now: float) -> None:
        if self.alerts is None or self.series is None or self._closed:
            return
        end = run.complete_until(now)
        if end <= self.series.end_t:
            return
        read_seconds(self.series, run.store, run.sla, end, int(run.sla.rolling_window_s))
        live = run.live
        failing: list[str] = []
        unsure: list[str] = []
        if live is not None and not live.requests:
            unsure = ["no requests in the rolling window"]
        elif live is not None:
            firm = live.firm_failures()
            failing = [c.describe() for c in firm]
            unsure = [c.describe() for c in live.criteria if c.state != PASS and c not in firm]
        for event in self.alerts.evaluate(self.series, self.start_t, end, now, failing, unsure):
            self._dispatch(event)

    def on_test_stop(self, run: RunContext) -> None:
        self._close("the test stopped")

    def finish(self, run: RunContext) -> Contribution:
        self._close("the run ended")
        deadline = time.monotonic() + FLUSH_S
        for hook in self.webhooks:
            hook.close(deadline)
        for hook in self.webhooks:
            if hook.pending:
                logger.warning("alerts: %d alert(s) to %s not sent before the end of the run", hook.pending,
                               hook.label)
        return Contribution(sections={"alerts": self.to_record()})

    # -- events ------------------------------------------------------------------------------------

    def _close(self, why: str) -> None:
        if self.alerts is None or self._closed:
            return
        self._closed = True
        event = self.alerts.close(self.clock(), why)
        if event is not None:
            self._dispatch(event)

    def context(self) -> JsonObject:
        """What every payload carries besides the event."""
        run = self._run
        out: JsonObject = {"slo": None if self.budget_ratio is None else round(1 - self.budget_ratio, 6)}
        if run is None:
            return out
        out.update(scenario=run.scenario.name, tier=run.sla.tier, percentile=percentile_label(run.sla.percentile))
        if self.series is not None:
            requests, failures = self.series.counts(self.start_t, self.series.end_t)
            remaining = budget_remaining(requests, failures, self.budget_ratio)
            out["budget_remaining"] = None if remaining is None else round(remaining, 6)
            counted, bad, _ = self.series.seconds(self.start_t, self.series.end_t)
            remaining = budget_remaining(counted, bad, self.uptime_budget_ratio)
            out["uptime_budget_remaining"] = None if remaining is None else round(remaining, 6)
        live = run.live
        if live is not None:
            out["highest_tier_met"] = live.highest_tier_met
        return out

    def _dispatch(self, event: AlertEvent) -> None:
        log = logger.info if event.resolved else logger.warning
        log("alert %s (%s) at +%.0f s: %s", event.kind, event.severity, event.t_s, "; ".join(event.reasons))
        context = self.context()
        entry = s.AlertEvent.model_validate(event.to_dict())
        self.entries.append(entry)
        for hook in self.webhooks:
            if not wants(event, hook.min_severity):
                continue
            body = slack_payload(event, context) if hook.spec.format == "slack" else json_payload(event, context)
            hook.put(entry, body)

    def to_record(self) -> s.Alerts:
        """The record's ``alerts`` section."""
        alerts = self.alerts
        peak = None
        for entry in self.entries:
            if peak is None or (entry.severity == "page"):
                peak = entry.severity
        return s.Alerts(
            slo=None if self.budget_ratio is None else round(1 - self.budget_ratio, 6),
            budget_ratio=self.budget_ratio,
            uptime_slo=None if self.uptime_budget_ratio is None else round(1 - self.uptime_budget_ratio, 6),
            uptime_budget_ratio=self.uptime_budget_ratio,
            run_length_s=self.run_length_s,
            run_length_from=self.run_length_source,
            min_window_s=self.spec.min_window_s,
            min_requests=self.spec.min_requests,
            clear_s=self.spec.clear_s,
            sla_breach=self.spec.sla_breach,
            rules=[s.BurnRule.model_validate(r.to_dict()) for r in self.rules],
            webhooks=[s.AlertWebhook(target=h.label, format=h.spec.format, min_severity=h.min_severity)
                      for h in self.webhooks],
            incidents=max((e.incident for e in self.entries), default=0),
            peak_severity=peak,
            open_at_end=any(e.kind == "run_end" for e in self.entries),
            events=self.entries,
            last_burn_rates=[s.RuleBurn.model_validate(b.to_dict()) for b in alerts.last_burns]
            if alerts is not None else [],
        )
