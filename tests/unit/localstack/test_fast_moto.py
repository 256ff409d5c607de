"""The fast moto path: which requests it serves, and that anything odd falls through."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evpm_localstack import fast_moto
from evpm_localstack.snapshot_files import next_wait

PROVIDERS = Path(fast_moto.__file__).with_name("providers.py")


@dataclass
class FakeService:
    service_name: str


@dataclass
class FakeRequest:
    headers: dict[str, str]


@dataclass
class FakeContext:
    service: FakeService | None
    request: FakeRequest


@dataclass
class FakeResponse:
    status_code: int = 200
    updated_from: Any = None

    def update_from(self, other: Any) -> None:
        self.updated_from = other


@dataclass
class FakeChain:
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


@dataclass
class Dispatch:
    answer: Any = field(default_factory=FakeResponse)
    calls: int = 0

    def __call__(self, context: FakeContext) -> Any:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _context(service: str, target: str) -> FakeContext:
    return FakeContext(FakeService(service), FakeRequest({"X-Amz-Target": target}))


def _handler(dispatch: Dispatch, *services: str) -> fast_moto.FastMotoHandler:
    handler = fast_moto.FastMotoHandler(dispatch)
    handler.enabled.update(services)
    return handler


def test_whitelisted_operation_is_answered_by_moto_and_stops_the_chain() -> None:
    dispatch = Dispatch()
    handler = _handler(dispatch, "dynamodb")
    chain, response = FakeChain(), FakeResponse()
    handler(chain, _context("dynamodb", "DynamoDB_20120810.BatchWriteItem"), response)
    assert dispatch.calls == 1 and chain.stopped
    assert response.updated_from is dispatch.answer
    assert handler.served == 1


@pytest.mark.parametrize(("service", "target", "enabled"), [
    ("dynamodb", "DynamoDB_20120810.CreateTable", "dynamodb"),  # control plane: normal chain
    ("kinesis", "Kinesis_20131202.CreateStream", "kinesis"),  # our provider rewrites it
    ("kinesis", "Kinesis_20131202.PutRecords", "dynamodb"),  # service not enabled
    ("sqs", "AmazonSQS.SendMessage", "dynamodb"),
])
def test_other_requests_are_left_to_the_normal_chain(service: str, target: str,
                                                     enabled: str) -> None:
    dispatch = Dispatch()
    chain, response = FakeChain(), FakeResponse()
    _handler(dispatch, enabled)(chain, _context(service, target), response)
    assert dispatch.calls == 0 and not chain.stopped and response.updated_from is None


@pytest.mark.parametrize("answer", [RuntimeError("moto broke"), None, FakeResponse(500)])
def test_moto_failure_falls_through_without_touching_the_response(answer: Any) -> None:
    dispatch = Dispatch(answer)
    handler = _handler(dispatch, "kinesis")
    chain, response = FakeChain(), FakeResponse()
    handler(chain, _context("kinesis", "Kinesis_20131202.GetRecords"), response)
    assert dispatch.calls == 1
    assert not chain.stopped and response.updated_from is None
    assert handler.fell_through == 1


def test_client_errors_from_moto_are_returned_as_moto_wrote_them() -> None:
    dispatch = Dispatch(FakeResponse(400))
    chain, response = FakeChain(), FakeResponse()
    _handler(dispatch, "dynamodb")(chain, _context("dynamodb", "DynamoDB_20120810.PutItem"),
                                   response)
    assert chain.stopped and response.updated_from.status_code == 400


def test_no_fast_operation_is_one_our_providers_implement_themselves() -> None:
    own = set(re.findall(r'@handler\("(\w+)"', PROVIDERS.read_text()))
    assert "CreateStream" in own  # the check below would be vacuous otherwise
    for service, operations in fast_moto.FAST_OPERATIONS.items():
        assert not own & operations, (service, own & operations)


def test_enable_is_refused_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVPM_FAST_MOTO", "0")
    assert fast_moto.enable("dynamodb") is False


def test_operation_of_target() -> None:
    assert fast_moto.operation_of("DynamoDB_20120810.BatchWriteItem") == "BatchWriteItem"
    assert fast_moto.operation_of(None) == ""


@pytest.mark.parametrize(("interval", "last", "share", "expected"), [
    (30, 0.5, 0.1, 30),  # cheap saves keep the configured interval
    (30, 10, 0.1, 90),  # a 10 s save waits 90 s: saving is 10 % of the time
    (30, 10, 0, 30),  # share 0: the stretch is off
])
def test_periodic_save_interval_stretches_with_save_cost(interval: float, last: float,
                                                         share: float, expected: float) -> None:
    assert next_wait(interval, last, share) == pytest.approx(expected)
