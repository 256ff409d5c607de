"""The Fleet pages' data: vehicles with recent alerts, one vehicle's predictions over time and
the explanation of its latest prediction.

Where each comes from, and why:
- the vehicles with recent alerts: the scorer's alert-window table (one small item per vehicle
  and failure mode: the reading that raised the alert), read with a Scan; the API has no
  vehicle listing, and the audit queue cannot be read without consuming it;
- the predictions: the API's ``GET /vehicles/{id}/predictions`` with the user's key, page by
  page (100 a page, latest first), up to the number of points the page asks for;
- the explanation: the API's ``POST /explain`` (it needs the ``predict`` permission) on the
  vehicle's latest stored reading, which the predictions table keeps beside each prediction; the
  API reads the earlier readings back itself, so it explains the prediction the stream made.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from console.errors import NotFoundError, SourceUnavailableError
from console.evpm_api import EvpmApi
from evpm.past_readings import READING_ATTRIBUTE, unpack_readings
from evpm.telemetry import FEATURES, VEHICLE_ID_PATTERN

__all__ = [
    "AlertedVehicle",
    "ApiFleet",
    "Explanation",
    "FleetSource",
    "ModelExplanation",
    "PredictionPoint",
    "valid_vehicle_id",
]

_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
PAGE = 100  # the API's largest page


def valid_vehicle_id(value: str) -> bool:
    """Whether ``value`` can be a vehicle id at all (else the page is a 404 without a call)."""
    return bool(_VEHICLE_ID.match(value))


class AlertedVehicle(BaseModel):
    """A vehicle's latest alert window (newest reading first in the list)."""

    model_config = ConfigDict(frozen=True)

    vehicle_id: str
    last_alert_ts: str
    failure_modes: list[str]


class PredictionPoint(BaseModel):
    """The numbers of one stored prediction the charts draw."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ts: str
    status: str
    health_score: float
    failure_mode: str
    model_versions: dict[str, str] = {}
    anomaly_score: float | None = None
    is_anomaly: bool | None = None
    predicted_failure: str | None = None
    failure_probabilities: dict[str, float] | None = None
    rul_hours: float | None = None
    rul_low_hours: float | None = None
    rul_high_hours: float | None = None


class ModelExplanation(BaseModel):
    """One model's contributions for the latest reading, per signal, largest first."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: str | None
    kind: str
    target: str | None = None
    """The classifier's class explained (the predicted one); None for the others."""
    output: float | None
    base_value: float | None
    by_signal: list[tuple[str, float]]


class Explanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    vehicle_id: str
    ts: str
    models: list[ModelExplanation]


class FleetSource(Protocol):
    def alerted_vehicles(self, limit: int = 100) -> list[AlertedVehicle]: ...

    def predictions(self, key: str, vehicle_id: str, limit: int) -> list[PredictionPoint]:
        """Latest first; :class:`NotFoundError` when the vehicle has none."""
        ...

    def explanation(self, key: str, vehicle_id: str, predicted: str | None) -> Explanation:
        """``predicted``: the class to explain for the classifier (its latest prediction)."""
        ...


