"""Calibrated RUL intervals: residual quantiles per prediction group, applied by lookup."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evpm.intervals import LAST_EDGE, apply_interval, fit_interval


def _heteroscedastic(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prediction = rng.uniform(0, 700, n)
    return prediction, prediction + rng.normal(0, 1, n) * (10 + prediction / 10)


def test_interval_brackets_the_level_on_fresh_rows_and_widens_where_errors_grow() -> None:
    table = fit_interval(*_heteroscedastic(0), level=0.9)
    prediction, truth = _heteroscedastic(1)
    low, high = apply_interval(table, prediction)
    coverage = float(((truth >= low) & (truth <= high)).mean())
    assert 0.88 <= coverage <= 0.92
    widths = [hi - lo for _, lo, hi in table]
    assert widths == sorted(widths)  # larger predictions, larger errors, wider intervals
    assert table[-1][0] == LAST_EDGE
    assert json.loads(json.dumps(table)) == [list(row) for row in table]  # JSON-safe


def test_bounds_are_clipped_to_the_valid_range() -> None:
    table = ((100.0, -50.0, 30.0), (float("inf"), -80.0, 90.0))
    low, high = apply_interval(table, np.array([10.0, 100.0, 700.0]), low=0.0, high=720.0)
    assert low.tolist() == [0.0, 50.0, 620.0]
    assert high.tolist() == [40.0, 130.0, 720.0]


def test_few_rows_make_one_group_and_a_bad_level_is_refused() -> None:
    table = fit_interval(np.arange(60.0), np.arange(60.0) + 2.0)
    assert len(table) == 1 and table[0][1:] == (2.0, 2.0)
    assert fit_interval(np.zeros(0), np.zeros(0)) == ()
    with pytest.raises(ValueError, match="level"):
        fit_interval(np.zeros(3), np.zeros(3), level=1.0)
