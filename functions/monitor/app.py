"""Drift monitor Lambda: judge the last window of captured data against the pinned versions.

Runs on an EventBridge schedule (every 5 minutes here) and on demand (``evpm drift run``, which
may pass ``window_minutes`` or ``start``, ``end`` and ``publish``). Thin: the decisions are
:func:`evpm.drift.monitor.monitor_window`'s, the I/O is :mod:`sources`. Results go three ways:
metrics (namespace ``evpm``, exported to Prometheus), the drift history table, and
``DriftDetected`` / ``QualityDegraded`` events on the alert bus (which start retraining).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field
from sources import CaptureSource, DriftHistory, EventBus, OutcomeStore, PinnedProfiles

from evpm.drift import Thresholds, read_captures
from evpm.drift.monitor import MonitorResult, monitor_window
from evpm.settings import MonitorSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = MonitorSettings()
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)


class MonitorRequest(BaseModel):
    """An on-demand run's options (a scheduled event carries none of them)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    window_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    start: datetime | None = Field(default=None, description="overrides window_minutes")
    end: datetime | None = None
    publish: bool = True


def run(request: MonitorRequest, *, sources: dict[str, Any] | None = None) -> dict[str, Any]:
    """One monitor run; returns its summary (what ``evpm drift run`` prints)."""
    io = sources or _sources()
    end = (request.end or datetime.now(UTC)).astimezone(UTC)
    start = (
        request.start or end - timedelta(minutes=request.window_minutes or settings.WINDOW_MINUTES)
    ).astimezone(UTC)
    if start >= end:
        raise ValueError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    began = time.perf_counter()
    keys = io["capture"].keys(start, end)
    captured = read_captures(io["capture"].read(keys))
    profiles, missing = io["profiles"].load()
    result = monitor_window(
        captured,
        io["outcomes"].all(),
        profiles,
        start=start,
        end=end,
        missing=missing,
        thresholds=Thresholds(min_rows=settings.MIN_ROWS, min_labelled=settings.MIN_LABELLED),
    )
    event_ids = io["bus"].publish(result.events) if request.publish else {}
    io["history"].put(result, event_ids)
    _publish_metrics(result)
    summary = _summary(result, event_ids, len(keys), time.perf_counter() - began)
    logger.info("window judged", extra={k: v for k, v in summary.items() if k != "verdicts"})
    return summary


def _sources() -> dict[str, Any]:
    return {
        "capture": CaptureSource(settings.CAPTURE_BUCKET, settings.CAPTURE_PREFIX),
        "outcomes": OutcomeStore(settings.OUTCOMES_TABLE, settings.LABELS_TABLE),
        "profiles": PinnedProfiles(settings.PINS_PARAMETER, settings.MLFLOW_URI_PARAMETER),
        "history": DriftHistory(settings.HISTORY_TABLE),
        "bus": EventBus(settings.ALERT_BUS_NAME),
    }


def _publish_metrics(result: MonitorResult) -> None:
    """Per model (bounded: three models and their columns): rows judged, what drifted and how
    far (PSI per column), what live quality says. One EMF line per metric and dimension set."""
    for v in result.verdicts:
        dims = {"model": v.model}
        _one("DriftWindowRows", v.rows, dims)
        _one("DriftColumnsDrifted", len(v.drifted_signals), dims)
        _one("DriftQualityProblems", len(v.quality_problems), dims)
        _one("DriftInsufficientData", int(v.drift.status == "insufficient_data"), dims)
        for c in v.drift.columns:
            _one("DriftPsi", c.psi, {**dims, "column": c.column}, MetricUnit.NoUnit)
        for m in v.quality.metrics:
            if m.live is not None:
                _one("LiveQuality", m.live, {**dims, "metric": m.name}, MetricUnit.NoUnit)


def _one(
    name: str, value: float, dims: dict[str, str], unit: MetricUnit = MetricUnit.Count
) -> None:
    namespace = settings.POWERTOOLS_METRICS_NAMESPACE
    with single_metric(name=name, unit=unit, value=value, namespace=namespace) as metric:
        for key, dim in dims.items():
            metric.add_dimension(name=key, value=dim)


def _summary(
    result: MonitorResult, event_ids: dict[str, str], objects: int, seconds: float
) -> dict[str, Any]:
    return {
        "window": {"start": result.start.isoformat(), "end": result.end.isoformat()},
        "objects": objects,
        "rows": result.rows,
        "duplicates": result.duplicates,
        "seconds": round(seconds, 2),
        "events": event_ids,
        "missing_profiles": result.missing_profiles,
        "verdicts": [
            {
                "model": v.model,
                "version": v.version,
                "rows": v.rows,
                "status": v.drift.status,
                "drifted": v.drifted_signals,
                "quality_status": v.quality.status,
                "quality_problems": v.quality_problems,
                "skipped": v.drift.skipped,
                "top": [
                    {
                        "column": c.column,
                        "psi": c.psi,
                        "psi_limit": c.psi_limit,
                        "p_adjusted": c.p_adjusted,
                        "drifted": c.drifted,
                    }
                    for c in sorted(v.drift.columns, key=lambda c: -c.psi / c.psi_limit)[:5]
                ],
            }
            for v in result.verdicts
        ],
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``app.handler``): a schedule event, or an on-demand request."""
    scheduled = event.get("source") == "aws.events"
    return run(MonitorRequest() if scheduled else MonitorRequest.model_validate(event))
