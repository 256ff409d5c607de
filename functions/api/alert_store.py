"""Where ops alerts go: the alerts table, the ``evpm-alerts`` bus and the people's SNS topic,
and where the webhook's bearer token comes from — each behind a small protocol.

The routes (:mod:`alert_routes`) call :class:`OpsAlerts`; tests pass in-memory or moto-backed
collaborators. AWS clients are parameters and are built only on first use, so an API
container that never sees an alert never builds them.

Writes, and why conditional: an occurrence (``fingerprint`` + ``starts_at``) is updated in
place by every notification that carries it, counting them; a *firing* notification never
overwrites a *resolved* one (Alertmanager retries a failed notification, and a late retry of
"firing" must not re-open an alert that has ended): it is reported as ``stale`` and neither
stored nor published.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from evpm.ops_alerts import (
    OPS_ALERT_DETAIL_TYPE,
    OPS_ALERT_SOURCE,
    PARTITION_KEY,
    SORT_KEY,
    STATUS_INDEX,
    STATUS_INDEX_SORT_KEY,
    OpsAlert,
    from_item,
    message_of,
    subject_of,
    to_item,
)

if TYPE_CHECKING:
    from evpm.settings import ApiSettings

__all__ = [
    "DynamoOpsAlertStore",
    "EventBridgeSnsNotifier",
    "NotifyError",
    "OpsAlertNotifier",
    "OpsAlertStore",
    "OpsAlerts",
    "Recorded",
    "SsmWebhookToken",
    "TokenUnavailableError",
    "WebhookToken",
]

Recorded = Literal["new", "repeat", "resolved", "stale"]
"""What a notification did to its occurrence: first seen, seen again in the same status,
firing → resolved, or a firing that came after the resolution (dropped)."""

_EVENTS_BATCH = 10  # PutEvents limit


class TokenUnavailableError(Exception):
    """The webhook token could not be read (parameter missing, SSM unreachable)."""


class NotifyError(Exception):
    """An alert was stored but could not be put on the bus or published to the topic."""


class OpsAlertStore(Protocol):
    """Keeps one item per alert occurrence; lists the firing ones and the recently resolved."""

    def record(self, alert: OpsAlert) -> Recorded: ...

    def active(self, *, limit: int) -> list[OpsAlert]: ...

    def resolved_since(self, since: str, *, limit: int) -> list[OpsAlert]: ...


class OpsAlertNotifier(Protocol):
    """Tells the bus and people; ``(alert, repeat)`` pairs; raises :class:`NotifyError`."""

    def notify(self, alerts: Sequence[tuple[OpsAlert, bool]]) -> None: ...


class WebhookToken(Protocol):
    """The bearer token Alertmanager must present; raises :class:`TokenUnavailableError`."""

    def value(self) -> str: ...


@dataclass
class OpsAlerts:
    """The collaborators of the alert routes, and how long a stored alert is kept."""

    store: OpsAlertStore
    notifier: OpsAlertNotifier
    token: WebhookToken
    ttl_days: int

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> OpsAlerts:
        """The AWS-backed ones (no client is built until first use)."""
        return cls(
            store=DynamoOpsAlertStore(settings.OPS_ALERTS_TABLE),
            notifier=EventBridgeSnsNotifier(
                bus_name=settings.ALERT_BUS_NAME, topic_arn=settings.OPS_ALERTS_TOPIC_ARN
            ),
            token=SsmWebhookToken(settings.WEBHOOK_TOKEN_PARAMETER),
            ttl_days=settings.OPS_ALERTS_TTL_DAYS,
        )


class DynamoOpsAlertStore:
    """``UpdateItem`` per occurrence; ``Query`` on the ``by-status`` index to list."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def record(self, alert: OpsAlert) -> Recorded:
        item = to_item(alert)
        serialize = self._serializer.serialize
        key = {name: serialize(item.pop(name)) for name in (PARTITION_KEY, SORT_KEY)}
        item.pop("notifications", None)
        names = {f"#a{i}": name for i, name in enumerate(item)}
        values = {f":v{i}": serialize(value) for i, value in enumerate(item.values())}
        sets = [f"#a{i} = :v{i}" for i in range(len(item))]
        names["#n"] = "notifications"
        values |= {":zero": {"N": "0"}, ":one": {"N": "1"}}
        sets.append("#n = if_not_exists(#n, :zero) + :one")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key,
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_OLD",
        }
        if alert.status == "firing":
            status_name = next(k for k, v in names.items() if v == "status")
            request["ConditionExpression"] = (
                f"attribute_not_exists({status_name}) OR {status_name} = :firing"
            )
            values[":firing"] = {"S": "firing"}
        try:
            old = self.client.update_item(**request).get("Attributes")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return "stale"
            raise
        if not old:
            return "new"
        before = old.get("status", {}).get("S")
        return "repeat" if before == alert.status else "resolved"

    def active(self, *, limit: int) -> list[OpsAlert]:
        return self._query("firing", since=None, limit=limit)

    def resolved_since(self, since: str, *, limit: int) -> list[OpsAlert]:
        return self._query("resolved", since=since, limit=limit)

    def _query(self, status: str, *, since: str | None, limit: int) -> list[OpsAlert]:
        condition = "#s = :s"
        values = {":s": {"S": status}}
        names = {"#s": "status"}
        if since is not None:
            condition += " AND #u >= :since"
            names["#u"] = STATUS_INDEX_SORT_KEY
            values[":since"] = {"S": since}
        response = self.client.query(
            TableName=self.table_name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            from_item({k: self._deserializer.deserialize(v) for k, v in item.items()})
            for item in response.get("Items", [])
        ]


