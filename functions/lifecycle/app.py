"""Lifecycle steps of the model-lifecycle state machine: validate, register, promote, smoke
test, revert. One function, one action per state (``event["action"]``), each a thin shell:
the decisions live in :mod:`evpm.gate` and :mod:`evpm.pins`, the I/O in :mod:`steps`.

Errors are raised, not returned, so the state machine's ``Catch`` sees them by name
(``SmokeTestFailed``, ``PromotionFailed``) and the execution history shows the cause.

Metrics (namespace ``evpm``): the step that ends an execution counts it in
``LifecycleExecutions`` with its ``outcome`` (succeeded / failed / rolled_back, see
:func:`steps.ending_outcome`), in the invocation's one flush; the Validate step counts its
checks in ``GateChecks`` by ``check`` and ``verdict`` (pass / fail). EMF holds one value per
dimension in a log line, so each (check, verdict) pair is its own line (``single_metric``):
at most two per check name, once per lifecycle execution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from steps import Steps, ending_outcome, gate_check_counts

from evpm.settings import LifecycleSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = LifecycleSettings()
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
metrics = Metrics(
    namespace=settings.POWERTOOLS_METRICS_NAMESPACE, service=settings.POWERTOOLS_SERVICE_NAME
)
_steps: Steps | None = None


def _get_steps() -> Steps:
    global _steps
    if _steps is None:
        _steps = Steps.from_settings(settings)
    return _steps


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Dispatch one state's work; the result becomes that state's ``ResultPath`` value."""
    action = event.get("action")
    logger.info("lifecycle step", extra={"action": action, "execution": event.get("execution")})
    try:
        result = _dispatch(action, event)
    except Exception:
        _count_execution(ending_outcome(action, failed=True))
        raise
    if action == "validate":
        _count_gate_checks(result)
    _count_execution(ending_outcome(action, result=result))
    return result


def _count_execution(outcome: str | None) -> None:
    """``LifecycleExecutions`` = 1 with its outcome, if this step ended the execution."""
    if outcome is None:
        return
    metrics.add_dimension(name="outcome", value=outcome)
    metrics.add_metric(name="LifecycleExecutions", unit=MetricUnit.Count, value=1)
    logger.info("lifecycle execution ends", extra={"outcome": outcome})


def _count_gate_checks(gate: dict[str, Any]) -> None:
    """``GateChecks`` by check name and verdict: one EMF line per pair (see the module doc)."""
    for (check, verdict), count in sorted(gate_check_counts(gate).items()):
        with single_metric(
            name="GateChecks",
            unit=MetricUnit.Count,
            value=count,
            namespace=settings.POWERTOOLS_METRICS_NAMESPACE,
            default_dimensions={
                "service": settings.POWERTOOLS_SERVICE_NAME,
                "check": check,
                "verdict": verdict,
            },
        ):
            pass


def _dispatch(action: Any, event: dict[str, Any]) -> dict[str, Any]:
    steps = _get_steps()
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
