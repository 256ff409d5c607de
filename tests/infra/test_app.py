"""Whole-app checks: cdk-nag, IAM wildcards, stack outputs and the build prerequisites."""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match

from infra import constants as c
from infra.app import build
from infra.config import InfraSettings, MissingBuildError
from tests.infra.conftest import cdk_context
from tests.infra.helpers import actions, policy_statements

EXPECTED_OUTPUTS = {
    c.STORAGE_STACK: {
        "RawBucketName",
        "ArtifactsBucketName",
        "MlflowBucketName",
        "PredictionsTable",
        "LabelsTable",
        "AlertDedupTable",
        "OpsAlertsTable",
    },
    c.INGESTION_STACK: {"StreamName", "StreamArn", "DlqUrl"},
    c.SCORING_STACK: {"ScorerFunctionName", "AlertBusName", "AlertsAuditQueueUrl"},
    c.SERVING_STACK: {"ApiId", "ApiStage", "ApiUrl", "ApiKeyIds", "ApiFunctionName"},
    c.LIFECYCLE_STACK: {"StateMachineArn", "TrainingQueueUrl", "LifecycleFunctionName"},
    c.MONITORING_STACK: {"OpsAlertsTopicArn"},
    c.DRIFT_STACK: {
        "MonitorFunctionName",
        "RetrainFunctionName",
        "DriftHistoryTable",
        "OutcomesTable",
        "RetrainTriggersTable",
        "LabelsBucketName",
    },
}


def test_stack_names(stacks) -> None:
    assert set(stacks) == set(c.ALL_STACKS)
    assert {s.stack_name for s in stacks.values()} == set(c.ALL_STACKS)


@pytest.mark.parametrize("name", c.ALL_STACKS)
def test_no_unsuppressed_nag_errors(stacks, template, name) -> None:
    template(name)  # synthesise, which runs the cdk-nag aspect
    errors = Annotations.from_stack(stacks[name]).find_error(
        "*", Match.string_like_regexp("AwsSolutions-.*")
    )
    assert errors == [], "\n".join(str(e.entry.data) for e in errors)


@pytest.mark.parametrize("name", c.ALL_STACKS)
def test_no_iam_statement_grants_wildcard_actions(template, name) -> None:
    for statement in policy_statements(template(name)):
        for action in actions(statement):
            assert action != "*" and not action.endswith(":*"), (name, statement)


@pytest.mark.parametrize("name", c.ALL_STACKS)
def test_outputs_the_cli_reads(template, name) -> None:
    outputs = template(name).to_json().get("Outputs", {})
    # Exports CDK adds for cross-stack references carry an Export; the CLI's outputs do not.
    named = {key for key, out in outputs.items() if "Export" not in out}
    assert named == EXPECTED_OUTPUTS[name]


def test_api_key_ids_output_joins_every_key(template) -> None:
    tpl = template(c.SERVING_STACK)
    value = tpl.to_json()["Outputs"]["ApiKeyIds"]["Value"]
    separator, parts = value["Fn::Join"]
    assert separator == ","
    assert sorted(p["Ref"] for p in parts) == sorted(tpl.find_resources("AWS::ApiGateway::ApiKey"))


def test_missing_dependency_layer_says_how_to_build_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EVPM_DEPS_LAYER_DIR", str(tmp_path / "nope"))
    with pytest.raises(MissingBuildError, match=r"layers/build\.py"):
        build(App(context=cdk_context(), outdir=str(tmp_path / "out")), InfraSettings())


def test_missing_function_code_fails_at_synth(tmp_path, settings) -> None:
    broken = settings.model_copy(update={"functions_dir": tmp_path})
    with pytest.raises(MissingBuildError, match="function code not found"):
        build(App(context=cdk_context(), outdir=str(tmp_path / "out")), broken)


def test_the_cli_deploys_and_checks_every_stack_of_the_app() -> None:
    """``evpm up`` waits for, and reads the outputs of, exactly the app's stacks."""
    from evpm_cli.config import STACKS

    assert set(STACKS) == set(c.ALL_STACKS)
