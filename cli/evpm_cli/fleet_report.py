"""What the models made of a sent fleet, beside what they did on held-out nominal readings.

After ``evpm send`` has put a simulated fleet (:mod:`evpm_cli.fleet_stream`) on the stream,
this reads the stored predictions of exactly those readings back from the predictions table
(partition key ``vehicle_id``, sort key ``ts``), waiting until every valid one is stored, and
reports:

* the **anomaly rate** (``is_anomaly``) and the **predicted-failure rate** (``predicted_failure``
  other than ``none``) over the nominal vehicles' counted readings;
* the models' own rates on held-out nominal readings, read from the registry: the metrics
  ``nominal_flag_rate`` (``ev-anomaly``) and ``nominal_failure_rate`` (``ev-classifier``) that
  training logs with each version (``training_job.pipeline``), of the versions that wrote
  the predictions. A version trained before those metrics existed has none: the reference is
  then reported as unavailable, never made up;
* each degraded vehicle: the share of its last readings flagged (either way) and what failure
  mode the classifier named.

The I/O takes boto3 clients and an :class:`evpm.mlflow_rest.MlflowRegistry`; the arithmetic
(:func:`summarise`) is pure.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from evpm.mlflow_rest import MlflowError, MlflowRegistry
from evpm_cli.fleet_stream import WARMUP, SentVehicle

__all__ = [
    "FLAGGED_SHARE",
    "LATE_READINGS",
    "REFERENCE_METRICS",
    "FleetSummary",
    "Reference",
    "read_predictions",
    "reference_rates",
    "summarise",
]

REFERENCE_METRICS: dict[str, tuple[str, str]] = {
    "anomaly_rate": ("ev-anomaly", "nominal_flag_rate"),
    "failure_rate": ("ev-classifier", "nominal_failure_rate"),
}
"""Rate -> (model, metric its registered versions carry for held-out nominal readings)."""

LATE_READINGS = 24
"""A degraded vehicle is judged on its last day: is it flagged as its failure nears?"""
FLAGGED_SHARE = 0.5
"""...and called flagged when most of that day's readings are (anomalous or failing): one
stray flag in a day is what a healthy vehicle shows too (about 1 % of its readings)."""

_NAMES = {  # by placeholder: no attribute name can then collide with a reserved word
    "#v": "vehicle_id",
    "#t": "ts",
    "#a": "is_anomaly",
    "#f": "predicted_failure",
    "#m": "model_versions",
}
_FIELDS = TypeDeserializer()


def read_predictions(
    dynamodb: Any,
    table: str,
    sent: dict[str, Sequence[str]],
    *,
    timeout: float,
    on_progress: Callable[[int], None] = lambda n: None,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, list[dict[str, Any]]]:
    """The stored predictions of the sent readings (vehicle id -> items, oldest first).

    ``sent`` maps each vehicle to the ``ts`` of its valid readings, in time order. A vehicle
    is read once the prediction of its last reading is there (one ``BatchGetItem`` per 100
    vehicles per round, so waiting costs little), and read again while some of its readings
    are still missing; ``on_progress(vehicles complete)`` after every round. Returns what is
    stored when all is, or when ``timeout`` seconds have passed (the caller compares counts).
    """
    deadline = clock() + timeout
    pending = {vid for vid, stamps in sent.items() if stamps}
    done: dict[str, list[dict[str, Any]]] = {vid: [] for vid in sent}
    while True:
        ready = _last_stored(dynamodb, table, {vid: sent[vid][-1] for vid in pending})
        for vid in ready:
            items = _query(dynamodb, table, vid, sent[vid][0])
            wanted = set(sent[vid])
            done[vid] = [item for item in items if item["ts"] in wanted]
            if len(done[vid]) >= len(wanted):
                pending.discard(vid)
        on_progress(len(sent) - len(pending))
        if not pending or clock() >= deadline:
            return done
        sleep(poll)


def _last_stored(dynamodb: Any, table: str, last: dict[str, str]) -> list[str]:
    """Which vehicles' last reading has a stored prediction."""
    found: list[str] = []
    vehicles = sorted(last)
    for i in range(0, len(vehicles), 100):
        keys = [{"vehicle_id": {"S": v}, "ts": {"S": last[v]}} for v in vehicles[i : i + 100]]
        request = {
            table: {
                "Keys": keys,
                "ProjectionExpression": "#v",
                "ExpressionAttributeNames": {"#v": "vehicle_id"},
            }
        }
        while request:
            answer = dynamodb.batch_get_item(RequestItems=request)
            found += [item["vehicle_id"]["S"] for item in answer["Responses"].get(table, [])]
            request = answer.get("UnprocessedKeys") or {}
    return found


def _query(dynamodb: Any, table: str, vehicle_id: str, first_ts: str) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="#v = :v AND #t >= :t",
        ExpressionAttributeValues={":v": {"S": vehicle_id}, ":t": {"S": first_ts}},
        ExpressionAttributeNames=_NAMES,
        ProjectionExpression=", ".join(_NAMES),
    )
    return [
        {k: _FIELDS.deserialize(v) for k, v in item.items()}
        for page in pages
        for item in page["Items"]
    ]


@dataclass(frozen=True)
class Reference:
    """The models' rates on held-out nominal readings, per rate (None: not in the registry)."""

    rates: dict[str, float | None]
    readings: dict[str, float | None]
    versions: dict[str, str]
    note: str = ""


