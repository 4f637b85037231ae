"""Delivery: the webhook bodies (generic JSON, Slack-compatible text) and the POST that sends
them, with one retry (see :mod:`reliability.alerts`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reliability.alerts.incident import AlertEvent
from reliability.httpclient import send
from reliability.masking import mask
from reliability.units import iso


def json_payload(event: AlertEvent, context: Mapping[str, Any]) -> dict[str, Any]:
    """The generic JSON body: the event plus ``context`` (scenario, tier, budget ...)."""
    return {"source": "locust-reliability", **event.to_dict(), **context}


_TITLES = {"breach": "SLA breach", "escalation": "SLA breach escalated", "recovery": "SLA recovered",
           "run_end": "run ended with the SLA alert open"}


def slack_payload(event: AlertEvent, context: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack-compatible body (``{"text": ...}``, also read by Mattermost, Rocket.Chat, Teams
    connectors that take Slack format)."""
    label = "RESOLVED" if event.resolved else event.severity.upper()
    scenario = context.get("scenario") or "load test"
    tier = context.get("tier")
    head = f"[{label}] {_TITLES[event.kind]}: {scenario}" + (f" ({tier})" if tier else "")
    lines = [head, f"at +{event.t_s:.0f} s ({iso(event.epoch_s)}), incident #{event.incident}"]
    if event.down_since_s is not None and event.time_to_detect_s is not None:
        lines.append(f"down since +{event.down_since_s:.0f} s (detected after {event.time_to_detect_s:.0f} s)")
    lines += [f"- {r}" for r in event.reasons]
    for key, label in (("budget_remaining", "error budget"), ("uptime_budget_remaining", "uptime budget")):
        budget = context.get(key)
        if isinstance(budget, int | float):
            lines.append(f"{label} left: {budget * 100:.1f} %")
    return {"text": "\n".join(lines)}


def webhook_label(url: str) -> str:
    """A printable name for a webhook: scheme and host only (``https://hooks.slack.com/***``)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}/***"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one POST: ``status`` (None when no answer), ``error`` (scrubbed)."""

    status: int | None
    error: str | None
    elapsed_ms: float
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "elapsed_ms": round(self.elapsed_ms, 1),
                "attempts": self.attempts}


def deliver(url: str, body: Mapping[str, Any], timeout_s: float, *, attempts: int = 2,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST ``body`` as JSON to ``url``: 2xx is delivered; a failed connection or a 5xx is tried
    again once after 0.5 s. Blocking (bounded by ``timeout_s`` per attempt): call it from a
    greenlet or thread. Error text never contains the URL."""
    started = clock()
    status: int | None = None
    error: str | None = None
    tries = 0
    for tries in range(1, attempts + 1):  # noqa: B007 - the count is reported
        try:
            reply = send("POST", url, dict(body), {"User-Agent": "locust-reliability-alerts"},
                         timeout_s=timeout_s, redirects=0, max_body=65536, secrets=(url,))
            status = reply.status
            error = None if reply.ok else f"HTTP {status}"
        except OSError as exc:  # timeouts, refused connections (the text is masked, never the URL)
            status = None
            error = mask(f"{type(exc).__name__}: {exc}", (url,))
        if error is None or (status is not None and status < 500):
            break
        if tries < attempts:
            sleep(0.5)
    return Delivery(status, error, (clock() - started) * 1000.0, tries)
