"""Operational alerts from Alertmanager: the webhook body, how it is checked, and what is kept.

Why a second kind of alert beside :mod:`evpm.alerts`: those are about *vehicles* (a worn brake
seen by the scorer); these are about *the system* (the API is slow, the stream lags, a model
did not load), raised by Prometheus rules on the exporter's metrics and sent by Alertmanager
to ``POST /alerts/webhook``. Each alert in a notification, firing or resolved, becomes one
:class:`OpsAlert`: stored (one item per alert occurrence), put on the ``evpm-alerts`` bus as
an ``OpsAlert`` event and published to the people's SNS topic.

Alertmanager 0.25 cannot send custom headers, only ``Authorization``: the webhook is called
with ``Authorization: Bearer <token>``, and the token is compared in constant time
(:func:`token_matches`) with the one held in SSM (:data:`WEBHOOK_TOKEN_PARAMETER`).

An occurrence is keyed by Alertmanager's ``fingerprint`` (a hash of the alert's labels) and
its ``startsAt``: the same alert firing again after it resolved is a new occurrence, while a
repeated notification of a firing alert, and its resolution, update the same one.

Pure: no AWS and no HTTP here.

Example::

    hook = AlertmanagerWebhook.model_validate(body)      # 422 material if it fails
    [a.status for a in ops_alerts_of(hook, received_at=now)]   # ["firing"]
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from evpm.telemetry import format_timestamp

__all__ = [
    "DEFAULT_TTL_DAYS",
    "OPS_ALERT_DETAIL_TYPE",
    "OPS_ALERT_SOURCE",
    "PARTITION_KEY",
    "SORT_KEY",
    "STATUS_INDEX",
    "STATUS_INDEX_SORT_KEY",
    "WEBHOOK_TOKEN_PARAMETER",
    "AlertStatus",
    "AlertmanagerAlert",
    "AlertmanagerWebhook",
    "OpsAlert",
    "bearer_token",
    "from_item",
    "message_of",
    "ops_alerts_of",
    "subject_of",
    "to_item",
    "token_matches",
]

OPS_ALERT_SOURCE = "evpm.ops"
"""EventBridge ``source`` of the events the webhook puts on the ``evpm-alerts`` bus."""
OPS_ALERT_DETAIL_TYPE = "OpsAlert"
WEBHOOK_TOKEN_PARAMETER = "/evpm/alerts/webhook-token"
"""SSM SecureString holding the bearer token Alertmanager sends (``evpm up`` creates it)."""
DEFAULT_TTL_DAYS = 30

PARTITION_KEY = "fingerprint"
SORT_KEY = "starts_at"
STATUS_INDEX = "by-status"
"""GSI of the alerts table: ``status`` / ``updated_at``, newest first per status. Two
partitions only (firing, resolved), which is fine for the few writes ops alerts make."""
STATUS_INDEX_SORT_KEY = "updated_at"

AlertStatus = Literal["firing", "resolved"]

_LabelName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
_LabelValue = Annotated[str, StringConstraints(max_length=1024)]
_Text = Annotated[str, StringConstraints(max_length=4096)]
_Url = Annotated[str, StringConstraints(max_length=2048)]
_MAX_LABELS = 64
_MAX_ALERTS = 500
_NO_TIME = datetime(1971, 1, 1, tzinfo=UTC)
"""Alertmanager writes ``0001-01-01T00:00:00Z`` for "no end yet": anything before this is none."""

_EXAMPLE_ALERT: dict[str, Any] = {
    "status": "firing",
    "labels": {
        "alertname": "EvpmApiLatencyHigh",
        "severity": "warning",
        "cloudwatch_alarm": "evpm-api-latency-p95",
    },
    "annotations": {"summary": "API p95 latency 1.3 s over the 1 s budget"},
    "startsAt": "2024-05-01T12:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=...",
    "fingerprint": "c0ffee0123456789",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AlertmanagerAlert(_Frozen):
    """One alert of an Alertmanager webhook notification (payload version 4)."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        json_schema_extra={"examples": [_EXAMPLE_ALERT]},
    )

    status: AlertStatus
    labels: dict[_LabelName, _LabelValue] = Field(max_length=_MAX_LABELS)
    annotations: dict[_LabelName, _Text] = Field(default_factory=dict, max_length=_MAX_LABELS)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: _Url = Field(default="", alias="generatorURL")
    fingerprint: str = Field(pattern=r"^[0-9A-Za-z]{1,64}$")

    @field_validator("labels")
    @classmethod
    def _names_the_alert(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("labels must name the alert (alertname)")
        return value

    @field_validator("starts_at")
    @classmethod
    def _starts_in_utc(cls, value: datetime) -> datetime:
        value = _utc(value)
        if value < _NO_TIME:
            raise ValueError("startsAt must be a real time (after 1971)")
        return value

    @field_validator("ends_at")
    @classmethod
    def _ends_in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        return None if value < _NO_TIME else value


class AlertmanagerWebhook(_Frozen):
    """The body Alertmanager posts to a ``webhook_configs`` receiver (``version: "4"``).

    Only what evpm keeps is modelled; other fields Alertmanager adds are ignored.
    """

    version: Literal["4"]
    group_key: _Text = Field(alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: AlertStatus
    receiver: _LabelValue
    group_labels: dict[_LabelName, _LabelValue] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[_LabelName, _LabelValue] = Field(
        default_factory=dict, alias="commonLabels"
    )
    common_annotations: dict[_LabelName, _Text] = Field(
        default_factory=dict, alias="commonAnnotations"
    )
    external_url: _Url = Field(default="", alias="externalURL")
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=_MAX_ALERTS)


class OpsAlert(_Frozen):
    """One occurrence of an alert, as stored, put on the bus and shown by ``GET /alerts``.

    ``starts_at`` / ``updated_at`` are fixed-width UTC text (sorts as time, like
    predictions); ``notifications`` counts the webhook calls that carried this occurrence.
    """

    fingerprint: str
    starts_at: str
    status: AlertStatus
    alertname: str
    severity: str | None = None
    cloudwatch_alarm: str | None = Field(
        default=None, description="the CloudWatch alarm that watches the same condition on AWS"
    )
    summary: str | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    ends_at: str | None = None
    updated_at: str = Field(description="when evpm last received this occurrence")
    receiver: str = ""
    group_key: str = ""
    generator_url: str = ""
    external_url: str = ""
    notifications: int = Field(default=1, ge=1)
    expires_at: int = Field(ge=0, description="epoch seconds: DynamoDB TTL")

    def event_detail(self, *, repeat: bool) -> dict[str, Any]:
        """The ``detail`` of its ``OpsAlert`` event; ``repeat`` marks a re-sent firing alert."""
        detail = self.model_dump(mode="json", exclude={"expires_at"}, exclude_none=True)
        return {**detail, "repeat": repeat}


def ops_alerts_of(
    webhook: AlertmanagerWebhook, *, received_at: datetime, ttl_days: int = DEFAULT_TTL_DAYS
) -> list[OpsAlert]:
    """The occurrences a notification carries, stamped with when it was received.

    Example::

        [a.alertname for a in ops_alerts_of(hook, received_at=datetime.now(UTC))]
    """
    if ttl_days < 1:
        raise ValueError(f"ttl_days must be >= 1, got {ttl_days}")
    received = _utc(received_at)
    expires = int((received + timedelta(days=ttl_days)).timestamp())
    out = []
    for alert in webhook.alerts:
        labels = dict(alert.labels)
        annotations = dict(alert.annotations)
        out.append(
            OpsAlert(
                fingerprint=alert.fingerprint,
                starts_at=format_timestamp(alert.starts_at),
                status=alert.status,
                alertname=labels["alertname"],
                severity=labels.get("severity"),
                cloudwatch_alarm=labels.get("cloudwatch_alarm"),
                summary=annotations.get("summary"),
                description=annotations.get("description"),
                labels=labels,
                annotations=annotations,
                ends_at=format_timestamp(alert.ends_at) if alert.ends_at else None,
                updated_at=format_timestamp(received),
                receiver=webhook.receiver,
                group_key=webhook.group_key,
                generator_url=alert.generator_url,
                external_url=webhook.external_url,
                expires_at=expires,
            )
        )
    return out


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``.

    Example: ``bearer_token("Bearer abc") == "abc"``; ``bearer_token("Basic abc") is None``.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(presented: str | None, expected: str) -> bool:
    """Whether the presented token is the expected one, compared in constant time.

    An empty expected token matches nothing (a blank secret must not open the door).

    Example: ``token_matches("s3cret", "s3cret")`` is True; ``token_matches(None, "x")`` False.
    """
    if not expected or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def subject_of(alert: OpsAlert) -> str:
    """An SNS subject: ASCII, one line, under 100 characters (SNS refuses anything else).

    Example: ``"[FIRING] EvpmApiLatencyHigh (warning)"``.
    """
    text = f"[{alert.status.upper()}] {alert.alertname}"
    if alert.severity:
        text += f" ({alert.severity})"
    printable = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return printable[:99]


def message_of(alert: OpsAlert) -> str:
    """A plain-text message for people: what, since when, where to look."""
    lines = [f"{alert.status.upper()}: {alert.alertname}"]
    if alert.severity:
        lines[0] += f" (severity {alert.severity})"
    lines += [text for text in (alert.summary, alert.description) if text]
    lines.append(f"since {alert.starts_at}" + (f", ended {alert.ends_at}" if alert.ends_at else ""))
    if alert.cloudwatch_alarm:
        lines.append(f"CloudWatch alarm on AWS: {alert.cloudwatch_alarm}")
    others = {k: v for k, v in alert.labels.items() if k not in ("alertname", "severity")}
    if others:
        lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(others.items())))
    if alert.generator_url:
        lines.append(f"source: {alert.generator_url}")
    lines.append(f"fingerprint {alert.fingerprint}")
    return "\n".join(lines)


def to_item(alert: OpsAlert) -> dict[str, Any]:
    """The alerts-table item (document form; unset optional fields are left out)."""
    return alert.model_dump(exclude_none=True)


def from_item(item: dict[str, Any]) -> OpsAlert:
    """An :class:`OpsAlert` from a stored item (numbers may come back as ``Decimal``)."""
    values = dict(item)
    for name in ("expires_at", "notifications"):
        if name in values:
            values[name] = int(values[name])
    return OpsAlert.model_validate(values)
