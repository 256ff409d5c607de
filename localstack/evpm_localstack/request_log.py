"""The emulator's request log: a line for each failed request, a summary line for the rest.

Why: LocalStack logs every request it answers at INFO (``AWS kinesis.GetRecords => 200``),
with the request and response attached, through the one lock every logging thread shares.
While the fleet streams that is hundreds of lines a second - the mapping's polls, every
``PutRecords`` and ``BatchWriteItem`` - a log that grows without bound and says nothing a count
would not; py-spy of the emulator during ``make bench-stream`` found a fifth of its busy
threads formatting and writing them (many of them waiting for the logging lock). Here a successful request is
only counted (per service, operation and status); every ``interval`` seconds one JSON line
says how many of each were answered. A request that failed (a service error, or any status
from 400) still gets LocalStack's own line, so nothing a developer needs to see is lost.

``EVPM_REQUEST_LOG=each`` restores a line per request; ``EVPM_REQUEST_LOG_INTERVAL`` sets the
summary period (default 60 s).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from typing import Any

LOG = logging.getLogger("evpm.requests")
_PATCHED_FLAG = "_evpm_summarized"


class RequestCounts:
    """Counts of answered requests by ``(kind, name, status)``, taken and reset at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def add(self, kind: str, name: str, status: int) -> None:
        with self._lock:
            self._counts[(kind, name, status)] += 1

    def take(self) -> Counter[tuple[str, str, int]]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


def summary(counts: Counter[tuple[str, str, int]], seconds: float) -> dict[str, Any]:
    """The summary line's fields: total and per ``name status`` (internal calls apart)."""
    by_name: dict[str, dict[str, int]] = {"external": {}, "internal": {}}
    for (kind, name, status), n in sorted(counts.items()):
        by_name[kind][f"{name} {status}"] = n
    return {
        "event": "requests_answered",
        "seconds": round(seconds, 1),
        "total": sum(counts.values()),
        "requests": by_name["external"],
        "internal_requests": by_name["internal"],
    }


def is_failure(status: int, service_exception: Any) -> bool:
    """Whether a response gets its own log line."""
    return service_exception is not None or status >= 400


def _name(context: Any) -> str:
    if context.operation:
        return f"{context.service.service_name}.{context.operation.name}"
    return f"{context.request.method} {context.request.path.split('?', 1)[0]}"


def install(counts: RequestCounts | None = None, interval: float | None = None) -> RequestCounts:
    """Patch LocalStack's ``ResponseLogger`` (idempotent) and start the summary thread."""
    from localstack.aws.handlers.logging import ResponseLogger

    if os.environ.get("EVPM_REQUEST_LOG", "summary").lower() == "each":
        return counts or RequestCounts()
    existing = getattr(ResponseLogger, _PATCHED_FLAG, None)
    if existing is not None:
        return existing
    counts = counts or RequestCounts()
    original = ResponseLogger._log

    def _log(self: Any, context: Any, response: Any) -> None:
        status = response.status_code
        if is_failure(status, context.service_exception):
            original(self, context, response)
            return
        kind = "internal" if context.is_internal_call else "external"
        counts.add(kind, _name(context), status)

    ResponseLogger._log = _log
    setattr(ResponseLogger, _PATCHED_FLAG, counts)
    period = interval or float(os.environ.get("EVPM_REQUEST_LOG_INTERVAL", "60") or 60)
    threading.Thread(
        target=_summarize, args=(counts, period), name="evpm-request-log", daemon=True
    ).start()
    return counts


def _summarize(counts: RequestCounts, period: float, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    while not stop.wait(period):
        taken = counts.take()
        if taken:
            LOG.info("requests answered", extra={"fields": summary(taken, period)})
