"""A stack update that replaces a REST API's deployment keeps the API serving.

CDK names an ``AWS::ApiGateway::Deployment`` after a hash of the API's methods, so adding a
route creates a new deployment, moves the stage to it and deletes the old one. The emulator
once left the stage on the old deployment and lost it with that deployment (every call then
answered 404 "does not correspond to a deployed API"); ``evpm_localstack.apigw_stage_update``
moves it. Checked here on a small stack of its own, through CloudFormation as cdklocal does.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from tests.integration.conftest import System


def _template(deployment: str, paths: list[str]) -> str:
    resources: dict[str, Any] = {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "evpm-update-probe"}},
    }
    for path in paths:
        resources[f"R{path}"] = {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {"RestApiId": {"Ref": "Api"}, "PathPart": path,
                           "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}},
        }  # fmt: skip
        resources[f"M{path}"] = {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"}, "ResourceId": {"Ref": f"R{path}"},
                "HttpMethod": "GET", "AuthorizationType": "NONE",
                "Integration": {"Type": "MOCK",
                                "RequestTemplates": {"application/json": '{"statusCode": 200}'},
                                "IntegrationResponses": [{"StatusCode": "200"}]},
                "MethodResponses": [{"StatusCode": "200"}],
            },
        }  # fmt: skip
    resources[deployment] = {
        "Type": "AWS::ApiGateway::Deployment",
        "DependsOn": [f"M{p}" for p in paths],
        "Properties": {"RestApiId": {"Ref": "Api"}},
    }
    resources["Stage"] = {
        "Type": "AWS::ApiGateway::Stage",
        "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "v1",
                       "DeploymentId": {"Ref": deployment}},
    }  # fmt: skip
    return json.dumps({"Resources": resources, "Outputs": {"ApiId": {"Value": {"Ref": "Api"}}}})


def _wait(cfn: Any, stack: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        [found] = cfn.describe_stacks(StackName=stack)["Stacks"]
        if not found["StackStatus"].endswith("_IN_PROGRESS"):
            return found
        assert time.monotonic() < deadline, found["StackStatus"]
        time.sleep(1)


def test_a_new_deployment_moves_the_stage_and_the_api_keeps_serving(system: System) -> None:
    cfn, apigw = system.client("cloudformation"), system.client("apigateway")
    stack = f"evpm-update-probe-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=stack, TemplateBody=_template("DeployA", ["one"]))
    try:
        created = _wait(cfn, stack)
        assert created["StackStatus"] == "CREATE_COMPLETE", created
        api_id = created["Outputs"][0]["OutputValue"]
        base = f"{system.endpoint}/_aws/execute-api/{api_id}/v1"
        assert httpx.get(f"{base}/one", timeout=30).status_code == 200
        # WHEN an update adds a route (a new deployment logical id, as CDK makes)
        cfn.update_stack(StackName=stack, TemplateBody=_template("DeployB", ["one", "two"]))
        updated = _wait(cfn, stack)
        assert updated["StackStatus"] == "UPDATE_COMPLETE", updated
        # THEN the stage is on the new deployment, the old one is gone, both routes answer
        [stage] = apigw.get_stages(restApiId=api_id)["item"]
        deployments = [d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"]]
        assert deployments == [stage["deploymentId"]]
        for path in ("one", "two"):
            assert httpx.get(f"{base}/{path}", timeout=30).status_code == 200, path
    finally:
        cfn.delete_stack(StackName=stack)
