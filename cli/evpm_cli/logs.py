"""``evpm logs FUNCTION``: a Lambda function's log lines from (emulated) CloudWatch Logs.

Why a command rather than ``aws logs tail``: the AWS CLI is not among what ``make up`` installs,
and it needs an endpoint, a region and credentials spelled out for the emulator. This reads the
same log group (``/aws/lambda/<name>``) with the SDK the CLI already uses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FUNCTIONS", "LogLine", "function_name", "parse_since", "read_lines"]

# Short names a user types, and the deployed function each means (infra/constants.py).
FUNCTIONS: dict[str, str] = {
    "scorer": "evpm-scorer",
    "api": "evpm-api",
    "lifecycle": "evpm-lifecycle",
    "monitor": "evpm-drift-monitor",
    "retrain": "evpm-retrain",
}
_SINCE = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log event: when it was logged, by which stream (worker), and the line."""

    at: datetime
    stream: str
    message: str


def function_name(name: str) -> str:
    """``scorer`` or ``evpm-scorer`` -> ``evpm-scorer``; anything else is refused (ValueError)."""
    full = FUNCTIONS.get(name, name)
    if full not in FUNCTIONS.values():
        known = ", ".join(f"{short} ({long})" for short, long in FUNCTIONS.items())
        raise ValueError(f"unknown function {name!r}: one of {known}")
    return full


def parse_since(text: str) -> timedelta:
    """``10m``, ``2h``, ``30s``, ``1d`` -> a positive timedelta (ValueError otherwise)."""
    match = _SINCE.match(text.strip())
    if not match or int(match["n"]) == 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 2h or 1d")
    return timedelta(seconds=int(match["n"]) * _UNIT_SECONDS[match["unit"]])


def read_lines(
    logs: Any,
    function: str,
    *,
    since: timedelta,
    pattern: str | None = None,
    follow: bool = False,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The function's log lines since ``since`` ago, oldest first; with ``follow``, keep
    polling for new ones until interrupted. ``pattern`` is a CloudWatch Logs filter pattern."""
    group = f"/aws/lambda/{function}"
    start = int((datetime.now(UTC) - since).timestamp() * 1000)
    seen: set[str] = set()
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
        if pattern:
            kwargs["filterPattern"] = pattern
        newest = start
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                newest = max(newest, event["timestamp"])
                yield LogLine(
                    at=datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
                    stream=event.get("logStreamName", ""),
                    message=event["message"].rstrip("\n"),
                )
        if not follow:
            return
        start = newest  # events at the same millisecond are told apart by their ids
        sleep(poll_seconds)
