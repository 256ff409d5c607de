"""Serving the pinned models: history-aware features equal training's, pins reload safely."""

from __future__ import annotations

import numpy as np
import pytest

from evpm.serving import History, PinnedModels, ServedModels, score_models
from evpm.telemetry import FEATURES
from tests.unit.serving_models import SIGNALS, bundles, readings

COLS = [FEATURES.index(s) for s in SIGNALS]


@pytest.fixture(scope="module")
def served() -> ServedModels:
    return ServedModels(
        versions={"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}, bundles=bundles()
    )


def _reference(
    served: ServedModels, ids: list[str], times: np.ndarray, values: np.ndarray
) -> dict[str, np.ndarray]:
    """What each bundle predicts on the whole series at once (the training-time path)."""
    units = np.unique(ids, return_inverse=True)[1]
    out = {}
    for name, bundle in served.bundles.items():
        pred = bundle.predict(values[:, COLS], units, times)
        out[name] = pred.proba if pred.proba is not None else pred.value
    return out


def test_streamed_batches_with_history_equal_whole_series_bit_for_bit(served: ServedModels) -> None:
    ids, times, values = readings()
    reference = _reference(served, ids, times, values)
    history = History(served.depth)
    rng = np.random.default_rng(1)
    order = np.argsort(times, kind="stable")  # the stream delivers in time order, vehicles mixed
    got = {"ev-anomaly": [], "ev-classifier": [], "ev-rul": []}
    index = []
    for chunk in np.array_split(order, 9):
        chunk = rng.permutation(chunk)  # within a batch, any order
        out = score_models(served, [ids[i] for i in chunk], times[chunk], values[chunk], history)
        got["ev-anomaly"].append(out.anomaly_score)
        got["ev-classifier"].append(out.failure_proba)
        got["ev-rul"].append(out.rul_hours)
        index.append(chunk)
    idx = np.concatenate(index)
    for name, parts in got.items():
        assert np.array_equal(np.concatenate(parts), reference[name][idx]), name


def test_redelivered_batch_scores_the_same(served: ServedModels) -> None:
    ids, times, values = readings(vehicles=2, hours=40)
    history = History(served.depth)
    first = score_models(served, ids[:30], times[:30], values[:30], history)
    score_models(served, ids[30:40], times[30:40], values[30:40], history)
    again = score_models(served, ids[:30], times[:30], values[:30], history)
    # The first 30 rows are vehicle 0's hours 0-29; held rows at or after them are ignored.
    assert np.array_equal(first.rul_hours, again.rul_hours)
    assert np.array_equal(first.failure_proba, again.failure_proba)


def test_outputs_are_sane_and_named(served: ServedModels) -> None:
    ids, times, values = readings(vehicles=3, hours=5)
    out = score_models(served, ids, times, values)
    assert out.classes == ("none", "thermal_risk", "tire_leak")
    assert np.allclose(out.failure_proba.sum(axis=1), 1.0)
    assert set(out.failure_mode) <= set(out.classes)
    assert (out.rul_hours >= 0).all() and (out.rul_hours <= 500).all()
    assert out.is_anomaly.dtype == bool
    assert served.version_labels() == {"ev-anomaly": "1", "ev-classifier": "1", "ev-rul": "1"}


def test_history_is_bounded_in_depth_and_vehicles() -> None:
    history = History(3, max_vehicles=2)
    for v in range(3):
        history.remember([f"V{v}"] * 5, np.arange(5.0), np.arange(5.0)[:, None] * np.ones((1, 24)))
    assert len(history) == 2  # the least recently seen vehicle went
    matrix, _units, targets, _ = history.assemble(["V2"], np.array([10.0]), np.zeros((1, 24)))
    assert matrix.shape[0] == 3 and list(matrix[:2, 0]) == [3.0, 4.0] and list(targets) == [2]


def test_no_models_means_no_outputs() -> None:
    out = score_models(ServedModels(), ["EV-1"], np.array([0.0]), np.zeros((1, 24)))
    assert out.rul_hours is None and out.anomaly_score is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pins_are_rechecked_after_ttl_and_only_changed_versions_load(served: ServedModels) -> None:
    pins = {"ev-rul": 1, "ev-classifier": 1}
    loads: list[tuple[str, int]] = []

    def load(name: str, version: int):
        loads.append((name, version))
        return served.bundles[name]

    clock = _Clock()
    pinned = PinnedModels(lambda: dict(pins), load, ttl=10, clock=clock)
    assert pinned.current().versions == {"ev-rul": 1, "ev-classifier": 1}
    pins["ev-rul"] = 2
    clock.now = 9.9
    assert pinned.current().versions["ev-rul"] == 1  # within the TTL nothing is re-read
    clock.now = 10.0
    assert pinned.current().versions["ev-rul"] == 2
    assert sorted(loads) == [("ev-classifier", 1), ("ev-rul", 1), ("ev-rul", 2)]


def test_a_failed_load_keeps_serving_the_old_versions(served: ServedModels) -> None:
    pins = {"ev-rul": 1}

    def load(name: str, version: int):
        if version == 2:
            raise OSError("artifact missing")
        return served.bundles[name]

    clock = _Clock()
    pinned = PinnedModels(lambda: dict(pins), load, ttl=1, clock=clock)
    first = pinned.current()
    pins["ev-rul"] = 2
    clock.now = 5
    assert pinned.current() is first
    assert pinned.last_error == "OSError: artifact missing"
    pins["ev-rul"] = 1
    clock.now = 10
    assert pinned.current() is first and pinned.last_error is None


def test_unreadable_pins_keep_serving(served: ServedModels) -> None:
    state = {"fail": False}

    def read():
        if state["fail"]:
            raise RuntimeError("SSM throttled")
        return {"ev-rul": 1}

    clock = _Clock()
    pinned = PinnedModels(read, lambda n, v: served.bundles[n], ttl=1, clock=clock)
    assert pinned.current().versions == {"ev-rul": 1}
    state["fail"] = True
    clock.now = 2
    assert pinned.current().versions == {"ev-rul": 1}
    assert "SSM throttled" in (pinned.last_error or "")


@pytest.mark.parametrize("count", [1, 7, 16, 17, 300, 700])
def test_features_of_chosen_rows_equal_the_full_computation_bit_for_bit(count: int) -> None:
    from evpm.features import FeatureSpec, compute

    rng = np.random.default_rng(count)
    values = rng.normal(size=(3000, 5)) * 100
    units = np.repeat(np.arange(30), 100)
    specs = [
        FeatureSpec(
            signals=tuple("abcde"),
            windows=(6, 24, 72, 168),
            stats=("mean", "std", "slope", "min", "max", "delta"),
            ewm_spans=(12, 40),
        ),
        FeatureSpec(
            signals=tuple("abcd"),
            passthrough=("e",),
            windows=(3,),
            stats=("delta", "std"),
            include_raw=False,
        ),
    ]
    for spec in specs:
        rows = np.sort(rng.choice(3000, count, replace=False))
        assert np.array_equal(
            compute(values, units, spec)[rows], compute(values, units, spec, rows)
        )
