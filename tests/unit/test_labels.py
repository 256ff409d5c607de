"""evpm.labels (feedback → stored label) and evpm.pagination (opaque cursors)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from evpm.labels import Feedback, Label, report_of, to_update
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


def test_feedback_answers_a_prediction_unless_it_says_it_is_free_standing():
    fb = Feedback(vehicle_id="EV-1", ts="2024-05-01T12:00:00Z", rul_hours=36)
    assert fb.free_standing is False
    assert Label.of(fb, received_at=RECEIVED, reported_by="k").free_standing is False
    free = fb.model_copy(update={"free_standing": True})
    assert Label.of(free, received_at=RECEIVED, reported_by="k").free_standing is True


def test_report_omits_what_was_not_observed():
    fb = Feedback(vehicle_id="EV-1", ts="2024-05-01T12:00:00Z", rul_hours=36)
    assert report_of(Label.of(fb, received_at=RECEIVED, reported_by="key-1")) == {
        "received_at": "2024-05-03T09:30:00.000000Z",
        "reported_by": "key-1",
        "rul_hours": Decimal("36.0"),
    }


def test_update_keys_like_the_prediction_appends_the_report_and_removes_what_it_left_out():
    # GIVEN a report of a RUL alone
    fb = Feedback(vehicle_id="EV-1", ts="2024-05-01T12:00:00Z", rul_hours=36)
    label = Label.of(fb, received_at=RECEIVED, reported_by="key-1")
    update = to_update(label)
    report = report_of(label)
    # THEN it is keyed like the prediction of that reading
    assert update.key == {"vehicle_id": "EV-1", "ts": "2024-05-01T12:00:00.000000Z"}
    # AND its fields are set at the top level, it is appended to the reports (made if new),
    # AND the observations it left out are removed from the top level (the latest report's)
    assert update.expression == (
        "SET #a0 = :v0, #a1 = :v1, #a2 = :v2, #r = list_append(if_not_exists(#r, :empty), :new)"
        " REMOVE #x0, #x1, #x2"
    )
    assert update.names == {
        "#a0": "received_at", "#a1": "reported_by", "#a2": "rul_hours", "#r": "reports",
        "#x0": "failure_mode", "#x1": "notes", "#x2": "free_standing",
    }  # fmt: skip
    assert update.values == {
        ":v0": report["received_at"], ":v1": "key-1", ":v2": Decimal("36.0"),
        ":empty": [], ":new": [report],
    }  # fmt: skip


def test_a_report_observing_everything_removes_nothing():
    fb = Feedback(
        vehicle_id="EV-1",
        ts="2024-05-01T12:00:00Z",
        failure_mode="none",
        rul_hours=0,
        notes="fine",
        free_standing=True,
    )
    update = to_update(Label.of(fb, received_at=RECEIVED, reported_by="key-1"))
    assert "REMOVE" not in update.expression
    assert update.values[":new"][0]["rul_hours"] == Decimal("0.0")  # 0 h is an observation


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
