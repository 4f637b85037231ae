"""``/metrics`` in the Prometheus text format, from the web UI's live state.

A custom collector on its own :class:`~prometheus_client.CollectorRegistry` (never the global
one): a scrape reads the same cached state the tabs show, so numbers agree across views. Series
(rolling = the SLA's rolling window, closed seconds only):

* ``reliability_latency_seconds{request_type,name}``, a summary per endpoint and for
  ``Aggregated``: ``quantile`` 0.5, 0.9, 0.99 and the SLA percentile over the rolling window,
  ``_count``/``_sum`` over the whole run;
* ``reliability_rolling_error_ratio{request_type,name}``, ``reliability_rolling_requests{...}``;
* ``reliability_sla_passed{tier}`` / ``reliability_sla_inconclusive{tier}`` (the selected tier:
  both 0 means it fails on evidence), ``reliability_sla_tier_met{tier}`` per tier,
  ``reliability_sla_criterion_passed{criterion,scope}`` / ``reliability_sla_criterion_inconclusive``
  (likewise per criterion);
* ``reliability_uptime_ratio`` (window-based, rolling);
* ``reliability_error_budget_remaining_ratio`` (whole run: 1 untouched, 0 spent, < 0 overspent),
  ``reliability_error_budget_burn_rate`` (rolling), ``reliability_slo_ratio``;
* ``reliability_alert_severity`` (0 none, 1 warning, 2 page);
* ``reliability_fault_active{fault,type}`` (1 while injected), ``reliability_faults_active``;
* ``reliability_component_health{component}`` (1 healthy, 0.5 degraded, 0 down),
  ``reliability_health_score`` (0-100);
* ``reliability_test_running`` (1 while the test runs).

Example::

    registry = metrics_registry(live)          # live: a LiveState
    text = render(registry)                    # bytes for the HTTP answer
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reliability.alerts import SEVERITY_RANK
from reliability.evidence import INCONCLUSIVE, PASS
from reliability.textsafe import display_data
from reliability.web.state import State, rewritten

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTH_VALUE = {"healthy": 1.0, "degraded": 0.5, "down": 0.0}
RUNNING_STATES = ("spawning", "running")


class StateSource(Protocol):
    """Where the collector reads the state (a :class:`~reliability.web.state.LiveState`)."""

    def state(self) -> State: ...


class ReliabilityCollector(Collector):
    """Reads ``live.state()`` at each scrape and yields gauge families."""

    def __init__(self, live: StateSource) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        state = _safe_labels(self.live.state())
        sla = state["sla"]

        # a summary, as a Prometheus client's: quantiles over a sliding window (the SLA's rolling
        # window), _count and _sum over the whole run (monotonic, so rate() works on them)
        latency = Metric("reliability_latency_seconds", "response time: quantiles over the rolling window, count "
                         "and sum over the run", "summary")
        errors = GaugeMetricFamily("reliability_rolling_error_ratio", "failed / all requests over the rolling window",
                                   labels=["request_type", "name"])
        requests = GaugeMetricFamily("reliability_rolling_requests", "requests completed in the rolling window",
                                     labels=["request_type", "name"])
        for ep in state["endpoints"]:
            labels = [ep["type"], ep["name"]]
            series = {"request_type": ep["type"], "name": ep["name"]}
            requests.add_metric(labels, ep["requests"])
            for q, ms in ep["quantiles_ms"].items():
                if ms is not None:
                    latency.add_sample("reliability_latency_seconds", {**series, "quantile": q}, ms / 1000.0)
            latency.add_sample("reliability_latency_seconds_count", series, float(ep["run_count"] or 0))
            latency.add_sample("reliability_latency_seconds_sum", series, float(ep["run_sum_ms"] or 0.0) / 1000.0)
            if ep["error_ratio"] is not None:
                errors.add_metric(labels, ep["error_ratio"])
        yield from (latency, errors, requests)

        passed = GaugeMetricFamily("reliability_sla_passed", "1 when the rolling window meets the selected tier",
                                   labels=["tier"])
        met = GaugeMetricFamily("reliability_sla_tier_met", "1 when the rolling window meets this tier (and those "
                                "below it)", labels=["tier"])
        criteria = GaugeMetricFamily("reliability_sla_criterion_passed", "1 when the criterion holds in the rolling "
                                     "window", labels=["criterion", "scope"])
        unsure = GaugeMetricFamily("reliability_sla_inconclusive", "1 when the rolling window has not enough "
                                   "evidence to pass or fail the selected tier", labels=["tier"])
        criteria_unsure = GaugeMetricFamily("reliability_sla_criterion_inconclusive", "1 when the criterion's "
                                            "interval straddles its threshold in the rolling window",
                                            labels=["criterion", "scope"])
        if sla["passed"] is not None:
            passed.add_metric([sla["tier"]], float(sla["outcome"] == PASS))
            unsure.add_metric([sla["tier"]], float(sla["outcome"] == INCONCLUSIVE))
            highest = sla["highest_tier_met"]
            names = [t["tier"] for t in sla["tiers"]]
            rank = names.index(highest) if highest in names else -1
            for i, name in enumerate(names):
                met.add_metric([name], 1.0 if i <= rank else 0.0)
            for c in sla["criteria"]:
                criteria.add_metric([c["name"], c["scope"]], float(c["outcome"] == PASS))
                criteria_unsure.add_metric([c["name"], c["scope"]], float(c["outcome"] == INCONCLUSIVE))
        yield from (passed, unsure, met, criteria, criteria_unsure)

        uptime = GaugeMetricFamily("reliability_uptime_ratio", "share of 1 s windows up in the rolling window")
        if sla["uptime"] is not None:
            uptime.add_metric([], sla["uptime"])
        yield uptime

        budget = state["budget"]
        for name, doc, value in (
            ("reliability_error_budget_remaining_ratio", "error budget left over the run (1 untouched, 0 spent)",
             budget["remaining"]),
            ("reliability_error_budget_burn_rate", "error ratio / (1 - SLO) over the rolling window",
             budget["burn_rate"]),
            ("reliability_slo_ratio", "the availability objective the budget is computed from", budget["slo"]),
            ("reliability_uptime_budget_remaining_ratio",
             "budget of down (stalled or slow) seconds left over the run (1 untouched, 0 spent)",
             budget["uptime_remaining"]),
            ("reliability_uptime_budget_burn_rate",
             "share of stalled or slow seconds / (1 - uptime SLO) over the rolling window", budget["uptime_burn_rate"]),
            ("reliability_uptime_slo_ratio", "the uptime objective the down-seconds budget is computed from",
             budget["uptime_slo"]),
        ):
            family = GaugeMetricFamily(name, doc)
            if value is not None:
                family.add_metric([], value)
            yield family

        severity = state["alerts"]["severity"]
        yield GaugeMetricFamily("reliability_alert_severity", "open alert: 0 none, 1 warning, 2 page",
                                value=float(SEVERITY_RANK.get(severity or "", 0)))

        faults = state["faults"]
        fault_active = GaugeMetricFamily("reliability_fault_active", "1 while the fault is injected",
                                         labels=["fault", "type"])
        for item in faults["items"]:
            fault_active.add_metric([item["name"], item["type"]], float(item["active"]))
        yield fault_active
        yield GaugeMetricFamily("reliability_faults_active", "faults in effect now", value=float(faults["active"]))

        health = state["health"]
        component = GaugeMetricFamily("reliability_component_health",
                                      "last probe: 1 healthy, 0.5 degraded, 0 down", labels=["component"])
        for row in health["components"]:
            status = row["status"]
            if status is not None and status in HEALTH_VALUE:
                component.add_metric([row["name"]], HEALTH_VALUE[status])
        yield component
        score = GaugeMetricFamily("reliability_health_score", "weighted health score of the last round (0-100)")
        if health["score"] is not None:
            score.add_metric([], health["score"])
        yield score

        yield GaugeMetricFamily("reliability_test_running", "1 while the test is spawning or running",
                                value=float(state["runner_state"] in RUNNING_STATES))


def _safe_labels(state: State) -> State:
    """The state with every text neutralized and names shortened (with a hash, so two long names
    stay two series): the exposition format escapes only backslash, quote and newline, and a CR,
    NUL or ESC in a label value breaks parsers of the page."""
    return rewritten(state, display_data)


def metrics_registry(live: StateSource) -> CollectorRegistry:
    """A fresh registry holding only the reliability collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReliabilityCollector(live))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
