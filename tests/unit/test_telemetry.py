"""TelemetryRecord: what is accepted, what is refused and why, and the feature matrix."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from evpm.telemetry import (
    FEATURES,
    SENSOR_RANGES,
    TIMESTAMP_FORMAT,
    TelemetryRecord,
    format_timestamp,
    to_matrix,
)


def _errors(payload: dict) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        TelemetryRecord.model_validate(payload)
    return info.value.errors()


def test_nominal_record_is_accepted(nominal):
    record = TelemetryRecord.model_validate(nominal)
    assert record.vehicle_id == "EV-0042"
    assert record.SoC == 76.5


def test_features_are_the_24_prototype_columns_in_model_order():
    assert len(FEATURES) == 24
    assert tuple(SENSOR_RANGES) == FEATURES
    assert FEATURES[0] == "SoC" and FEATURES[-1] == "Route_Roughness"


@pytest.mark.parametrize("feature", FEATURES)
def test_each_sensor_rejects_values_outside_its_range_with_the_range_in_the_reason(
    make_payload, feature
):
    # GIVEN a value just outside each end of the documented range
    bounds = SENSOR_RANGES[feature]
    for value in (bounds.low - 1, bounds.high + 1):
        # WHEN it is validated
        errors = _errors(make_payload(**{feature: value}))
        # THEN exactly that field is refused, and the reason gives range and unit
        assert [e["loc"] for e in errors] == [(feature,)]
        assert errors[0]["type"] == "out_of_range"
        assert f"between {bounds.low} and {bounds.high} {bounds.unit}" in errors[0]["msg"]
        assert f"(got {float(value)})" in errors[0]["msg"]


@pytest.mark.parametrize("feature", FEATURES)
def test_each_sensor_accepts_its_range_bounds(make_payload, feature):
    bounds = SENSOR_RANGES[feature]
    for value in (bounds.low, bounds.high):
        assert (
            getattr(TelemetryRecord.model_validate(make_payload(**{feature: value})), feature)
            == value
        )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(make_payload, value):
    errors = _errors(make_payload(Battery_Voltage=value))
    assert errors[0]["loc"] == ("Battery_Voltage",)
    assert errors[0]["type"] == "not_finite"


def test_nan_in_json_text_is_rejected(nominal):
    text = json.dumps(nominal).replace('"SoC": 76.5', '"SoC": NaN')
    with pytest.raises(ValidationError, match="finite"):
        TelemetryRecord.model_validate_json(text)


@pytest.mark.parametrize("value", ["50", True, None])
def test_sensor_values_must_be_numbers(make_payload, value):
    errors = _errors(make_payload(SoC=value))
    assert errors[0]["loc"] == ("SoC",)


def test_integers_are_accepted_as_floats(make_payload):
    assert TelemetryRecord.model_validate(make_payload(Charge_Cycles=412)).Charge_Cycles == 412.0


def test_extra_fields_are_forbidden(make_payload):
    errors = _errors(make_payload(Failure_Probability=0.9))
    assert errors[0]["loc"] == ("Failure_Probability",)
    assert errors[0]["type"] == "extra_forbidden"


def test_missing_field_is_named(nominal):
    del nominal["SoH"]
    assert [e["loc"] for e in _errors(nominal)] == [("SoH",)]


@pytest.mark.parametrize("vehicle_id", ["", "x" * 65, "EV 42", "../etc", "EV-42\n", "-lead"])
def test_unsafe_vehicle_ids_are_rejected(make_payload, vehicle_id):
    assert _errors(make_payload(vehicle_id=vehicle_id))[0]["loc"] == ("vehicle_id",)


@pytest.mark.parametrize("vehicle_id", ["EV-0042", "fleet.a:truck_7", "x" * 64])
def test_safe_vehicle_ids_are_accepted(make_payload, vehicle_id):
    assert (
        TelemetryRecord.model_validate(make_payload(vehicle_id=vehicle_id)).vehicle_id == vehicle_id
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00",  # no offset: taken as UTC
        "2024-05-01T07:00:00.000000-05:00",
    ],
)
def test_timestamps_normalise_to_one_fixed_width_utc_string(make_payload, timestamp):
    record = TelemetryRecord.model_validate(make_payload(timestamp=timestamp))
    assert record.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert record.ts == "2024-05-01T12:00:00.000000Z"
    assert json.loads(record.model_dump_json())["timestamp"] == record.ts


def test_timestamp_strings_sort_in_time_order(make_payload):
    stamps = ["2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00Z", "2024-04-30T23:59:59.999999-01:00"]
    records = [TelemetryRecord.model_validate(make_payload(timestamp=t)) for t in stamps]
    assert sorted(r.ts for r in records) == [
        r.ts for r in sorted(records, key=lambda r: r.timestamp)
    ]
    assert len({len(r.ts) for r in records}) == 1


def test_formatted_timestamps_are_what_strftime_gives():
    rng = np.random.default_rng(4)
    seconds = rng.integers(0, 130 * 365 * 86400, size=5000)
    micros = rng.integers(0, 1_000_000, size=5000)
    offsets = rng.integers(-14 * 60, 14 * 60, size=5000)
    for s, us, minutes in zip(seconds.tolist(), micros.tolist(), offsets.tolist(), strict=True):
        tz = timezone(timedelta(minutes=minutes))
        value = datetime.fromtimestamp(s, tz=UTC).replace(microsecond=us).astimezone(tz)
        assert format_timestamp(value) == value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def test_timestamp_outside_supported_years_is_rejected(make_payload):
    assert _errors(make_payload(timestamp="2150-01-01T00:00:00Z"))[0]["loc"] == ("timestamp",)


def test_to_matrix_has_features_in_canonical_order(make_payload):
    records = [
        TelemetryRecord.model_validate(make_payload(SoC=10.0)),
        TelemetryRecord.model_validate(make_payload(SoC=20.0, Route_Roughness=3.0)),
    ]
    matrix = to_matrix(records)
    assert matrix.shape == (2, 24) and matrix.dtype == np.float64
    assert matrix[:, FEATURES.index("SoC")].tolist() == [10.0, 20.0]
    assert matrix[1, -1] == 3.0


def test_to_matrix_of_nothing_is_empty():
    assert to_matrix([]).shape == (0, 24)


def test_json_schema_documents_ranges_and_has_an_example():
    schema = TelemetryRecord.model_json_schema()
    assert (
        schema["properties"]["Battery_Voltage"] | {"minimum": 0, "maximum": 1000}
        == schema["properties"]["Battery_Voltage"]
    )
    assert schema["properties"]["Battery_Voltage"]["unit"] == "V"
    TelemetryRecord.model_validate(schema["examples"][0])
