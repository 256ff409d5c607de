"""evpm.alerts: which predictions alert, the dedup key and window, collapsing inside a batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evpm.alerts import dedup_key, is_alerting, select_alerts, window_end
from evpm.ingest import AcceptedRecord
from evpm.predictions import Prediction

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def prediction(vehicle="EV-1", ts="2024-05-01T12:00:00.000000Z", status="ok", mode="none"):
    return Prediction(
        vehicle_id=vehicle,
        ts=ts,
        record_id="x" * 32,
        status=status,
        health_score={"ok": 100.0, "watch": 90.0, "critical": 70.0}[status],
        failure_mode=mode,
        findings=[],
        model_versions={"health": "rules-v1"},
        scored_at=NOW,
    )


@pytest.mark.parametrize(
    ("status", "mode", "alerts"),
    [
        ("ok", "none", False),
        ("watch", "none", False),
        ("watch", "brake_wear", True),
        ("critical", "none", True),  # e.g. a tyre finding: critical, but no failure mode
        ("critical", "thermal_risk", True),
    ],
)
def test_critical_or_a_failure_mode_alerts(status, mode, alerts):
    assert is_alerting(prediction(status=status, mode=mode)) is alerts


def test_dedup_key_and_window():
    assert dedup_key("EV-0042", "brake_wear") == "EV-0042#brake_wear"
    assert window_end(NOW, 3600) == int(NOW.timestamp()) + 3600
    with pytest.raises(ValueError, match="window_seconds"):
        window_end(NOW, 0)


def test_select_alerts_keeps_the_latest_reading_per_vehicle_and_mode():
    # GIVEN one batch: EV-1 brake wear twice, EV-1 thermal once, EV-2 fine
    accepted = [
        AcceptedRecord(
            "1", prediction(ts="2024-05-01T12:00:01.000000Z", mode="brake_wear", status="watch")
        ),
        AcceptedRecord(
            "2", prediction(ts="2024-05-01T12:00:02.000000Z", mode="brake_wear", status="critical")
        ),
        AcceptedRecord("3", prediction(mode="thermal_risk", status="critical")),
        AcceptedRecord("4", prediction(vehicle="EV-2")),
    ]
    # WHEN the alerts are selected
    pending = select_alerts(accepted)
    # THEN one per key, the latest reading for each, with the record to retry
    by_key = {p.alert.key: p for p in pending}
    assert set(by_key) == {"EV-1#brake_wear", "EV-1#thermal_risk"}
    assert by_key["EV-1#brake_wear"].sequence_number == "2"
    assert by_key["EV-1#brake_wear"].alert.status == "critical"
    detail = by_key["EV-1#thermal_risk"].alert.model_dump()
    assert detail == {
        "vehicle_id": "EV-1",
        "ts": "2024-05-01T12:00:00.000000Z",
        "failure_mode": "thermal_risk",
        "status": "critical",
        "health_score": 70.0,
        "model_versions": {"health": "rules-v1"},
    }