def reference_rates(registry: MlflowRegistry, versions: dict[str, str]) -> Reference:
    """Read each rate's metric from the registered version that scored the readings.

    Looked for in the version's ``metrics`` tag (set by the lifecycle's Register step and by
    ``training_job train``), then in its run's logged metrics.
    """
    rates: dict[str, float | None] = {}
    readings: dict[str, float | None] = {}
    notes: list[str] = []
    for rate, (model, metric) in REFERENCE_METRICS.items():
        rates[rate] = readings[rate] = None
        version = versions.get(model)
        if version is None or not version.isdigit():
            notes.append(f"{model} did not score these readings")
            continue
        try:
            metrics = _version_metrics(registry, model, int(version))
        except MlflowError as exc:
            notes.append(f"{model} v{version}: registry unreachable ({exc})")
            continue
        if metric not in metrics:
            notes.append(f"{model} v{version} was trained before {metric} was recorded")
            continue
        rates[rate] = float(metrics[metric])
        readings[rate] = metrics.get(f"{metric}_rows")
    return Reference(rates=rates, readings=readings, versions=versions, note="; ".join(notes))


def _version_metrics(registry: MlflowRegistry, model: str, version: int) -> dict[str, float]:
    found = registry.version(model, version)
    raw = found.get("tags") or []
    tags = dict(raw) if isinstance(raw, dict) else {t["key"]: t["value"] for t in raw}
    try:
        metrics = json.loads(tags.get("metrics") or "{}")
    except json.JSONDecodeError:
        metrics = {}
    if not metrics and found.get("run_id"):
        run = registry.run(found["run_id"])
        metrics = {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


@dataclass
class FleetSummary:
    """Rates over the nominal vehicles' counted readings, and each degraded vehicle's end."""

    expected: int
    stored: int
    counted: int
    anomaly_rate: float | None
    failure_rate: float | None
    versions: dict[str, str]
    mixed_versions: bool
    degraded: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, reference: Reference | None) -> dict[str, Any]:
        """JSON-ready, with the reference and the ratio of each rate to it."""
        out: dict[str, Any] = {
            "predictions_expected": self.expected,
            "predictions_stored": self.stored,
            "nominal": {
                "readings_counted": self.counted,
                "anomaly_rate": self.anomaly_rate,
                "failure_rate": self.failure_rate,
                "model_versions": self.versions,
            },
            "degraded": self.degraded,
        }
        if self.mixed_versions:
            out["nominal"]["note"] = "the pins moved during the run: several versions scored"
        if reference is not None:
            ref = {"anomaly_rate": reference.rates["anomaly_rate"]}
            ref["failure_rate"] = reference.rates["failure_rate"]
            ref["readings"] = reference.readings
            if reference.note:
                ref["note"] = reference.note
            out["nominal"]["reference"] = ref
            out["nominal"]["ratio_to_reference"] = {
                rate: _ratio(getattr(self, rate), reference.rates[rate])
                for rate in REFERENCE_METRICS
            }
        return out


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    if mine is None or theirs is None:
        return None
    if theirs == 0:
        return 1.0 if mine == 0 else float("inf")
    return mine / theirs


def summarise(
    vehicles: Iterable[SentVehicle],
    sent: dict[str, Sequence[str]],
    stored: dict[str, list[dict[str, Any]]],
) -> FleetSummary:
    """Rates over readings ``WARMUP`` onwards of the nominal vehicles; late readings of the
    degraded ones. A reading no model scored (rules only) counts in neither rate."""
    counted = 0
    flags: list[bool] = []
    failing: list[bool] = []
    versions: Counter[tuple[tuple[str, str], ...]] = Counter()
    degraded: list[dict[str, Any]] = []
    for vehicle in vehicles:
        stamps = sent.get(vehicle.vehicle_id, [])
        items = sorted(stored.get(vehicle.vehicle_id, []), key=lambda i: i["ts"])
        if vehicle.kind == "nominal":
            window = set(stamps[WARMUP:])
            for item in items:
                if item["ts"] not in window:
                    continue
                counted += 1
                versions[tuple(sorted((item.get("model_versions") or {}).items()))] += 1
                if item.get("is_anomaly") is not None:
                    flags.append(bool(item["is_anomaly"]))
                if item.get("predicted_failure") is not None:
                    failing.append(item["predicted_failure"] != "none")
        else:
            degraded.append(_degraded(vehicle, items[-LATE_READINGS:]))
    top = dict(versions.most_common(1)[0][0]) if versions else {}
    return FleetSummary(
        expected=sum(len(s) for s in sent.values()),
        stored=sum(len(i) for i in stored.values()),
        counted=counted,
        anomaly_rate=sum(flags) / len(flags) if flags else None,
        failure_rate=sum(failing) / len(failing) if failing else None,
        versions=top,
        mixed_versions=len(versions) > 1,
        degraded=degraded,
    )


def _degraded(vehicle: SentVehicle, late: list[dict[str, Any]]) -> dict[str, Any]:
    anomalous = [bool(i.get("is_anomaly")) for i in late]
    predicted = [i.get("predicted_failure") or "none" for i in late]
    named = Counter(p for p in predicted if p != "none")
    flagged = [a or p != "none" for a, p in zip(anomalous, predicted, strict=True)]
    return {
        "vehicle_id": vehicle.vehicle_id,
        "label": vehicle.label,
        "hours_to_failure_after_last": vehicle.hours_to_failure,
        "late_readings": len(late),
        "flagged_share": sum(flagged) / len(late) if late else None,
        "anomaly_share": sum(anomalous) / len(late) if late else None,
        "predicted_modes": dict(named.most_common()),
        "flagged": bool(late) and sum(flagged) / len(late) >= FLAGGED_SHARE,
    }
