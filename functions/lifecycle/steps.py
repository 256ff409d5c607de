"""The I/O of each lifecycle step (SSM pins, MLflow registry, S3 reports, canary invokes)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import boto3

from evpm.gate import GateEvidence, GateReport, evaluate
from evpm.mlflow_rest import MlflowRegistry
from evpm.pins import CHAMPION, PREVIOUS, plan_promotion
from evpm.settings import LifecycleSettings
from evpm.telemetry import EXAMPLE_RECORD, format_timestamp
from evpm_aws.model_store import SsmPinStore, mlflow_uri

__all__ = [
    "Outcome",
    "PromotionFailed",
    "SmokeTestFailed",
    "Steps",
    "canary_records",
    "ending_outcome",
    "gate_check_counts",
]

Outcome = Literal["succeeded", "failed", "rolled_back"]
"""How an execution ended, as the ``outcome`` dimension of ``LifecycleExecutions``."""

CANARY_VEHICLE = "CANARY-LIFECYCLE"
_RUN_TAGS = (
    "data_fingerprint",
    "feature_spec_version",
    "git_commit",
    "dataset",
    "task",
    "drift_profile",
)


class SmokeTestFailed(RuntimeError):
    """Serving did not answer with the promoted versions, or answered with nonsense."""


class PromotionFailed(RuntimeError):
    """Pins or aliases could not be moved."""


def canary_records(count: int = 6) -> list[dict[str, Any]]:
    """Hourly readings of one canary vehicle (the schema's nominal example)."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    return [
        {
            **EXAMPLE_RECORD,
            "vehicle_id": CANARY_VEHICLE,
            "timestamp": format_timestamp(start + timedelta(hours=h)),
        }
        for h in range(count)
    ]


