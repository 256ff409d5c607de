"""evpm-lifecycle: the state machine comes from the ASL file, logs everything and traces."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from infra import constants as c
from infra.config import REPO_ROOT
from tests.infra.helpers import logical_id, only

STACK = c.LIFECYCLE_STACK
ASL = REPO_ROOT / "state_machines" / "model-lifecycle.asl.json"


def test_definition_is_the_file_with_every_placeholder_substituted(stacks, template) -> None:
    # GIVEN the synthesised state machine
    _, sm = only(template(STACK), "AWS::StepFunctions::StateMachine")
    props = sm["Properties"]
    assert props["StateMachineName"] == "evpm-model-lifecycle"
    # THEN its definition is an asset whose staged bytes are the ASL file's
    key = props["DefinitionS3Location"]["Key"]
    staged = Path(stacks[STACK].node.root.outdir) / f"asset.{key}"
    text = ASL.read_text()
    assert staged.read_text() == text
    # AND every ${Placeholder} in it gets a value from the stack
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders, "the definition should take resource names from the stack"
    assert set(props["DefinitionSubstitutions"]) == placeholders


def test_state_machine_logs_all_events_and_traces(template) -> None:
    tpl = template(STACK)
    _, sm = only(tpl, "AWS::StepFunctions::StateMachine")
    props = sm["Properties"]
    log_group = logical_id(
        tpl, "AWS::Logs::LogGroup", LogGroupName="/aws/vendedlogs/states/evpm-model-lifecycle"
    )
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    [destination] = props["LoggingConfiguration"]["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": [log_group, "Arn"]
    }
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_states_follow_the_lifecycle_with_catches_to_named_failures() -> None:
    states = json.loads(ASL.read_text())["States"]
    path = ["Train", "Validate", "GateDecision", "Register", "Promote", "SmokeTest", "Promoted"]
    for here, there in itertools.pairwise(path):
        state = states[here]
        nexts = {state.get("Next"), *(c["Next"] for c in state.get("Choices", []))}
        assert there in nexts, f"{here} should lead to {there}"
    assert states["Promoted"]["Type"] == "Succeed"
    # Every task catches everything, and each catch ends in a Fail that carries the cause,
    # except the smoke test's, which rolls back first.
    for name in ("Train", "Validate", "Register", "Promote", "SmokeTest", "Rollback"):
        [catch] = states[name]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
    assert states["SmokeTest"]["Catch"][0]["Next"] == "Rollback"
    assert states["Rollback"]["Next"] == "RolledBack"
    fails = {k: v for k, v in states.items() if v["Type"] == "Fail"}
    assert {"GateRejected", "RolledBack", "TrainingFailed", "RejectRequest"} <= set(fails)
    assert all("CausePath" in v or "Cause" in v for v in fails.values())
    assert states["GateRejected"]["CausePath"] == "$.gate.reason"
    # Training hands its task token to the worker through SQS and waits for the answer.
    assert states["Train"]["Resource"].endswith("sqs:sendMessage.waitForTaskToken")
    assert "HeartbeatSeconds" in states["Train"]


def test_steps_function_is_least_privilege(template) -> None:
    from tests.infra.helpers import actions, policy_statements

    tpl = template(STACK)
    granted = {a for s in policy_statements(tpl) for a in actions(s)}
    assert "lambda:InvokeFunction" in granted
    assert {"ssm:GetParameter", "ssm:PutParameter", "s3:PutObject"} <= granted
    assert not {a for a in granted if a.startswith(("s3:Get", "s3:Delete", "ssm:Delete", "iam:"))}
