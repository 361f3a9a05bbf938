"""Paired statistics for comparing two runs question by question (``chattasks compare``).

Everything here works on paired per-question scores of a baseline A and a candidate B; a
difference is always B − A. No scipy: the tests check every function against it.

- ``mcnemar_exact(lost, gained)``: McNemar's exact test for 0/1 scores, the two-sided binomial
  test of the discordant pairs (``gained`` of ``lost + gained`` against one half). For p = 1/2
  the binomial is symmetric, so the p-value is ``min(1, 2 P(X <= min(lost, gained)))``, summed
  over exact integers (``scipy.stats.binomtest(gained, lost + gained).pvalue``).
- ``newcombe_paired_interval``: the 95% interval of a difference of paired proportions,
  Newcombe's hybrid score interval for paired data (Newcombe 1998, Statistics in Medicine 17,
  2635–2650, method 10): the Wilson intervals (l, u) of both proportions combined as
  ``L = d − sqrt((pB − lB)² − 2φ(pB − lB)(uA − pA) + (uA − pA)²)`` and
  ``U = d + sqrt((uB − pB)² − 2φ(uB − pB)(pA − lA) + (pA − lA)²)``, where φ is the correlation
  of the paired 0/1 scores with Newcombe's correction: with ``D = both·neither − lost·gained``,
  φ = (D − n/2)/sqrt(margins) when D > n/2, 0 when 0 <= D <= n/2, D/sqrt(margins) when D < 0,
  and 0 when a margin is empty. Closed form, inside [−1, 1], sensible at 0 and n.
- ``paired_t``: the paired t-test and the t interval of the mean difference, for scores that are
  not 0/1 (a question's mean over several samples). Student's t distribution is computed from the
  regularized incomplete beta function (a continued fraction).
- ``holm``: Holm's step-down adjustment of p-values for multiple comparisons.
- ``bootstrap_mean``: percentile bootstrap of a mean of per-question values, drawn as multinomial
  counts over the distinct values (the same distribution as resampling the questions with
  replacement), with a numpy generator seeded by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from chattasks.eval.results import wilson_interval

CONFIDENCE = 0.95
"""The level of every interval here."""


def binomial_half_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` trials against probability 1/2."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    low = min(k, n - k)
    if 2 * low == n:
        return 1.0
    tail = 0
    term = 1  # C(n, 0)
    for i in range(low + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    return min(1.0, float(Fraction(2 * tail, 2**n)))


def mcnemar_exact(lost: int, gained: int) -> float:
    """McNemar's exact p-value from the discordant pairs: ``lost`` (A right, B wrong) and
    ``gained`` (A wrong, B right); 1 when there are none."""
    return binomial_half_two_sided(gained, lost + gained)


def newcombe_paired_interval(both: int, lost: int, gained: int, neither: int) -> tuple[float, float]:
    """95% interval of pB − pA for paired 0/1 scores (Newcombe's method 10, module docstring).

    ``both``/``neither``: questions both runs got right/wrong; ``lost``: A right, B wrong;
    ``gained``: A wrong, B right. ValueError for negative counts or no question at all.
    """
    counts = (both, lost, gained, neither)
    if any(count < 0 for count in counts) or sum(counts) == 0:
        raise ValueError(f"need non-negative counts with at least one question, got {counts}")
    n = sum(counts)
    right_a, right_b = both + lost, both + gained
    p_a, p_b = right_a / n, right_b / n
    low_a, high_a = wilson_interval(right_a, n)
    low_b, high_b = wilson_interval(right_b, n)
    margins = right_a * (n - right_a) * right_b * (n - right_b)
    cross = both * neither - lost * gained
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    else:
        phi = (cross - n / 2 if cross > 0 else cross) / math.sqrt(margins)
    difference = p_b - p_a
    down_b, up_a = p_b - low_b, high_a - p_a
    up_b, down_a = high_b - p_b, p_a - low_a
    lower = difference - math.sqrt(max(0.0, down_b**2 - 2 * phi * down_b * up_a + up_a**2))
    upper = difference + math.sqrt(max(0.0, up_b**2 - 2 * phi * up_b * down_a + down_a**2))
    return max(-1.0, lower), min(1.0, upper)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz), for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-16:
            break
    return result


def regularized_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0 and 0 <= x <= 1):
        raise ValueError(f"need a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x in (0, 1):
        return float(x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * regularized_beta(df / 2, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_quantile(probability: float, df: float) -> float:
    """The t with P(T <= t) = ``probability`` (bisection on ``t_sf``, to double precision)."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    if probability < 0.5:
        return -t_quantile(1 - probability, df)
    target = 1 - probability
    low, high = 0.0, 1.0
    while t_sf(high, df) > target:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        low, high = (middle, high) if t_sf(middle, df) > target else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class PairedT:
    """The paired t-test of differences: their mean, t, degrees of freedom, p and 95% interval."""

    mean: float
    t: float
    df: int
    p_value: float
    ci95: tuple[float, float]


def paired_t(differences: Sequence[float]) -> PairedT | None:
    """The paired t-test of per-question differences B − A (two-sided) and the t interval of
    their mean; None with fewer than two questions. When every difference is the same, the
    spread is 0: p is 1 if they are all 0, else 0, and the interval is the point."""
    n = len(differences)
    if n < 2:
        return None
    mean = math.fsum(differences) / n
    variance = math.fsum((value - mean) ** 2 for value in differences) / (n - 1)
    if variance <= (1e-15 * max(1.0, abs(mean))) ** 2:
        return PairedT(mean, 0.0 if mean == 0 else math.copysign(math.inf, mean), n - 1,
                       1.0 if mean == 0 else 0.0, (mean, mean))  # fmt: skip
    se = math.sqrt(variance / n)
    t = mean / se
    p = min(1.0, 2 * t_sf(abs(t), n - 1))
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) * se
    return PairedT(mean, t, n - 1, p, (mean - half, mean + half))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the given order; a None (no test) stays None and does not count."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(present)
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def bootstrap_mean(values: Sequence[float], resamples: int, rng: Any) -> Any:
    """``resamples`` bootstrap means of ``values`` (a numpy array), drawing from ``rng`` (a numpy
    Generator): multinomial counts over the distinct values, as many draws as values."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0 or resamples < 1:
        raise ValueError(f"need values and resamples >= 1, got {data.size} values, {resamples} resamples")
    distinct, counts = np.unique(data, return_counts=True)
    probabilities = counts / data.size
    block = max(1, 4_000_000 // distinct.size)
    means = np.empty(resamples)
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        draws = rng.multinomial(data.size, probabilities, size=size)
        means[start : start + size] = draws @ distinct / data.size
    return means


def bootstrap_p(estimates: Any) -> float:
    """Two-sided bootstrap p-value of "no difference": twice the smaller share of resampled
    estimates on either side of 0 (counting 0 on both), each share as (count + 1)/(resamples + 1)."""
    import numpy as np

    below = int(np.count_nonzero(estimates <= 0))
    above = int(np.count_nonzero(estimates >= 0))
    return min(1.0, 2 * (min(below, above) + 1) / (len(estimates) + 1))
