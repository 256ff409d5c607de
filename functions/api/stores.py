"""Where the API reads predictions and adds labels: DynamoDB behind two small protocols.

Routes call :class:`PredictionReader` and :class:`LabelWriter`; tests pass moto-backed or
in-memory ones, and the emulator is reached through ``AWS_ENDPOINT_URL`` with no branch here.
AWS clients are parameters and are built only when none is passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from evpm.labels import REPORTS_ATTRIBUTE, Label, to_update
from evpm.predictions import PARTITION_KEY, SORT_KEY, Prediction, from_item

__all__ = ["DynamoLabelWriter", "DynamoPredictionReader", "LabelWriter", "Page", "PredictionReader"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a vehicle's predictions, newest first; ``last_ts`` is set if more follow."""

    predictions: list[Prediction]
    last_ts: str | None


class PredictionReader(Protocol):
    """Reads one vehicle's predictions, newest first, ``limit`` at a time, after ``after_ts``;
    and says whether one reading (its normalised ``ts``) was scored and is still stored."""

    def latest(self, vehicle_id: str, *, limit: int, after_ts: str | None) -> Page: ...

    def exists(self, vehicle_id: str, ts: str) -> bool: ...


class LabelWriter(Protocol):
    """Adds a label as the latest report on its reading, keeping the earlier ones; returns how
    many reports the reading now has."""

    def add(self, label: Label) -> int: ...


class DynamoPredictionReader:
    """``Query`` on ``vehicle_id``, sort key descending, one extra row to know if more follow."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self._deserializer = TypeDeserializer()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def latest(self, vehicle_id: str, *, limit: int, after_ts: str | None) -> Page:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :v",
            "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
            "ExpressionAttributeValues": {":v": {"S": vehicle_id}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after_ts is not None:
            request["ExclusiveStartKey"] = {
                PARTITION_KEY: {"S": vehicle_id},
                SORT_KEY: {"S": after_ts},
            }
        response = self.client.query(**request)
        items = [
            {k: self._deserializer.deserialize(v) for k, v in item.items()}
            for item in response.get("Items", [])
        ]
        predictions = [from_item(item) for item in items[:limit]]
        more = len(items) > limit or "LastEvaluatedKey" in response
        last_ts = predictions[-1].ts if more and predictions else None
        return Page(predictions=predictions, last_ts=last_ts)

    def exists(self, vehicle_id: str, ts: str) -> bool:
        """``GetItem`` of the key alone, strongly consistent: a reading scored a moment ago
        counts (an eventually consistent read could miss it and refuse a valid report)."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": vehicle_id}, SORT_KEY: {"S": ts}},
            ProjectionExpression="#pk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ConsistentRead=True,
        )
        return "Item" in response


class DynamoLabelWriter:
    """One ``UpdateItem`` per report (:func:`evpm.labels.to_update`): appended atomically, so
    concurrent reports are all kept. Not idempotent: a retried request adds its report again
    (with its own ``received_at``), which the audit trail shows rather than hides."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self._serializer = TypeSerializer()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def add(self, label: Label) -> int:
        update = to_update(label)
        serialize = self._serializer.serialize
        response = self.client.update_item(
            TableName=self.table_name,
            Key={k: serialize(v) for k, v in update.key.items()},
            UpdateExpression=update.expression,
            ExpressionAttributeNames=update.names,
            ExpressionAttributeValues={k: serialize(v) for k, v in update.values.items()},
            ReturnValues="UPDATED_NEW",
        )
        return len(response["Attributes"][REPORTS_ATTRIBUTE]["L"])
