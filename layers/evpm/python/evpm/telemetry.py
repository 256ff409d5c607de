"""One telemetry reading from one vehicle, validated at the edge of the system.

Every reading enters evpm through :class:`TelemetryRecord` (the stream scorer and the HTTP API
both use it), so a value that is physically impossible is refused once, with a reason that
names the field, its range and its unit, instead of flowing into a score.

The 24 sensor fields keep the column names of the original prototype data set, so training
data, the stream and the API share one feature vocabulary. Ranges are deliberately generous:
they reject broken sensors and unit mistakes, not unusual but real vehicles (buses, trucks,
800 V platforms, hot climates). Thresholds that judge *health* live in :mod:`evpm.health`.

=====================  ===========  =================  ===========================================
field                  unit         accepted range     meaning
=====================  ===========  =================  ===========================================
SoC                    %            0 .. 100           state of charge
SoH                    %            0 .. 100           state of health (capacity vs. new)
Battery_Voltage        V            0 .. 1000          pack voltage
Battery_Current        A            -1000 .. 1000      pack current (negative = charging / regen)
Battery_Temperature    °C           -40 .. 150         pack temperature
Charge_Cycles          cycles       0 .. 100000        equivalent full charge cycles
Motor_Temperature      °C           -40 .. 200         motor winding temperature
Motor_Vibration        mm/s         0 .. 100           vibration velocity RMS (ISO 10816)
Motor_Torque           N·m          -5000 .. 5000      motor torque (negative = regen)
Motor_RPM              rpm          -30000 .. 30000    motor speed (negative = reverse)
Power_Consumption      kW           -1000 .. 1000      traction power (negative = regen)
Brake_Pad_Wear         %            0 .. 100           share of pad thickness worn away
Brake_Pressure         bar          0 .. 300           hydraulic brake pressure
Reg_Brake_Efficiency   %            0 .. 100           energy recovered by regenerative braking
Tire_Pressure          psi          0 .. 150           tyre pressure
Tire_Temperature       °C           -40 .. 150         tyre temperature
Suspension_Load        kg           0 .. 20000         load on the suspension (per corner)
Ambient_Temperature    °C           -60 .. 70          outside air temperature
Ambient_Humidity       %            0 .. 100           relative humidity
Load_Weight            kg           0 .. 60000         payload
Driving_Speed          km/h         0 .. 300           vehicle speed
Distance_Traveled      km           0 .. 10000000      odometer
Idle_Time              min          0 .. 10000000      accumulated idle time
Route_Roughness        m/km         0 .. 50            road roughness (IRI)
=====================  ===========  =================  ===========================================

``timestamp`` is normalised to UTC (a reading without an offset is taken to be UTC) and
serialised fixed-width as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` so that string order is time order:
it is the sort key of stored predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_serializer,
    field_validator,
)
from pydantic_core import PydanticCustomError, SchemaValidator, ValidationError, core_schema

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaValue

__all__ = [
    "FEATURES",
    "SENSOR_RANGES",
    "TIMESTAMP_FORMAT",
    "VEHICLE_ID_PATTERN",
    "SensorRange",
    "TelemetryRecord",
    "format_timestamp",
    "read_json",
    "to_matrix",
]

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
VEHICLE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SensorRange:
    """Physical bounds of one sensor; used as ``Annotated`` metadata on a float field.

    Carrying the bounds and the unit as one object lets the check, the error message and the
    OpenAPI schema all say the same thing.
    """

    low: float
    high: float
    unit: str

    def check(self, value: float) -> float:
        """Refuse non-finite and out-of-range values with a message that gives the range."""
        if not math.isfinite(value):
            raise PydanticCustomError(
                "not_finite", "must be a finite number (got {value})", {"value": repr(value)}
            )
        if not self.low <= value <= self.high:
            raise PydanticCustomError(
                "out_of_range",
                "must be between {low} and {high} {unit} (got {value})",
                {"low": self.low, "high": self.high, "unit": self.unit, "value": value},
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Strict: a JSON number (int or float) is a reading; ``true`` or ``"50"`` is a bug.
        return core_schema.no_info_after_validator_function(
            self.check, core_schema.float_schema(strict=True)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minimum=self.low, maximum=self.high, unit=self.unit)
        return json_schema


def _as_utc(value: datetime) -> datetime:
    """A reading's time in UTC (one without an offset is taken to be UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in_utc(value: datetime) -> datetime | None:
    """:func:`_as_utc`, or ``None`` outside the years a reading may have."""
    utc = _as_utc(value)
    return utc if _EARLIEST <= utc < _LATEST else None


