"""One monitor run: rows of the pinned version judged, ground truth joined, events named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evpm.drift import read_captures
from evpm.drift.monitor import monitor_window
from evpm.outcomes import Outcome
from training_job.simulator import FleetConfig, simulate_fleet

from .conftest import capture_objects

START, END = datetime(2024, 5, 1, 11, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC)


def _window(**knobs) -> object:
    fleet = simulate_fleet(FleetConfig(vehicles=300, hours=3, seed=41, **knobs))
    return fleet[fleet["timestamp"] == fleet["timestamp"].min()]


def test_an_unchanged_window_raises_nothing(rul_profile) -> None:
    captured = read_captures(capture_objects(_window(), {"ev-rul": "3"}))
    result = monitor_window(captured, [], {"ev-rul": (3, rul_profile)}, start=START, end=END)
    (verdict,) = result.verdicts
    assert verdict.rows == 300 and verdict.drift.status == "ok" and result.events == {}
    # no outcomes yet: the labels and live quality are skipped, not failed
    assert (
        "true_rul_hours" in verdict.drift.skipped and verdict.quality.status == "insufficient_data"
    )


def test_a_biased_sensor_is_drift_naming_the_signal_window_and_versions(rul_profile) -> None:
    window = _window(sensor_bias=(("Motor_Vibration", 0.5),))
    captured = read_captures(capture_objects(window, {"ev-rul": "3", "ev-classifier": "2"}))
    result = monitor_window(captured, [], {"ev-rul": (3, rul_profile)}, start=START, end=END)
    event = result.events["DriftDetected"]
    assert event["models"] == ["ev-rul"] and event["signals"]["ev-rul"][0] == "Motor_Vibration"
    assert event["versions"] == {"ev-rul": 3} and event["window"]["end"] == END.isoformat()
    assert event["psi"]["ev-rul"]["Motor_Vibration"] > 0.2
    assert "QualityDegraded" not in result.events


def test_rows_of_other_versions_are_left_out(rul_profile) -> None:
    old = capture_objects(_window(sensor_bias=(("Motor_Vibration", 0.5),)), {"ev-rul": "2"})
    new = capture_objects(_window(), {"ev-rul": "3"})
    result = monitor_window(
        read_captures(old + new), [], {"ev-rul": (3, rul_profile)}, start=START, end=END
    )
    (verdict,) = result.verdicts
    # the two windows share record ids (same fleet, same hour): the second copy is a duplicate
    assert result.duplicates == 300 and verdict.rows == 0 and verdict.other_rows == 300
    assert verdict.drift.status == "insufficient_data" and result.events == {}


def test_outcomes_that_grade_worse_than_the_baseline_degrade_quality(rul_profile) -> None:
    # GIVEN a window whose vehicles all failed 10 h after it, while the model said otherwise
    window = _window()
    at = window["timestamp"].iloc[0].to_pydatetime() + timedelta(hours=10)
    outcomes = [
        Outcome(vehicle_id=v, at=at, kind="failure", failure_mode="motor_overheating")
        for v in window["vehicle_id"].astype(str)
    ]
    captured = read_captures(capture_objects(window, {"ev-rul": "3"}))
    result = monitor_window(captured, outcomes, {"ev-rul": (3, rul_profile)}, start=START, end=END)
    event = result.events["QualityDegraded"]
    assert (
        "rul_mae" in event["problems"]["ev-rul"]
        and "true_failure_mode" in event["problems"]["ev-rul"]
    )
    assert event["quality"]["ev-rul"]["rul_mae"]["limit"] == 36.0
    assert event["quality"]["ev-rul"]["rul_mae"]["live"] > 36.0


def test_a_version_without_profile_is_reported_not_judged(rul_profile) -> None:
    captured = read_captures(capture_objects(_window(), {"ev-rul": "3"}))
    result = monitor_window(
        captured, [], {"ev-rul": (3, rul_profile), "ev-anomaly": (1, None)}, start=START, end=END
    )
    assert [v.model for v in result.verdicts] == ["ev-rul"]
    assert result.missing_profiles == {"ev-anomaly": "no drift profile logged with this version"}
    empty = monitor_window(
        read_captures([]), [], {"ev-rul": (3, rul_profile)}, start=START, end=END
    )
    assert (
        empty.rows == 0
        and empty.verdicts[0].drift.status == "insufficient_data"
        and empty.events == {}
    )
