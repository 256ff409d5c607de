"""The Models page's data: what serves, every registered version, and its evidence.

Two sources, each for what only it has: the evpm API's ``GET /models`` (with the user's key)
gives the serving pins and the versions' aliases; MLflow's REST API gives each version's tags,
among them the gate report the lifecycle's Register step wrote (every check with its numbers
and verdict), the run it came from and the lifecycle execution that registered it (its lineage).
Promote and roll back go through the API, so its role check applies as well as the console's.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from console.errors import SourceUnavailableError
from console.evpm_api import EvpmApi
from evpm.mlflow_rest import MlflowError, MlflowRegistry

__all__ = [
    "ApiRegistry",
    "GateCheck",
    "ModelView",
    "MoveResult",
    "RegistrySource",
    "VersionView",
]


class GateCheck(BaseModel):
    """One check of the gate report (``evpm.gate.Check``): what, its numbers, its verdict."""

    model_config = ConfigDict(frozen=True)

    model: str
    check: str
    passed: bool
    detail: str


class VersionView(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    aliases: list[str] = []
    pinned: bool = False
    metrics: dict[str, Any] = {}
    champion_metrics: dict[str, Any] | None = None
    gate_passed: bool | None = None
    gate_checks: list[GateCheck] = []
    gate_report_uri: str | None = None
    run_id: str | None = None
    lifecycle_execution: str | None = None
    data_fingerprint: str | None = None
    git_commit: str | None = None
    source: str | None = None
    created_ms: int | None = None

    @property
    def execution_name(self) -> str | None:
        """The lifecycle execution's name (the tag holds its ARN)."""
        return self.lifecycle_execution.rsplit(":", 1)[-1] if self.lifecycle_execution else None


class ModelView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pinned: int | None
    serving: str | None
    aliases: dict[str, int]
    versions: list[VersionView]


class MoveResult(BaseModel):
    """The API's answer to a promotion or rollback."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    champion: int | None
    previous: int | None
    pins_before: dict[str, int]
    pins: dict[str, int]


class RegistrySource(Protocol):
    def models(self, key: str) -> list[ModelView]: ...

    def promote(self, key: str, name: str, version: int) -> MoveResult: ...

    def rollback(self, key: str, name: str, to: int | None) -> MoveResult: ...


def _json_tag(tags: dict[str, str], key: str) -> Any:
    try:
        return json.loads(tags[key]) if tags.get(key) else None
    except ValueError:
        return None


def _version(summary: dict[str, Any], mlflow: dict[str, Any] | None) -> VersionView:
    tags = {t["key"]: t["value"] for t in (mlflow or {}).get("tags", [])}
    checks = _json_tag(tags, "gate_report") or []
    passed = tags.get("gate_passed", summary.get("gate_passed"))
    return VersionView(
        version=int(summary["version"]),
        aliases=list(summary.get("aliases") or []),
        pinned=bool(summary.get("pinned")),
        metrics=summary.get("metrics") or _json_tag(tags, "metrics") or {},
        champion_metrics=_json_tag(tags, "champion_metrics"),
        gate_passed=None if passed is None else str(passed).lower() == "true",
        gate_checks=[GateCheck.model_validate(c) for c in checks if isinstance(c, dict)],
        gate_report_uri=tags.get("gate_report_uri") or None,
        run_id=(mlflow or {}).get("run_id") or None,
        lifecycle_execution=tags.get("lifecycle_execution") or None,
        data_fingerprint=summary.get("data_fingerprint") or tags.get("data_fingerprint"),
        git_commit=summary.get("git_commit") or tags.get("git_commit"),
        source=summary.get("source") or (mlflow or {}).get("source"),
        created_ms=int((mlflow or {}).get("creation_timestamp") or 0) or None,
    )


class ApiRegistry:
    """:class:`RegistrySource` over the evpm API and MLflow's REST API."""

    def __init__(self, api: EvpmApi, mlflow: MlflowRegistry) -> None:
        self._api = api
        self._mlflow = mlflow

    def models(self, key: str) -> list[ModelView]:
        overview = self._api.call("GET", "/models", key)
        serving = overview.get("serving") or {}
        out = []
        for model in overview.get("registry") or []:
            try:
                tagged = {int(v["version"]): v for v in self._mlflow.versions(model["name"])}
            except MlflowError as exc:
                raise SourceUnavailableError(f"MLflow did not answer: {exc}") from exc
            out.append(
                ModelView(
                    name=model["name"],
                    pinned=model.get("pinned"),
                    serving=serving.get(model["name"]),
                    aliases=model.get("aliases") or {},
                    versions=[
                        _version(v, tagged.get(int(v["version"])))
                        for v in model.get("versions") or []
                    ],
                )
            )
        return out

    def promote(self, key: str, name: str, version: int) -> MoveResult:
        body = self._api.call("POST", f"/models/{name}/promote", key, json={"version": version})
        return MoveResult.model_validate(body)

    def rollback(self, key: str, name: str, to: int | None) -> MoveResult:
        body = self._api.call(
            "POST", f"/models/{name}/rollback", key, json={"to": to} if to else {}
        )
        return MoveResult.model_validate(body)
