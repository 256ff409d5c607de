"""Stage updates from CloudFormation: the patch operations (no LocalStack needed)."""

from __future__ import annotations

from evpm_localstack.apigw_stage_update import patch_operations

BEFORE = {
    "RestApiId": "abc", "StageName": "v1", "DeploymentId": "d1", "TracingEnabled": True,
    "Variables": {"a": "1", "gone": "x"},
    "AccessLogSetting": {"DestinationArn": "arn:1", "Format": "{}"},
}  # fmt: skip


def test_nothing_changed_nothing_to_patch() -> None:
    assert patch_operations(BEFORE, dict(BEFORE)) == []


def test_a_new_deployment_and_changed_settings_are_patched() -> None:
    after = {
        **BEFORE, "DeploymentId": "d2", "TracingEnabled": False, "Description": "new",
        "Variables": {"a": "2", "b": "3"},
        "AccessLogSetting": {"DestinationArn": "arn:2", "Format": "{}"},
    }  # fmt: skip
    assert patch_operations(BEFORE, after) == [
        {"op": "replace", "path": "/deploymentId", "value": "d2"},
        {"op": "replace", "path": "/description", "value": "new"},
        {"op": "replace", "path": "/tracingEnabled", "value": "false"},
        {"op": "replace", "path": "/variables/a", "value": "2"},
        {"op": "replace", "path": "/variables/b", "value": "3"},
        {"op": "remove", "path": "/variables/gone"},
        {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": "arn:2"},
    ]