def format_timestamp(value: datetime) -> str:
    """Render a UTC datetime fixed-width so that lexicographic order is time order.

    Example: ``format_timestamp(datetime(2024, 5, 1, tzinfo=UTC))`` gives
    ``"2024-05-01T00:00:00.000000Z"``.
    """
    v = value.astimezone(UTC)
    # TIMESTAMP_FORMAT spelled out: the same text as strftime (a test checks), at a fifth of
    # its cost; every prediction formats its reading's time.
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


EXAMPLE_RECORD: dict[str, Any] = {
    "vehicle_id": "EV-0042",
    "timestamp": "2024-05-01T12:00:00.000000Z",
    "SoC": 76.5,
    "SoH": 94.2,
    "Battery_Voltage": 398.0,
    "Battery_Current": 42.0,
    "Battery_Temperature": 31.5,
    "Charge_Cycles": 412.0,
    "Motor_Temperature": 62.0,
    "Motor_Vibration": 1.2,
    "Motor_Torque": 180.0,
    "Motor_RPM": 5200.0,
    "Power_Consumption": 18.4,
    "Brake_Pad_Wear": 22.0,
    "Brake_Pressure": 12.0,
    "Reg_Brake_Efficiency": 71.0,
    "Tire_Pressure": 35.0,
    "Tire_Temperature": 28.0,
    "Suspension_Load": 520.0,
    "Ambient_Temperature": 21.0,
    "Ambient_Humidity": 48.0,
    "Load_Weight": 180.0,
    "Driving_Speed": 64.0,
    "Distance_Traveled": 48210.0,
    "Idle_Time": 312.0,
    "Route_Roughness": 2.1,
}


