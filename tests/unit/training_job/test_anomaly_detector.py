"""The fleet's anomaly detector: deviation from the median of the previous readings."""

from __future__ import annotations

import numpy as np
import pytest

from evpm.explain import importance
from evpm.features import FeatureSpec, compute
from evpm.models import AnomalyDetector, ModelBundle, ModelSpec


def _inputs(values: np.ndarray, units: np.ndarray, lags: int) -> np.ndarray:
    spec = FeatureSpec(signals=("a", "b"), windows=tuple(range(2, lags + 2)), stats=("mean",))
    return compute(values, units, spec)


def test_deviations_recover_the_previous_readings() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 2))
    x = _inputs(values, np.zeros(50), 3)
    dev = AnomalyDetector.deviations(x, 3)
    expected = values[10:] - np.median(
        np.stack([values[9:-1], values[8:-2], values[7:-3]], axis=2), axis=2
    )
    np.testing.assert_allclose(dev[10:], expected, atol=1e-9)


def test_a_spike_scores_high_and_does_not_echo_into_the_next_hours() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    base = np.cumsum(rng.normal(size=n)) * 0.1
    values = np.column_stack([base + rng.normal(0, 0.2, n), 2 * base + rng.normal(0, 0.2, n)])
    units = np.repeat(np.arange(4), n // 4)
    x = _inputs(values, units, 3)
    detector = AnomalyDetector.fit(x, variance=0.99, lags=3)
    spiked = values.copy()
    spiked[500, 0] += 8.0
    score = detector.score(_inputs(spiked, units, 3))
    normal = np.delete(score, [500])
    assert score[500] > 10 * np.quantile(normal, 0.999)
    assert score[501:504].max() < np.quantile(normal, 0.999) * 3  # no echo after the spike
    # contributions line up with the input columns and add up to the score exactly
    contrib = detector.contributions(x[:100])
    assert contrib.shape == x[:100].shape
    np.testing.assert_array_equal(contrib.sum(axis=1), detector.score(x[:100]))
    # JSON round trip keeps every number and the lags
    again = AnomalyDetector.from_json(detector.to_json())
    assert again.lags == 3
    np.testing.assert_array_equal(again.score(x), detector.score(x))


def test_detectors_without_lags_read_old_json() -> None:
    x = np.random.default_rng(2).normal(size=(300, 4))
    old = AnomalyDetector.fit(x)
    text = old.to_json()
    assert "lags" not in text
    np.testing.assert_array_equal(AnomalyDetector.from_json(text).score(x), old.score(x))


def test_independent_signals_still_leave_a_residual_to_score() -> None:
    """Independent signals reach 90 % of the variance only with every component; a detector
    that kept them all explained every row: scores and importance were rounding noise (an
    importance that summed to 0 failed the API test once numpy's rounding changed)."""
    rng = np.random.default_rng(4)
    n = 2000
    values = rng.normal(size=(n, 2))
    units = np.repeat(np.arange(4), n // 4)
    x = _inputs(values, units, 3)
    detector = AnomalyDetector.fit(x, lags=3)
    assert detector.components.shape == (1, 2)
    assert np.median(detector.score(x[10:])) > 0.05  # of the order of a unit deviation
    bundle = ModelBundle(
        ModelSpec(
            name="ev-anomaly",
            task="anomaly",
            unit_column="vehicle_id",
            time_column="timestamp",
            features=FeatureSpec(signals=("a", "b"), windows=(2, 3, 4), stats=("mean",)),
            used_features=("a", "b", "a__mean2", "b__mean2", "a__mean3", "b__mean3",
                           "a__mean4", "b__mean4"),
            raw_inputs=("a", "b"),
        ),
        detector,
    )
    shares = importance("ev-anomaly", bundle)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert min(shares.values()) >= 0.0 and shares["a"] > 0 and shares["b"] > 0
