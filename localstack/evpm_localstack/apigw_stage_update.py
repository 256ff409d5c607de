"""CloudFormation updates of an API Gateway stage: point it at the new deployment.

Why: when a stack update adds or changes a REST API's methods, CDK gives the
``AWS::ApiGateway::Deployment`` a new logical id, so CloudFormation creates a new deployment,
updates the ``AWS::ApiGateway::Stage`` to it, and deletes the old deployment in the cleanup
phase. LocalStack's stage provider does not implement ``update`` (the engine reports it done
anyway), so the stage stayed on the old deployment, and deleting that deployment deleted the
stage with it: after such an update every call answered "The API id ... does not correspond to
a deployed API Gateway API" (adding the docs routes to evpm-serving did exactly that on a
system deployed before them). On AWS the stage moves to the new deployment.

What: the stage's ``update`` applies what changed among the properties LocalStack's ``create``
sets - the deployment, description, tracing, stage variables and access log settings - with
``UpdateStage`` patch operations, as CloudFormation does.
"""

from __future__ import annotations

from typing import Any

_SIMPLE = {  # CloudFormation property -> UpdateStage patch path
    "DeploymentId": "/deploymentId",
    "Description": "/description",
    "TracingEnabled": "/tracingEnabled",
}


def patch_operations(previous: dict[str, Any], desired: dict[str, Any]) -> list[dict[str, str]]:
    """The ``UpdateStage`` operations that take the stage from ``previous`` to ``desired``."""
    ops: list[dict[str, str]] = []
    for prop, path in _SIMPLE.items():
        if prop in desired and desired[prop] != previous.get(prop):
            value = desired[prop]
            text = str(value).lower() if isinstance(value, bool) else str(value)
            ops.append({"op": "replace", "path": path, "value": text})
    old_vars, new_vars = previous.get("Variables") or {}, desired.get("Variables") or {}
    for name, value in new_vars.items():
        if old_vars.get(name) != value:
            ops.append({"op": "replace", "path": f"/variables/{name}", "value": str(value)})
    for name in old_vars.keys() - new_vars.keys():
        ops.append({"op": "remove", "path": f"/variables/{name}"})
    old_log, new_log = previous.get("AccessLogSetting") or {}, desired.get("AccessLogSetting") or {}
    for key, value in new_log.items():
        if value and old_log.get(key) != value:
            path = f"/accessLogSettings/{key[0].lower()}{key[1:]}"
            ops.append({"op": "replace", "path": path, "value": str(value)})
    return ops


def install() -> None:
    """Give LocalStack's ``AWS::ApiGateway::Stage`` provider an ``update`` (idempotent)."""
    from localstack.services.apigateway.resource_providers.aws_apigateway_stage import (
        ApiGatewayStageProvider,
    )
    from localstack.services.cloudformation.resource_provider import (
        OperationStatus,
        ProgressEvent,
    )

    if getattr(ApiGatewayStageProvider.update, "_evpm", False):
        return

    def update(self: Any, request: Any) -> Any:
        model = dict(request.desired_state)
        previous = request.previous_state or {}
        model.setdefault("StageName", previous.get("StageName"))
        ops = patch_operations(previous, model)
        if ops:
            request.aws_client_factory.apigateway.update_stage(
                restApiId=model["RestApiId"], stageName=model["StageName"], patchOperations=ops
            )
        return ProgressEvent(
            status=OperationStatus.SUCCESS, resource_model=model,
            custom_context=request.custom_context,
        )  # fmt: skip

    update._evpm = True  # type: ignore[attr-defined]
    ApiGatewayStageProvider.update = update
