"""Run and inspect the model-lifecycle state machine, and move pins by hand, from the host.

The state machine does the work; this module only starts executions, follows them (printing
each state as it is entered, so a run of minutes shows progress), and summarises histories.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from evpm.mlflow_rest import MlflowRegistry
from evpm.pins import MODEL_NAMES, PINS_PARAMETER, TASK_OF
from evpm_aws.model_admin import ModelAdmin, SsmPinStore
from evpm_cli.aws import client
from evpm_cli.config import CliSettings
from evpm_cli.endpoints import stack_outputs

__all__ = [
    "LifecycleError",
    "admin",
    "canonical_model",
    "describe",
    "execution_arn",
    "history",
    "start",
    "wait",
]

_MODEL_OF_TASK = {task: name for name, task in TASK_OF.items()}
_MISSING_EXECUTION = {"ExecutionDoesNotExist", "InvalidArn"}


class LifecycleError(Exception):
    """The lifecycle cannot be asked: its stack is not deployed, or no such execution."""


def canonical_model(value: str) -> str | None:
    """The registered name (``ev-rul``) of a model written either way (``ev-rul``, ``rul``,
    any case), or ``None`` for no model: the registry, the pins and the API use the
    registered names, the lifecycle's request and the training worker the short ones, and
    a user should not have to know which command wants which."""
    text = value.strip().lower()
    return text if text in TASK_OF else _MODEL_OF_TASK.get(text)


def _arn(cfg: CliSettings) -> str:
    arn = stack_outputs(cfg).get("StateMachineArn")
    if not arn:
        raise LifecycleError("the lifecycle stack is not deployed: run `evpm up`")
    return arn


def execution_arn(cfg: CliSettings, execution: str) -> str:
    """The ARN of an execution given by ARN or by the name `run` and `history` print (an
    execution's ARN is its state machine's, with ``execution`` for ``stateMachine``, and
    ``:name`` after it)."""
    if execution.startswith("arn:"):
        return execution
    machine = _arn(cfg).replace(":stateMachine:", ":execution:", 1)
    return f"{machine}:{execution}"


def start(
    cfg: CliSettings,
    *,
    models: tuple[str, ...] = MODEL_NAMES,
    trigger: str = "manual",
    trigger_id: str | None = None,
    corrupt_labels: bool = False,
    force_smoke_failure: bool = False,
) -> str:
    """Start one execution of ``models`` (registered names); returns its ARN."""
    request: dict[str, Any] = {
        "trigger": trigger,
        "dataset": "fleet",
        "models": [TASK_OF[name] for name in models],  # the training worker's task names
        "options": {"corrupt_labels": corrupt_labels, "force_smoke_failure": force_smoke_failure},
    }
    if trigger_id:
        request["trigger_id"] = trigger_id
    name = f"{trigger}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    sfn = client(cfg, "stepfunctions")
    return sfn.start_execution(stateMachineArn=_arn(cfg), name=name, input=json.dumps(request))[
        "executionArn"
    ]


def _states(sfn: Any, arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


def _models(request: dict[str, Any]) -> list[str]:
    """The registered names of the models an execution's request asked for."""
    return [_MODEL_OF_TASK.get(task, task) for task in request.get("models") or []]


def describe(cfg: CliSettings, execution: str) -> dict[str, Any]:
    """Status, visited states, error and cause, and the parsed output of one execution
    (by ARN or name)."""
    sfn = client(cfg, "stepfunctions")
    arn = execution_arn(cfg, execution)
    try:
        d = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _MISSING_EXECUTION:
            raise
        raise LifecycleError(
            f"no lifecycle execution {execution!r} (`evpm lifecycle history` lists them)"
        ) from exc
    request = json.loads(d.get("input") or "{}")
    out: dict[str, Any] = {
        "execution": arn,
        "name": d["name"],
        "status": d["status"],
        "started": d["startDate"].isoformat(),
        "stopped": d["stopDate"].isoformat() if d.get("stopDate") else None,
        "states": _states(sfn, arn),
        "models": _models(request),
        "input": request,
    }
    if d["status"] == "FAILED":
        out["error"], out["cause"] = d.get("error"), d.get("cause")
    if d.get("output"):
        output = json.loads(d["output"])
        out["gate"] = output.get("gate")
        out["registered"] = output.get("registered")
        out["promotion"] = output.get("promotion")
        out["smoke"] = output.get("smoke")
    return out


def wait(
    cfg: CliSettings,
    arn: str,
    *,
    timeout: float = 1800,
    on_state: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Follow an execution to its end, calling ``on_state`` for each state entered."""
    sfn = client(cfg, "stepfunctions")
    seen = 0
    deadline = time.monotonic() + timeout
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        states = _states(sfn, arn)
        for state in states[seen:]:
            if on_state:
                on_state(state)
        seen = len(states)
        if status != "RUNNING":
            return describe(cfg, arn)
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution still running after {timeout:.0f} s: {arn}")
        time.sleep(1.0)


def history(cfg: CliSettings, limit: int = 20) -> list[dict[str, Any]]:
    """The latest executions, newest first, with their outcome."""
    sfn = client(cfg, "stepfunctions")
    runs = sfn.list_executions(stateMachineArn=_arn(cfg), maxResults=limit)["executions"]
    out = []
    for run in sorted(runs, key=lambda r: r["startDate"], reverse=True)[:limit]:
        d = sfn.describe_execution(executionArn=run["executionArn"])
        request = json.loads(d.get("input") or "{}")
        out.append(
            {
                "name": run["name"],
                "status": run["status"],
                "started": run["startDate"].isoformat(),
                "stopped": run["stopDate"].isoformat() if run.get("stopDate") else None,
                "trigger": request.get("trigger"),
                "models": _models(request),
                "error": d.get("error"),
                "cause": (d.get("cause") or "")[:300] or None,
                "execution": run["executionArn"],
            }
        )
    return out


def admin(cfg: CliSettings) -> ModelAdmin:
    """Pins (SSM on the emulator) and registry (the MLflow server) as the API moves them."""
    return ModelAdmin(
        MlflowRegistry(cfg.mlflow_url), SsmPinStore(client(cfg, "ssm"), PINS_PARAMETER)
    )
