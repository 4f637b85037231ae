"""The scenario a run grades against: the ``--scenario`` file with the command-line options on top.

Pure (no locust): ``options`` is any object with the plugin's option attributes (Locust's parsed
options, an ``argparse.Namespace``). Example::

    scenario, sla = resolve_spec(argparse.Namespace(scenario="scenarios/api_gold.yaml", sla_tier="silver"))
"""

from __future__ import annotations

from reliability.config import ScenarioSpec, SlaSpec, parse_scenario, read_scenario_file
from reliability.faults.optin import require_opt_in
from reliability.inputfile import YamlScalar, YamlValue


def _section(value: YamlValue) -> dict[YamlScalar, YamlValue]:
    """A copy of a mapping section to put options on (an absent one is empty; one that is not a
    mapping fails as ``dict()`` does, before validation could say which)."""
    if isinstance(value, dict):
        return dict(value)
    if not value:
        return {}
    raise TypeError(f"expected a mapping, got {type(value).__name__}")


def resolve_spec(options: object) -> tuple[ScenarioSpec, SlaSpec]:
    """Scenario file, then command-line options on top (the command line wins)."""
    path = getattr(options, "scenario", None)
    data = read_scenario_file(path) if path else {}
    if not isinstance(data, dict):
        data = {"": data}  # let parse_scenario report the bad top level
    sla = _section(data.get("sla"))
    abort = _section(sla.get("abort"))
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
