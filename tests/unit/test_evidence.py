"""Confidence intervals (against exact values and brute-force coverage) and the precedence table."""

from __future__ import annotations

import math
import random

import pytest

from reliability.config import parse_scenario
from reliability.evidence import EXACT_MAX_N, Interval, order_statistic_ranks, wilson
from reliability.exitcode import ExitCodes
from reliability.metrics import WindowStore
from reliability.sla import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_PASSED, Verdict, evaluate
from tests.support.fakes import FakeClock

T0 = 5_000_000.0


def test_wilson_matches_the_closed_form_values() -> None:
    # Wilson 95 % for 0/10: (0, z^2 / (n + z^2)) = (0, 0.2775); for 5/10 ~ (0.2366, 0.7634)
    assert wilson(0, 10, 0.95) == (0.0, pytest.approx(0.27753, abs=1e-4))
    low, high = wilson(5, 10, 0.95) or (0.0, 0.0)
    assert low == pytest.approx(0.23659, abs=1e-4) and high == pytest.approx(0.76341, abs=1e-4)
    assert wilson(10, 10, 0.95) == (pytest.approx(0.72247, abs=1e-4), 1.0)
    assert wilson(0, 0, 0.95) is None


def test_order_statistic_ranks_exact_small_n() -> None:
    # n=5, p=0.95: no upper bound exists (P(all 5 below q95) = 0.774 < 0.975)
    low, high = order_statistic_ranks(5, 0.95, 0.95)
    assert high is None
    # P(Bin(5, .95) <= 3) = 0.0226 <= 0.025 < P(<= 4): the lower bound is the 4th smallest
    assert low == 4
    # median of 100 at 95 %: ranks 40 and 61 (the textbook table)
    assert order_statistic_ranks(100, 0.5, 0.95) == (40, 61)


def test_percentile_interval_covers_the_true_quantile_as_promised() -> None:
    rng = random.Random(7)
    true_q95 = math.exp(1.6448536 * 0.5)  # lognormal(0, 0.5)
    for n in (200, 400, EXACT_MAX_N + 1000):  # exact and normal-approximation ranks
        low, high = order_statistic_ranks(n, 0.95, 0.95)
        assert low is not None and high is not None
        covered = 0
        trials = 200 if n < EXACT_MAX_N else 60
        for _ in range(trials):
            xs = sorted(rng.lognormvariate(0, 0.5) for _ in range(n))
            covered += xs[low - 1] <= true_q95 <= xs[high - 1]
        assert covered / trials >= 0.88, (n, covered / trials)  # nominal 95 %, a few trials


def test_interval_outcome_on_each_side() -> None:
    assert Interval(180, 190, 0.95).outcome("<=", 200) == "pass"
    assert Interval(205, 230, 0.95).outcome("<=", 200) == "fail"
    assert Interval(180, 215, 0.95).outcome("<=", 200) == "inconclusive"
    assert Interval(180, None, 0.95).outcome("<=", 200) == "inconclusive"
    assert Interval(0.999, 1.0, 0.95).outcome(">=", 0.99) == "pass"
    assert Interval(0.9, 0.95, 0.95).outcome(">=", 0.99) == "fail"


def _verdict(seconds: int, per_second: int, latency_ms: float, fail_every: int = 0, tier: str = "gold",
             **sla: object) -> Verdict:
    clock = FakeClock(T0)
    store = WindowStore(clock=clock)
    start = clock.now
    k = 0
    for s in range(seconds):
        for i in range(per_second):
            clock.now = start + s + i / (per_second + 1)
            k += 1
            store.record("GET", "/a", latency_ms, bool(fail_every) and k % fail_every == 0)
    return evaluate(store.snapshot(), parse_scenario({"sla": {"tier": tier, **sla}}).sla)


# -- the README's precedence table, one test per row ----------------------------------------------

def test_row_no_requests_is_inconclusive() -> None:
    verdict = evaluate(WindowStore(clock=FakeClock(T0)).snapshot(), parse_scenario({}).sla)
    assert verdict.exit_code == EXIT_INCONCLUSIVE and verdict.inconclusive == ("no requests were made",)


