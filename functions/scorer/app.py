"""Kinesis → scorer Lambda: parse the batch, score it, store it, report what to retry.

Thin on purpose: the decisions live in :mod:`evpm.ingest` (pure) and the I/O in
:mod:`sinks`. Failure semantics, with ``ReportBatchItemFailures`` on the event source mapping:

* invalid records are parked on the DLQ and NOT reported as failures (a retry cannot fix them);
* stored predictions that are critical or name a failure mode become ``VehicleAlert`` events,
  one per vehicle+mode per window (:mod:`evpm.alerts`, :mod:`alert_sink`);
* a prediction write that still fails after the sink's bounded retry, a parked record the DLQ
  would not take, or an alert that could not be published, is reported; Lambda checkpoints before the lowest reported sequence
  number and redelivers from there, so we report every record from that one onwards. Writes
  are idempotent by key, so the redelivered records that had succeeded overwrite themselves.
"""

from __future__ import annotations

import gc

# Init imports create tens of thousands of objects (modules, classes, functions) that live as
# long as the container; the cyclic GC would scan them again and again while they are created
# (about a tenth of init) and in every full pass after. Collection resumes at the end of this
# module, with them frozen out of later passes in a Lambda container (imports this module once).
gc.disable()

import binascii
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alert_sink import AlertSink, DedupedEventBridgeAlertSink
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from capture_sink import CaptureSink, S3CaptureSink
from sinks import DynamoPredictionSink, ParkedSink, PredictionSink, SqsParkedSink

from evpm.alerts import select_alerts
from evpm.ingest import RawRecord, process_batch
from evpm.past_readings import PastUsed
from evpm.serving import History, ServedModels
from evpm.settings import ScorerSettings
from evpm_aws.metrics_bridge import publish_counts
from evpm_aws.past_readings import DynamoPastReadings
from evpm_aws.serving import CANARY_KEY, answer_canary, pinned_models, served_now

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = ScorerSettings()  # validated at cold start: a missing variable fails loudly
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
metrics = Metrics(
    namespace=settings.POWERTOOLS_METRICS_NAMESPACE, service=settings.POWERTOOLS_SERVICE_NAME
)
_sinks: tuple[PredictionSink, ParkedSink, AlertSink] | None = None
_capture: CaptureSink | None = (
    S3CaptureSink(
        settings.CAPTURE_BUCKET, prefix=settings.CAPTURE_PREFIX, rate=settings.CAPTURE_SAMPLING
    )
    if settings.CAPTURE_BUCKET
    else None
)
# Recent readings per vehicle, kept warm across events: Kinesis sends one vehicle (partition
# key) to one shard, and one shard to one container at a time, so a vehicle's history is here.
# A vehicle it does not hold (a fresh or recycled container, an evicted vehicle) gets its past
# back from the stored predictions, so a reading's features do not depend on where it landed.
_history = History(
    depth=1,
    max_vehicles=settings.HISTORY_MAX_VEHICLES,
    source=DynamoPastReadings(settings.PREDICTIONS_TABLE),
)


def _default_sinks() -> tuple[PredictionSink, ParkedSink, AlertSink]:
    """Build the AWS-backed sinks once per execution environment (clients reused warm)."""
    global _sinks
    if _sinks is None:
        _sinks = (
            DynamoPredictionSink(settings.PREDICTIONS_TABLE, ttl_days=settings.PREDICTION_TTL_DAYS),
            SqsParkedSink(settings.DLQ_URL),
            DedupedEventBridgeAlertSink(
                bus_name=settings.ALERT_BUS_NAME,
                dedup_table=settings.ALERT_DEDUP_TABLE,
                window_seconds=settings.ALERT_WINDOW_SECONDS,
            ),
        )
    return _sinks


def _raw(record: dict[str, Any]) -> RawRecord:
    """One record of a Kinesis event as delivered (``Records[i]`` of the Lambda event).

    Read from the event's dicts directly rather than through powertools'
    ``KinesisStreamEvent``: its properties cost a few microseconds a record, a tenth of the
    scorer's own time on a 500-record event. ``a2b_base64(strict_mode=True)`` is what
    ``b64decode(validate=True)`` calls.
    """
    kinesis = record["kinesis"]
    data = kinesis["data"]
    try:
        payload = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        payload = data.encode()  # not base64: parked downstream with the text as it came
    return RawRecord(
        sequence_number=kinesis["sequenceNumber"],
        partition_key=kinesis["partitionKey"],
        shard_id=record["eventID"].split(":", 1)[0],
        data=payload,
    )


