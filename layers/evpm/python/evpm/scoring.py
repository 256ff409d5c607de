"""Turn validated readings into predictions through a pluggable, vectorised scorer.

Every model that scores readings — the ``rules-v1`` assessment today, the ML models later —
sits behind the :class:`Scorer` protocol and sees the whole batch as one ``(n, 24)`` matrix, so
a Kinesis batch of 500 records costs one call, not 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import numpy as np

from evpm import health
from evpm.predictions import MODEL_FIELDS, Prediction, record_id
from evpm.prevalidated import prevalidated
from evpm.serving import History, ModelOutputs, ServedModels, score_models
from evpm.telemetry import TelemetryRecord, format_timestamp, to_matrix

__all__ = ["RULES_SCORER", "Readings", "RulesScorer", "Scorer", "score_readings", "score_records"]


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


@dataclass(frozen=True, slots=True)
class Readings:
    """Validated readings as columns: everything scoring reads of them.

    Why: the stream scorer validates a batch's records straight into these values
    (:func:`evpm.telemetry.read_json`), making no record object per reading; a request's
    :class:`~evpm.telemetry.TelemetryRecord` objects give the same columns (:meth:`of`).
    """

    vehicle_ids: list[str]
    timestamps: list[datetime]
    """UTC, as :class:`~evpm.telemetry.TelemetryRecord` holds them."""
    matrix: np.ndarray
    """``(n, 24)``, columns in :data:`~evpm.telemetry.FEATURES` order."""

    @classmethod
    def of(cls, records: Sequence[TelemetryRecord]) -> Readings:
        """The columns of validated records."""
        return cls(
            vehicle_ids=[r.vehicle_id for r in records],
            timestamps=[r.timestamp for r in records],
            matrix=to_matrix(records),
        )


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
    readings = Readings.of(records)
    return score_readings(readings, scorer=scorer, models=models, history=history, now=now)


def score_readings(
    readings: Readings,
    *,
    scorer: Scorer = RULES_SCORER,
    models: ServedModels | None = None,
    history: History | None = None,
    now: datetime | None = None,
) -> list[Prediction]:
    """:func:`score_records` of readings given as columns (the stream scorer's batch)."""
    n = len(readings.vehicle_ids)
    if not n:
        return []
    scored_at = Prediction._to_utc(now or datetime.now(UTC))
    matrix = readings.matrix
    judge = getattr(scorer, "judge", None)  # the rules' batch verdicts, when it has them
    verdicts = judge(matrix) if judge is not None else health.Verdicts.of(scorer.assess(matrix))
    if len(verdicts.status) != n:
        raise ValueError(
            f"scorer {scorer.name}/{scorer.version} returned {len(verdicts.status)} assessments "
            f"for {n} records"
        )
    times = np.array([t.timestamp() for t in readings.timestamps], dtype=np.float64)
    versions = {scorer.name: scorer.version}
    columns: dict[str, list[object]] = {}
    if models is not None and models.bundles:
        out = score_models(models, readings.vehicle_ids, times, matrix, history)
        versions |= models.version_labels()
        columns = _model_columns(out)
    stamps = _stamps(times, readings.timestamps)
    # Every value below is already what validation would make of it (validated readings and
    # verdicts, model outputs as Python floats and bools, RUL clipped at 0, a UTC time), so
    # the predictions are built without validating each one again: the same objects (a test
    # compares them with validated ones), at a fraction of the cost per reading.
    given = frozenset(_BASE_FIELDS) | columns.keys()
    absent: list[object] = [None] * n
    model_values = [columns.get(name, absent) for name in MODEL_FIELDS]
    return [
        prevalidated(
            Prediction,
            {
                "vehicle_id": vid,
                "ts": ts,
                "record_id": record_id(vid, ts),
                "status": status,
                "health_score": score,
                "failure_mode": mode,
                "findings": list(findings),
                "model_versions": dict(versions),
                "scored_at": scored_at,
                "anomaly_score": anomaly,
                "is_anomaly": flag,
                "predicted_failure": predicted,
                "failure_probabilities": probabilities,
                "rul_hours": rul,
                "rul_low_hours": low,
                "rul_high_hours": high,
            },
            given,
        )
        for (
            vid,
            ts,
            status,
            score,
            mode,
            findings,
            anomaly,
            flag,
            predicted,
            probabilities,
            rul,
            low,
            high,
        ) in zip(
            readings.vehicle_ids,
            stamps,
            verdicts.status,
            verdicts.health_score,
            verdicts.failure_mode,
            verdicts.findings,
            *model_values,
            strict=True,
        )
    ]


_BASE_FIELDS = (
    "vehicle_id",
    "ts",
    "record_id",
    "status",
    "health_score",
    "failure_mode",
    "findings",
    "model_versions",
    "scored_at",
)
if (*_BASE_FIELDS, *MODEL_FIELDS) != tuple(Prediction.model_fields):  # pragma: no cover
    raise RuntimeError("Prediction's fields changed: update score_readings")


def _stamps(times: np.ndarray, timestamps: Sequence[datetime]) -> list[str]:
    """Each time as :func:`~evpm.telemetry.format_timestamp` writes it (``times`` are their
    ``timestamp()``): for a batch, numpy's ISO text at whole microseconds plus ``Z``, the
    same text (a test checks); one by one for a few.

    The whole microseconds are exact: a reading's time is below 2100, fewer than 2**52
    microseconds, and its float seconds lie within 2**-22 s (0.24 us) of them, so scaled by
    1e6 they round back to the integer.
    """
    if len(times) < 16:
        return [format_timestamp(t) for t in timestamps]
    micros = np.rint(times * 1e6).astype(np.int64)
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us").tolist()
    return [t + "Z" for t in text]


def _model_columns(out: ModelOutputs) -> dict[str, list[object]]:
    """Each served model's prediction fields as lists of plain Python values (arrays
    converted once, not per element: a 500-record batch would otherwise pay thousands of
    numpy scalar conversions); only the fields of the models served."""
    columns: dict[str, list[object]] = {}
    if out.anomaly_score is not None:
        columns["anomaly_score"] = out.anomaly_score.tolist()
        n = len(columns["anomaly_score"])
        columns["is_anomaly"] = (
            out.is_anomaly.tolist() if out.is_anomaly is not None else [None] * n
        )
    if out.failure_proba is not None and out.failure_mode is not None:
        classes = out.classes
        columns["predicted_failure"] = [str(mode) for mode in out.failure_mode.tolist()]
        columns["failure_probabilities"] = [
            dict(zip(classes, proba, strict=True)) for proba in out.failure_proba.tolist()
        ]
    if out.rul_hours is not None:
        columns["rul_hours"] = out.rul_hours.tolist()
    if out.rul_low_hours is not None and out.rul_high_hours is not None:
        columns["rul_low_hours"] = out.rul_low_hours.tolist()
        columns["rul_high_hours"] = out.rul_high_hours.tolist()
    return columns
