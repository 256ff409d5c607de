"""The simulator is reproducible, in range, and its labels follow its mechanisms."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evpm.telemetry import FEATURES, SENSOR_RANGES
from training_job.simulator import FAILURE_MODES, FleetConfig, simulate_fleet, write_parquet


def test_same_seed_same_fleet_and_other_seed_differs(small_fleet: pd.DataFrame) -> None:
    # GIVEN the session fleet WHEN simulated again with its seed THEN identical
    again = simulate_fleet(FleetConfig(vehicles=12, hours=400, seed=3, anomaly_rate=0.02))
    pd.testing.assert_frame_equal(small_fleet, again)
    other = simulate_fleet(FleetConfig(vehicles=12, hours=400, seed=4, anomaly_rate=0.02))
    assert not np.array_equal(other["SoC"].to_numpy(), small_fleet["SoC"].to_numpy())


def test_columns_ranges_and_order(small_fleet: pd.DataFrame) -> None:
    expected = ["vehicle_id", "timestamp", *FEATURES]
    expected += ["failure_mode", "rul_hours", "is_anomaly", "anomaly_kind"]
    assert list(small_fleet.columns) == expected
    assert len(small_fleet) == 12 * 400
    for name in FEATURES:
        rng = SENSOR_RANGES[name]
        assert small_fleet[name].between(rng.low, rng.high).all(), name
    assert small_fleet.groupby("vehicle_id", observed=True)[
        "timestamp"
    ].is_monotonic_increasing.all()


def test_labels_follow_crossings(small_fleet: pd.DataFrame) -> None:
    assert set(small_fleet["failure_mode"].astype(str)) <= set(FAILURE_MODES)
    rul = small_fleet["rul_hours"]
    assert rul.between(0, 720).all()
    # Within a vehicle, RUL counts down by one hour per row until a crossing (RUL 0).
    one = small_fleet[small_fleet["vehicle_id"] == small_fleet["vehicle_id"].iloc[0]]
    steps = np.diff(one["rul_hours"].to_numpy())
    assert np.all((steps == -1) | (steps >= 0))
    # A row labelled with a failure mode has its crossing within the horizon.
    assert (rul[small_fleet["failure_mode"] != "none"] <= 336).all()
    assert small_fleet["is_anomaly"].mean() > 0
    assert (small_fleet["is_anomaly"] == (small_fleet["anomaly_kind"] != "none")).all()


def test_write_parquet_to_s3_uses_given_client(small_fleet: pd.DataFrame) -> None:
    class FakeS3:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, int]] = []

        def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:
            self.calls.append((Bucket, Key, len(Body)))

    fake = FakeS3()
    write_parquet(small_fleet.head(10), "s3://raw-telemetry/fleet/x.parquet", s3_client=fake)
    assert fake.calls[0][:2] == ("raw-telemetry", "fleet/x.parquet")


def test_scenario_knobs_change_what_they_name_and_nothing_else() -> None:
    base = FleetConfig(vehicles=20, hours=300, seed=9)
    plain = simulate_fleet(base)
    # A hidden failure mechanism changes the outcomes, never a reading.
    hidden = simulate_fleet(FleetConfig(**{**_fields(base), "hidden_failure_rate": 0.005}))
    pd.testing.assert_frame_equal(plain[list(FEATURES)], hidden[list(FEATURES)])
    assert (hidden["rul_hours"] <= plain["rul_hours"]).all()
    assert (hidden["failure_mode"] == "motor_overheating").sum() > (
        plain["failure_mode"] == "motor_overheating"
    ).sum()
    # A sensor bias moves that reading (clipped to range) and leaves the others alone.
    biased = simulate_fleet(
        FleetConfig(**{**_fields(base), "sensor_bias": (("Motor_Vibration", 0.5),)})
    )
    moved = biased["Motor_Vibration"] - plain["Motor_Vibration"]
    assert moved.between(0.0, 0.5 + 1e-9).all() and moved.mean() > 0.45
    others = [f for f in FEATURES if f != "Motor_Vibration"]
    pd.testing.assert_frame_equal(plain[others], biased[others])
    # A hotter climate warms the air; older packs read a lower state of health.
    hot = simulate_fleet(FleetConfig(**{**_fields(base), "climate_offset_c": 8.0}))
    assert hot["Ambient_Temperature"].mean() - plain["Ambient_Temperature"].mean() > 6
    old = simulate_fleet(FleetConfig(**{**_fields(base), "pack_age_fade": 0.06}))
    assert old["SoH"].head(20).mean() < plain["SoH"].head(20).mean()


def _fields(config: FleetConfig) -> dict:
    return {name: getattr(config, name) for name in FleetConfig.__dataclass_fields__}


def test_scenario_knobs_are_validated() -> None:
    import pytest

    with pytest.raises(ValueError, match="sensor_bias names unknown signals"):
        FleetConfig(sensor_bias=(("Nope", 1.0),))
    with pytest.raises(ValueError, match="hidden_failure_mode"):
        FleetConfig(hidden_failure_rate=0.01, hidden_failure_mode="none")
    with pytest.raises(ValueError, match="pack_age_fade"):
        FleetConfig(pack_age_fade=0.5)
