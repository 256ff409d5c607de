"""Rolling features use only the past of the same unit, and a short history reproduces them."""

from __future__ import annotations

import numpy as np
import pytest

from evpm.features import ETA_NEVER, FeatureSpec, compute

SPEC = FeatureSpec(
    signals=("a", "b"),
    windows=(3, 5),
    stats=("mean", "std", "slope", "min", "max", "delta"),
    ewm_spans=(2,),
)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 2)), np.repeat([0, 1], 20)


def test_future_rows_do_not_change_past_features() -> None:
    values, units = _data()
    base = compute(values, units, SPEC)
    changed = values.copy()
    changed[10:20] += 100.0  # the future of unit 0 and nothing else
    after = compute(changed, units, SPEC)
    assert np.array_equal(base[:10], after[:10])
    assert np.array_equal(base[20:], after[20:])  # another unit is untouched


def test_history_of_max_window_reproduces_bit_for_bit() -> None:
    values, units = _data()
    full = compute(values, units, SPEC)
    start = 25 - SPEC.max_window + 1  # unit 1 starts at row 20
    tail = compute(values[start:], units[start:], SPEC)
    assert np.array_equal(tail[25 - start :], full[25:])


def test_known_values_on_a_ramp() -> None:
    spec = FeatureSpec(signals=("x",), windows=(4,), stats=("mean", "slope"))
    out = compute(np.arange(6.0)[:, None] * 2, np.zeros(6), spec)
    names = spec.names()
    assert out[5, names.index("x__mean4")] == 7.0
    assert out[5, names.index("x__slope4")] == 2.0
    assert out[0, names.index("x__slope4")] == 0.0


DERIVED = FeatureSpec(
    signals=("wear", "temp", "air"),
    windows=(3, 6),
    stats=("mean", "std", "slope"),
    differences=(("temp", "air"),),
    projections=(("wear", 90.0), ("temp-air", 14.0, "above")),
)


def test_a_difference_is_windowed_like_a_signal() -> None:
    values = np.column_stack([np.zeros(8), np.arange(8.0) + 20.0, np.full(8, 20.0)])
    out = compute(values, np.zeros(8), DERIVED)
    names = DERIVED.names()
    assert DERIVED.series == ("wear", "temp", "air", "temp-air")
    assert out[7, names.index("temp-air")] == 7.0
    assert out[7, names.index("temp-air__mean3")] == 6.0
    assert out[7, names.index("temp-air__slope6")] == 1.0


def test_projection_is_hours_until_the_trend_reaches_the_threshold() -> None:
    wear = 50.0 + 2.0 * np.arange(10.0)  # 68 at the last row, rising 2 per hour
    values = np.column_stack([wear, np.full(10, 30.0), np.full(10, 20.0)])
    out = compute(values, np.zeros(10), DERIVED)
    names = DERIVED.names()
    eta = out[:, names.index("wear__eta6")]
    assert eta[9] == (90.0 - 68.0) / 2.0
    assert eta[1] == (90.0 - 52.0) / 2.0  # a short history projects from what it has
    assert eta[0] == ETA_NEVER  # no trend yet
    # a flat gap (temp - air = 10, never reaching 14) and a falling trend never arrive
    assert np.all(out[:, names.index("temp-air__eta6")] == ETA_NEVER)
    falling = compute(values[::-1].copy(), np.zeros(10), DERIVED)
    assert np.all(falling[1:, names.index("wear__eta6")] == ETA_NEVER)


