"""chattasks.passk: the unbiased pass@k estimator of Chen et al. (2021)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from chattasks.passk import mean_pass_at_k, pass_at_k


def by_binomials(n: int, c: int, k: int) -> float:
    """The textbook form, exact for small numbers."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
        (10, 3, 1, 0.3),  # pass@1 is the fraction correct
        (5, 1, 2, 0.4),  # 1 - C(4,2)/C(5,2) = 1 - 6/10
        (10, 2, 3, 1 - 56 / 120),  # 1 - C(8,3)/C(10,3)
        (4, 2, 3, 1.0),  # any 3 of 4 include a correct one
        (20, 0, 10, 0.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "k"), [(10, 1), (10, 5), (30, 7), (100, 10), (200, 100)])
def test_pass_at_k_agrees_with_the_binomial_form(n, k):
    for c in range(n + 1):
        assert pass_at_k(n, c, k) == pytest.approx(by_binomials(n, c, k), abs=1e-9)


def test_pass_at_k_is_stable_for_large_n():
    n, c, k = 100_000, 3, 10  # C(n, k) alone is about 2.8e43
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9)


@pytest.mark.parametrize(
    ("n", "c", "k", "error"),
    [
        (5, 6, 1, ValueError),
        (5, 2, 0, ValueError),
        (5, 2, 6, ValueError),
        (-1, 0, 1, ValueError),
        (5.0, 1, 1, TypeError),
    ],
)
def test_impossible_counts_are_refused(n, c, k, error):
    with pytest.raises(error):
        pass_at_k(n, c, k)


def test_mean_pass_at_k_averages_over_problems_for_every_k():
    counts = [(5, 1), (5, 0), (5, 5)]
    result = mean_pass_at_k(counts, ks=[1, 2, 5])
    assert result[1] == pytest.approx((0.2 + 0 + 1) / 3)
    assert result[2] == pytest.approx((0.4 + 0 + 1) / 3)
    assert result[5] == pytest.approx((1 + 0 + 1) / 3)


def test_mean_pass_at_k_leaves_out_a_k_beyond_the_fewest_samples():
    assert set(mean_pass_at_k([(10, 2), (3, 1)], ks=[1, 3, 10])) == {1, 3}


def test_mean_pass_at_k_needs_problems():
    with pytest.raises(ValueError, match="at least one"):
        mean_pass_at_k([], ks=[1])
