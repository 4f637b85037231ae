"""The process exit code when other Locust listeners set one too (pure: no locust).

Locust exits with ``environment.process_exit_code`` as it stands after every ``quitting``
listener ran, and those run in reverse order of registration, so any listener registered before
the plugin (a locustfile's own, locust-plugins' checks) used to overwrite the SLA verdict. The
plugin now keeps the codes apart — its own verdict and what every other listener set, named by
the function that set it — and Locust reads the combination:

* nobody else set a code, or only 0: the verdict's code (0 met, 2 a listener raised, 3 not met,
  4 inconclusive);
* the verdict failed (non-zero) and another listener failed too: the verdict's code (both
  failed; the other is named in the log and the run record);
* the verdict met (0) and another listener failed: that listener's code, except that 3 and 4
  become 1 so they are never read as "SLA not met" / "SLA inconclusive";
* no verdict (the plugin graded nothing): the other listener's code.

So the process never exits with a less severe code than the verdict, and a failure another
plugin found is never turned into success.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RESERVED = (3, 4)  # our verdict's codes: NOT MET, INCONCLUSIVE
OTHER_FAILURE = 1  # Locust's own "the run failed" code


@dataclass(frozen=True)
class ExternalCode:
    by: str  # module.function that set it, e.g. "locust_plugins.do_checks"
    code: int


@dataclass
class ExitCodes:
    """The verdict's code and every code other listeners set, in the order they set them."""

    verdict: int | None = None
    others: list[ExternalCode] = field(default_factory=list)

    def note(self, by: str, code: int | None) -> None:
        if code is None:
            self.others = [o for o in self.others if o.by != by]  # a listener taking its code back
            return
        self.others.append(ExternalCode(by, int(code)))

    @property
    def external(self) -> ExternalCode | None:
        """The code Locust would have used without us: the last one another listener set."""
        return self.others[-1] if self.others else None

    def failures(self) -> list[ExternalCode]:
        """Other listeners' failing codes (the last one each listener set)."""
        last: dict[str, ExternalCode] = {}
        for other in self.others:
            last[other.by] = other
        return [o for o in last.values() if o.code != 0]

    def combined(self) -> int | None:
        ext = self.external
        if self.verdict is None:
            return None if ext is None else ext.code
        failing = self.failures()
        if self.verdict != 0 or not failing:
            return self.verdict
        code = failing[-1].code
        return OTHER_FAILURE if code in RESERVED else code

    def explain(self) -> str | None:
        """One line for the log and the record when another listener's code mattered."""
        failing = self.failures()
        if not failing:
            return None
        named = ", ".join(f"{o.by} set {o.code}" for o in failing)
        return f"exit code {self.combined()}: SLA verdict {self.verdict}; {named}"

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.combined(),
            "verdict": self.verdict,
            "others": [{"by": o.by, "code": o.code} for o in self.others],
        }
