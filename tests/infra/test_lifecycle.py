"""evpm-lifecycle: the state machine comes from the ASL file, logs everything and traces."""

from __future__ import annotations

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


def test_skeleton_states_are_named_for_what_they_do() -> None:
    # The lifecycle steps are not wired yet: no state may claim to train or promote.
    states = json.loads(ASL.read_text())["States"]
    assert not {"Train", "Validate", "Register", "Promote"} & set(states)
    assert any(s["Type"] == "Fail" for s in states.values())
    assert any(s["Type"] == "Succeed" for s in states.values())
