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
    now: datetime | None = None,
) -> list[Prediction]:
    """Score readings in one vectorised call; the i-th prediction belongs to the i-th record.

    ``now`` stamps ``scored_at`` (defaults to the current UTC time; pass it for reproducible
    output).

    Example::

        [p.status for p in score_records([record])]   # ["ok"]
    """
    if not records:
        return []
    scored_at = now or datetime.now(UTC)
    assessments = scorer.assess(to_matrix(records))
    if len(assessments) != len(records):
        raise ValueError(
            f"scorer {scorer.name}/{scorer.version} returned {len(assessments)} assessments "
            f"for {len(records)} records"
        )
    versions = {scorer.name: scorer.version}
    return [
        Prediction(
            vehicle_id=record.vehicle_id,
            ts=record.ts,
            record_id=record_id(record.vehicle_id, record.ts),
            status=assessment.status,
            health_score=assessment.health_score,
            failure_mode=assessment.failure_mode,
            findings=assessment.findings,
            model_versions=versions,
            scored_at=scored_at,
        )
        for record, assessment in zip(records, assessments, strict=True)
    ]
