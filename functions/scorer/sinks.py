"""Where the scorer's output goes: predictions to DynamoDB, parked records to the SQS DLQ.

The handler talks to the two :class:`typing.Protocol` s below, not to boto3, so tests can swap
in fakes that fail on purpose and the emulator can be reached through ``AWS_ENDPOINT_URL``
without a branch here. Each sink returns the sequence numbers it could NOT deliver, which is
exactly what the handler needs to build ``batchItemFailures``. AWS clients are parameters and
are built only when none is passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from evpm.past_readings import READING_ATTRIBUTE
from evpm.predictions import MODEL_FIELDS, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from evpm.telemetry import format_timestamp

if TYPE_CHECKING:
    from evpm.ingest import AcceptedRecord, ParkedRecord

__all__ = ["DynamoPredictionSink", "ParkedSink", "PredictionSink", "SqsParkedSink"]

logger = Logger(child=True)

_DYNAMO_BATCH = 25  # batch_write_item limit
_SQS_BATCH = 10  # send_message_batch limit
_SQS_BATCH_BYTES = 250_000  # below the 256 KiB request limit, leaving room for attributes
_SQS_RECORD_BYTES = 200_000  # a Kinesis record may be 1 MiB; keep one message under the limit


# batch_write_item calls in flight at once (one client, thread-safe). A 500-record event is 20
# calls; with 4 in flight the scorer spent over half of each invocation waiting on them while
# DynamoDB (the emulator's one core here) was idle between calls. 8 measured 1,857 stored/s
# end to end against 1,680 with 4; 20 was no better (1,832).
_DEFAULT_CONCURRENCY = 8
_SERIALIZER = TypeSerializer()
# The items are built here from validated predictions (to_wire), so botocore's client-side
# check of every attribute of every item repeats what is already known - a sixth of the
# scorer's CPU per 500-record event. DynamoDB itself still validates each request.
_WRITE_CLIENT_CONFIG = Config(parameter_validation=False, max_pool_connections=_DEFAULT_CONCURRENCY)


def to_wire(value: Any) -> dict[str, Any]:
    """A document-form value in DynamoDB wire format, as ``TypeSerializer`` writes it.

    The common types of a prediction item (str, bool, Decimal, int, None, lists, maps) are
    handled here directly - about 5x faster than ``TypeSerializer``, which checks every type
    in turn - and everything else (sets, bytes, ...) goes to ``TypeSerializer`` itself, which
    also raises its usual ``TypeError`` for a float.
    """
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is Decimal or kind is int:
        if kind is Decimal and not value.is_finite():
            return _SERIALIZER.serialize(value)  # raises TypeError, as TypeSerializer does
        # the same context as TypeSerializer: more than 38 digits raises here too
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    if kind is bytes:
        return {"B": value}
    if value is None:
        return {"NULL": True}
    if kind is dict:
        return {"M": {str(k): to_wire(v) for k, v in value.items()}}
    if kind is list or kind is tuple:
        return {"L": [to_wire(v) for v in value]}
    return _SERIALIZER.serialize(value)


def _number(value: float) -> dict[str, str]:
    """A float as DynamoDB's ``N`` text, the text :func:`to_wire` gives its ``Decimal(repr())``
    (they differ only in exponent form, which ``repr`` uses below 1e-4 and from 1e16)."""
    text = repr(value)
    if "e" in text or "n" in text:  # 1e-05, 1e+16; inf/nan: refused below as TypeSerializer does
        return to_wire(Decimal(text))
    return {"N": text}


def wire_item(prediction: Any, *, ttl_days: int | None, reading: bytes | None) -> dict[str, Any]:
    """``{k: to_wire(v) for k, v in to_item(prediction, ...).items()}``, built directly.

    Why: a 500-record batch is 500 items of about 20 numbers each; going through the document
    form (a ``Decimal`` per number, then a type dispatch per value) took half of the scorer's
    CPU per event. This writes the same wire values (a test compares them item for item)
    straight from the prediction's fields.
    """
    p = prediction
    item: dict[str, Any] = {
        PARTITION_KEY: {"S": p.vehicle_id},
        SORT_KEY: {"S": p.ts},
        "record_id": {"S": p.record_id},
        "status": {"S": p.status},
        "health_score": _number(float(p.health_score)),
        "failure_mode": {"S": p.failure_mode},
        "findings": {
            "L": [
                {
                    "M": {
                        "rule_id": {"S": f.rule_id},
                        "component": {"S": f.component},
                        "severity": {"S": f.severity},
                        "message": {"S": f.message},
                    }
                }
                for f in p.findings
            ]
        },
        "model_versions": _versions(tuple(p.model_versions.items())),
        "scored_at": _stamped(p.scored_at, ttl_days)[0],
    }
    for key in MODEL_FIELDS:
        value = getattr(p, key)
        if value is None:
            continue
        if isinstance(value, dict):
            item[key] = {"M": {k: _number(v) for k, v in value.items()}}
        elif isinstance(value, bool):
            item[key] = {"BOOL": value}
        elif isinstance(value, str):
            item[key] = {"S": value}
        else:
            item[key] = _number(float(value))
    if reading is not None:
        item[READING_ATTRIBUTE] = {"B": reading}
    if ttl_days:
        item[TTL_ATTRIBUTE] = _stamped(p.scored_at, ttl_days)[1]
    return item


# A batch's predictions share their scoring time and model versions: their wire values are
# made once per batch (read-only dicts, shared by the batch's items), not once per item.
@lru_cache(maxsize=8)
def _stamped(scored_at: datetime, ttl_days: int | None) -> tuple[dict[str, str], dict[str, str]]:
    """``scored_at`` and the TTL attribute ``ttl_days`` after it, on the wire."""
    expires = int((scored_at + timedelta(days=ttl_days or 0)).timestamp())
    return {"S": format_timestamp(scored_at)}, {"N": str(expires)}


@lru_cache(maxsize=8)
def _versions(versions: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"M": {k: {"S": v} for k, v in versions}}


class PredictionSink(Protocol):
    """Stores predictions; returns the sequence numbers whose write failed."""

    def write(self, accepted: Sequence[AcceptedRecord]) -> list[str]: ...


class ParkedSink(Protocol):
    """Sends parked records somewhere a human will see them; returns those it could not send."""

    def send(self, parked: Sequence[ParkedRecord]) -> list[str]: ...


class DynamoPredictionSink:
    """``batch_write_item`` in chunks of 25 with a bounded retry of ``UnprocessedItems``.

    Puts are idempotent (the key is vehicle + reading time), so retrying a chunk or a whole
    batch can only overwrite an item with itself. Two records with the same key in one batch
    are collapsed to the last one, because DynamoDB rejects a request with duplicate keys.
    Up to ``concurrency`` chunks are in flight at once (a 500-record batch is 20 round trips;
    sequentially their latencies add up, in parallel they overlap); each chunk keeps its own
    retry and the failures of all chunks are reported together.
    """

    def __init__(
        self,
        table_name: str,
        *,
        ttl_days: int | None = None,
        client: Any | None = None,
        max_attempts: int = 4,
        backoff_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        concurrency: int = _DEFAULT_CONCURRENCY,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.table_name = table_name
        self.ttl_days = ttl_days
        self._client = client
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb", config=_WRITE_CLIENT_CONFIG)
        return self._client

    def write(self, accepted: Sequence[AcceptedRecord]) -> list[str]:
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        sequences: dict[tuple[str, str], list[str]] = {}
        for record in accepted:
            p = record.prediction
            key = (p.vehicle_id, p.ts)
            by_key[key] = wire_item(p, ttl_days=self.ttl_days, reading=record.reading)
            sequences.setdefault(key, []).append(record.sequence_number)

        keys = list(by_key)
        chunks = [
            {key: by_key[key] for key in keys[start : start + _DYNAMO_BATCH]}
            for start in range(0, len(keys), _DYNAMO_BATCH)
        ]
        client = self.client  # built once, here, not racing in the pool's threads
        if self.concurrency == 1 or len(chunks) <= 1:
            unwritten = [self._write_chunk(chunk, client) for chunk in chunks]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ddb-write")
            unwritten = list(self._pool.map(lambda c: self._write_chunk(c, client), chunks))
        return [seq for keys_left in unwritten for key in keys_left for seq in sequences[key]]

    def _write_chunk(
        self, items: dict[tuple[str, str], dict[str, Any]], client: Any
    ) -> list[tuple[str, str]]:
        """Write up to 25 items; return the keys still unwritten after the last attempt."""
        pending = [{"PutRequest": {"Item": item}} for item in items.values()]
        for attempt in range(self.max_attempts):
            if attempt:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = client.batch_write_item(RequestItems={self.table_name: pending})
            except (ClientError, BotoCoreError):
                logger.exception("batch_write_item failed", extra={"items": len(pending)})
                continue
            pending = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not pending:
                return []
        keys = [
            (r["PutRequest"]["Item"][PARTITION_KEY]["S"], r["PutRequest"]["Item"][SORT_KEY]["S"])
            for r in pending
        ]
        logger.warning("items left unwritten", extra={"items": len(keys)})
        return keys


def dlq_body(parked: ParkedRecord) -> str:
    """The DLQ message: why the record was parked, the original data and its stream position."""
    encoded = parked.record.encode()
    truncated = len(encoded) > _SQS_RECORD_BYTES
    record = encoded[:_SQS_RECORD_BYTES].decode(errors="ignore") if truncated else parked.record
    return json.dumps(
        {
            "reason": parked.reason,
            "errors": [e.model_dump() for e in parked.errors],
            "record": record,
            "record_truncated": truncated,
            "kinesis": {
                "shard_id": parked.shard_id,
                "sequence_number": parked.sequence_number,
                "partition_key": parked.partition_key,
            },
        },
        ensure_ascii=False,
    )


class SqsParkedSink:
    """``send_message_batch`` in chunks of at most 10 messages and about 250 kB."""

    def __init__(self, queue_url: str, *, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    def send(self, parked: Sequence[ParkedRecord]) -> list[str]:
        failed: list[str] = []
        for chunk in _chunks(parked):
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": body,
                    "MessageAttributes": {
                        "reason": {"DataType": "String", "StringValue": record.reason}
                    },
                }
                for i, (record, body) in enumerate(chunk)
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError):
                logger.exception("send_message_batch failed", extra={"messages": len(entries)})
                failed.extend(record.sequence_number for record, _ in chunk)
                continue
            for failure in response.get("Failed", []):
                failed.append(chunk[int(failure["Id"])][0].sequence_number)
        return failed


def _chunks(parked: Sequence[ParkedRecord]) -> list[list[tuple[ParkedRecord, str]]]:
    chunks: list[list[tuple[ParkedRecord, str]]] = []
    current: list[tuple[ParkedRecord, str]] = []
    size = 0
    for record in parked:
        body = dlq_body(record)
        body_size = len(body.encode())
        if current and (len(current) == _SQS_BATCH or size + body_size > _SQS_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append((record, body))
        size += body_size
    if current:
        chunks.append(current)
    return chunks
