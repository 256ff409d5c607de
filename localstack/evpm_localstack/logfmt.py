"""Structured JSON log lines from the emulator, like every other evpm service.

Why: LocalStack formats its log for a terminal; the project's services log one JSON object per
line so that logs can be searched and shipped the same way. The emulator's handlers keep their
destinations; only their formatter changes. ``EVPM_LOG_FORMAT=text`` keeps LocalStack's own.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

from localstack.runtime import hooks


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)  # structured extras: extra={"fields": {...}}
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def install() -> None:
    formatter = JsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


@hooks.on_infra_start(priority=100)
def json_logs() -> None:
    if os.environ.get("EVPM_LOG_FORMAT", "json").lower() == "json":
        install()
