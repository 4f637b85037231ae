"""Confidence intervals behind every SLA criterion (pure: no locust, no gevent, no scipy).

* :func:`wilson` — the Wilson score interval of a binomial proportion (error ratio, request
  availability). Closed form, well behaved at 0 and n successes, unlike the normal ("Wald")
  interval that collapses to a point there.
* :func:`order_statistic_ranks` — the distribution-free interval of a percentile: the ranks
  ``l, u`` such that the true ``p``-quantile lies between the ``l``-th and ``u``-th smallest
  sample with probability >= ``confidence``, whatever the latency distribution. Exact
  (binomial sums) up to :data:`EXACT_MAX_N` samples, the normal approximation of the same
  binomial above it. A rank beyond the sample is ``None``: that side of the interval is
  unbounded (5 samples cannot bound a p95 from above at 95 %).

A criterion *passes* only when its whole interval lies on the passing side of the threshold,
*fails* when the whole interval lies on the failing side, and is *inconclusive* otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

EXACT_MAX_N = 5000

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"


def z_value(confidence: float) -> float:
    """Two-sided normal quantile for ``confidence`` (0.95 -> 1.96)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(successes: int, n: int, confidence: float) -> tuple[float, float] | None:
    """Wilson score interval for ``successes / n``; None when ``n`` is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within [0, {n}], got {successes}")
    z = z_value(confidence)
    z2 = z * z
    p = successes / n
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _binomial_cdf_table(n: int, p: float) -> list[float]:
    """P(Bin(n, p) <= k) for k = 0..n, from log-space probabilities (no overflow for large n)."""
    log_p, log_q = math.log(p), math.log1p(-p)
    lg_n = math.lgamma(n + 1)
    cdf: list[float] = []
    total = 0.0
    for k in range(n + 1):
        total += math.exp(lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        cdf.append(min(total, 1.0))
    return cdf


def order_statistic_ranks(n: int, p: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based ranks ``(l, u)`` of the order statistics bounding the ``p``-quantile.

    ``P(X_(l) <= q_p <= X_(u)) >= confidence`` for any continuous distribution, with the
    missing probability split evenly between the two tails. ``l`` is None when no sample is
    low enough (no lower bound), ``u`` None when none is high enough (no upper bound)."""
    if n <= 0:
        return None, None
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be within (0, 1), got {p!r}")
    alpha_half = (1.0 - confidence) / 2.0
    if n <= EXACT_MAX_N:
        cdf = _binomial_cdf_table(n, p)
        # l: the largest rank with P(Bin <= l - 1) <= alpha/2 (at least that much mass below X_(l))
        low: int | None = None
        for k in range(n):
            if cdf[k] <= alpha_half:
                low = k + 1
            else:
                break
        # u: the smallest rank with P(Bin <= u - 1) >= 1 - alpha/2
        high: int | None = None
        for k in range(n):
            if cdf[k] >= 1.0 - alpha_half:
                high = k + 1
                break
        return low, high
    z = z_value(confidence)
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    lo_rank = math.floor(mean - z * sd)
    hi_rank = math.ceil(mean + z * sd) + 1
    return (lo_rank if lo_rank >= 1 else None), (hi_rank if hi_rank <= n else None)


@dataclass(frozen=True)
class Interval:
    """A two-sided interval; ``low``/``high`` None when that side is unbounded."""

    low: float | None
    high: float | None
    confidence: float

    def outcome(self, comparator: str, threshold: float) -> str:
        """pass / fail / inconclusive of ``value <comparator> threshold`` over the whole interval."""
        if comparator == "<=":
            if self.high is not None and self.high <= threshold:
                return PASS
            if self.low is not None and self.low > threshold:
                return FAIL
            return INCONCLUSIVE
        if self.low is not None and self.low >= threshold:
            return PASS
        if self.high is not None and self.high < threshold:
            return FAIL
        return INCONCLUSIVE
