"""A ``.waitForTaskToken`` task with ``HeartbeatSeconds`` takes an answer that comes at once.

Why: the Step Functions interpreter (LocalStack's, and moto's copy of it) sends the task's
message first and only then gives the task's callback endpoint its heartbeat endpoint. A worker
that answers in that gap (``SendTaskSuccess`` while the interpreter is between the two) stores
the outcome, but finds no heartbeat endpoint to wake; the interpreter then waits on a fresh,
unset one for the whole ``HeartbeatSeconds`` and fails the task with ``States.HeartbeatTimeout``
although its answer is there. The lifecycle's Train task has ``HeartbeatSeconds: 300``; a fast
answer (a request refused at once, or the unit tests' stand-in worker on a busy machine) hung
the execution for five minutes. On AWS the answer is taken whenever it comes.

What: setting up the heartbeat endpoint wakes it at once when an outcome is already stored, so
the interpreter reads that outcome. ``notify`` stores the outcome before it looks for the
heartbeat endpoint, and the setup stores the endpoint before it looks for the outcome, so one
of the two always sees the other.
"""

from __future__ import annotations

from typing import Any


def take_early_answers(endpoint_cls: type) -> None:
    """Patch a ``CallbackEndpoint`` class (LocalStack's or moto's; idempotent)."""
    if getattr(endpoint_cls, "_evpm_takes_early_answers", False):
        return
    original = endpoint_cls.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        heartbeat = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            heartbeat.notify()
        return heartbeat

    endpoint_cls.setup_heartbeat_endpoint = setup_heartbeat_endpoint
    endpoint_cls._evpm_takes_early_answers = True


def install() -> None:
    """Patch LocalStack's Step Functions callback endpoints."""
    from localstack.services.stepfunctions.asl.eval.callback.callback import CallbackEndpoint

    take_early_answers(CallbackEndpoint)
