"""Lifecycle steps of the model-lifecycle state machine: validate, register, promote, smoke
test, revert. One function, one action per state (``event["action"]``), each a thin shell:
the decisions live in :mod:`evpm.gate` and :mod:`evpm.pins`, the I/O in :mod:`steps`.

Errors are raised, not returned, so the state machine's ``Catch`` sees them by name
(``SmokeTestFailed``, ``PromotionFailed``) and the execution history shows the cause.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from steps import Steps

from evpm.settings import LifecycleSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = LifecycleSettings()
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
_steps: Steps | None = None


def _get_steps() -> Steps:
    global _steps
    if _steps is None:
        _steps = Steps.from_settings(settings)
    return _steps


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Dispatch one state's work; the result becomes that state's ``ResultPath`` value."""
    action = event.get("action")
    steps = _get_steps()
    logger.info("lifecycle step", extra={"action": action, "execution": event.get("execution")})
    if action == "validate":
        return steps.validate(event["train"], execution=event.get("execution", "manual"))
    if action == "register":
        return steps.register(event["train"], event["gate"], execution=event.get("execution", ""))
    if action == "promote":
        return steps.promote(event["registered"]["versions"])
    if action == "smoke":
        return steps.smoke(event["promotion"], force_failure=bool(event.get("force_failure")))
    if action == "revert":
        return steps.revert(event["promotion"])
    raise ValueError(f"unknown action {action!r}: validate | register | promote | smoke | revert")
