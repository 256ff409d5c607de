"""Where the API reads predictions and writes labels: DynamoDB behind two small protocols.

Routes call :class:`PredictionReader` and :class:`LabelWriter`; tests pass moto-backed or
in-memory ones, and the emulator is reached through ``AWS_ENDPOINT_URL`` with no branch here.
AWS clients are parameters and are built only when none is passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from evpm.labels import Label, to_item
from evpm.predictions import PARTITION_KEY, SORT_KEY, Prediction, from_item

__all__ = ["DynamoLabelWriter", "DynamoPredictionReader", "LabelWriter", "Page", "PredictionReader"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a vehicle's predictions, newest first; ``last_ts`` is set if more follow."""

    predictions: list[Prediction]
    last_ts: str | None


class PredictionReader(Protocol):
    """Reads one vehicle's predictions, newest first, ``limit`` at a time, after ``after_ts``."""

    def latest(self, vehicle_id: str, *, limit: int, after_ts: str | None) -> Page: ...


class LabelWriter(Protocol):
    """Stores a label (a later label for the same reading replaces it)."""

    def put(self, label: Label) -> None: ...


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


class DynamoLabelWriter:
    """``PutItem`` of the label's item: idempotent by key, so a retried request is harmless."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self._serializer = TypeSerializer()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    def put(self, label: Label) -> None:
        item = {k: self._serializer.serialize(v) for k, v in to_item(label).items()}
        self.client.put_item(TableName=self.table_name, Item=item)
