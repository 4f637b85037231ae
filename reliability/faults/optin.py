"""Faults that act on this machine beyond the system under test need an explicit opt-in.

``shell`` runs commands, ``webhook`` calls any URL, ``process.suspend``/``process.kill`` signal
local processes, and a ``factory`` imports and calls Python named by the scenario. A scenario
file is data that may come from anywhere (a pull request, a shared folder); running such faults
needs ``--allow-unsafe-faults`` on the command line (``LOCUST_ALLOW_UNSAFE_FAULTS=true``, or
``allow-unsafe-faults = true`` in ``locust.conf``). Without it the run stops before it starts, with
one line naming the faults.

Example::

    require_opt_in(scenario, allowed=False, source="chaos.yaml")
    # ScenarioError: chaos.yaml: faults: owned (shell) acts on this machine: ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reliability.exceptions import ScenarioError

UNSAFE_TYPES = frozenset({"shell", "webhook", "process.suspend", "process.kill"})
FLAG = "--allow-unsafe-faults"


def unsafe_faults(faults: Sequence[Any]) -> list[tuple[str, str]]:
    """(display name, type) of every scheduled fault that needs the opt-in."""
    from reliability.shapes.spec import fault_names

    names = fault_names(faults)
    found = []
    for name, scheduled in zip(names, faults, strict=True):
        kind = getattr(scheduled.fault, "type", None)
        if kind in UNSAFE_TYPES:
            found.append((name, str(kind)))
        elif scheduled.factory is not None:
            found.append((name, f"factory {scheduled.factory}"))
    return found


def require_opt_in(scenario: Any, allowed: bool, source: str) -> None:
    """Raise a one-line :class:`ScenarioError` when ``scenario`` has such faults and ``allowed``
    is false."""
    found = unsafe_faults(scenario.faults)
    if found and not allowed:
        listed = ", ".join(f"{name} ({kind})" for name, kind in found)
        raise ScenarioError(source, "faults", f"{listed[:300]} act(s) on this machine (commands, URLs, local "
                                              f"processes or Python code); pass {FLAG} to run them")
