"""The statistics drift is judged by: PSI, a Kolmogorov-Smirnov distance, a G-test, Holm.

Why written here rather than taken from ``scipy.stats``: the monitor compares a window against
a *stored profile* (bin proportions and a cumulative distribution on a grid, see
:mod:`evpm.drift.profile`), not against the raw training rows, which scipy's two-sample tests
need; and importing ``scipy.stats`` costs a Lambda cold start about a second for four short
formulas. The p-values are the standard asymptotic ones (Kolmogorov's series, the
Wilson-Hilferty normal approximation of the chi-square tail), accurate to well under the
thresholds they are compared with; unit tests check them against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "PSI_FLOOR",
    "chi2_sf",
    "g_test",
    "holm",
    "ks_distance",
    "ks_pvalue",
    "psi",
]

PSI_FLOOR = 1e-4
"""Proportion an empty bin counts as, so PSI stays finite (the usual convention)."""


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of ``actual`` against ``expected`` bin proportions.

    ``sum((a - e) * ln(a / e))`` with both floored at :data:`PSI_FLOOR`. The usual reading:
    under 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one.

    Example: ``psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0``.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_distance(reference_cdf: np.ndarray, live_cdf: np.ndarray) -> float:
    """Largest gap between two cumulative distributions evaluated on the same grid.

    On a grid this is a lower bound of the two-sample statistic (exact at the grid points,
    and exact for point masses such as a speed of 0 when parked, which a quantile
    interpolation would smear).
    """
    return float(np.max(np.abs(np.asarray(reference_cdf) - np.asarray(live_cdf)), initial=0.0))


def ks_pvalue(distance: float, n_live: int, n_reference: int) -> float:
    """Asymptotic two-sample KS p-value: Kolmogorov's series at ``sqrt(n_eff) * D``.

    Example: ``ks_pvalue(0.0, 500, 10_000) == 1.0``.
    """
    if n_live <= 0 or n_reference <= 0 or distance <= 0:
        return 1.0
    n_eff = n_live * n_reference / (n_live + n_reference)
    lam = (math.sqrt(n_eff) + 0.12 + 0.11 / math.sqrt(n_eff)) * distance  # Stephens' correction
    if lam < 0.2:
        return 1.0
    k = np.arange(1, 101, dtype=np.float64)
    terms = 2.0 * np.where(k % 2 == 1, 1.0, -1.0) * np.exp(-2.0 * k * k * lam * lam)
    return float(min(1.0, max(0.0, terms.sum())))


def chi2_sf(statistic: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty: a cube root is normal)."""
    if dof <= 0:
        return 1.0
    if statistic <= 0:
        return 1.0
    z = ((statistic / dof) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * dof))) / math.sqrt(
        2.0 / (9.0 * dof)
    )
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def g_test(expected: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Goodness of fit of observed category ``counts`` to ``expected`` proportions.

    Returns ``(G, p)``. Categories the reference never saw get the :data:`PSI_FLOOR`
    proportion, so a brand-new category is a strong signal rather than a division by zero.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    if n <= 0:
        return 0.0, 1.0
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    e = e / e.sum() * n
    seen = counts > 0
    g = float(2.0 * np.sum(counts[seen] * np.log(counts[seen] / e[seen])))
    return g, chi2_sf(g, int(len(counts) - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values: the family-wise error stays under alpha across all
    the tests of a window (24 signals and more), without Bonferroni's loss of power.

    Example: ``holm([0.01, 0.04]) == [0.02, 0.04]``.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
