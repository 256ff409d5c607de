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

    def judge(self, matrix: np.ndarray) -> health.Verdicts:
        """:meth:`assess` as :class:`evpm.health.Verdicts` (what :func:`score_records` reads:
        no assessment object per reading)."""
        return health.judge(matrix)


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
    judge = getattr(scorer, "judge", None)  # the rules' batch verdicts, when it has them
    verdicts = judge(matrix) if judge is not None else health.Verdicts.of(scorer.assess(matrix))
    if len(verdicts.status) != len(records):
        raise ValueError(
            f"scorer {scorer.name}/{scorer.version} returned {len(verdicts.status)} assessments "
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
    # Every value below is already what validation would make of it (validated records and
    # assessments, model outputs as Python floats and bools, RUL clipped at 0, a UTC time),
    # so the predictions are built without validating each one again: the same objects
    # (a test compares them with validated ones), at a fraction of the cost per reading.
    scored_at = Prediction._to_utc(scored_at)
    return [
        _unvalidated(
            vehicle_id=record.vehicle_id,
            ts=ts,
            record_id=record_id(record.vehicle_id, ts),
            status=status,
            health_score=score,
            failure_mode=mode,
            findings=list(findings),
            model_versions=dict(versions),
            scored_at=scored_at,
            **fields,
        )
        for record, ts, status, score, mode, findings, fields in zip(
            records,
            stamps,
            verdicts.status,
            verdicts.health_score,
            verdicts.failure_mode,
            verdicts.findings,
            extra,
            strict=True,
        )
    ]


_DEFAULTS = {name: field.default for name, field in Prediction.model_fields.items()}
_set = object.__setattr__


def _unvalidated(**values: object) -> Prediction:
    """``Prediction.model_construct(**values)``, which spends longer filling in defaults
    field by field in Python than validation would take: the same object, built directly
    (a test compares it with a validated one, field types and set fields included)."""
    if Prediction.__private_attributes__:  # pragma: no cover - none today
        return Prediction.model_construct(**values)  # type: ignore[arg-type]
    prediction = Prediction.__new__(Prediction)
    data = _DEFAULTS.copy()
    data.update(values)
    _set(prediction, "__dict__", data)
    _set(prediction, "__pydantic_fields_set__", set(values))
    _set(prediction, "__pydantic_extra__", None)
    _set(prediction, "__pydantic_private__", None)
    return prediction


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
