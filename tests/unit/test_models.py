"""Model bundles: the fast paths a request takes give the registered model's numbers exactly."""

from __future__ import annotations

import numpy as np
import pytest

from evpm.models import _ROW_BY_ROW, AnomalyDetector, ModelBundle, _median_last, rul_hours
from tests.unit.serving_models import bundles


@pytest.fixture(scope="module")
def loaded() -> dict[str, ModelBundle]:
    return bundles()


def _rows(bundle: ModelBundle, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, size=(count, len(bundle.spec.used_features)))
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


@pytest.mark.parametrize("name", ["ev-classifier", "ev-rul"])
@pytest.mark.parametrize("count", [1, 2, _ROW_BY_ROW, _ROW_BY_ROW + 1, 300])
def test_few_rows_take_the_single_row_path_and_equal_the_booster(
    loaded: dict[str, ModelBundle], name: str, count: int
) -> None:
    bundle = loaded[name]
    assert bundle._rows is not None  # the fast path is set up when the bundle is loaded
    x = _rows(bundle, count)
    got = bundle.predict_matrix(x)
    raw = bundle.model.predict(x, num_threads=1)
    if name == "ev-rul":
        assert np.array_equal(got.value, np.clip(raw, 0.0, bundle.spec.rul_cap))
    else:
        assert np.array_equal(got.proba, raw)
        assert np.array_equal(got.value, raw.argmax(axis=1))


def test_without_the_fast_path_the_booster_answers_the_same(
    loaded: dict[str, ModelBundle], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = loaded["ev-classifier"]
    x = _rows(bundle, 3)
    fast = bundle.predict_matrix(x)
    monkeypatch.setattr(bundle, "_rows", None)  # e.g. a lightgbm without the private C API
    assert np.array_equal(bundle.predict_matrix(x).proba, fast.proba)


def test_the_anomaly_detector_has_no_booster_path(loaded: dict[str, ModelBundle]) -> None:
    assert loaded["ev-anomaly"]._rows is None


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf, as numpy's
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8])
def test_median_of_the_last_axis_equals_numpy_bit_for_bit(count: int) -> None:
    rng = np.random.default_rng(count)
    a = rng.normal(size=(4000, 6, count)) * rng.choice([1e-9, 1.0, 1e9], size=(4000, 6, count))
    a[rng.random(a.shape) < 0.02] = np.nan
    a[rng.random(a.shape) < 0.05] = 0.0
    a[rng.random(a.shape) < 0.01] = np.inf
    a[rng.random(a.shape) < 0.01] = -np.inf
    assert np.array_equal(_median_last(a), np.median(a, axis=-1), equal_nan=True)


@pytest.mark.parametrize("lags", [1, 2, 3, 5])
def test_deviations_equal_the_lag_by_lag_formula_bit_for_bit(lags: int) -> None:
    # GIVEN readings and their means over 2..L+1 readings, as the detector's input holds them
    rng = np.random.default_rng(lags)
    d = 6
    x = rng.normal(size=(3000, (lags + 1) * d)) * rng.choice([1e-3, 1.0, 1e4], size=(lags + 1) * d)
    x[rng.random(x.shape) < 0.02] = np.nan
    # WHEN the past readings are rebuilt one lag at a time, as first written
    means = [x[:, i * d : (i + 1) * d] for i in range(lags + 1)]
    past = [w * means[w - 1] - (w - 1) * means[w - 2] for w in range(2, lags + 2)]
    expected = means[0] - np.median(np.stack(past, axis=2), axis=2)
    # THEN all lags at once give the same numbers
    assert np.array_equal(AnomalyDetector.deviations(x, lags), expected, equal_nan=True)
    assert AnomalyDetector.deviations(x, 0) is x  # no lags: the input as it is


def test_rul_hours_are_never_negative_with_or_without_a_cap() -> None:
    raw = np.array([-3.5, 0.0, 12.0, 900.0])
    assert rul_hours(raw, 720.0).tolist() == [0.0, 0.0, 12.0, 720.0]
    assert rul_hours(raw, None).tolist() == [0.0, 0.0, 12.0, 900.0]  # uncapped: only the floor
