"""evpm.ops_alerts: Alertmanager's webhook body, the occurrences it carries, the token check."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from evpm.ops_alerts import (
    AlertmanagerWebhook,
    bearer_token,
    from_item,
    message_of,
    ops_alerts_of,
    subject_of,
    to_item,
    token_matches,
)
from tests.unit.ops_alert_fakes import alert, notification, resolved

NOW = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def _occurrences(body: dict) -> list:
    return ops_alerts_of(AlertmanagerWebhook.model_validate(body), received_at=NOW)


def _locs(exc: ValidationError) -> set[tuple]:
    return {tuple(e["loc"]) for e in exc.errors()}


def test_a_firing_notification_becomes_one_occurrence_per_alert() -> None:
    # GIVEN Alertmanager's body with two alerts of one group
    other = alert(fingerprint="ffff000011112222", labels={"alertname": "EvpmStreamLag"})
    hook = AlertmanagerWebhook.model_validate(notification(alert(), other))
    # WHEN its occurrences are made, received now
    found = ops_alerts_of(hook, received_at=NOW, ttl_days=30)
    # THEN each alert is one, keyed by fingerprint and start, in fixed-width UTC
    first = found[0]
    assert [(a.fingerprint, a.alertname) for a in found] == [
        ("a1b2c3d4e5f60718", "EvpmApiLatencyHigh"),
        ("ffff000011112222", "EvpmStreamLag"),
    ]
    assert first.starts_at == "2024-05-01T12:00:00.123000Z"
    assert first.status == "firing" and first.ends_at is None  # 0001-01-01 means "no end"
    assert first.severity == "warning" and first.cloudwatch_alarm == "evpm-api-latency-p95"
    assert first.summary.startswith("API p95 latency")
    assert first.updated_at == "2024-05-01T12:05:00.000000Z"
    assert first.expires_at == int(NOW.timestamp()) + 30 * 86400
    assert first.group_key and first.receiver == "evpm-webhook"
    assert found[1].severity is None and found[1].cloudwatch_alarm is None


def test_a_resolved_alert_keeps_its_start_and_gets_its_end() -> None:
    hook = AlertmanagerWebhook.model_validate(notification(resolved()))
    [occurrence] = ops_alerts_of(hook, received_at=NOW)
    assert occurrence.status == "resolved"
    assert occurrence.starts_at == "2024-05-01T12:00:00.123000Z"
    assert occurrence.ends_at == "2024-05-01T12:20:00.000000Z"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"version": "3"}, ("version",)),
        ({"alerts": []}, ("alerts",)),
        ({"status": "pending"}, ("status",)),
        ({"alerts": [alert(status="silenced")]}, ("alerts", 0, "status")),
        ({"alerts": [alert(fingerprint="not a hash!")]}, ("alerts", 0, "fingerprint")),
        ({"alerts": [alert(labels={"severity": "warning"})]}, ("alerts", 0, "labels")),
        ({"alerts": [alert(startsAt="yesterday")]}, ("alerts", 0, "startsAt")),
        ({"alerts": [alert(startsAt="0001-01-01T00:00:00Z")]}, ("alerts", 0, "startsAt")),
        ({"alerts": [alert(annotations={"summary": "x" * 5000})]},
         ("alerts", 0, "annotations", "summary")),
    ],
)
def test_a_malformed_body_names_the_field(change, loc) -> None:
    body = {**notification(), **change}
    with pytest.raises(ValidationError) as caught:
        AlertmanagerWebhook.model_validate(body)
    assert loc in _locs(caught.value)


def test_missing_fields_are_named_with_alertmanagers_spelling() -> None:
    body = notification()
    del body["groupKey"]
    del body["alerts"][0]["startsAt"]
    with pytest.raises(ValidationError) as caught:
        AlertmanagerWebhook.model_validate(body)
    assert _locs(caught.value) == {("groupKey",), ("alerts", 0, "startsAt")}


def test_fields_evpm_does_not_keep_are_ignored() -> None:
    body = {**notification(), "somethingNew": 1}
    body["alerts"][0]["silencedBy"] = ["abc"]
    assert AlertmanagerWebhook.model_validate(body).alerts[0].fingerprint == "a1b2c3d4e5f60718"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
        ("abc", None),
    ],
)
def test_bearer_token_reads_only_the_bearer_scheme(header, token) -> None:
    assert bearer_token(header) == token


def test_token_matches_only_the_same_non_empty_token() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret", "s3cre")
    assert not token_matches("s3cret ", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("", "")  # a blank secret opens nothing
    assert not token_matches("é", "e")


def test_sns_subject_is_one_ascii_line_under_100_characters() -> None:
    long = alert(labels={"alertname": "Ü" + "X" * 200, "severity": "critical\nline"})
    [occurrence] = _occurrences(notification(long))
    subject = subject_of(occurrence)
    assert subject.startswith("[FIRING] ?XXX")
    assert len(subject) < 100 and subject.isascii() and "\n" not in subject


def test_message_says_what_since_when_and_the_cloudwatch_twin() -> None:
    [occurrence] = _occurrences(notification())
    text = message_of(occurrence)
    assert text.splitlines()[0] == "FIRING: EvpmApiLatencyHigh (severity warning)"
    assert "since 2024-05-01T12:00:00.123000Z" in text
    assert "CloudWatch alarm on AWS: evpm-api-latency-p95" in text
    assert "route=/predict" in text and "fingerprint a1b2c3d4e5f60718" in text


def test_item_round_trip_leaves_out_what_is_unset() -> None:
    [occurrence] = _occurrences(notification())
    item = to_item(occurrence)
    assert "ends_at" not in item and "description" not in item
    # numbers come back from DynamoDB as Decimal
    stored = {**item, "expires_at": Decimal(item["expires_at"]), "notifications": Decimal(3)}
    assert from_item(stored) == occurrence.model_copy(update={"notifications": 3})


def test_event_detail_is_json_ready_and_marks_repeats() -> None:
    [occurrence] = _occurrences(notification())
    detail = occurrence.event_detail(repeat=True)
    assert detail["repeat"] is True and "expires_at" not in detail
    assert detail["alertname"] == "EvpmApiLatencyHigh" and detail["status"] == "firing"
