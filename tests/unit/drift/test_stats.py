"""The drift statistics agree with scipy's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from evpm.drift.stats import chi2_sf, g_test, holm, ks_pvalue, psi


@pytest.mark.parametrize(
    "distance,n,m", [(0.05, 500, 100_000), (0.1, 200, 5_000), (0.03, 5_000, 1_000_000)]
)
def test_ks_pvalue_matches_the_asymptotic_distribution(distance: float, n: int, m: int) -> None:
    n_eff = n * m / (n + m)
    expected = sp.kstwobign.sf((np.sqrt(n_eff) + 0.12 + 0.11 / np.sqrt(n_eff)) * distance)
    assert ks_pvalue(distance, n, m) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_ks_pvalue_edges() -> None:
    assert ks_pvalue(0.0, 100, 100) == 1.0
    assert ks_pvalue(0.5, 0, 100) == 1.0
    assert ks_pvalue(1.0, 10_000, 10_000) < 1e-100


@pytest.mark.parametrize("x,dof", [(3.0, 1), (12.0, 6), (40.0, 6), (25.0, 23), (70.0, 30)])
def test_chi2_tail_within_wilson_hilferty_accuracy(x: float, dof: int) -> None:
    exact = sp.chi2.sf(x, dof)
    assert chi2_sf(x, dof) == pytest.approx(exact, rel=0.15, abs=2e-3)


def test_g_test_agrees_with_scipy_power_divergence() -> None:
    counts = np.array([120.0, 60.0, 20.0])
    expected = np.array([0.5, 0.3, 0.2])
    g, p = g_test(expected, counts)
    ref = sp.power_divergence(counts, expected * counts.sum(), lambda_="log-likelihood")
    assert g == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue, rel=0.15, abs=2e-3)


def test_g_test_a_category_never_seen_is_a_strong_signal() -> None:
    _, p = g_test(np.array([1.0, 0.0]), np.array([450.0, 50.0]))
    assert p < 1e-10


def test_psi_is_zero_for_equal_and_grows_with_the_shift() -> None:
    base = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(base, base) == 0.0
    small = psi(base, np.array([0.3, 0.25, 0.25, 0.2]))
    large = psi(base, np.array([0.6, 0.2, 0.1, 0.1]))
    assert 0 < small < 0.1 < large


def test_holm_matches_the_textbook_example() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
