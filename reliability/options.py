"""The scenario a run grades against: the ``--scenario`` file with the command-line options on top.

Pure (no locust): ``options`` is any object with the plugin's option attributes (Locust's parsed
options, an ``argparse.Namespace``). Example::

    scenario, sla = resolve_spec(argparse.Namespace(scenario="scenarios/api_gold.yaml", sla_tier="silver"))
"""

from __future__ import annotations

from reliability.config import ScenarioSpec, SlaSpec, parse_scenario, read_scenario_file
from reliability.faults.optin import require_opt_in


def resolve_spec(options: object) -> tuple[ScenarioSpec, SlaSpec]:
    """Scenario file, then command-line options on top (the command line wins)."""
    path = getattr(options, "scenario", None)
    data = read_scenario_file(path) if path else {}
    if not isinstance(data, dict):
        data = {"": data}  # let parse_scenario report the bad top level
    sla = dict(data.get("sla") or {})
    abort = dict(sla.get("abort") or {})
    for option, key in (("sla_tier", "tier"), ("sla_percentile", "percentile"),
                        ("sla_window", "rolling_window_s"), ("sla_status_interval", "status_interval_s"),
                        ("sla_confidence", "confidence"), ("sla_min_requests", "min_requests"),
                        ("sla_latency_basis", "latency_basis")):
        value = getattr(options, option, None)
        if value:
            sla[key] = value
    if getattr(options, "sla_abort", False):
        abort["enabled"] = True
    grace = getattr(options, "sla_abort_grace", None)
    if grace:
        abort["grace_s"] = grace
    if abort:
        sla["abort"] = abort
    scenario = parse_scenario({**data, "sla": sla}, path or "command line")
    require_opt_in(scenario, bool(getattr(options, "allow_unsafe_faults", False)), path or "command line")
    return scenario, scenario.sla
