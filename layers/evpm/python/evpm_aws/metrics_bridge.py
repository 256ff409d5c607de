"""Hands the domain code's event counts (:mod:`evpm.counters`) to a handler's powertools Metrics.

Kept here rather than in :mod:`evpm` because it imports powertools; a handler calls
:func:`publish_counts` once per invocation, before its ``@metrics.log_metrics`` flushes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from evpm.counters import COUNTERS, drain

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aws_lambda_powertools import Metrics

__all__ = ["publish_counts"]


def publish_counts(metrics: Metrics, *, always: Iterable[str] = COUNTERS) -> dict[str, int]:
    """Drain the counts into ``metrics`` (one ``Count`` metric each) and return them.

    Every name in ``always`` is published, 0 when nothing happened, so an alarm on it reads
    0 for a healthy invocation instead of missing data.

    Example::

        @metrics.log_metrics
        def handler(event, context):
            try:
                ...
            finally:
                publish_counts(metrics)   # {"BoosterFallback": 0, "ModelLoadFailures": 1}
    """
    counts = dict.fromkeys(always, 0) | drain()
    for name, value in sorted(counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return counts
