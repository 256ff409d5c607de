"""The lifecycle's executions, from Step Functions (the emulator's, or AWS's).

Everything the Lifecycle pages show comes through :class:`LifecycleSource`, so the pages are
tested with a fake, and the benchmark can point the console at a fast Pass-only machine.
:class:`StepFunctionsSource` is the real one: ListStateMachines finds the machine by name,
ListExecutions lists, DescribeExecution / GetExecutionHistory / DescribeStateMachine give one
execution, its events and the definition its graph is drawn from; StartExecution starts a run
with the request ``evpm lifecycle run`` sends.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from console.errors import NotFoundError, SourceUnavailableError
from evpm.pins import MODEL_NAMES, TASK_OF

__all__ = [
    "STATUSES",
    "ExecutionDetail",
    "ExecutionStatus",
    "ExecutionSummary",
    "LifecycleSource",
    "RunRequest",
    "StepFunctionsSource",
    "trigger_of_name",
]

ExecutionStatus = Literal[
    "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"
]
STATUSES: tuple[ExecutionStatus, ...] = (
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "PENDING_REDRIVE",
)
_NAME = re.compile(r"^(?P<trigger>.+?)-\d{8}T\d{6}-[0-9a-f]{6}$")
_MODEL_OF_TASK = {task: name for name, task in TASK_OF.items()}


def trigger_of_name(name: str) -> str | None:
    """What started an execution, read from its name (``<trigger>-<UTC time>-<6 hex>``, as
    ``evpm lifecycle run`` and the console name them); None for another name.

    The list shows it without a DescribeExecution per row (1,000 rows would take seconds).

    Example: ``trigger_of_name("make-up-20260101T120000-a1b2c3") == "make-up"``.
    """
    match = _NAME.match(name)
    return match.group("trigger") if match else None


class ExecutionSummary(BaseModel):
    """One row of the executions table."""

    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: ExecutionStatus
    started: datetime
    stopped: datetime | None = None

    @property
    def trigger(self) -> str | None:
        return trigger_of_name(self.name)

    def duration_s(self, now: datetime | None = None) -> float:
        end = self.stopped or now or datetime.now(UTC)
        return max(0.0, (end - self.started).total_seconds())


class ExecutionDetail(ExecutionSummary):
    """One execution: its request, outcome and the machine (version) it ran on."""

    machine_arn: str
    input: dict[str, Any] = {}
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def request_trigger(self) -> str | None:
        value = self.input.get("trigger")
        return value if isinstance(value, str) else self.trigger

    @property
    def models(self) -> list[str]:
        return [_MODEL_OF_TASK.get(str(t), str(t)) for t in self.input.get("models") or []]


class RunRequest(BaseModel):
    """A run started from the console: which models, and the two demonstration switches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = MODEL_NAMES
    trigger: str
    corrupt_labels: bool = False
    force_smoke_failure: bool = False

    def execution_input(self) -> dict[str, Any]:
        """The request ``evpm lifecycle run`` sends (see cli/evpm_cli/lifecycle.py)."""
        return {
            "trigger": self.trigger,
            "dataset": "fleet",
            "models": [TASK_OF[name] for name in self.models],
            "options": {
                "corrupt_labels": self.corrupt_labels,
                "force_smoke_failure": self.force_smoke_failure,
            },
        }

    @staticmethod
    def execution_name(prefix: str = "console") -> str:
        return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


class LifecycleSource(Protocol):
    """Executions of the lifecycle state machine."""

    def executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 1000
    ) -> list[ExecutionSummary]:
        """Newest first."""
        ...

    def execution(self, name: str) -> ExecutionDetail:
        """Raises :class:`NotFoundError` for an unknown name."""
        ...

    def history(self, arn: str) -> list[dict[str, Any]]:
        """GetExecutionHistory's events, oldest first."""
        ...

    def definition(self, machine_arn: str) -> dict[str, Any]:
        """The ASL definition the execution ran on."""
        ...

    def start(self, request: RunRequest) -> str:
        """Start an execution; its name."""
        ...


