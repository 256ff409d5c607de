"""Serving the pinned models: history-aware features equal training's, pins reload safely."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evpm.features import FeatureSpec, compute
from evpm.serving import (
    History,
    PinnedModels,
    ServedModels,
    _worth_merging,
    merged_spec,
    score_models,
)
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


def _collect(got: dict[str, list[np.ndarray]], out: Any) -> None:
    """Append one call's outputs to ``got``, keyed like :func:`_reference`."""
    got["ev-anomaly"].append(out.anomaly_score)
    got["ev-classifier"].append(out.failure_proba)
    got["ev-rul"].append(out.rul_hours)


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
        _collect(got, out)
        index.append(chunk)
    idx = np.concatenate(index)
    for name, parts in got.items():
        assert np.array_equal(np.concatenate(parts), reference[name][idx]), name


def test_one_reading_at_a_time_equals_whole_series_bit_for_bit(served: ServedModels) -> None:
    # GIVEN a stream scored one reading per call (a single vehicle's request: the one-vehicle
    # assembly and the boosters' single-row path)
    ids, times, values = readings(vehicles=3, hours=30)
    reference = _reference(served, ids, times, values)
    history = History(served.depth)
    order = np.argsort(times, kind="stable")
    got: dict[str, list[np.ndarray]] = {"ev-anomaly": [], "ev-classifier": [], "ev-rul": []}
    for i in order:
        out = score_models(served, [ids[i]], times[i : i + 1], values[i : i + 1], history)
        _collect(got, out)
    # THEN the boosters' outputs are the whole-series computation's, bit for bit; the
    # detector's matrix products may round differently for one row than for many (BLAS takes
    # another kernel), as they always have: equal to the last digits
    for name in ("ev-classifier", "ev-rul"):
        assert np.array_equal(np.concatenate(got[name]), reference[name][order]), name
    np.testing.assert_allclose(
        np.concatenate(got["ev-anomaly"]), reference["ev-anomaly"][order], rtol=1e-12, atol=1e-25
    )


def test_models_share_feature_computations(served: ServedModels) -> None:
    # GIVEN the detector's means over 2-4 readings and the boosters' shared spec
    # THEN a request computes them in one pass (a second call costs more than the columns)
    (plan,) = served.feature_plan
    assert served.plan_for(16) is served.feature_plan
    # AND a batch keeps the detector's own: merged, it would add spreads and slopes nobody
    # asked for, which cost more than a second pass over 4 lags
    assert served.plan_for(17) is served.batch_plan
    assert [sorted(name for name, _ in p.users) for p in served.batch_plan] == [
        ["ev-anomaly"],
        ["ev-classifier", "ev-rul"],
    ]
    for plan in (*served.feature_plan, *served.batch_plan):
        assert plan.columns is not None  # four signals of the 24
        names = plan.spec.names()
        for name, picked in plan.users:
            own = served.bundles[name].spec.features.names()
            assert ([names[i] for i in picked] if picked is not None else names) == own
    same = FeatureSpec(signals=("a", "b"), windows=(3, 6), stats=("mean", "std"))
    longer = FeatureSpec(signals=("a", "b"), windows=(6, 24), stats=("mean", "std"))
    assert _worth_merging([same, longer]) and not _worth_merging([MERGEABLE[0], MERGEABLE[1]])


MERGEABLE = [
    FeatureSpec(signals=("a", "b", "c"), windows=(2, 3, 4), stats=("mean",)),
    FeatureSpec(
        signals=("a", "b", "c"),
        windows=(3, 6, 12),
        stats=("mean", "std", "slope", "min", "max", "delta"),
        differences=(("a", "c"),),
        projections=(("a", 1.0), ("a-c", 2.0)),
    ),
    FeatureSpec(
        signals=("a", "b", "c"), windows=(5, 12), stats=("slope", "mean"), projections=(("b", 3.0),)
    ),
    FeatureSpec(signals=("a", "b", "c"), windows=(12,), stats=("std",), differences=(("b", "a"),)),
]


@pytest.mark.parametrize("rows", [None, [5, 29, 30, 59], list(range(0, 60, 2))])
def test_a_merged_spec_computes_each_specs_features_bit_for_bit(rows: list[int] | None) -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=(60, 3)).cumsum(axis=0)
    values[rng.random(values.shape) < 0.03] = np.nan
    units = np.repeat([0, 1], 30)
    merged = merged_spec(MERGEABLE)
    assert merged is not None
    idx = None if rows is None else np.asarray(rows)
    together = compute(values, units, merged, rows=idx)
    position = {name: i for i, name in enumerate(merged.names())}
    for spec in MERGEABLE:
        alone = compute(values, units, spec, rows=idx)
        cols = [position[name] for name in spec.names()]
        assert np.array_equal(together[:, cols], alone, equal_nan=True), spec


