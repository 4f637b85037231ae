"""Faults that act on this machine beyond the system under test need an explicit opt-in.

``shell`` runs commands, ``webhook`` calls any URL, ``process.suspend``/``process.kill`` signal
local processes, and a ``factory`` imports and calls Python named by the scenario. A scenario
file is data that may come from anywhere (a pull request, a shared folder); running such faults
needs ``--allow-unsafe-faults`` on the command line (``LOCUST_ALLOW_UNSAFE_FAULTS=true``, or
``allow-unsafe-faults = true`` in ``locust.conf``). Without it the run stops before it starts, with
one line naming the faults. ``reliability revert JOURNAL`` replays undos from a journal file, which
may be just as foreign: an undo that runs a command, signals processes or calls a URL other than
a chaos proxy's or the target's admin API needs the same flag (:func:`unsafe_undo`).

Example::

    require_opt_in(scenario, allowed=False, source="chaos.yaml")
    # ScenarioError: chaos.yaml: faults: owned (shell) acts on this machine: ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from reliability.exceptions import ScenarioError
from reliability.jsontypes import JsonValue

if TYPE_CHECKING:  # the schedule's module imports pydantic: only when the check runs
    from reliability.faults.schedule import ScheduledFaultSpec

UNSAFE_TYPES = frozenset({"shell", "webhook", "process.suspend", "process.kill"})
FLAG = "--allow-unsafe-faults"
# Kinds whose undo calls the same API their inject does, which needs no opt-in.
API_KINDS = ("proxy.", "http.")


class HasFaults(Protocol):
    """A scenario, as far as the opt-in looks at it."""

    @property
    def faults(self) -> Sequence[ScheduledFaultSpec]: ...


def unsafe_faults(faults: Sequence[ScheduledFaultSpec]) -> list[tuple[str, str]]:
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


def require_opt_in(scenario: HasFaults, allowed: bool, source: str) -> None:
    """Raise a one-line :class:`ScenarioError` when ``scenario`` has such faults and ``allowed``
    is false."""
    found = unsafe_faults(scenario.faults)
    if found and not allowed:
        listed = ", ".join(f"{name} ({kind})" for name, kind in found)
        raise ScenarioError(source, "faults", f"{listed[:300]} act(s) on this machine (commands, URLs, local "
                                              f"processes or Python code); pass {FLAG} to run them")


def unsafe_undo(kind: str, actions: Sequence[Mapping[str, JsonValue]]) -> bool:
    """Whether replaying this journal undo acts on this machine: the undo of an unsafe kind, or any
    undo that runs a command, sends a signal or calls a URL for a kind other than ``proxy.*`` /
    ``http.*`` (the kind is read from the same file as the actions, so the actions decide too).

    >>> unsafe_undo("redis.memory", [{"do": "redis"}]), unsafe_undo("redis.memory", [{"do": "command"}])
    (False, True)
    """
    if kind in UNSAFE_TYPES:
        return True
    for action in actions:
        do = action.get("do")
        if do != "redis" and not (do == "http" and kind.startswith(API_KINDS)):
            return True
    return False
