"""The plugin's Locust options in one table (pure: no locust), for the parser and ``reliability options``.

Each option works in every form Locust reads: the command line (``--sla-tier gold``), the
environment (``LOCUST_SLA_TIER=gold``), ``locust.conf`` / ``--config`` (``sla-tier = gold``) and
``pyproject.toml`` (``[tool.locust]`` ``sla-tier = "gold"``). Locust's own ``--help`` runs before
any locustfile is imported, so it cannot list them: ``reliability options`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PluginOption:
    flag: str  # "--sla-tier"
    help: str
    default: str  # as the README writes it
    web_form: bool = False  # shown in the web UI's start form (never for file paths)
    flag_only: bool = False  # store_true
    repeatable: bool = False
    choices: tuple[str, ...] = ()

    @property
    def env_var(self) -> str:
        return "LOCUST_" + self.flag.lstrip("-").replace("-", "_").upper()

    @property
    def config_key(self) -> str:
        return self.flag.lstrip("-")


OPTIONS: tuple[PluginOption, ...] = (
    PluginOption("--sla-tier", "SLA tier to grade against", "gold", web_form=True),
    PluginOption("--sla-percentile", "latency percentile the tiers' latency thresholds apply to, e.g. p99", "p95",
                 web_form=True),
    PluginOption("--scenario", "scenario YAML with SLA tiers, endpoints, target", "none"),
    PluginOption("--run-record", "run record path", "reports/run-<UTC>.json"),
    PluginOption("--summary-file", "append the Markdown summary to this file (also to $GITHUB_STEP_SUMMARY "
                 "when set)", "none"),
    PluginOption("--sla-abort", "stop the run when the rolling SLA fails on evidence for the grace period", "off",
                 web_form=True, flag_only=True),
    PluginOption("--sla-abort-grace", "seconds of sustained breach before abort", "10", web_form=True),
    PluginOption("--sla-window", "rolling window for live evaluation", "60s", web_form=True),
    PluginOption("--sla-status-interval", "seconds between live status lines", "5"),
    PluginOption("--sla-confidence", "confidence of every criterion's interval, e.g. 0.95 or 95%", "0.95",
                 web_form=True),
    PluginOption("--sla-min-requests", "fewer requests than this never make a MET", "100", web_form=True),
    PluginOption("--sla-latency-basis", "latency graded: corrected (from the intended start, the default when the "
                 "run has a schedule) or measured", "corrected", choices=("corrected", "measured")),
    PluginOption("--allow-unsafe-faults", "run the scenario's shell, webhook, process.* and factory faults (they act "
                 "on this machine); never settable from the web UI", "off", flag_only=True),
    PluginOption("--revert-journal", "revert journal file", "a new file in $RELIABILITY_JOURNAL_DIR or "
                 "~/.local/state/reliability/journals"),
    PluginOption("--ignore-applied-faults", "start even though another run's journal says a fault is still applied "
                 "on a backend this run uses", "off", flag_only=True),
    PluginOption("--web-origin", "another origin the web UI is reached at (reverse proxy, port mapping), e.g. "
                 "https://locust.example.com; repeatable", "none", repeatable=True),
)


def add_to(group: Any, options: Iterable[PluginOption] = OPTIONS) -> list[Any]:
    """Add ``options`` to an argparse/configargparse group; return the actions for the web form."""
    web: list[Any] = []
    for opt in options:
        kwargs: dict[str, Any] = {"help": f"{opt.help} (default {opt.default}; env {opt.env_var})".replace("%", "%%"),
                                  "env_var": opt.env_var}
        if opt.flag_only:
            kwargs.update(action="store_true", default=False)
        elif opt.repeatable:
            kwargs.update(action="append", default=None)
        else:
            kwargs.update(default=None)
        if opt.choices:
            kwargs.update(choices=opt.choices)
        action = group.add_argument(opt.flag, **kwargs)
        if opt.web_form:
            web.append(action)
    return web


def table() -> str:
    """``reliability options``: every option with its environment variable and config key."""
    rows = [("option", "environment variable", "locust.conf / [tool.locust] key", "default", "meaning")]
    rows += [(o.flag + ("" if o.flag_only else " VALUE"), o.env_var, o.config_key, o.default, o.help) for o in OPTIONS]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  -------")
    return "\n".join(lines) + "\n"


def _cmd_options(_args: object) -> int:
    sys.stdout.write(table())
    print("\nAdd `import reliability.plugin` to the locustfile (after any `from __future__` line), "
          "then pass these to locust.")
    return 0


def _add_options(_parser: object) -> None:
    """``reliability options`` takes no arguments."""
