"""A window is judged against the reference in its own hours; noise does not alarm, shifts do."""

from __future__ import annotations

import numpy as np
import pytest

from evpm.drift import Thresholds, build_profile, judge_window

RNG = np.random.default_rng(11)


def _fleet(n: int, *, shift: float = 0.0, mode_share: float = 0.1, seed: int = 0) -> dict:
    """A toy fleet whose temperature follows the hour of day (as a real one does)."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 24, n)
    temp = 15 + 8 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 3, n) + shift
    speed = np.where(
        rng.random(n) < 0.3 + 0.3 * ((hours > 6) & (hours < 20)), rng.uniform(10, 90, n), 0.0
    )
    mode = np.where(rng.random(n) < mode_share, "brake_wear", "none").astype(object)
    return {"hours": hours, "temp": temp, "speed": speed, "mode": mode}


ROLES = {"temp": "input", "speed": "input", "mode": "label"}


@pytest.fixture(scope="module")
def profile():
    ref = _fleet(200_000, seed=1)
    chunks = np.arange(ref["hours"].size) // 500
    return build_profile({k: ref[k] for k in ROLES}, ROLES, ref["hours"], chunks=chunks)


def _window(data: dict, hours: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    return {k: data[k] for k in ROLES}, data["hours"] if hours is None else hours


def test_unchanged_windows_do_not_alarm(profile) -> None:
    flagged = 0
    for seed in range(20):
        columns, hours = _window(_fleet(2_000, seed=100 + seed))
        flagged += judge_window(profile, columns, hours).status == "drift"
    assert flagged <= 1


def test_a_window_of_one_night_hour_is_compared_with_that_hour() -> None:
    # GIVEN a reference over all hours and a window holding only 03:00 readings (cold, parked)
    ref = _fleet(100_000, seed=2)
    profile = build_profile({k: ref[k] for k in ROLES}, ROLES, ref["hours"])
    night = _fleet(5_000, seed=3)
    keep = night["hours"] == 3
    columns = {k: night[k][keep] for k in ROLES}
    # WHEN judged THEN no drift, though 03:00 differs greatly from the pooled day
    report = judge_window(profile, columns, night["hours"][keep])
    assert report.status == "ok", report.drifted()
    # AND judged as if pooled (the same rows, but claiming to be spread over the day) it drifts
    spread = np.arange(int(keep.sum())) % 24
    assert judge_window(profile, columns, spread).status == "drift"


def test_a_shifted_input_drifts_and_names_itself(profile) -> None:
    columns, hours = _window(_fleet(2_000, shift=5.0, seed=5))
    report = judge_window(profile, columns, hours)
    assert report.status == "drift"
    assert report.drifted() == ["temp"]
    assert report.drifted("label") == []
    temp = next(c for c in report.columns if c.column == "temp")
    assert temp.psi >= temp.psi_limit and temp.p_adjusted < 0.01 and temp.test == "ks"


def test_a_changed_label_mix_is_label_drift(profile) -> None:
    columns, hours = _window(_fleet(2_000, mode_share=0.3, seed=6))
    report = judge_window(profile, columns, hours)
    assert report.drifted("label") == ["mode"] and report.drifted("input") == []


def test_a_small_window_has_no_verdict(profile) -> None:
    columns, hours = _window(_fleet(150, shift=20.0, seed=7))
    report = judge_window(profile, columns, hours, Thresholds(min_rows=200))
    assert report.status == "insufficient_data" and report.columns == []
    assert "150 rows" in report.skipped["*"]


def test_labels_are_judged_on_labelled_rows_only(profile) -> None:
    # GIVEN a window whose label column is mostly missing (outcomes not known yet)
    columns, hours = _window(_fleet(2_000, seed=8))
    columns["mode"] = columns["mode"].copy()
    columns["mode"][50:] = None
    report = judge_window(profile, columns, hours, Thresholds(min_labelled=100))
    # THEN the inputs are judged and the label column is skipped with its reason
    assert report.labelled == 50 and "mode" in report.skipped
    assert report.skipped["mode"] == "50 values < 100"
    assert {c.column for c in report.columns} == {"temp", "speed"}


def test_a_category_the_reference_never_saw_drifts(profile) -> None:
    columns, hours = _window(_fleet(2_000, seed=9))
    columns["mode"] = np.where(np.arange(2_000) % 4 == 0, "brand_new_mode", columns["mode"]).astype(
        object
    )
    assert "mode" in judge_window(profile, columns, hours).drifted()


def test_the_profile_survives_json_and_rejects_bad_input(profile) -> None:
    again = type(profile).model_validate_json(profile.model_dump_json(by_alias=True))
    columns, hours = _window(_fleet(2_000, shift=5.0, seed=5))
    assert judge_window(again, columns, hours) == judge_window(profile, columns, hours)
    with pytest.raises(ValueError, match="hours of the day"):
        build_profile({"temp": np.ones(3)}, {"temp": "input"}, np.array([0, 1, 24]))
    with pytest.raises(ValueError, match="has 2 rows"):
        build_profile({"temp": np.ones(2)}, {"temp": "input"}, np.array([0, 1, 2]))
