"""Data capture: every stored prediction's inputs and outputs, one S3 object per batch.

What the drift monitor reads (:mod:`evpm.drift.capture` holds the format, the sampling and the
key layout). Capture is best effort, as SageMaker's data capture is: a failed upload is logged
and counted (``CaptureFailures``) and never fails the batch, because the predictions are stored
and alerted already and a retry would redeliver them all for a copy the monitor can do without.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from evpm.drift.capture import capture_key, encode_capture, sampled
from evpm.past_readings import unpack_readings

if TYPE_CHECKING:
    from evpm.ingest import AcceptedRecord

__all__ = ["CaptureSink", "S3CaptureSink"]

logger = Logger(child=True)


class CaptureSink(Protocol):
    """Keeps a copy of stored predictions; returns the rows kept, or -1 if the copy failed."""

    def capture(
        self, accepted: Sequence[AcceptedRecord], *, batch_id: str, captured_at: datetime
    ) -> int: ...


class S3CaptureSink:
    """One ``PutObject`` per batch under ``prefix`` (hourly partitions), ``rate`` sampled."""

    def __init__(
        self, bucket: str, *, prefix: str = "capture/", rate: float = 1.0, client: Any | None = None
    ) -> None:
        if not bucket:
            raise ValueError("bucket must be named")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        self.bucket, self.prefix, self.rate = bucket, prefix, rate
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("s3")
        return self._client

    def capture(
        self, accepted: Sequence[AcceptedRecord], *, batch_id: str, captured_at: datetime
    ) -> int:
        keep = sampled([r.prediction.record_id for r in accepted], self.rate)
        rows = [r for r, kept in zip(accepted, keep, strict=True) if kept and r.reading]
        if not rows:
            return 0
        readings = unpack_readings([r.reading for r in rows if r.reading])
        body = encode_capture([r.prediction for r in rows], readings, captured_at=captured_at)
        key = capture_key(self.prefix, captured_at, batch_id)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ContentEncoding="gzip",
            )
        except (ClientError, BotoCoreError):
            logger.exception("capture upload failed", extra={"key": key, "rows": len(rows)})
            return -1
        return len(rows)
