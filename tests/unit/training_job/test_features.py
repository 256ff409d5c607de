"""Rolling features use only the past of the same unit, and a short history reproduces them."""

from __future__ import annotations

import numpy as np

from evpm.features import FeatureSpec, compute

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