def _ranked(by_signal: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(((k, float(v)) for k, v in by_signal.items()), key=lambda kv: -abs(kv[1]))


def parse_explanation(body: dict[str, Any], predicted: str | None) -> Explanation:
    """The API's ``/explain`` answer as the page shows it (the classifier: the class it
    predicted, else the one with the largest margin)."""
    models = []
    for name, model in sorted((body.get("models") or {}).items()):
        classes = model.get("classes")
        target = None
        if classes:
            target = (
                predicted
                if predicted in classes
                else max(classes, key=lambda c: classes[c].get("output", float("-inf")))
            )
            part = classes[target]
        else:
            part = model
        models.append(
            ModelExplanation(
                model=name,
                version=str(model.get("version")) if model.get("version") is not None else None,
                kind=str(model.get("kind", "")),
                target=target,
                output=part.get("output"),
                base_value=part.get("base_value"),
                by_signal=_ranked(part.get("by_signal") or {}),
            )
        )
    return Explanation(vehicle_id=body["vehicle_id"], ts=body["ts"], models=models)


class ApiFleet:
    """:class:`FleetSource` over the evpm API and the two DynamoDB tables."""

    def __init__(
        self,
        api: EvpmApi,
        dynamodb: Any,
        *,
        predictions_table: str,
        alert_table: str,
        scan_limit: int = 5000,
    ) -> None:
        self._api = api
        self._dynamodb = dynamodb
        self.predictions_table = predictions_table
        self.alert_table = alert_table
        self.scan_limit = scan_limit

    def alerted_vehicles(self, limit: int = 100) -> list[AlertedVehicle]:
        latest: dict[str, tuple[str, set[str]]] = {}
        seen = 0
        try:
            paginator = self._dynamodb.get_paginator("scan")
            pages = paginator.paginate(
                TableName=self.alert_table,
                ProjectionExpression="vehicle_id, failure_mode, ts",
            )
            for page in pages:
                for item in page.get("Items", []):
                    vehicle = item.get("vehicle_id", {}).get("S")
                    if not vehicle:
                        continue
                    ts = item.get("ts", {}).get("S", "")
                    mode = item.get("failure_mode", {}).get("S", "")
                    last, modes = latest.get(vehicle, ("", set()))
                    latest[vehicle] = (max(last, ts), modes | {mode})
                seen += len(page.get("Items", []))
                if seen >= self.scan_limit:
                    break
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"the alert table could not be read: {exc}") from exc
        rows = [
            AlertedVehicle(vehicle_id=v, last_alert_ts=ts, failure_modes=sorted(m))
            for v, (ts, m) in latest.items()
        ]
        rows.sort(key=lambda r: r.last_alert_ts, reverse=True)
        return rows[:limit]

    def predictions(self, key: str, vehicle_id: str, limit: int) -> list[PredictionPoint]:
        points: list[PredictionPoint] = []
        cursor: str | None = None
        while len(points) < limit:
            params: dict[str, Any] = {"limit": min(PAGE, limit - len(points))}
            if cursor:
                params["next"] = cursor
            page = self._api.call("GET", f"/vehicles/{vehicle_id}/predictions", key, params=params)
            points += [PredictionPoint.model_validate(p) for p in page.get("predictions", [])]
            cursor = page.get("next")
            if not cursor:
                break
        if not points:
            raise NotFoundError(f"no predictions are stored for vehicle {vehicle_id!r}")
        return points

    def latest_reading(self, vehicle_id: str) -> dict[str, Any]:
        """The vehicle's latest stored reading as a telemetry record."""
        try:
            found = self._dynamodb.query(
                TableName=self.predictions_table,
                KeyConditionExpression="vehicle_id = :v",
                ExpressionAttributeValues={":v": {"S": vehicle_id}},
                ProjectionExpression="ts, #r",
                ExpressionAttributeNames={"#r": READING_ATTRIBUTE},
                ScanIndexForward=False,
                Limit=1,
            ).get("Items", [])
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"the predictions table could not be read: {exc}") from exc
        if not found or READING_ATTRIBUTE not in found[0]:
            raise NotFoundError(f"no stored reading of vehicle {vehicle_id!r} to explain")
        values = unpack_readings([found[0][READING_ATTRIBUTE]["B"]])[0]
        record: dict[str, Any] = {"vehicle_id": vehicle_id, "timestamp": found[0]["ts"]["S"]}
        record.update(zip(FEATURES, map(float, values), strict=True))
        return record

    def explanation(self, key: str, vehicle_id: str, predicted: str | None) -> Explanation:
        record = self.latest_reading(vehicle_id)
        body = self._api.call("POST", "/explain", key, json={"records": [record]})
        return parse_explanation(body, predicted)


def chart_series(points: list[PredictionPoint]) -> dict[str, Any]:
    """The charts' data, oldest first: x as epoch milliseconds, one list per line."""
    ordered = sorted(points, key=lambda p: p.ts)
    classes = sorted({c for p in ordered for c in (p.failure_probabilities or {})})
    return {
        "t": [
            int(datetime.fromisoformat(p.ts.replace("Z", "+00:00")).timestamp() * 1000)
            for p in ordered
        ],
        "rul": [p.rul_hours for p in ordered],
        "rul_low": [p.rul_low_hours for p in ordered],
        "rul_high": [p.rul_high_hours for p in ordered],
        "anomaly": [p.anomaly_score for p in ordered],
        "health": [p.health_score for p in ordered],
        "probabilities": {
            c: [(p.failure_probabilities or {}).get(c) for p in ordered] for c in classes
        },
    }
