"""The scenario's ``alerts:`` section: receivers (webhooks) and the burn-rate alert settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from reliability.units import DurationS, FrozenSpec

Severity = Literal["warning", "page"]
SEVERITY_RANK: Mapping[str, int] = {"warning": 1, "page": 2}


class WebhookSpec(FrozenSpec):
    """One receiver. ``url`` is a secret (Slack's carries its token in the path): write it as
    ``${ENV_VAR}``; it is never shown, logged or written, only ``scheme://host/***``.
    A bare string is taken as the URL. Example: ``{url: "${SLACK_WEBHOOK}", format: slack,
    min_severity: page}``."""

    url: SecretStr
    format: Literal["json", "slack"] = "json"
    min_severity: Severity | None = None  # default: the section's min_severity
    timeout_s: DurationS = Field(default=5.0, gt=0, le=30)

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _http(self) -> WebhookSpec:
        if urlsplit(self.url.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("url: must be an http:// or https:// URL")
        return self


class AlertsSpec(FrozenSpec):
    """The scenario's ``alerts:`` section.

    Example::

        alerts:
          slo_pct: 99.5             # default: 100 - the selected tier's error_pct
          uptime_slo_pct: 99.9      # seconds up; default: the selected tier's uptime_pct
          run_length_s: 30m         # what the windows scale to (default: -t, else the shape, else 10m)
          webhooks:
            - ${ALERT_WEBHOOK_URL}                                   # generic JSON
            - {url: "${SLACK_WEBHOOK}", format: slack, min_severity: page}
    """

    webhooks: tuple[WebhookSpec, ...] = ()
    slo_pct: float | None = Field(default=None, gt=0, lt=100)
    uptime_slo_pct: float | None = Field(default=None, gt=0, lt=100)
    run_length_s: DurationS | None = Field(default=None, gt=0)
    min_window_s: DurationS = Field(default=5.0, ge=1, le=3600)
    min_requests: int = Field(default=10, ge=1)
    clear_s: DurationS = Field(default=5.0, ge=0)
    sla_breach: bool = True
    min_severity: Severity = "warning"

    def secrets(self) -> tuple[str, ...]:
        """Every webhook URL, for scrubbing text that is shown, logged or written."""
        return tuple(sorted({w.url.get_secret_value() for w in self.webhooks}, key=len, reverse=True))
