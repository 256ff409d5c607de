"""One JSON object per log line, like every other evpm service."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "event", "setup"]


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields}``; fields come from ``extra={"fields": {}}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def event(logger: logging.Logger, level: int, name: str, **fields: object) -> None:
    """Log the event ``name`` with ``fields`` (one JSON line once :func:`setup` ran)."""
    logger.log(level, name, extra={"fields": fields})


def setup(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # botocore's own debug chatter is not ours to ship
    logging.getLogger("botocore").setLevel(logging.WARNING)
