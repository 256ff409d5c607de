"""Where the drift monitor's inputs come from and its results go, each behind a small class.

The capture (S3), the outcomes (DynamoDB), the pinned versions' profiles (SSM pins → MLflow
registry → the version's ``artifacts/drift_profile.json`` in S3), the drift history
(DynamoDB) and the events (EventBridge). AWS clients are parameters, built only when none is
passed, so tests plug in moto's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from evpm.drift import ReferenceProfile
from evpm.drift.capture import hour_prefixes
from evpm.drift.monitor import MonitorResult
from evpm.mlflow_rest import MlflowRegistry
from evpm.outcomes import Outcome, outcome_of_feedback
from evpm_aws.model_store import SsmPinStore, mlflow_uri, split_s3

__all__ = ["CaptureSource", "DriftHistory", "EventBus", "OutcomeStore", "PinnedProfiles"]

logger = Logger(child=True)
PROFILE_PATH = "artifacts/drift_profile.json"
SOURCE = "evpm.monitor"
_HISTORY_REPORT_BYTES = 300_000  # well under DynamoDB's 400 KB item limit


class CaptureSource:
    """The capture objects written in ``[start, end)``: listed by hourly prefix, kept by
    ``LastModified`` (the time the scorer stored them)."""

    def __init__(self, bucket: str, prefix: str, *, client: Any | None = None) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.client = client or boto3.client("s3")

    def keys(self, start: datetime, end: datetime) -> list[str]:
        keys = []
        paginator = self.client.get_paginator("list_objects_v2")
        for prefix in hour_prefixes(self.prefix, start, end):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [
                    o["Key"] for o in page.get("Contents", []) if start <= o["LastModified"] < end
                ]
        return keys

    def read(self, keys: list[str]) -> Iterator[bytes]:
        for key in keys:
            yield self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _scan(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class OutcomeStore:
    """Every outcome known (a maintenance log is small next to the readings it grades): the
    label files' outcomes, and the ``/feedback`` reports of the labels table read as outcomes
    (:func:`evpm.outcomes.outcome_of_feedback`: a reading with RUL left failed at reading +
    RUL; ``none`` was fine at the reading)."""

    def __init__(self, table: str, labels_table: str = "", *, resource: Any | None = None):
        dynamodb = resource or boto3.resource("dynamodb")
        self.table = dynamodb.Table(table)
        self.labels = dynamodb.Table(labels_table) if labels_table else None

    def all(self) -> list[Outcome]:
        outcomes = [
            Outcome(
                vehicle_id=i["vehicle_id"],
                at=i["at"],
                kind=i["kind"],
                failure_mode=i.get("failure_mode"),
            )
            for i in _scan(self.table)
        ]
        for item in _scan(self.labels) if self.labels is not None else []:
            rul = item.get("rul_hours")
            outcome = outcome_of_feedback(
                item["vehicle_id"],
                datetime.fromisoformat(item["ts"]),
                item.get("failure_mode"),
                None if rul is None else float(rul),
            )
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes


class PinnedProfiles:
    """Each pinned version with its drift profile (``None`` and a reason when it has none)."""

    def __init__(self, pins_parameter: str, uri_parameter: str, *, ssm: Any = None, s3: Any = None):
        self.ssm = ssm or boto3.client("ssm")
        self.s3 = s3 or boto3.client("s3")
        self.pins = SsmPinStore(self.ssm, pins_parameter)
        self.uri_parameter = uri_parameter

    def load(self) -> tuple[dict[str, tuple[int, ReferenceProfile | None]], dict[str, str]]:
        pins = self.pins.read()
        if not pins:
            return {}, {}
        registry = MlflowRegistry(mlflow_uri(self.ssm, self.uri_parameter))
        out: dict[str, tuple[int, ReferenceProfile | None]] = {}
        missing: dict[str, str] = {}
        for name, version in sorted(pins.items()):
            try:
                source = str(registry.version(name, version)["source"])
                bucket, prefix = split_s3(source)
                body = self.s3.get_object(Bucket=bucket, Key=f"{prefix}/{PROFILE_PATH}")["Body"]
                out[name] = (int(version), ReferenceProfile.model_validate_json(body.read()))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                missing[name] = f"no drift profile at the version's {PROFILE_PATH} ({code})"
                out[name] = (int(version), None)
        return out, missing


def _dynamo(value: Any) -> Any:
    """JSON numbers as DynamoDB wants them (Decimal), NaN and infinities as null."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


class DriftHistory:
    """One item per model and window: ``model`` + ``window_end``, the verdict and its report."""

    def __init__(self, table: str, *, resource: Any | None = None) -> None:
        self.table = (resource or boto3.resource("dynamodb")).Table(table)

    def put(self, result: MonitorResult, event_ids: dict[str, str]) -> int:
        end = result.end.isoformat()
        for v in result.verdicts:
            report = v.model_dump_json()
            self.table.put_item(
                Item=_dynamo(
                    {
                        "model": v.model,
                        "window_end": end,
                        "window_start": result.start.isoformat(),
                        "version": v.version,
                        "status": v.drift.status,
                        "quality_status": v.quality.status,
                        "rows": v.rows,
                        "labelled": v.drift.labelled,
                        "drifted": v.drifted_signals,
                        "quality_problems": v.quality_problems,
                        "events": event_ids,
                        "psi": {c.column: c.psi for c in v.drift.columns},
                        "quality": {m.name: m.live for m in v.quality.metrics},
                        "report": report if len(report) < _HISTORY_REPORT_BYTES else None,
                    }
                )
            )
        return len(result.verdicts)


class EventBus:
    """``DriftDetected`` / ``QualityDegraded`` on the alert bus; returns each event's id."""

    def __init__(self, bus: str, *, client: Any | None = None) -> None:
        self.bus = bus
        self.client = client or boto3.client("events")

    def publish(self, events: dict[str, dict[str, Any]]) -> dict[str, str]:
        if not events:
            return {}
        entries = [
            {
                "Source": SOURCE,
                "DetailType": kind,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": self.bus,
            }
            for kind, detail in events.items()
        ]
        response = self.client.put_events(Entries=entries)
        ids = {}
        for kind, entry in zip(events, response["Entries"], strict=True):
            if "EventId" in entry:
                ids[kind] = entry["EventId"]
            else:
                logger.error("event not published", extra={"type": kind, "error": entry})
        if len(ids) < len(events):
            raise RuntimeError(f"{len(events) - len(ids)} drift event(s) not published")
        return ids
