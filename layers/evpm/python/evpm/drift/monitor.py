"""One run of the drift monitor, as a pure function: captured rows in, verdicts and events out.

The monitor function (``functions/monitor``) gathers the window's captured rows, the outcomes
known so far and each pinned version's reference profile, and calls :func:`monitor_window`;
everything it decides is decided here, so it is tested without AWS.

Per pinned model: the rows that version scored are joined with ground truth
(:func:`evpm.outcomes.grade`), judged against the version's profile (inputs, its outputs,
the labels: :func:`evpm.drift.judge_window`) and graded (:func:`evpm.drift.live_quality`).
Then, across models, at most two events: ``DriftDetected`` when inputs or outputs drifted,
``QualityDegraded`` when the labels drifted or a live figure fell below its limit. Each names
the models, the columns or figures, the window and the pinned versions; a window without
enough rows names nothing and never alarms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evpm.drift.capture import Captured
from evpm.drift.profile import ReferenceProfile, hour_of_day
from evpm.drift.quality import QualityReport, QualityThresholds, live_quality
from evpm.drift.window import Thresholds, WindowReport, judge_window
from evpm.outcomes import Outcome, grade

__all__ = [
    "DRIFT_DETECTED",
    "QUALITY_DEGRADED",
    "EventType",
    "ModelVerdict",
    "MonitorResult",
    "monitor_window",
]

_TRUTH = ("true_rul_hours", "true_failure_mode")
EventType = Literal["DriftDetected", "QualityDegraded"]
DRIFT_DETECTED: EventType = "DriftDetected"
QUALITY_DEGRADED: EventType = "QualityDegraded"


class ModelVerdict(BaseModel):
    """What the monitor concluded about one pinned version in one window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: int
    rows: int = Field(description="captured rows this version scored in the window")
    other_rows: int = Field(description="rows scored by other versions (left out)")
    drift: WindowReport
    quality: QualityReport

    @property
    def drifted_signals(self) -> list[str]:
        return self.drift.drifted("input") + self.drift.drifted("output")

    @property
    def quality_problems(self) -> list[str]:
        return self.drift.drifted("label") + self.quality.degraded()


class MonitorResult(BaseModel):
    """Every verdict of the window, and the events to publish (``detail-type`` → detail)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime
    end: datetime
    rows: int
    duplicates: int
    verdicts: list[ModelVerdict]
    events: dict[EventType, dict[str, Any]]
    missing_profiles: dict[str, str] = Field(
        default={}, description="pinned models not judged, with the reason"
    )


def _rows_of(captured: Captured, model: str, version: int) -> np.ndarray:
    """Which captured rows the given version of ``model`` scored."""
    match = [str(s.get(model)) == str(version) for s in captured.version_sets]
    return np.asarray(match, dtype=bool)[captured.version_index] if match else np.zeros(0, bool)


def monitor_window(
    captured: Captured,
    outcomes: Iterable[Outcome],
    profiles: Mapping[str, tuple[int, ReferenceProfile | None]],
    *,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    quality_thresholds: QualityThresholds | None = None,
    horizon_hours: float = 336.0,
    rul_cap_hours: float = 720.0,
    missing: Mapping[str, str] | None = None,
) -> MonitorResult:
    """Judge every pinned model (``profiles``: name → (version, profile or None)).

    Example: ``monitor_window(read_captures(blobs), outcomes, {"ev-rul": (3, profile)},
    start=t0, end=t1).events`` is ``{}`` when nothing changed.
    """
    limits = thresholds or Thresholds()
    graded = None
    if captured.rows:
        graded = grade(
            captured.columns["vehicle_id"],
            captured.seconds,
            outcomes,
            horizon_hours=horizon_hours,
            rul_cap_hours=rul_cap_hours,
        )
    hours = hour_of_day(captured.seconds) if captured.rows else np.zeros(0, np.int64)
    verdicts: list[ModelVerdict] = []
    skipped = dict(missing or {})
    for model, (version, profile) in profiles.items():
        if profile is None:
            skipped.setdefault(model, "no drift profile logged with this version")
            continue
        mine = _rows_of(captured, model, version) if captured.rows else np.zeros(0, bool)
        columns: dict[str, np.ndarray] = {k: v[mine] for k, v in captured.columns.items()}
        if graded is not None:
            columns["true_rul_hours"] = graded.true_rul_hours[mine]
            columns["true_failure_mode"] = graded.true_failure_mode[mine]
        verdicts.append(
            ModelVerdict(
                model=model,
                version=version,
                rows=int(mine.sum()),
                other_rows=int(captured.rows - mine.sum()),
                drift=judge_window(profile, columns, hours[mine], limits),
                quality=live_quality(
                    {k: columns[k] for k in (*profile.columns("output"), *_TRUTH) if k in columns},
                    profile.quality,
                    quality_thresholds,
                ),
            )
        )
    return MonitorResult(
        start=start,
        end=end,
        rows=captured.rows,
        duplicates=captured.duplicates,
        verdicts=verdicts,
        events=_events(verdicts, start, end),
        missing_profiles=skipped,
    )


def _events(
    verdicts: list[ModelVerdict], start: datetime, end: datetime
) -> dict[EventType, dict[str, Any]]:
    window = {"start": start.isoformat(), "end": end.isoformat()}
    versions = {v.model: v.version for v in verdicts}
    events: dict[EventType, dict[str, Any]] = {}
    drifted = {v.model: v.drifted_signals for v in verdicts if v.drifted_signals}
    if drifted:
        psi = {
            v.model: {c.column: c.psi for c in v.drift.columns if c.drifted and c.role != "label"}
            for v in verdicts
            if v.model in drifted
        }
        events[DRIFT_DETECTED] = {
            "models": sorted(drifted),
            "signals": drifted,
            "psi": psi,
            "window": window,
            "versions": versions,
        }
    degraded = {v.model: v.quality_problems for v in verdicts if v.quality_problems}
    if degraded:
        figures = {
            v.model: {
                m.name: {"live": m.live, "baseline": m.baseline, "limit": m.limit}
                for m in v.quality.metrics
                if m.status == "degraded"
            }
            for v in verdicts
            if v.model in degraded
        }
        events[QUALITY_DEGRADED] = {
            "models": sorted(degraded),
            "problems": degraded,
            "quality": figures,
            "window": window,
            "versions": versions,
        }
    return events