class EventBridgeSnsNotifier:
    """``PutEvents`` (``evpm.ops`` / ``OpsAlert``) on the bus, then one SNS message per alert.

    Both are at least once: a notification that fails half-way answers 503, Alertmanager
    retries it, and the parts that had gone out go out again (marked ``repeat``).
    """

    def __init__(
        self,
        *,
        bus_name: str,
        topic_arn: str | None,
        events_client: Any | None = None,
        sns_client: Any | None = None,
    ) -> None:
        self.bus_name = bus_name
        self.topic_arn = topic_arn
        self._events = events_client
        self._sns = sns_client

    @property
    def events(self) -> Any:
        if self._events is None:
            self._events = boto3.client("events")
        return self._events

    @property
    def sns(self) -> Any:
        if self._sns is None:
            self._sns = boto3.client("sns")
        return self._sns

    def notify(self, alerts: Sequence[tuple[OpsAlert, bool]]) -> None:
        if not alerts:
            return
        if not self.topic_arn:
            raise NotifyError("OPS_ALERTS_TOPIC_ARN is not set: no topic for ops alerts")
        try:
            self._put_events(alerts)
            for alert, repeat in alerts:
                self.sns.publish(
                    TopicArn=self.topic_arn,
                    Subject=subject_of(alert),
                    Message=message_of(alert),
                    MessageAttributes={
                        "status": _text(alert.status),
                        "alertname": _text(alert.alertname),
                        "severity": _text(alert.severity or "none"),
                        "repeat": _text(str(repeat).lower()),
                    },
                )
        except (BotoCoreError, ClientError) as exc:
            raise NotifyError(f"{type(exc).__name__}: {exc}") from exc

    def _put_events(self, alerts: Sequence[tuple[OpsAlert, bool]]) -> None:
        for start in range(0, len(alerts), _EVENTS_BATCH):
            chunk = alerts[start : start + _EVENTS_BATCH]
            response = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": OPS_ALERT_SOURCE,
                        "DetailType": OPS_ALERT_DETAIL_TYPE,
                        "Detail": json.dumps(alert.event_detail(repeat=repeat)),
                        "Resources": [],
                    }
                    for alert, repeat in chunk
                ]
            )
            if response.get("FailedEntryCount"):
                entries = response.get("Entries", [])
                codes = sorted({e["ErrorCode"] for e in entries if "ErrorCode" in e})
                failed = response["FailedEntryCount"]
                raise NotifyError(f"{failed} of {len(chunk)} OpsAlert events refused: {codes}")


def _text(value: str) -> dict[str, str]:
    """An SNS string message attribute (subscribers can filter on them)."""
    return {"DataType": "String", "StringValue": value}


class SsmWebhookToken:
    """The SecureString parameter, decrypted, through powertools' cached SSM provider.

    A rotated token takes effect within ``max_age`` seconds; a missing parameter is never
    cached, so creating it (``evpm up``) takes effect on the next call.
    """

    def __init__(self, name: str, *, client: Any | None = None, max_age: int = 60) -> None:
        self.name = name
        self.max_age = max_age
        self._client = client
        self._provider: Any = None

    def value(self) -> str:
        from aws_lambda_powertools.utilities.parameters import SSMProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self._provider is None:
            self._provider = SSMProvider(boto3_client=self._client or boto3.client("ssm"))
        try:
            token = self._provider.get(self.name, decrypt=True, max_age=self.max_age)
        except (GetParameterError, BotoCoreError, ClientError) as exc:
            raise TokenUnavailableError(f"cannot read {self.name}: {exc}") from exc
        if not isinstance(token, str) or not token.strip():
            raise TokenUnavailableError(f"{self.name} is empty")
        return token.strip()