def test_specs_that_cannot_share_a_computation_keep_their_own() -> None:
    base = MERGEABLE[1]
    longer = FeatureSpec(signals=base.signals, windows=(24,), stats=("mean",))
    assert merged_spec([base, longer]) is None  # base's projections are at its window 12
    assert merged_spec([longer, MERGEABLE[0]]) is not None
    ewm = FeatureSpec(signals=base.signals, windows=(3,), ewm_spans=(4,))
    assert merged_spec([ewm, ewm]) is ewm


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


def _held(history: History, vid: str) -> tuple[list[float], list[float]]:
    held = history.held(vid)
    assert held is not None
    times, values = held
    return times.tolist(), values[:, 0].tolist()


def _rows(*pairs: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    times = np.array([t for t, _ in pairs])
    return times, np.array([v for _, v in pairs])[:, None] * np.ones((1, 24))


@pytest.mark.parametrize(
    ("batches", "times", "firsts"),
    [
        # in order, one at a time (the stream's usual case): appended, oldest dropped
        ([[(1, 1)], [(2, 2)], [(3, 3)], [(4, 4)]], [2, 3, 4], [2, 3, 4]),
        # the same reading again, newer value: replaced in place, nothing else moves
        ([[(1, 1), (2, 2), (3, 3)], [(2, 9)]], [1, 2, 3], [1, 9, 3]),
        # a late reading between held ones: merged into time order
        ([[(1, 1), (3, 3)], [(2, 2)]], [1, 2, 3], [1, 2, 3]),
        # one time twice in a batch: the later copy wins, from the first batch on
        ([[(1, 1), (2, 2), (2, 5)]], [1, 2], [1, 5]),
        ([[(1, 1)], [(2, 2), (2, 5), (3, 3)]], [1, 2, 3], [1, 5, 3]),
        # a batch longer than the depth keeps its newest readings
        ([[(1, 1)], [(5, 5), (6, 6), (7, 7), (8, 8)]], [6, 7, 8], [6, 7, 8]),
    ],
)
def test_history_keeps_the_newest_distinct_times_in_order(
    batches: list[list[tuple[float, float]]], times: list[float], firsts: list[float]
) -> None:
    history = History(3)
    for batch in batches:
        t, v = _rows(*batch)
        history.remember(["V"] * len(t), t, v)
    assert _held(history, "V") == (times, firsts)


def test_one_vehicle_and_many_vehicles_assemble_the_same_rows() -> None:
    history = History(4)
    for vid in ("A", "B"):
        t, v = _rows(*[(float(h), 10.0 * h + (vid == "B")) for h in range(6)])
        history.remember([vid] * len(t), t, v)
    t, v = _rows((7.0, 70.0), (4.0, 40.0))  # B's reading is older than some it holds
    both, units, targets, order = history.assemble(["A", "B"], t, v)
    alone = [history.assemble([vid], t[i : i + 1], v[i : i + 1]) for i, vid in enumerate("AB")]
    # A: its last three held readings, then the new one; B: only what it held before t=4
    assert list(order) == [0, 1] and list(units) == [0] * 4 + [1] * 3
    assert both[:, 0].tolist() == [30.0, 40.0, 50.0, 70.0, 21.0, 31.0, 40.0]
    assert list(targets) == [3, 6]
    for k, (matrix, unit, target, _) in enumerate(alone):
        assert np.array_equal(matrix, both[units == k]) and not unit.any()
        assert list(target) == [[3], [2]][k]


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


def test_one_reading_per_vehicle_batches_equal_whole_series_bit_for_bit(
    served: ServedModels,
) -> None:
    # GIVEN a fleet whose vehicles join at different hours, streamed as the scorer sees it:
    # each batch one reading of each of several vehicles (the rings' gathered windows)
    ids, times, values = readings(vehicles=24, hours=30, seed=3)
    keep = np.ones(len(ids), dtype=bool)
    for v in range(24):
        keep[v * 30 : v * 30 + v % 7] = False  # vehicle v starts v % 7 hours late
    ids = [i for i, k in zip(ids, keep, strict=True) if k]
    times, values = times[keep], values[keep]
    reference = _reference(served, ids, times, values)
    history = History(served.depth, max_vehicles=100)
    rng = np.random.default_rng(4)
    got: dict[str, list[np.ndarray]] = {"ev-anomaly": [], "ev-classifier": [], "ev-rul": []}
    index = []
    for hour in np.unique(times):
        batch = rng.permutation(np.flatnonzero(times == hour))
        out = score_models(served, [ids[i] for i in batch], times[batch], values[batch], history)
        if hour == times[5]:  # the same batch delivered again scores the same
            again = score_models(
                served, [ids[i] for i in batch], times[batch], values[batch], history
            )
            assert np.array_equal(again.rul_hours, out.rul_hours)
        got["ev-anomaly"].append(out.anomaly_score)
        got["ev-classifier"].append(out.failure_proba)
        got["ev-rul"].append(out.rul_hours)
        index.append(batch)
    idx = np.concatenate(index)
    # THEN every model's output is the whole-series computation's, bit for bit
    for name, parts in got.items():
        assert np.array_equal(np.concatenate(parts), reference[name][idx]), name


def test_a_late_reading_is_scored_on_the_readings_before_it(served: ServedModels) -> None:
    ids, times, values = readings(vehicles=20, hours=20, seed=5)
    history = History(served.depth + 8)  # deep enough to hold the late reading's past
    late = [v * 20 + 12 for v in range(20)]  # hour 12 of every vehicle arrives after hour 19
    early = [i for i in range(len(ids)) if i not in late]
    score_models(served, [ids[i] for i in early], times[early], values[early], history)
    out = score_models(served, [ids[i] for i in late], times[late], values[late], history)
    reference = _reference(
        served, [ids[i] for i in range(len(ids)) if i % 20 <= 12], *_upto(times, values)
    )
    rows = [v * 13 + 12 for v in range(20)]
    assert np.array_equal(out.rul_hours, reference["ev-rul"][rows])
    assert np.array_equal(out.failure_proba, reference["ev-classifier"][rows])
    # AND afterwards the vehicle holds its readings in time order, the late one in place
    held = history.held(ids[0])
    assert held is not None and held[0].tolist() == times[:20].tolist()


def _upto(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.arange(len(times)) % 20 <= 12
    return times[keep], values[keep]


def test_window_gives_the_rows_assemble_gives() -> None:
    # GIVEN held readings (A more than the depth keeps, B two, C every other hour)
    history = History(5)
    history.derive([(0, 1)])
    for vid, hours in (("A", range(8)), ("B", range(2)), ("C", [0, 2, 4, 6])):
        t, v = _rows(*[(float(h), 10.0 * h + ord(vid)) for h in hours])
        history.remember([vid] * len(t), t, v + np.arange(24))
    # WHEN a batch brings a reading newer than all held, one between two held, a redelivered
    # one and one of a new vehicle
    ids, t, v = ["A", "C", "B", "D"], np.array([8.0, 3.0, 1.0, 0.0]), np.arange(96.0).reshape(4, 24)
    lags = history.window(ids, t, v, 5)
    assert lags is not None
    stack, pos = lags.stack(5), lags.pos
    assert all(np.array_equal(lags.lag(j), stack[j]) for j in range(5))  # one lag at a time
    matrix, units, targets, order = history.assemble(ids, t, v)
    # THEN each reading's lags are its assembled rows, newest first, with their difference
    for k, i in enumerate(order.tolist()):
        first = int(np.flatnonzero(units == units[targets[k]])[0])
        mine = matrix[first : targets[k] + 1][::-1]
        assert pos[i] == len(mine) - 1
        assert np.array_equal(stack[: len(mine), i, :24], mine)
        assert np.array_equal(stack[: len(mine), i, 24], mine[:, 0] - mine[:, 1])
        assert not stack[len(mine) :, i].any()
    assert pos.tolist() == [4, 2, 1, 0]
    for i, vid in enumerate(ids):  # AND one reading alone (a request's scalar steps) alike
        alone = history.window([vid], t[i : i + 1], v[i : i + 1], 5)
        assert alone is not None and alone.pos[0] == pos[i]
        assert np.array_equal(alone.stack(5)[:, 0], stack[:, i])
        assert all(np.array_equal(alone.lag(j)[0], stack[j, i]) for j in range(5))
    assert history.window(["A", "A"], t[:2], v[:2], 5) is None  # two of one vehicle: assemble


def test_derive_resize_and_eviction_keep_the_held_readings() -> None:
    history = History(3, max_vehicles=3)
    for v in range(4):
        t, x = _rows(*[(float(h), 100.0 * v + h) for h in range(4)])
        history.remember([f"V{v}"] * 4, t, x)
    assert len(history) == 3 and history.held("V0") is None  # V0 went, its slot reused
    assert _held(history, "V3") == ([1.0, 2.0, 3.0], [301.0, 302.0, 303.0])
    history.derive([(0, 1), (2, 0)])
    lags = history.window(["V3"], np.array([9.0]), np.ones((1, 24)), 3)
    assert lags is not None
    stack = lags.stack(3)
    assert stack.shape == (3, 1, 26) and stack[1, 0, 24] == 0.0 and stack[1, 0, 25] == 0.0
    history.resize(5)
    history.remember(["V3", "V1"], np.array([4.0, 4.0]), np.full((2, 24), 7.0))
    assert _held(history, "V3") == ([1.0, 2.0, 3.0, 4.0], [301.0, 302.0, 303.0, 7.0])
    history.resize(2)
    assert _held(history, "V1") == ([3.0, 4.0], [103.0, 7.0])
    lags = history.window(["V1", "V9"], np.array([5.0, 5.0]), np.ones((2, 24)), 2)
    assert lags is not None
    stack, pos = lags.stack(2), lags.pos
    assert list(pos) == [1, 0] and stack[1, 0, 0] == 7.0 and not stack[1, 1].any()
    assert np.array_equal(lags.lag(1), stack[1])


@pytest.mark.parametrize("count", [1, 7, 17, 300])
def test_features_of_stacked_windows_equal_the_full_computation_bit_for_bit(count: int) -> None:
    from evpm.features import compute_lagged, compute_stacked

    rng = np.random.default_rng(count)
    values = rng.normal(size=(3000, 5)) * 100
    values[rng.random(values.shape) < 0.001] = -0.0
    units = np.repeat(np.arange(30), 100)
    specs = [
        FeatureSpec(
            signals=tuple("abcd"),
            windows=(6, 24, 72),
            stats=("mean", "std", "slope", "min", "max", "delta"),
            ewm_spans=(12,),
            differences=(("a", "c"), ("d", "b")),
            projections=(("a", 50.0), ("d-b", 0.0)),
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
        x = values[:, :4]
        series = np.hstack(
            [x] + [x[:, [ord(a) - 97]] - x[:, [ord(b) - 97]] for a, b in spec.differences]
        )
        pos = rows % 100
        lags = np.arange(spec.max_window + 2)[:, None]
        window = series[np.maximum(rows[None, :] - lags, 0)]
        window[lags > pos[None, :]] = 0.0
        got = compute_stacked(window, pos, spec, values[rows, 4:] if spec.passthrough else None)
        whole = compute(values[:, : len(spec.inputs)], units, spec)
        assert np.array_equal(whole[rows], got), spec
        buffer = np.empty_like(window[0])  # AND read one lag at a time into one array

        def lag_at(j: int, window: np.ndarray = window, buffer: np.ndarray = buffer) -> np.ndarray:
            buffer[:] = window[j]
            return buffer

        extra = values[rows, 4:] if spec.passthrough else None
        assert np.array_equal(whole[rows], compute_lagged(lag_at, pos, spec, extra)), spec


def test_remembering_a_batch_equals_remembering_each_reading_alone() -> None:
    # appended, the newest again, an older one again with a new value, a late one between
    # two held, one older than everything a full ring holds (dropped), a new vehicle
    steps = [(1.0, 1.0), (2.0, 2.0), (4.0, 4.0), (4.0, 44.0), (2.0, 22.0), (3.0, 3.0)]
    steps += [(5.0, 5.0), (0.5, 0.5), (6.0, 6.0)]
    alone, together = History(4), History(4)
    for k, (t, x) in enumerate(steps):
        for vid in ("V", "W"):
            alone.remember([vid], np.array([t + (vid == "W")]), np.full((1, 24), x))
        extra = ["N"] if k == 3 else []
        ids = ["W", "V", *extra]
        times = np.array([t + 1.0, t] + [0.0] * len(extra))
        together.remember(ids, times, np.full((len(ids), 24), x))
        for vid in ("V", "W"):
            assert _held(alone, vid) == _held(together, vid), (k, vid)
    assert _held(together, "V") == ([3.0, 4.0, 5.0, 6.0], [3.0, 44.0, 5.0, 6.0])
    assert _held(together, "N") == ([0.0], [44.0])


def test_the_rings_grow_in_place_unless_a_window_is_being_read() -> None:
    # A container near its vehicle bound must not hold old and new rings at once.
    history = History(4)
    for v in range(16):
        history.remember([f"V{v}"], np.array([1.0]), np.full((1, 24), float(v)))
    rings = id(history._values)  # (a reference, even a weak one, would itself prevent it)
    history.remember(["V16"], np.array([1.0]), np.full((1, 24), 16.0))
    assert id(history._values) == rings and len(history._values) == 32  # enlarged in place
    for v in range(17, 32):
        history.remember([f"V{v}"], np.array([1.0]), np.full((1, 24), float(v)))
    lags = history.window(["V3"], np.array([2.0]), np.zeros((1, 24)), 2)
    many = history.window([f"V{v}" for v in range(20)], np.full(20, 2.0), np.zeros((20, 24)), 2)
    rings = id(history._values)  # a copy is made while the old rings exist: another id
    history.remember(["V32"], np.array([1.0]), np.full((1, 24), 32.0))  # grows: copies
    assert id(history._values) != rings
    assert lags is not None and many is not None and many.lag(1)[:, 0].tolist() == list(range(20))
    assert [_held(history, f"V{v}")[1] for v in (0, 16, 31, 32)] == [[0.0], [16.0], [31.0], [32.0]]
