"""Ground truth in bulk: a CSV of maintenance outcomes dropped under ``labels/`` → stored outcomes.

S3 invokes this for each new object. Every row is checked (:func:`evpm.outcomes.validate_rows`:
the field and the reason for a bad one; an unknown vehicle, a future time, a negative RUL, an
unknown failure mode); good rows become outcomes in ``evpm-outcomes`` keyed by vehicle and time,
so sending a file again changes nothing; bad rows go to ``labels-rejects/<key>.rejects.csv``
with their line and reason. Nothing is lost: rows read = stored + repeats + rejected, and the
counts are metrics and the function's answer.
"""

from __future__ import annotations

import csv
import io
import urllib.parse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from evpm.outcomes import Outcome, Reject, parse_outcome_file, validate_rows
from evpm.settings import LabelsSettings
from evpm.telemetry import format_timestamp

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = LabelsSettings()
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
metrics = Metrics(
    namespace=settings.POWERTOOLS_METRICS_NAMESPACE, service=settings.POWERTOOLS_SERVICE_NAME
)
REJECTS_PREFIX = "labels-rejects/"


class KnownVehicles:
    """Whether evpm ever scored a vehicle (one ``Query``, ``Limit=1``, per vehicle per file)."""

    def __init__(self, table: Any) -> None:
        self.table, self.seen = table, {}

    def __call__(self, vehicle_id: str) -> bool:
        if vehicle_id not in self.seen:
            found = self.table.query(
                KeyConditionExpression="vehicle_id = :v",
                ExpressionAttributeValues={":v": vehicle_id},
                Limit=1,
                ProjectionExpression="vehicle_id",
            )["Items"]
            self.seen[vehicle_id] = bool(found)
        return self.seen[vehicle_id]


def _item(outcome: Outcome, source: str) -> dict[str, Any]:
    item = {
        "vehicle_id": outcome.vehicle_id,
        "at": format_timestamp(outcome.at),
        "kind": outcome.kind,
        "source": source,
    }
    if outcome.failure_mode:
        item["failure_mode"] = outcome.failure_mode
    return item


def _rejects_csv(rejects: list[Reject], reason: str | None = None) -> bytes:
    out = io.StringIO()
    columns = sorted({k for r in rejects for k in r.row})
    writer = csv.writer(out)
    writer.writerow(["line", "reason", *columns])
    if reason is not None:
        writer.writerow(["", reason])
    for r in rejects:
        writer.writerow([r.line, r.reason, *(r.row.get(c, "") for c in columns)])
    return out.getvalue().encode()


def ingest(
    bucket: str, key: str, *, s3: Any, outcomes: Any, predictions: Any, now: datetime
) -> dict[str, Any]:
    """One label file: validate, store, park the rejects; returns the counts."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    source = f"s3://{bucket}/{key}"
    rejects_key = f"{REJECTS_PREFIX}{key.removeprefix(settings.LABELS_PREFIX)}.rejects.csv"
    try:
        rows = parse_outcome_file(body)
    except ValueError as exc:  # not a label file at all: say why, next to where it was dropped
        s3.put_object(Bucket=bucket, Key=rejects_key, Body=_rejects_csv([], f"file refused: {exc}"))
        metrics.add_metric("LabelFilesRefused", MetricUnit.Count, 1)
        logger.warning("label file refused", extra={"source": source, "reason": str(exc)})
        return {"source": source, "refused": str(exc), "rejects": rejects_key}
    kept, rejects = validate_rows(rows, now=now, known_vehicle=KnownVehicles(predictions))
    with outcomes.batch_writer(overwrite_by_pkeys=["vehicle_id", "at"]) as batch:
        for outcome in kept:
            batch.put_item(Item=_item(outcome, source))
    if rejects:
        s3.put_object(Bucket=bucket, Key=rejects_key, Body=_rejects_csv(rejects))
    counts = {
        "source": source,
        "rows": len(rows),
        "stored": len(kept),
        "repeats": len(rows) - len(kept) - len(rejects),
        "rejected": len(rejects),
        "rejects": rejects_key if rejects else None,
    }
    metrics.add_metric("LabelRowsRead", MetricUnit.Count, len(rows))
    metrics.add_metric("LabelRowsStored", MetricUnit.Count, len(kept))
    metrics.add_metric("LabelRowsRejected", MetricUnit.Count, len(rejects))
    logger.info("label file ingested", extra=counts)
    return counts


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``app.handler``): an S3 ``ObjectCreated`` notification."""
    s3 = boto3.client("s3")
    dynamodb = boto3.resource("dynamodb")
    outcomes = dynamodb.Table(settings.OUTCOMES_TABLE)
    predictions = dynamodb.Table(settings.PREDICTIONS_TABLE)
    files = []
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        if not key.startswith(settings.LABELS_PREFIX):
            continue
        files.append(
            ingest(
                bucket,
                key,
                s3=s3,
                outcomes=outcomes,
                predictions=predictions,
                now=datetime.now(UTC),
            )
        )
    return {"files": files}
