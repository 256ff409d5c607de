"""Turn validated readings into predictions through a pluggable, vectorised scorer.

Every model that scores readings — the ``rules-v1`` assessment today, the ML models later —
sits behind the :class:`Scorer` protocol and sees the whole batch as one ``(n, 24)`` matrix, so
a Kinesis batch of 500 records costs one call, not 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import numpy as np

from evpm import health
from evpm.predictions import Prediction, record_id
from evpm.serving import History, ModelOutputs, ServedModels, score_models
from evpm.telemetry import TelemetryRecord, to_matrix

__all__ = ["RULES_SCORER", "RulesScorer", "Scorer", "score_records"]


@runtime_checkable
class Scorer(Protocol):
    """Anything that assesses a feature matrix, row by row, in one call.

    ``name`` is the key under which ``version`` appears in a prediction's ``model_versions``.
    """

    name: str
    version: str

    def assess(self, matrix: np.ndarray) -> list[health.Assessment]:
        """One assessment per row of an ``(n, 24)`` matrix in ``FEATURES`` order."""
        ...


class RulesScorer:
    """The ``rules-v1`` health assessment (:mod:`evpm.health`) as a :class:`Scorer`."""

    name = "health"
    version = health.MODEL_VERSION

    def assess(self, matrix: np.ndarray) -> list[health.Assessment]:
        return health.assess(matrix)


RULES_SCORER = RulesScorer()


def score_records(
    records: Sequence[TelemetryRecord],
    *,
    scorer: Scorer = RULES_SCORER,
    models: ServedModels | None = None,
    history: History | None = None,
    now: datetime | None = None,
) -> list[Prediction]:
    """Score readings in one vectorised call; the i-th prediction belongs to the i-th record.

    The rules give every reading its health summary; the pinned ``models`` (when any are
    served) add the anomaly score, the failure-mode probabilities and the RUL, each reading's
    features taken from its vehicle's ``history``. ``model_versions`` names every model used.
    ``now`` stamps ``scored_at`` (defaults to the current UTC time; pass it for reproducible
    output).

    Example::

        [p.status for p in score_records([record])]   # ["ok"]
    """
    if not records:
        return []
    scored_at = now or datetime.now(UTC)
    matrix = to_matrix(records)
    assessments = scorer.assess(matrix)
    if len(assessments) != len(records):
        raise ValueError(
            f"scorer {scorer.name}/{scorer.version} returned {len(assessments)} assessments "
            f"for {len(records)} records"
        )
    versions = {scorer.name: scorer.version}
    extra: list[dict[str, object]] = [{} for _ in records]
    if models is not None and models.bundles:
        times = np.array([r.timestamp.timestamp() for r in records], dtype=np.float64)
        out = score_models(models, [r.vehicle_id for r in records], times, matrix, history)
        versions |= models.version_labels()
        _add_model_fields(extra, out)
    stamps = [record.ts for record in records]
    return [
        Prediction(
            vehicle_id=record.vehicle_id,
            ts=ts,
            record_id=record_id(record.vehicle_id, ts),
            status=assessment.status,
            health_score=assessment.health_score,
            failure_mode=assessment.failure_mode,
            findings=assessment.findings,
            model_versions=versions,
            scored_at=scored_at,
            **fields,  # type: ignore[arg-type]
        )
        for record, ts, assessment, fields in zip(records, stamps, assessments, extra, strict=True)
    ]


def _add_model_fields(extra: list[dict[str, object]], out: ModelOutputs) -> None:
    """Each reading's model outputs as plain Python values (arrays converted once, not per
    element: a 500-record batch would otherwise pay thousands of numpy scalar conversions)."""
    if out.anomaly_score is not None:
        flags = out.is_anomaly.tolist() if out.is_anomaly is not None else [None] * len(extra)
        for fields, score, flag in zip(extra, out.anomaly_score.tolist(), flags, strict=True):
            fields["anomaly_score"] = score
            fields["is_anomaly"] = flag
    if out.failure_proba is not None and out.failure_mode is not None:
        classes = out.classes
        modes, probas = out.failure_mode.tolist(), out.failure_proba.tolist()
        for fields, mode, proba in zip(extra, modes, probas, strict=True):
            fields["predicted_failure"] = str(mode)
            fields["failure_probabilities"] = dict(zip(classes, proba, strict=True))
    if out.rul_hours is not None:
        for fields, hours in zip(extra, out.rul_hours.tolist(), strict=True):
            fields["rul_hours"] = hours
    if out.rul_low_hours is not None and out.rul_high_hours is not None:
        lows, highs = out.rul_low_hours.tolist(), out.rul_high_hours.tolist()
        for fields, low, high in zip(extra, lows, highs, strict=True):
            fields["rul_low_hours"] = low
            fields["rul_high_hours"] = high