def test_row_clear_failure_with_a_lost_worker_is_not_met() -> None:
    verdict = _verdict(10, 200, 50.0, fail_every=20)  # 5 % errors, CI well above gold's 0.5 %
    assert verdict.exit_code == EXIT_FAILED
    doubted = verdict.with_inconclusive(["worker w1 went missing (detected ...)"])
    assert doubted.exit_code == EXIT_FAILED and doubted.inconclusive


def test_row_clear_failure_with_user_code_raising_is_not_met() -> None:
    verdict = _verdict(10, 200, 300.0).with_inconclusive(["user code raised 1 exception(s)"])
    assert [c.name for c in verdict.firm_failures()] == ["p95_ms"]
    assert verdict.exit_code == EXIT_FAILED


def test_row_latency_failure_on_a_saturated_generator_is_inconclusive() -> None:
    verdict = _verdict(10, 200, 300.0).with_inconclusive(["load generator local CPU above 90 %"],
                                                          latency_untrusted=True)
    assert verdict.firm_failures() == ()
    assert verdict.exit_code == EXIT_INCONCLUSIVE


def test_row_error_ratio_failure_on_a_saturated_generator_is_not_met() -> None:
    verdict = _verdict(10, 200, 300.0, fail_every=25).with_inconclusive(["load generator local CPU above 90 %"],
                                                                          latency_untrusted=True)
    assert [c.name for c in verdict.firm_failures()] == ["error_ratio"]
    assert verdict.exit_code == EXIT_FAILED


def test_row_straddling_criterion_is_inconclusive() -> None:
    verdict = _verdict(10, 200, 50.0, fail_every=200)  # exactly 0.5 %: CI straddles gold's limit
    assert verdict.exit_code == EXIT_INCONCLUSIVE and not verdict.passed


def test_row_pass_with_a_reason_for_doubt_is_inconclusive() -> None:
    verdict = _verdict(10, 200, 50.0)
    assert verdict.exit_code == EXIT_PASSED
    assert verdict.with_inconclusive(["worker w1 went missing"]).exit_code == EXIT_INCONCLUSIVE


def test_row_below_min_requests_is_inconclusive_but_a_clear_failure_still_fails() -> None:
    assert _verdict(10, 200, 50.0, min_requests=5000).exit_code == EXIT_INCONCLUSIVE
    failing = _verdict(2, 10, 50.0, fail_every=1)  # 20 requests, all failed: CI far above 0.5 %
    assert failing.exit_code == EXIT_FAILED


def test_row_clean_pass_is_met() -> None:
    verdict = _verdict(10, 200, 50.0)
    assert verdict.passed and verdict.exit_code == EXIT_PASSED and verdict.inconclusive == ()


def test_confidence_changes_the_interval_width() -> None:
    narrow = {c.name: c for c in _verdict(10, 200, 50.0, confidence=0.9).criteria}["error_ratio"]
    wide = {c.name: c for c in _verdict(10, 200, 50.0, confidence=0.999).criteria}["error_ratio"]
    assert narrow.confidence == 0.9 and wide.confidence == 0.999
    assert (narrow.ci_high or 0) < (wide.ci_high or 0)


# -- exit codes combined with other listeners ------------------------------------------------------

@pytest.mark.parametrize(("verdict", "others", "expected"), [
    (3, [("recipe._", 0)], 3),            # a recipe saying "fine" cannot lower NOT MET
    (4, [("locust_plugins.do_checks", 3)], 4),  # a check cannot turn inconclusive into "not met"
    (0, [("locust_plugins.do_checks", 3)], 1),  # a failing check on a MET run: failure, but not "3"
    (0, [("recipe._", 1)], 1),
    (0, [("other.hook", 7)], 7),           # foreign codes outside ours pass through
    (0, [("recipe._", 0)], 0),
    (3, [], 3),
    (None, [("recipe._", 1)], 1),          # nothing graded: theirs
    (0, [("a.f", 1), ("a.f", 0)], 0),     # the same listener changed its mind: its last word counts
])
def test_combined_exit_code(verdict: int | None, others: list[tuple[str, int]], expected: int) -> None:
    codes = ExitCodes(verdict=verdict)
    for by, code in others:
        codes.note(by, code)
    assert codes.combined() == expected
    if expected != verdict and verdict is not None:
        assert codes.explain() is not None and others[-1][0] in (codes.explain() or "")
