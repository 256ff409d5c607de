"""The stationary load-test source: plausible telemetry, as fast as wanted, with poison records.

Each signal is drawn uniformly from a nominal band, independently of the others and of the
vehicle's past: cheap, any volume, every record a valid reading (so throughput, loss and
duplicate tests and ``bench/streaming.py`` count on it, ``evpm send --source load``). It is
*not* the fleet the models learnt (``training_job.simulator``; ``evpm send`` streams that by
default, :mod:`evpm_cli.fleet_stream`): to the models most of these readings are anomalies, so
rates measured on them say nothing about the models. Malformed records come in the kinds a
real ingestion path meets, so the dead-letter path is exercised too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

# (low, high) of the nominal operating band for each signal.
NOMINAL: dict[str, tuple[float, float]] = {
    "SoC": (20.0, 100.0),
    "SoH": (80.0, 100.0),
    "Battery_Voltage": (350.0, 400.0),
    "Battery_Current": (-150.0, 150.0),
    "Battery_Temperature": (18.0, 38.0),
    "Charge_Cycles": (0.0, 1500.0),
    "Motor_Temperature": (35.0, 80.0),
    "Motor_Vibration": (0.2, 1.5),
    "Motor_Torque": (20.0, 300.0),
    "Motor_RPM": (500.0, 9000.0),
    "Power_Consumption": (5.0, 60.0),
    "Brake_Pad_Wear": (5.0, 50.0),
    "Brake_Pressure": (5.0, 60.0),
    "Reg_Brake_Efficiency": (60.0, 90.0),
    "Tire_Pressure": (31.0, 35.0),
    "Tire_Temperature": (20.0, 45.0),
    "Suspension_Load": (300.0, 700.0),
    "Ambient_Temperature": (0.0, 30.0),
    "Ambient_Humidity": (20.0, 80.0),
    "Load_Weight": (50.0, 600.0),
    "Driving_Speed": (0.0, 110.0),
    "Distance_Traveled": (0.0, 300.0),
    "Idle_Time": (0.0, 60.0),
    "Route_Roughness": (0.0, 0.6),
}
MALFORMED_KINDS = ("not_json", "missing_field", "wrong_type", "out_of_range", "extra_field")


def _record(rng: random.Random, vehicle: str, ts: datetime) -> dict:
    record: dict = {"vehicle_id": vehicle, "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    for name, (low, high) in NOMINAL.items():
        record[name] = round(rng.uniform(low, high), 3)
    return record


def poison(record: dict, kind: str) -> bytes:
    """``record`` made invalid the way ``kind`` (one of :data:`MALFORMED_KINDS`) says."""
    if kind == "not_json":
        return b'{"vehicle_id": "' + record["vehicle_id"].encode() + b'", "SoC": 5'
    bad = dict(record)
    if kind == "missing_field":
        bad.pop("SoH")
    elif kind == "wrong_type":
        bad["Battery_Voltage"] = "high"
    elif kind == "out_of_range":
        bad["Battery_Temperature"] = 999.0
    elif kind == "extra_field":
        bad["Failure_Probability"] = 0.9
    return json.dumps(bad).encode()


def generate(count: int, *, vehicles: int = 50, malformed: int = 0, seed: int = 7,
             start: datetime | None = None, prefix: str = "EV") -> Iterator[tuple[str, bytes, bool]]:
    """Yield ``(partition_key, data, is_valid)``; malformed ones are spread evenly.

    Timestamps are unique per vehicle, so every valid record maps to one prediction.
    """
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    bad_at = {round(i * count / malformed) for i in range(malformed)} if malformed else set()
    kinds = 0
    for i in range(count):
        vehicle = f"{prefix}-{i % vehicles:05d}"
        record = _record(rng, vehicle, start + timedelta(seconds=i))
        if i in bad_at:
            kind = MALFORMED_KINDS[kinds % len(MALFORMED_KINDS)]
            kinds += 1
            yield vehicle, poison(record, kind), False
        else:
            yield vehicle, json.dumps(record).encode(), True


def read_file(path: str) -> Iterator[tuple[str, bytes, bool]]:
    """Replay a JSON-lines file (one telemetry record per line) as-is."""
    with open(path, "rb") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                key = str(json.loads(line).get("vehicle_id") or "unknown")
            except (ValueError, AttributeError):
                key = "unparseable"
            yield key, line, True
