"""``evpm logs``: names, durations, and the lines read back from (moto) CloudWatch Logs."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from evpm_cli.logs import function_name, parse_since, read_lines


@pytest.mark.parametrize(("name", "full"), [("scorer", "evpm-scorer"), ("evpm-api", "evpm-api")])
def test_short_and_full_function_names(name: str, full: str) -> None:
    assert function_name(name) == full


def test_an_unknown_function_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown function 'nosuch'.*scorer \(evpm-scorer\)"):
        function_name("nosuch")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_since(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0m", "-5m", "10", "ten minutes", "5w"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_since(text)


def _function_logs(function: str, stream: str, events: list[tuple[int, str]]) -> Any:
    """A moto Logs client with ``/aws/lambda/<function>`` holding ``(ms ago, message)`` events."""
    logs = boto3.client("logs", region_name="us-east-1")
    group = f"/aws/lambda/{function}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now - ago, "message": message} for ago, message in events])  # fmt: skip
    return logs


@mock_aws
def test_lines_of_the_function_since_a_time_and_with_a_pattern() -> None:
    logs = _function_logs("evpm-scorer", "worker-1", [
        (3_600_000, '{"message": "an hour ago"}'),
        (60_000, '{"message": "scored", "level": "INFO"}\n'),
        (30_000, '{"message": "parked", "level": "WARNING"}'),
    ])  # fmt: skip
    recent = list(read_lines(logs, "evpm-scorer", since=timedelta(minutes=10)))
    assert [line.message for line in recent] == [
        '{"message": "scored", "level": "INFO"}',
        '{"message": "parked", "level": "WARNING"}',
    ]
    assert recent[0].stream == "worker-1" and recent[0].at < recent[1].at
    parked = list(read_lines(logs, "evpm-scorer", since=timedelta(hours=2), pattern="parked"))
    assert [line.message for line in parked] == ['{"message": "parked", "level": "WARNING"}']


@mock_aws
def test_follow_yields_new_lines_once_each() -> None:
    logs = _function_logs("evpm-api", "w", [(1000, "first")])
    group, now = "/aws/lambda/evpm-api", int(time.time() * 1000)
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            logs.put_log_events(
                logGroupName=group,
                logStreamName="w",
                logEvents=[{"timestamp": now, "message": "second"}],
            )

    lines = read_lines(logs, "evpm-api", since=timedelta(minutes=1), follow=True, sleep=sleep)
    assert [next(lines).message, next(lines).message] == ["first", "second"]
    assert polls == [2.0]
