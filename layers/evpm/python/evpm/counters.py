"""Counts of events the domain code notices and only a handler can publish as metrics.

Why: :mod:`evpm` imports no AWS SDK and no powertools (the training job, the CLI and the tests
run it too), yet some of what it notices belongs on a dashboard and behind an alarm: a booster
that lost its fast path, a pinned model that failed to load and left an older one serving.
Domain code calls ``count(BOOSTER_FALLBACK)`` and carries on; a handler calls :func:`drain`
once per invocation and adds what it gets to its powertools ``Metrics``
(:func:`evpm_aws.metrics_bridge.publish_counts`), so the counts leave in the invocation's one
EMF flush, beside its other metrics, and none is counted twice.

The counts are process-wide (like the models, they live as long as the container) and
thread-safe (the API may serve requests on several threads). Outside Lambda nobody drains
them, which costs a few integers.
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["BOOSTER_FALLBACK", "COUNTERS", "MODEL_LOAD_FAILURES", "count", "drain", "snapshot"]

BOOSTER_FALLBACK = "BoosterFallback"
"""A LightGBM booster could not set up its single-row fast path (:mod:`evpm.boosters`): its
predictions are the same, only slower."""
MODEL_LOAD_FAILURES = "ModelLoadFailures"
"""A refresh of the pinned models failed (:class:`evpm.serving.PinnedModels`): the versions
loaded before keep serving."""
COUNTERS: tuple[str, ...] = (BOOSTER_FALLBACK, MODEL_LOAD_FAILURES)
"""Every name the domain code counts: a handler publishes each one, zero included, so an
alarm sees 0 rather than missing data on a healthy invocation."""

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def count(name: str, value: int = 1) -> None:
    """Add ``value`` occurrences of the event ``name``.

    Example::

        count(BOOSTER_FALLBACK)       # the handler's next drain() holds {"BoosterFallback": 1}
    """
    if not name:
        raise ValueError("a counter needs a name")
    if value < 0:
        raise ValueError(f"counts only grow: got {value} for {name}")
    with _lock:
        _counts[name] += value


def drain() -> dict[str, int]:
    """The counts since the last drain, and start again from zero (one call per invocation).

    Example::

        count(MODEL_LOAD_FAILURES)
        drain()                       # {"ModelLoadFailures": 1}
        drain()                       # {}
    """
    with _lock:
        counts = {name: n for name, n in _counts.items() if n}
        _counts.clear()
    return counts


def snapshot() -> dict[str, int]:
    """The counts since the last drain, left in place (for tests and diagnostics)."""
    with _lock:
        return {name: n for name, n in _counts.items() if n}
