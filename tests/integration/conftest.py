"""The integration suite's system: one emulator started by the run, stacks deployed by cdklocal.

The run uses its own state folder and port (``EVPM_STATE_DIR``, ``EVPM_EMULATOR_PORT``, set by
``make test``), so it never touches a developer's emulator on 4566.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
EVPM = [sys.executable, "-m", "evpm_cli.main"]


def evpm(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the CLI the way a user does; fail the test with its output if it fails."""
    done = subprocess.run([*EVPM, *args], cwd=REPO, text=True, capture_output=True,
                          timeout=timeout, env=os.environ.copy())
    if done.returncode not in (0, 3):
        pytest.fail(f"evpm {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


class System:
    """Handles to the deployed system, read from `evpm status --json`."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.endpoint: str = info["emulator"]["url"]
        self.api_url: str = info["api"]["url"]
        self.keys = {key["role"]: key["value"] for key in info["api_keys"]}
        self.stream: str = info["stream"]
        self.dlq_url: str = info["dlq_url"]
        self.table: str = info["predictions_table"]

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 2}, read_timeout=120),
        )


def drain_dlq(system: System, prefix: str, seen: dict[str, dict]) -> None:
    """Move DLQ messages whose body mentions ``prefix`` into ``seen`` (by message id)."""
    sqs = system.client("sqs")
    while True:
        messages = sqs.receive_message(QueueUrl=system.dlq_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0, MessageAttributeNames=["All"])
        batch = messages.get("Messages", [])
        if not batch:
            return
        for message in batch:
            if prefix in message["Body"]:
                seen[message["MessageId"]] = json.loads(message["Body"])
        sqs.delete_message_batch(QueueUrl=system.dlq_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def read_status() -> dict[str, Any]:
    return json.loads(evpm("status", "--json").stdout)


@pytest.fixture(scope="session")
def system() -> Iterator[System]:
    started = time.perf_counter()
    done = evpm("up")
    sys.stderr.write(f"\n[evpm up took {time.perf_counter() - started:.1f} s]\n")
    info = read_status()
    assert info["emulator"]["running"], done.stderr
    yield System(info)
    evpm("down")


LAST = ("test_readme.py", "test_drift_loop.py")
"""Files that run after all others, in this order."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The README's examples run last: they train, promote and roll back models, and create and
    revoke keys, which the other tests' expectations (version 1 serving, three keys) predate.
    The drift loop runs after them: it promotes versions the README's examples do not expect."""
    rest = [item for item in items if item.path.name not in LAST]
    items[:] = rest + [item for name in LAST for item in items if item.path.name == name]
