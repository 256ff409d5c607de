"""Keep the garbage collector's full passes short in the emulator, and log the slow ones.

Why: the emulator serves everything from one process (one GIL), and a full collection walks
every live object while every request waits. The predictions table is millions of objects (an
item is a dozen ``DynamoType``s and dicts), so once it held 150,000 predictions each full pass
took about 7 s, one every 45 s or so while the stream ran: the stream stopped for a sixth of the
time (measured: ``gc_pause`` lines below, 4.7-7.6 s each).

What: every ``EVPM_GC_FREEZE_INTERVAL_SEC`` seconds (default 5) a daemon thread moves every
object the collector tracks into its permanent generation (``gc.freeze``), so a full pass only
walks what was created since the last tick. Young collections are unchanged, and almost all
garbage cycles die young (request objects, parsed bodies); a cycle that outlives a tick and
becomes garbage later is not reclaimed - the trade CPython documents for ``gc.freeze`` (used by
forking servers the same way); ``0`` turns it off. Passes over ``SLOW_PASS_S`` are logged as
JSON lines (``gc_pause``), so a stall is either a collection or something else.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from typing import Any

LOG = logging.getLogger(__name__)
SLOW_PASS_S = 0.1
_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[:] = [time.perf_counter()]
        return
    if not _started:
        return
    seconds = time.perf_counter() - _started[0]
    if seconds >= SLOW_PASS_S:
        LOG.warning(json.dumps({"event": "gc_pause", "generation": info.get("generation"),
                                "seconds": round(seconds, 3), "collected": info.get("collected")}))


def _freezer(interval: float) -> None:
    while True:
        time.sleep(interval)
        gc.freeze()


def install() -> None:
    """Log slow passes and start the freezer thread (once per process)."""
    if _on_gc in gc.callbacks:
        return
    gc.callbacks.append(_on_gc)
    interval = float(os.environ.get("EVPM_GC_FREEZE_INTERVAL_SEC", "5") or 0)
    if interval > 0:
        gc.freeze()  # what start-up and the snapshot load made: the restored tables above all
        threading.Thread(target=_freezer, args=(interval,), name="evpm-gc-freeze",
                         daemon=True).start()