class TelemetryRecord(BaseModel):
    """A validated reading; the only way sensor data reaches scoring.

    Example::

        record = TelemetryRecord.model_validate(payload)   # raises ValidationError if bad
        record.ts                                          # "2024-05-01T12:00:00.000000Z"
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        field_title_generator=lambda name, _info: name,
        json_schema_extra={"examples": [EXAMPLE_RECORD]},
    )

    vehicle_id: str = Field(
        min_length=1, max_length=64, pattern=VEHICLE_ID_PATTERN, examples=["EV-0042"]
    )
    timestamp: datetime = Field(
        description="time of the reading; normalised to UTC (no offset means UTC)",
        examples=["2024-05-01T12:00:00.000000Z"],
    )
    SoC: Annotated[float, SensorRange(0, 100, "%")]
    SoH: Annotated[float, SensorRange(0, 100, "%")]
    Battery_Voltage: Annotated[float, SensorRange(0, 1000, "V")]
    Battery_Current: Annotated[float, SensorRange(-1000, 1000, "A")]
    Battery_Temperature: Annotated[float, SensorRange(-40, 150, "°C")]
    Charge_Cycles: Annotated[float, SensorRange(0, 100_000, "cycles")]
    Motor_Temperature: Annotated[float, SensorRange(-40, 200, "°C")]
    Motor_Vibration: Annotated[float, SensorRange(0, 100, "mm/s")]
    Motor_Torque: Annotated[float, SensorRange(-5000, 5000, "N·m")]
    Motor_RPM: Annotated[float, SensorRange(-30_000, 30_000, "rpm")]
    Power_Consumption: Annotated[float, SensorRange(-1000, 1000, "kW")]
    Brake_Pad_Wear: Annotated[float, SensorRange(0, 100, "%")]
    Brake_Pressure: Annotated[float, SensorRange(0, 300, "bar")]
    Reg_Brake_Efficiency: Annotated[float, SensorRange(0, 100, "%")]
    Tire_Pressure: Annotated[float, SensorRange(0, 150, "psi")]
    Tire_Temperature: Annotated[float, SensorRange(-40, 150, "°C")]
    Suspension_Load: Annotated[float, SensorRange(0, 20_000, "kg")]
    Ambient_Temperature: Annotated[float, SensorRange(-60, 70, "°C")]
    Ambient_Humidity: Annotated[float, SensorRange(0, 100, "%")]
    Load_Weight: Annotated[float, SensorRange(0, 60_000, "kg")]
    Driving_Speed: Annotated[float, SensorRange(0, 300, "km/h")]
    Distance_Traveled: Annotated[float, SensorRange(0, 10_000_000, "km")]
    Idle_Time: Annotated[float, SensorRange(0, 10_000_000, "min")]
    Route_Roughness: Annotated[float, SensorRange(0, 50, "m/km")]

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        """Store UTC only, so two spellings of one instant give one key."""
        utc = _in_utc(value)
        if utc is None:
            raise PydanticCustomError(
                "timestamp_out_of_range",
                "must be between 1970-01-01 and 2100-01-01 UTC (got {value})",
                {"value": _as_utc(value).isoformat()},
            )
        return utc

    @field_serializer("timestamp", when_used="json")
    def _serialise_timestamp(self, value: datetime) -> str:
        return format_timestamp(value)

    @property
    def ts(self) -> str:
        """The normalised, sortable timestamp string (the predictions table's sort key)."""
        return format_timestamp(self.timestamp)


FEATURES: tuple[str, ...] = (
    "SoC",
    "SoH",
    "Battery_Voltage",
    "Battery_Current",
    "Battery_Temperature",
    "Charge_Cycles",
    "Motor_Temperature",
    "Motor_Vibration",
    "Motor_Torque",
    "Motor_RPM",
    "Power_Consumption",
    "Brake_Pad_Wear",
    "Brake_Pressure",
    "Reg_Brake_Efficiency",
    "Tire_Pressure",
    "Tire_Temperature",
    "Suspension_Load",
    "Ambient_Temperature",
    "Ambient_Humidity",
    "Load_Weight",
    "Driving_Speed",
    "Distance_Traveled",
    "Idle_Time",
    "Route_Roughness",
)
"""Canonical column order of the feature matrix shared by rules, training and serving."""


def _sensor_ranges() -> dict[str, SensorRange]:
    ranges = {
        name: next(m for m in field.metadata if isinstance(m, SensorRange))
        for name, field in TelemetryRecord.model_fields.items()
        if any(isinstance(m, SensorRange) for m in field.metadata)
    }
    if tuple(ranges) != FEATURES:  # the tuple and the model must not drift apart
        raise RuntimeError("FEATURES does not match the sensor fields of TelemetryRecord")
    return ranges


SENSOR_RANGES: dict[str, SensorRange] = _sensor_ranges()
"""Feature name → its accepted range and unit, read from the model (single source)."""


def to_matrix(records: Sequence[TelemetryRecord]) -> np.ndarray:
    """Stack records into an ``(n, 24)`` float64 matrix with columns in :data:`FEATURES` order.

    Example: ``to_matrix([record]).shape == (1, 24)``; an empty input gives shape ``(0, 24)``.
    """
    if not records:
        return np.empty((0, len(FEATURES)), dtype=np.float64)
    return np.array([_SENSORS(record) for record in records], dtype=np.float64)


_SENSORS = attrgetter(*FEATURES)
"""A record's sensor values as a tuple in :data:`FEATURES` order (one C call per record)."""


def _native_validator() -> SchemaValidator:
    """:class:`TelemetryRecord`'s own field schemas as a typed dict, each sensor's range
    checked inside pydantic-core (``ge``/``le``, no inf or NaN: what :meth:`SensorRange.check`
    checks) and the time left to :func:`_in_utc`; built from the model's schema so the two
    cannot drift apart in anything else (names, id pattern, time formats, extra keys)."""
    fields: dict[str, core_schema.TypedDictField] = {}
    for name, field in TelemetryRecord.__pydantic_core_schema__["schema"]["fields"].items():
        schema = field["schema"]
        if name in SENSOR_RANGES:
            bounds = SENSOR_RANGES[name]
            if schema["schema"] != core_schema.float_schema(strict=True):
                raise RuntimeError(f"{name}: unexpected schema {schema['schema']}")
            schema = core_schema.float_schema(
                strict=True, ge=float(bounds.low), le=float(bounds.high), allow_inf_nan=False
            )
        elif name == "timestamp":
            schema = schema["schema"]  # the datetime, without _to_utc (done after)
        fields[name] = core_schema.typed_dict_field(schema)
    if set(fields) != {"vehicle_id", "timestamp", *FEATURES}:
        raise RuntimeError("TelemetryRecord's fields changed: update read_json")
    return SchemaValidator(core_schema.typed_dict_schema(fields, extra_behavior="forbid"))


_NATIVE = _native_validator()
_VALUES = itemgetter(*FEATURES)


def read_json(data: bytes | str) -> tuple[str, datetime, tuple[float, ...]] | None:
    """A stream record's ``(vehicle_id, UTC time, sensor values in FEATURES order)`` if it is
    a valid :class:`TelemetryRecord`, else ``None`` (``TelemetryRecord`` then says why).

    The records and values :meth:`TelemetryRecord.model_validate_json` accepts and gives (a
    test compares them), at about half its cost: no model object is made, and the ranges are
    checked in pydantic-core instead of by a Python call per sensor. What the stream scorer
    reads of each of a batch's hundreds of records.
    """
    try:
        fields = _NATIVE.validate_json(data)
    except ValidationError:
        return None
    utc = _in_utc(fields["timestamp"])
    return None if utc is None else (fields["vehicle_id"], utc, _VALUES(fields))