_MISSING = {"ExecutionDoesNotExist", "InvalidArn", "InvalidName", "StateMachineDoesNotExist"}


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return {"raw": text}


class StepFunctionsSource:
    """:class:`LifecycleSource` over a boto3 Step Functions client."""

    def __init__(self, client: Any, machine_name: str) -> None:
        self._client = client
        self.machine_name = machine_name
        self._machine_arn: str | None = None

    def machine_arn(self) -> str:
        """The machine's ARN, found by name once (ListStateMachines)."""
        if self._machine_arn is None:
            try:
                for page in self._client.get_paginator("list_state_machines").paginate():
                    for machine in page["stateMachines"]:
                        if machine["name"] == self.machine_name:
                            self._machine_arn = machine["stateMachineArn"]
            except (BotoCoreError, ClientError) as exc:
                raise SourceUnavailableError(f"Step Functions did not answer: {exc}") from exc
            if self._machine_arn is None:
                raise SourceUnavailableError(
                    f"no state machine named {self.machine_name!r}: is the lifecycle stack "
                    "deployed (`evpm up`)?"
                )
        return self._machine_arn

    def executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 1000
    ) -> list[ExecutionSummary]:
        kwargs: dict[str, Any] = {"stateMachineArn": self.machine_arn()}
        if status:
            kwargs["statusFilter"] = status
        rows: list[ExecutionSummary] = []
        try:
            paginator = self._client.get_paginator("list_executions")
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": 1000}):
                rows += [
                    ExecutionSummary(
                        name=e["name"],
                        arn=e["executionArn"],
                        status=e["status"],
                        started=e["startDate"],
                        stopped=e.get("stopDate"),
                    )
                    for e in page["executions"]
                ]
                if len(rows) >= limit:
                    break
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"ListExecutions failed: {exc}") from exc
        rows.sort(key=lambda r: r.started, reverse=True)
        return rows[:limit]

    def execution(self, name: str) -> ExecutionDetail:
        arn = self.machine_arn().replace(":stateMachine:", ":execution:", 1) + f":{name}"
        try:
            d = self._client.describe_execution(executionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise NotFoundError(f"no execution named {name!r}") from exc
            raise SourceUnavailableError(f"DescribeExecution failed: {exc}") from exc
        except BotoCoreError as exc:
            raise SourceUnavailableError(f"DescribeExecution failed: {exc}") from exc
        request = _json(d.get("input"))
        return ExecutionDetail(
            name=d["name"],
            arn=d["executionArn"],
            status=d["status"],
            started=d["startDate"],
            stopped=d.get("stopDate"),
            machine_arn=d["stateMachineArn"],
            input=request if isinstance(request, dict) else {"value": request},
            output=_json(d.get("output")) if d.get("output") else None,
            error=d.get("error"),
            cause=d.get("cause"),
        )

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        try:
            paginator = self._client.get_paginator("get_execution_history")
            for page in paginator.paginate(executionArn=arn, PaginationConfig={"PageSize": 1000}):
                events += page["events"]
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"GetExecutionHistory failed: {exc}") from exc
        return sorted(events, key=lambda e: e.get("id", 0))

    def definition(self, machine_arn: str) -> dict[str, Any]:
        try:
            machine = self._client.describe_state_machine(stateMachineArn=machine_arn)
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"DescribeStateMachine failed: {exc}") from exc
        return json.loads(machine["definition"])

    def start(self, request: RunRequest) -> str:
        name = request.execution_name()
        try:
            self._client.start_execution(
                stateMachineArn=self.machine_arn(),
                name=name,
                input=json.dumps(request.execution_input()),
            )
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailableError(f"StartExecution failed: {exc}") from exc
        return name


def status_counts(rows: Sequence[ExecutionSummary]) -> dict[str, int]:
    """How many executions of each status (for the filter's labels)."""
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts
