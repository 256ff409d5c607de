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
