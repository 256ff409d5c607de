"""evpm.labels (feedback → stored label) and evpm.pagination (opaque cursors)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from evpm.labels import Feedback, Label, to_item
from evpm.pagination import InvalidCursorError, decode_cursor, encode_cursor

RECEIVED = datetime(2024, 5, 3, 9, 30, tzinfo=UTC)


def test_feedback_normalises_the_reading_time_like_telemetry():
    fb = Feedback(vehicle_id="EV-0042", ts="2024-05-01T14:00:00+02:00", failure_mode="brake_wear")
    label = Label.of(fb, received_at=RECEIVED, reported_by="key-1")
    assert label.ts == "2024-05-01T12:00:00.000000Z"
    assert label.received_at == "2024-05-03T09:30:00.000000Z"


def test_feedback_must_observe_something():
    with pytest.raises(ValidationError, match="failure_mode, rul_hours or both"):
        Feedback(vehicle_id="EV-1", ts="2024-05-01T12:00:00Z", notes="looked fine?")


@pytest.mark.parametrize(
    "bad",
    [
        {"rul_hours": -1},
        {"rul_hours": float("nan")},
        {"failure_mode": "exploded"},
        {"vehicle_id": "EV#1"},
        {"ts": "1900-01-01T00:00:00Z"},
        {"unexpected": 1},
    ],
)
def test_bad_feedback_is_refused(bad):
    body = {"vehicle_id": "EV-1", "ts": "2024-05-01T12:00:00Z", "failure_mode": "none", **bad}
    with pytest.raises(ValidationError):
        Feedback.model_validate(body)


def test_label_item_keys_like_the_prediction_and_omits_what_was_not_observed():
    fb = Feedback(vehicle_id="EV-1", ts="2024-05-01T12:00:00Z", rul_hours=36)
    item = to_item(Label.of(fb, received_at=RECEIVED, reported_by="key-1"))
    assert item == {
        "vehicle_id": "EV-1",
        "ts": "2024-05-01T12:00:00.000000Z",
        "rul_hours": Decimal("36.0"),
        "received_at": "2024-05-03T09:30:00.000000Z",
        "reported_by": "key-1",
    }


def test_cursor_round_trips_and_is_bound_to_its_vehicle():
    token = encode_cursor("EV-1", "2024-05-01T12:00:00.000000Z")
    assert "EV-1" not in token  # opaque
    assert decode_cursor(token, vehicle_id="EV-1") == "2024-05-01T12:00:00.000000Z"
    with pytest.raises(InvalidCursorError, match="another query"):
        decode_cursor(token, vehicle_id="EV-2")


@pytest.mark.parametrize("garbage", ["", "!!!", "e30", "bm90IGpzb24", "x" * 600])
def test_garbage_cursor_is_refused(garbage):
    with pytest.raises(InvalidCursorError):
        decode_cursor(garbage, vehicle_id="EV-1")
