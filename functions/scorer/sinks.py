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
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from wire import wire_items

from evpm.predictions import PARTITION_KEY, SORT_KEY

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
# The items are built here from validated predictions (wire.wire_items), so botocore's client-side
# check of every attribute of every item repeats what is already known - a sixth of the
# scorer's CPU per 500-record event. DynamoDB itself still validates each request.
_WRITE_CLIENT_CONFIG = Config(parameter_validation=False, max_pool_connections=_DEFAULT_CONCURRENCY)


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
        items = wire_items(
            [r.prediction for r in accepted], [r.reading for r in accepted], ttl_days=self.ttl_days
        )
        for record, item in zip(accepted, items, strict=True):
            p = record.prediction
            key = (p.vehicle_id, p.ts)
            by_key[key] = item
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
