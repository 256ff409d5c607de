"""In-memory sources for the console's unit tests: each satisfies its Protocol, records what
the pages asked of it, and holds data a test can shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.errors import NotFoundError, PermissionDeniedError
from console.fleet import AlertedVehicle, Explanation, ModelExplanation, PredictionPoint
from console.keys import ApiKey
from console.lifecycle import ExecutionDetail, ExecutionSummary, RunRequest
from console.monitoring import FiringAlert, MetricReading, Series
from console.registry import GateCheck, ModelView, MoveResult, VersionView

KEYS = {
    "viewer-secret": ApiKey(id="k-viewer", name="dev-viewer", role="viewer", enabled=True),
    "fleet-secret": ApiKey(id="k-fleet", name="dev-fleet", role="fleet-service", enabled=True),
    "admin-secret": ApiKey(id="k-admin", name="dev-admin", role="ml-admin", enabled=True),
    "revoked-secret": ApiKey(id="k-old", name="old", role="ml-admin", enabled=False),
    "norole-secret": ApiKey(id="k-none", name="untagged", role=None, enabled=True),
}
HTML_VEHICLE = '<script>alert("x")</script>'
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:evpm-model-lifecycle"

DEFINITION = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Work"}],
            "Default": "Reject",
        },
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:000000000000:function:w",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "WorkFailed"}],
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "WorkFailed": {"Type": "Fail", "Error": "WorkFailed", "Cause": "work broke"},
        "Reject": {"Type": "Fail", "Error": "Rejected", "Cause": "bad request"},
    },
}


def event(n: int, kind: str, seconds: float, **details: Any) -> dict[str, Any]:
    key = {
        "TaskStateEntered": "stateEnteredEventDetails",
        "ChoiceStateEntered": "stateEnteredEventDetails",
        "SucceedStateEntered": "stateEnteredEventDetails",
        "FailStateEntered": "stateEnteredEventDetails",
        "TaskStateExited": "stateExitedEventDetails",
        "ChoiceStateExited": "stateExitedEventDetails",
        "SucceedStateExited": "stateExitedEventDetails",
        "TaskFailed": "taskFailedEventDetails",
        "ExecutionFailed": "executionFailedEventDetails",
        "ExecutionSucceeded": "executionSucceededEventDetails",
        "ExecutionStarted": "executionStartedEventDetails",
        "ExecutionAborted": "executionAbortedEventDetails",
    }.get(kind, "details")
    return {"id": n, "type": kind, "timestamp": T0 + timedelta(seconds=seconds), key: details}


SUCCEEDED_EVENTS = [
    event(1, "ExecutionStarted", 0, input='{"ok": true}'),
    event(2, "ChoiceStateEntered", 0.1, name="Check", input='{"ok": true}'),
    event(3, "ChoiceStateExited", 0.2, name="Check", output='{"ok": true}'),
    event(4, "TaskStateEntered", 0.3, name="Work", input='{"ok": true}'),
    event(5, "TaskStateExited", 2.3, name="Work", output='{"result": 1}'),
    event(6, "SucceedStateEntered", 2.4, name="Done", input='{"result": 1}'),
    event(7, "SucceedStateExited", 2.4, name="Done", output='{"result": 1}'),
    event(8, "ExecutionSucceeded", 2.5, output='{"result": 1}'),
]
FAILED_EVENTS = [
    event(1, "ExecutionStarted", 0, input="{}"),
    event(2, "ChoiceStateEntered", 0.1, name="Check", input="{}"),
    event(3, "ChoiceStateExited", 0.2, name="Check", output="{}"),
    event(4, "FailStateEntered", 0.3, name="Reject", input="{}"),
    event(5, "ExecutionFailed", 0.4, error="Rejected", cause="bad request"),
]


def _detail(name: str, status: str, stopped: float | None, **extra: Any) -> ExecutionDetail:
    return ExecutionDetail(
        name=name,
        arn=f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}",
        status=status,
        started=T0,
        stopped=T0 + timedelta(seconds=stopped) if stopped is not None else None,
        machine_arn=MACHINE,
        **extra,
    )


@dataclass
class FakeLifecycle:
    runs: dict[str, tuple[ExecutionDetail, list[dict[str, Any]]]] = field(default_factory=dict)
    started: list[RunRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runs = {
            "make-up-20260105T120000-abcdef": (
                _detail(
                    "make-up-20260105T120000-abcdef",
                    "SUCCEEDED",
                    2.5,
                    input={"trigger": "make-up", "models": ["rul"]},
                ),
                SUCCEEDED_EVENTS,
            ),
            "ci-20260105T130000-123456": (
                _detail(
                    "ci-20260105T130000-123456",
                    "FAILED",
                    0.4,
                    input={},
                    error="Rejected",
                    cause="bad request",
                ),
                FAILED_EVENTS,
            ),
        }

    def executions(self, *, status: str | None = None, limit: int = 1000) -> list[ExecutionSummary]:
        rows = [
            ExecutionSummary(**d.model_dump(include=set(ExecutionSummary.model_fields)))
            for d, _ in self.runs.values()
        ]
        return [r for r in rows if status is None or r.status == status][:limit]

    def execution(self, name: str) -> ExecutionDetail:
        if name not in self.runs:
            raise NotFoundError(f"no execution named {name!r}")
        return self.runs[name][0]

    def history(self, arn: str) -> list[dict[str, Any]]:
        return next(events for d, events in self.runs.values() if d.arn == arn)

    def definition(self, machine_arn: str) -> dict[str, Any]:
        return DEFINITION

    def start(self, request: RunRequest) -> str:
        self.started.append(request)
        return "console-20260105T140000-fedcba"


GATE = [
    GateCheck(
        model="ev-rul",
        check="primary_metric",
        passed=True,
        detail="rmse 10.5 <= champion 11.0 * 1.03",
    ),
    GateCheck(model="ev-rul", check="latency", passed=False, detail="p99 12.0 ms > 10.0 ms"),
]


@dataclass
class FakeRegistry:
    moves: list[tuple[str, str, str, int | None]] = field(default_factory=list)

    def models(self, key: str) -> list[ModelView]:
        return [
            ModelView(
                name="ev-rul",
                pinned=1,
                serving="1",
                aliases={"champion": 1},
                versions=[
                    VersionView(
                        version=2,
                        metrics={"rmse": 10.5},
                        gate_passed=False,
                        gate_checks=GATE,
                        run_id="abc123",
                        lifecycle_execution=f"{MACHINE}:ci-20260105T130000-123456",
                    ),
                    VersionView(
                        version=1,
                        aliases=["champion"],
                        pinned=True,
                        metrics={"rmse": 11.0},
                        gate_passed=True,
                    ),
                ],
            )
        ]

    def _move(self, key: str, action: str, name: str, version: int | None) -> MoveResult:
        if KEYS[key].role != "ml-admin":  # what the API itself answers
            raise PermissionDeniedError("role lacks permission (the API)")
        self.moves.append((key, action, name, version))
        return MoveResult(
            name=name,
            champion=version or 1,
            previous=1,
            pins_before={name: 1},
            pins={name: version or 1},
        )

    def promote(self, key: str, name: str, version: int) -> MoveResult:
        return self._move(key, "promote", name, version)

    def rollback(self, key: str, name: str, to: int | None) -> MoveResult:
        return self._move(key, "rollback", name, to)


@dataclass
class FakeFleet:
    points: dict[str, list[PredictionPoint]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = {
            "EV-0001": [
                PredictionPoint(
                    ts=f"2026-01-05T{h:02d}:00:00.000000Z",
                    status="ok",
                    health_score=95.0,
                    failure_mode="none",
                    rul_hours=100.0 - h,
                    rul_low_hours=80.0 - h,
                    rul_high_hours=120.0 - h,
                    anomaly_score=0.1 * h,
                    predicted_failure="none",
                    failure_probabilities={"none": 0.9, "brake_wear": 0.1},
                )
                for h in range(10, 0, -1)
            ]
        }

    def alerted_vehicles(self, limit: int = 100) -> list[AlertedVehicle]:
        return [
            AlertedVehicle(
                vehicle_id="EV-0001",
                last_alert_ts="2026-01-05T10:00:00.000000Z",
                failure_modes=["brake_wear"],
            ),
            AlertedVehicle(
                vehicle_id=HTML_VEHICLE,
                last_alert_ts="2026-01-05T09:00:00.000000Z",
                failure_modes=["<b>mode</b>"],
            ),
        ][:limit]

    def predictions(self, key: str, vehicle_id: str, limit: int) -> list[PredictionPoint]:
        if vehicle_id not in self.points:
            raise NotFoundError(f"no predictions are stored for vehicle {vehicle_id!r}")
        return self.points[vehicle_id][:limit]

    def explanation(self, key: str, vehicle_id: str, predicted: str | None) -> Explanation:
        return Explanation(
            vehicle_id=vehicle_id,
            ts="2026-01-05T10:00:00.000000Z",
            models=[
                ModelExplanation(
                    model="ev-rul",
                    version="1",
                    kind="TreeSHAP",
                    output=90.0,
                    base_value=100.0,
                    by_signal=[("Brake_Pad_Wear", -8.0), ("SoH", -2.0)],
                )
            ],
        )


@dataclass
class FakeMonitoring:
    drift_families: list[MetricReading] = field(default_factory=list)

    def key_metrics(self) -> list[MetricReading]:
        return [
            MetricReading(
                label="API requests",
                query="q",
                unit="/s",
                series=[Series(labels={"service": "evpm-api"}, value=1.5)],
            ),
            MetricReading(label="Scorer stream lag", query="q2", unit="s", series=[]),
        ]

    def firing_alerts(self) -> list[FiringAlert]:
        return [
            FiringAlert(
                name="EvpmNoTraffic",
                severity="warning",
                summary="no <traffic>",
                starts_at="2026-01-05T10:00:00Z",
                labels={},
            )
        ]

    def drift(self) -> list[MetricReading]:
        return self.drift_families


@dataclass
class FakeKeys:
    def find(self, value: str) -> ApiKey | None:
        return KEYS.get(value)
