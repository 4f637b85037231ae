"""SLA alerting: error-budget burn rates over several windows, escalation from warning to page,
recovery, and the webhook payloads (generic JSON and Slack-compatible text).

Pure: no locust, no gevent. The plugin extension in :mod:`reliability.web.alerting` feeds it the
per-second counts of the run and sends what it returns from greenlets. One module per role:
:mod:`~reliability.alerts.spec` (the ``alerts:`` section), :mod:`~reliability.alerts.burn` (rules,
budgets, burn rates, the per-second counts), :mod:`~reliability.alerts.incident` (the incident
state machine) and :mod:`~reliability.alerts.delivery` (webhook bodies and the POST).

The rules are the SRE Workbook's multiwindow, multi-burn-rate alerts for a 30-day SLO, with
every window multiplied by ``run length / 10 h`` (so its 1 h window is a tenth of the run) and
none shorter than ``min_window_s``. A rule fires when the burn rate over its long *and* its short
window both reach its threshold; the short window makes an alert end soon after the errors stop:

============  ==========  =====================  ===================  ============================
severity      burn rate   long window            short window         SRE original (30-day SLO)
============  ==========  =====================  ===================  ============================
page          >= 14.4     run / 10               run / 120            1 h / 5 min (2 % of budget)
page          >= 6        run * 0.6              run / 20             6 h / 30 min (5 %)
warning       >= 1        run * 7.2 (the run)    run * 0.6            3 d / 6 h (10 %)
============  ==========  =====================  ===================  ============================

Burn rate = error ratio / (1 - SLO); the SLO is ``slo_pct`` or, by default, what the selected
tier allows (``100 - error_pct``: gold's 0.5 % errors make a 99.5 % SLO). Down seconds burn too:
stalled or slow seconds (uptime's rule, :func:`reliability.sla.second_state`) / counted seconds
over ``1 - uptime_slo_pct`` (default the tier's uptime); a window's rate is the faster of the two
SLIs, so a freeze, in which nothing completes and nothing fails, pages. A window with fewer than
``min_requests`` requests (sent, or held in flight by a stall) never fires. With ``sla_breach``
(default on) a rolling SLA criterion failing on evidence (latency too) is a warning by itself;
an inconclusive one (its interval straddles the threshold, or the window has no requests) is
neither a breach nor a recovery: it opens no incident and holds an open one.

An incident opens with ``breach`` at the severity that holds, moves once to ``page`` with
``escalation``, and closes with ``recovery`` when nothing has held for ``clear_s``. A run that
ends with an incident open sends ``run_end``. Example::

    alerts = BurnRateAlerts(scaled_rules(run_length_s=600, min_window_s=5), budget_ratio=0.005)
    series.add(t, requests=120, failures=30)
    for event in alerts.evaluate(series, start_t, end_t, now=time.time(), sla_failing=()):
        send(json_payload(event, context))
"""

from __future__ import annotations

from reliability.alerts.burn import (
    DEFAULT_RUN_LENGTH_S,
    HOUR_S,
    SCALE_REFERENCE_S,
    SRE_RULES,
    BurnRule,
    CountSeries,
    RuleBurn,
    budget_ratio_for,
    budget_remaining,
    burn_rate,
    scaled_rules,
    uptime_budget_ratio_for,
    window_burn,
)
from reliability.alerts.delivery import (
    Delivery,
    deliver,
    json_payload,
    slack_payload,
    webhook_label,
)
from reliability.alerts.incident import (
    AlertEvent,
    BurnRateAlerts,
    EventKind,
    wants,
)
from reliability.alerts.spec import (
    SEVERITY_RANK,
    AlertsSpec,
    Severity,
    WebhookSpec,
)

__all__ = [
    "AlertEvent",
    "AlertsSpec",
    "BurnRateAlerts",
    "BurnRule",
    "CountSeries",
    "DEFAULT_RUN_LENGTH_S",
    "Delivery",
    "EventKind",
    "HOUR_S",
    "RuleBurn",
    "SCALE_REFERENCE_S",
    "SEVERITY_RANK",
    "SRE_RULES",
    "Severity",
    "WebhookSpec",
    "budget_ratio_for",
    "budget_remaining",
    "burn_rate",
    "deliver",
    "json_payload",
    "scaled_rules",
    "slack_payload",
    "uptime_budget_ratio_for",
    "wants",
    "webhook_label",
    "window_burn",
]
