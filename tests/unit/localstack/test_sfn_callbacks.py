"""An answer to a task token that comes before the heartbeat endpoint exists is still taken.

moto's Step Functions interpreter is LocalStack's, copied: its ``CallbackEndpoint`` has the
same gap, so the patch is tested on it here and applied to LocalStack's in the emulator.
"""

from __future__ import annotations

import time

import pytest
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackEndpoint,
    CallbackOutcomeSuccess,
)

from evpm_localstack.sfn_callbacks import take_early_answers


class Endpoint(CallbackEndpoint):
    """A subclass, so that patching it leaves moto's class as the other tests find it."""


def answer_then_set_up_heartbeat(endpoint_cls: type) -> tuple[bool, float]:
    """What the interpreter does when the worker answers between sending and waiting."""
    endpoint = endpoint_cls("token-1")
    endpoint.notify(CallbackOutcomeSuccess(callback_id="token-1", output="{}"))
    heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    started = time.monotonic()
    return heartbeat.clear_and_wait(), time.monotonic() - started


def test_unpatched_interpreter_misses_an_early_answer_until_the_heartbeat_times_out() -> None:
    received, waited = answer_then_set_up_heartbeat(CallbackEndpoint)
    assert not received and waited >= 0.9  # the bug the patch is for: still there upstream


def test_patched_interpreter_takes_an_early_answer_at_once() -> None:
    take_early_answers(Endpoint)
    received, waited = answer_then_set_up_heartbeat(Endpoint)
    assert received and waited < 0.5


def test_patched_interpreter_still_waits_when_no_answer_has_come() -> None:
    take_early_answers(Endpoint)
    take_early_answers(Endpoint)  # idempotent: one wrapper, not two
    endpoint = Endpoint("token-2")
    heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    started = time.monotonic()
    assert not heartbeat.clear_and_wait()
    assert time.monotonic() - started == pytest.approx(1.0, abs=0.5)
    endpoint.notify(CallbackOutcomeSuccess(callback_id="token-2", output="{}"))
    assert heartbeat.clear_and_wait()  # a later answer wakes it as before
