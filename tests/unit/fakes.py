"""In-memory fakes for the scorer's collaborators (no mocking library: plain classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evpm.health import Assessment
from evpm.ingest import AcceptedRecord, ParkedRecord


class CountingScorer:
    """A Scorer that records the shape of each call and calls every row ok."""

    name = "counting"
    version = "c-1"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def assess(self, matrix: np.ndarray) -> list[Assessment]:
        self.shapes.append(matrix.shape)
        ok = Assessment(status="ok", health_score=100.0, failure_mode="none", findings=[])
        return [ok] * matrix.shape[0]


class FakePredictionSink:
    """Keeps what it is given; the sequence numbers in ``fail`` are reported as failed."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.written: list[AcceptedRecord] = []

    def write(self, accepted: Sequence[AcceptedRecord]) -> list[str]:
        self.written.extend(a for a in accepted if a.sequence_number not in self.fail)
        return [a.sequence_number for a in accepted if a.sequence_number in self.fail]


class FakeParkedSink:
    """Keeps parked records; with ``fail_all`` it refuses every one (a DLQ outage)."""

    def __init__(self, *, fail_all: bool = False) -> None:
        self.fail_all = fail_all
        self.sent: list[ParkedRecord] = []

    def send(self, parked: Sequence[ParkedRecord]) -> list[str]:
        if self.fail_all:
            return [p.sequence_number for p in parked]
        self.sent.extend(parked)
        return []


class ScriptedDynamoClient:
    """Answers ``batch_write_item`` from a script: each entry is "ok", "unprocessed" or "error"."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.calls: list[list[dict[str, Any]]] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        [(table, requests)] = RequestItems.items()
        self.calls.append(requests)
        step = self.script.pop(0) if self.script else "ok"
        if step == "error":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "BatchWriteItem",
            )
        if step == "unprocessed":
            return {"UnprocessedItems": {table: requests[:1]}}
        return {"UnprocessedItems": {}}


class ScriptedSqsClient:
    """``send_message_batch`` that fails the entries whose Id is in ``fail_ids``."""

    def __init__(self, fail_ids: set[str] | None = None) -> None:
        self.fail_ids = fail_ids or set()
        self.batches: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(Entries)
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
            for e in Entries
            if e["Id"] in self.fail_ids
        ]
        return {"Successful": [], "Failed": failed}