class Steps:
    """The services one lifecycle step may touch, built once per container."""

    def __init__(self, settings: LifecycleSettings, *, ssm: Any, s3: Any, lam: Any) -> None:
        self.settings = settings
        self.ssm, self.s3, self.lam = ssm, s3, lam
        self.pins = SsmPinStore(ssm, settings.PINS_PARAMETER)
        self._registry: MlflowRegistry | None = None

    @classmethod
    def from_settings(cls, settings: LifecycleSettings) -> Steps:
        return cls(
            settings,
            ssm=boto3.client("ssm"),
            s3=boto3.client("s3"),
            lam=boto3.client("lambda"),
        )

    @property
    def registry(self) -> MlflowRegistry:
        if self._registry is None:
            self._registry = MlflowRegistry(
                mlflow_uri(self.ssm, self.settings.MLFLOW_URI_PARAMETER)
            )
        return self._registry

    # Validate ---------------------------------------------------------------------------
    def validate(self, train: dict[str, Any], *, execution: str) -> dict[str, Any]:
        """Judge the challengers; store the report beside the execution's artifacts."""
        evidence = GateEvidence(
            models=[m["evidence"] for m in train["models"]], data_profile=train["data_profile"]
        )
        report = evaluate(evidence)
        key = f"lifecycle/{_short(execution)}/gate-report.json"
        self.s3.put_object(
            Bucket=self.settings.ARTIFACTS_BUCKET,
            Key=key,
            Body=report.model_dump_json(indent=1).encode(),
            ContentType="application/json",
        )
        out = report.model_dump(mode="json")
        out["report_uri"] = f"s3://{self.settings.ARTIFACTS_BUCKET}/{key}"
        return out

    # Register ---------------------------------------------------------------------------
    def register(
        self, train: dict[str, Any], gate: dict[str, Any], *, execution: str
    ) -> dict[str, Any]:
        """Register each validated challenger with its lineage and the gate's verdict."""
        report = GateReport.model_validate({k: v for k, v in gate.items() if k != "report_uri"})
        versions: dict[str, int] = {}
        for model in train["models"]:
            ev = model["evidence"]
            run = self.registry.run(model["run_id"]) if model.get("run_id") else {}
            run_tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
            params = {p["key"]: p["value"] for p in run.get("data", {}).get("params", [])}
            tags = {k: run_tags[k] for k in _RUN_TAGS if k in run_tags}
            tags.update(
                {
                    "metrics": json.dumps(ev["metrics"]),
                    "params": json.dumps(params)[:5000],
                    "champion_metrics": json.dumps(ev.get("champion_metrics")),
                    "gate_passed": str(report.passed).lower(),
                    "gate_report": json.dumps(
                        [c.model_dump() for c in report.checks if c.model in (ev["name"], "*")]
                    )[:5000],
                    "gate_report_uri": gate.get("report_uri", ""),
                    "lifecycle_execution": execution,
                    "data_fingerprint": tags.get("data_fingerprint", train.get("fingerprint", "")),
                    # Why this run happened: manual, console, or a drift event (its id).
                    "trigger": str(train.get("trigger") or ""),
                    "trigger_id": str(train.get("trigger_id") or ""),
                }
            )
            versions[ev["name"]] = self.registry.create_version(
                ev["name"], model["source"], run_id=model.get("run_id"), tags=tags
            )
        return {"versions": versions}

    # Promote ----------------------------------------------------------------------------
    def promote(self, versions: dict[str, int]) -> dict[str, Any]:
        """Move ``champion``/``previous`` and the pins; returns before and after for revert."""
        before_pins = self.pins.read()
        before_aliases = {name: self.registry.aliases(name) for name in versions}
        try:
            for name, version in versions.items():
                plan = plan_promotion(name, int(version), before_aliases[name].get(CHAMPION))
                self.registry.set_aliases(name, champion=plan.champion, previous=plan.previous)
            after = {**before_pins, **{k: int(v) for k, v in versions.items()}}
            self.pins.write(after)
        except Exception as exc:
            self._restore(before_pins, before_aliases)
            raise PromotionFailed(f"{type(exc).__name__}: {exc}") from exc
        return {
            "before": {"pins": before_pins, "aliases": before_aliases},
            "after": {"pins": after},
        }

    def _restore(self, pins: dict[str, int], aliases: dict[str, dict[str, int]]) -> None:
        for name, known in aliases.items():
            self.registry.set_aliases(
                name, champion=known.get(CHAMPION), previous=known.get(PREVIOUS)
            )
        self.pins.write(pins)

    def revert(self, promotion: dict[str, Any]) -> dict[str, Any]:
        """Undo a promotion exactly: pins and aliases as they were before it."""
        before = promotion["before"]
        aliases = {k: {a: int(v) for a, v in d.items()} for k, d in before["aliases"].items()}
        self._restore({k: int(v) for k, v in before["pins"].items()}, aliases)
        return {"restored_pins": before["pins"], "restored_aliases": aliases}

    # Smoke test -------------------------------------------------------------------------
    def smoke(self, promotion: dict[str, Any], *, force_failure: bool = False) -> dict[str, Any]:
        """Canary readings through the API and the scorer until both serve the new pins."""
        if force_failure:
            raise SmokeTestFailed("forced by the request (options.force_smoke_failure)")
        expected = {k: str(v) for k, v in promotion["after"]["pins"].items()}
        deadline = time.monotonic() + self.settings.SMOKE_TIMEOUT_SECONDS
        results = {}
        for function in (self.settings.API_FUNCTION, self.settings.SCORER_FUNCTION):
            results[function] = self._canary_until(function, expected, deadline)
        return {"expected": expected, "served": results}

    def _canary_until(
        self, function: str, expected: dict[str, str], deadline: float
    ) -> dict[str, Any]:
        last = "no answer"
        while True:
            answer = self._invoke(function, {"evpm_canary": {"records": canary_records()}})
            if "error" in answer:
                last = f"{function} failed: {answer['error']}"
            else:
                versions = answer.get("model_versions", {})
                problems = _canary_problems(answer.get("predictions", []))
                if all(versions.get(k) == v for k, v in expected.items()) and not problems:
                    return {"model_versions": versions, "predictions": len(answer["predictions"])}
                last = f"{function} served {versions} (want {expected}); {problems or 'outputs ok'}"
            if time.monotonic() > deadline:
                raise SmokeTestFailed(last)
            time.sleep(2)

    def _invoke(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.lam.invoke(
            FunctionName=function,
            Payload=json.dumps(payload).encode(),
            InvocationType="RequestResponse",
        )
        body = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            return {"error": body.get("errorMessage", body)}
        return body


def ending_outcome(
    action: str | None, *, result: dict[str, Any] | None = None, failed: bool = False
) -> Outcome | None:
    """How the execution ends if this step's run is its last Lambda step, else ``None``.

    Read from ``state_machines/model-lifecycle.asl.json``: a step that raises goes to a Fail
    state (``ValidationFailed``, ``RegistrationFailed``, ``PromotionFailed``,
    ``RollbackFailed``) except the smoke test, whose failure goes to ``Rollback``; a gate that
    does not pass goes to ``GateRejected`` (a failed execution: nothing was promoted); a smoke
    test that passes goes to ``Promoted``, a revert that works to ``RolledBack``. Executions
    that end without a Lambda step after them (``TrainingFailed``, ``RejectRequest``) are
    not seen here.

    Example: ``ending_outcome("revert", result={...}) == "rolled_back"``.
    """
    if failed:
        return None if action == "smoke" or action not in _ACTIONS else "failed"
    if action == "validate" and result is not None and not result.get("passed"):
        return "failed"
    ends: dict[str, Outcome] = {"smoke": "succeeded", "revert": "rolled_back"}
    return ends.get(action or "")


_ACTIONS = ("validate", "register", "promote", "smoke", "revert")


def gate_check_counts(gate: dict[str, Any]) -> Counter[tuple[str, str]]:
    """How many of the gate report's checks passed and failed, by check name.

    The check names are the gate's fixed set (``vs_champion``, ``floor``, ``latency``,
    ``data_rows``, ...), so they make a bounded metric dimension; the model is left out.

    Example: ``gate_check_counts(report)[("latency", "pass")] == 3``.
    """
    return Counter(
        (str(check["check"]), "pass" if check.get("passed") else "fail")
        for check in gate.get("checks", [])
    )


def _canary_problems(predictions: list[dict[str, Any]]) -> list[str]:
    problems = []
    if len(predictions) != len(canary_records()):
        problems.append(f"{len(predictions)} predictions for {len(canary_records())} readings")
    for p in predictions:
        rul = p.get("rul_hours")
        if rul is not None and rul < 0:
            problems.append(f"negative RUL {rul}")
        proba = p.get("failure_probabilities")
        if proba is not None and abs(sum(proba.values()) - 1.0) > 1e-6:
            problems.append(f"probabilities sum to {sum(proba.values())}")
    return problems


def _short(execution: str) -> str:
    """The execution's name from its ARN (or the name itself)."""
    return execution.rsplit(":", 1)[-1] or "manual"
