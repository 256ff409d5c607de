"""Shared fixtures for unit tests: sample payloads, sample events, handler modules by path.

The function folders are Lambda code roots, not packages: each is loaded here under a unique
module name (``evpm_fn_scorer_app``, ``evpm_fn_api_app``) so the two ``app.py`` never collide in
``sys.modules``, with its folder on ``sys.path`` for its sibling modules (``sinks``).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from evpm.telemetry import EXAMPLE_RECORD, FEATURES

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
FUNCTIONS = ROOT / "functions"

# A nominal vehicle: the schema's own documented example, so the two cannot drift apart.
NOMINAL: dict[str, Any] = dict(EXAMPLE_RECORD)
assert tuple(k for k in NOMINAL if k not in ("vehicle_id", "timestamp")) == FEATURES


def load_event(name: str) -> dict[str, Any]:
    """A sample event from ``tests/events`` (a fresh copy each call)."""
    return json.loads((EVENTS / name).read_text())


def load_function(folder: str, module: str = "app") -> ModuleType:
    """Import ``functions/<folder>/<module>.py`` afresh as ``evpm_fn_<folder>_<module>``.

    Fresh per call so each test reads its own environment at "cold start" and builds its own
    AWS clients inside its own moto context.
    """
    code_root = FUNCTIONS / folder
    if str(code_root) not in sys.path:
        sys.path.insert(0, str(code_root))
    name = f"evpm_fn_{folder}_{module}"
    spec = importlib.util.spec_from_file_location(name, code_root / f"{module}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The attributes powertools' ``inject_lambda_context`` reads."""

    function_name: str = "evpm-scorer"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:evpm-scorer"
    aws_request_id: str = "req-0001"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/evpm-scorer"
    log_stream_name: str = "2024/05/01/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def nominal() -> dict[str, Any]:
    return copy.deepcopy(NOMINAL)


@pytest.fixture
def make_payload() -> Callable[..., dict[str, Any]]:
    """A nominal payload with some fields replaced."""

    def make(**changes: Any) -> dict[str, Any]:
        return {**copy.deepcopy(NOMINAL), **changes}

    return make


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region, so nothing can reach a real account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


def accepted_records(make_payload: Callable[..., dict], count: int) -> list[Any]:
    """``count`` valid readings of 7 vehicles (every fifth with worn brakes), scored by the
    rules as the stream scorer would: its accepted records (prediction, reading, sequence)."""
    from evpm.ingest import RawRecord, process_batch

    raw = [
        RawRecord(str(1000 + i), f"EV-{i % 7}", "shardId-0", json.dumps(make_payload(
            vehicle_id=f"EV-{i % 7}",
            timestamp=f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
            Brake_Pad_Wear=90.0 if i % 5 == 0 else 10.0)).encode())
        for i in range(count)
    ]  # fmt: skip
    outcome = process_batch(raw)
    assert len(outcome.accepted) == count
    return outcome.accepted