def handle(
    event: dict[str, Any],
    *,
    predictions: PredictionSink,
    parked: ParkedSink,
    alerts: AlertSink,
    models: ServedModels | None = None,
    history: History | None = None,
    capture: CaptureSink | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Process one Kinesis event with the given sinks; returns the partial-failure response.

    ``models`` are the pinned versions to score with (none: the rules alone); ``history``
    holds each vehicle's recent readings across events, for the models' rolling features;
    ``capture`` keeps a copy of the stored predictions for the drift monitor (none: no copy).
    """
    raw = [_raw(record) for record in event["Records"]]
    outcome = process_batch(raw, models=models, history=history)

    write_failed = predictions.write(outcome.accepted) if outcome.accepted else []
    # The prediction writes are acknowledged (or failed) by now: a stream audit's ack time.
    stored_at = datetime.now(UTC).isoformat(timespec="microseconds")
    park_failed = parked.send(outcome.parked) if outcome.parked else []
    # Alert only on stored predictions: an unstored one is redelivered and alerts then.
    unstored = set(write_failed)
    pending = select_alerts([a for a in outcome.accepted if a.sequence_number not in unstored])
    alerted = alerts.publish(pending) if pending else None
    if capture is not None and raw:
        stored = [a for a in outcome.accepted if a.sequence_number not in unstored]
        batch_id = f"{raw[0].shard_id}-{raw[0].sequence_number}"
        kept = capture.capture(stored, batch_id=batch_id, captured_at=datetime.now(UTC))
        metrics.add_metric("RowsCaptured", MetricUnit.Count, max(kept, 0))
        metrics.add_metric("CaptureFailures", MetricUnit.Count, 1 if kept < 0 else 0)
    for record in outcome.parked:
        logger.warning(
            "record parked",
            extra={
                "reason": record.reason,
                "errors": [e.model_dump() for e in record.errors],
                "sequence_number": record.sequence_number,
            },
        )

    metrics.add_metric("RecordsReceived", MetricUnit.Count, len(raw))
    metrics.add_metric(
        "PredictionsWritten", MetricUnit.Count, len(outcome.accepted) - len(write_failed)
    )
    metrics.add_metric("RecordsParked", MetricUnit.Count, len(outcome.parked) - len(park_failed))
    # Stored predictions the anomaly model flagged: over PredictionsWritten, the anomaly rate.
    flagged = sum(
        1 for a in outcome.accepted if a.prediction.is_anomaly and a.sequence_number not in unstored
    )
    metrics.add_metric("AnomaliesFlagged", MetricUnit.Count, flagged)
    metrics.add_metric("WriteFailures", MetricUnit.Count, len(write_failed) + len(park_failed))
    alert_failed = alerted.failed if alerted else []
    metrics.add_metric("AlertsSent", MetricUnit.Count, alerted.sent if alerted else 0)
    metrics.add_metric("AlertsSuppressed", MetricUnit.Count, alerted.suppressed if alerted else 0)
    metrics.add_metric("AlertFailures", MetricUnit.Count, len(alert_failed))
    # What evpm_cli.stream_audit needs to tie these counts to the records put: the batch is a
    # contiguous, ordered run of one shard's records, so its ends name every record in it.
    if raw:
        metrics.add_metadata("shard_id", raw[0].shard_id)
        metrics.add_metadata("first_sequence_number", raw[0].sequence_number)
        metrics.add_metadata("last_sequence_number", raw[-1].sequence_number)
        metrics.add_metadata("stored_at", stored_at)

    failed = [int(seq) for seq in (*write_failed, *park_failed, *alert_failed)]
    if not failed:
        return {"batchItemFailures": []}
    first = min(failed)
    retry = [r.sequence_number for r in raw if int(r.sequence_number) >= first]
    logger.error(
        "writes failed; asking Kinesis to retry",
        extra={"first_failed": str(first), "retrying": len(retry), "failed": len(failed)},
    )
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in retry]}


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``app.handler``): Kinesis events, or the lifecycle's canary."""
    if CANARY_KEY in event:
        return answer_canary(event, pinned_models())
    predictions, parked, alerts = _default_sinks()
    _history.last_used = {}
    try:
        response = handle(
            event,
            predictions=predictions,
            parked=parked,
            alerts=alerts,
            models=served_now(pinned_models(), logger),
            history=_history,
            capture=_capture,
        )
        _report_rehydration(_history.last_used)
        return response
    finally:
        publish_counts(metrics)  # the domain code's fallbacks: BoosterFallback, ModelLoadFailures


def _report_rehydration(used: dict[str, PastUsed]) -> None:
    """Count the vehicles whose past was read back (and those with none stored) this batch."""
    if not used:
        return
    found = sum(1 for u in used.values() if u.readings)
    metrics.add_metric("HistoryRehydrated", MetricUnit.Count, found)
    metrics.add_metric("HistoryMissing", MetricUnit.Count, len(used) - found)
    logger.info(
        "history read back",
        extra={
            "vehicles": len(used),
            "with_past": found,
            "readings": sum(u.readings for u in used.values()),
        },
    )


if os.environ.get("AWS_EXECUTION_ENV"):  # set by Lambda; not where tests re-import this module
    gc.freeze()  # what init built stays for the container's life: never scanned again
gc.enable()