def test_a_projection_with_a_failed_side_reads_zero_once_the_trend_is_there() -> None:
    # GIVEN wear that passed 90 and keeps rising, then wear past 90 falling back (a noisy
    # trend), and a pack gap already above its 14 degC limit
    spec = FeatureSpec(
        signals=("wear", "temp", "air"),
        windows=(6,),
        stats=("mean", "slope"),
        differences=(("temp", "air"),),
        projections=(("wear", 90.0, "above"), ("temp-air", 14.0, "above")),
    )
    legacy = spec.model_copy(update={"projections": (("wear", 90.0), ("temp-air", 14.0))})
    rising = 85.0 + 2.0 * np.arange(10.0)  # 103 at the last row
    hot = np.column_stack([rising, np.full(10, 40.0), np.full(10, 20.0)])
    falling = 120.0 - 2.0 * np.arange(10.0)  # 102 at the last row, still past 90
    cooling = np.column_stack([falling, np.full(10, 40.0), np.full(10, 20.0)])
    names = spec.names()
    # WHEN projected with the side THEN crossed is 0, whichever way the trend points
    for values in (hot, cooling):
        out = compute(values, np.zeros(10), spec)
        assert out[9, names.index("wear__eta6")] == 0.0
        assert np.all(out[:, names.index("temp-air__eta6")] == 0.0)
    # AND without a side (models trained before sides) a trend past it reads never, as then
    old = compute(hot, np.zeros(10), legacy)
    assert old[9, names.index("wear__eta6")] == ETA_NEVER
    # AND a trend short of the limit still projects the same with or without the side
    early = compute(hot, np.zeros(10), spec)[2, names.index("wear__eta6")]
    assert early == compute(hot, np.zeros(10), legacy)[2, names.index("wear__eta6")] > 0
    # AND the side survives the JSON a model stores its spec in
    assert FeatureSpec.model_validate_json(spec.model_dump_json()) == spec


def test_derived_features_of_chosen_rows_equal_the_full_table_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(60, 3)).cumsum(axis=0)
    units = np.repeat([0, 1, 2], 20)
    full = compute(values, units, DERIVED)
    rows = np.array([0, 5, 19, 20, 33, 59])
    assert np.array_equal(compute(values, units, DERIVED, rows=rows), full[rows])
    many = np.arange(60)  # more rows than the few-rows path takes
    assert np.array_equal(compute(values, units, DERIVED, rows=many), full)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"differences": (("temp", "nope"),)}, "needs two distinct signals"),
        ({"differences": (("temp", "temp"),)}, "needs two distinct signals"),
        ({"projections": (("nope", 1.0),)}, "no such signal or difference"),
        ({"stats": ("mean",), "projections": (("wear", 1.0),)}, "mean and slope"),
    ],
)
def test_derived_features_must_name_what_exists(update: dict, message: str) -> None:
    fields = {"signals": ("wear", "temp", "air"), "windows": (3,), **update}
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**fields)


@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        DERIVED,
        FeatureSpec(signals=("wear", "temp", "air"), windows=(2, 3, 4), stats=("mean",)),
        FeatureSpec(
            signals=("wear", "temp"), passthrough=("air",), windows=(3,), stats=("delta", "std")
        ),
    ],
)
@pytest.mark.parametrize("count", [1, 3, 16, 17, 50])
def test_chosen_rows_equal_the_full_table_bit_for_bit(spec: FeatureSpec, count: int) -> None:
    """Few rows take every window at once from prefix sums, more rows go lag by lag: both
    equal the full table, gaps (NaN) and the first rows of a unit included."""
    rng = np.random.default_rng(count)
    values = rng.normal(size=(90, len(spec.inputs))).cumsum(axis=0) * 10.0
    values[rng.random(values.shape) < 0.03] = np.nan
    units = np.repeat([0, 1, 2], 30)
    full = compute(values, units, spec)
    rows = np.sort(rng.choice(90, count, replace=False))
    got = compute(values, units, spec, rows=rows)
    assert np.array_equal(got, full[rows], equal_nan=True)


def test_chosen_rows_in_several_chunks_equal_the_full_table(monkeypatch) -> None:
    from evpm import features

    monkeypatch.setattr(features, "_ROW_CHUNK", 7)
    rng = np.random.default_rng(5)
    values = rng.normal(size=(60, 3)).cumsum(axis=0)
    units = np.repeat([0, 1, 2], 20)
    full = compute(values, units, DERIVED)
    for rows in (np.arange(60), np.array([2, 3, 30, 31, 59]), np.arange(0, 60, 2)):
        assert np.array_equal(compute(values, units, DERIVED, rows=rows), full[rows])
