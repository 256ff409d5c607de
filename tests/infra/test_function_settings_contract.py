"""The environment the stacks give each function is what that function's settings declare.

The settings models in ``evpm.settings`` are the one contract between infra and function code:
a variable set here but not declared there is dead (or misspelt), a required field with no
variable here fails the function's cold start, and a value the model refuses (a log level it
does not know, a window out of range) fails it too.

Nothing is listed by hand that could drift: every function is found in the synthesised app,
its code folder is the asset it is zipped from, and its settings model is the one its handler
module builds at import (``settings = ScorerSettings()``). A function whose handler builds no
settings model fails here, as does an ``evpm.settings`` that does not import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import AssetStaging, Stack
from aws_cdk import aws_lambda as lambda_

import evpm.settings as settings_module
from infra import constants as c

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_cdk.assertions import Template
    from pydantic import BaseModel

FUNCTIONS = (
    c.SCORER_FUNCTION,
    c.API_FUNCTION,
    c.LIFECYCLE_FUNCTION,
    c.MONITOR_FUNCTION,
    c.RETRAIN_FUNCTION,
    c.LABELS_FUNCTION,
)
"""Named only to give each function its own test case; :func:`test_every_function_is_checked`
fails when the app defines one that is not here."""

TOKEN = "resolved-at-deploy"
"""Stands for a value CloudFormation resolves (``Ref``, ``Fn::ImportValue``): every such
variable names a resource, which a settings model reads as a non-empty string."""


@dataclass(frozen=True)
class DeployedFunction:
    """What the synthesised app says about one function."""

    name: str
    code_dir: Path
    handler: str
    environment: dict[str, Any]


@pytest.fixture(scope="session")
def deployed(
    stacks: dict[str, Stack], template: Callable[[str], Template]
) -> dict[str, DeployedFunction]:
    """Every ``AWS::Lambda::Function`` of the app, by function name."""
    found: dict[str, DeployedFunction] = {}
    for stack_name, stack in stacks.items():
        resources = template(stack_name).to_json()["Resources"]
        for node in stack.node.find_all():
            if not isinstance(node, lambda_.Function):
                continue
            props = resources[stack.get_logical_id(node.node.default_child)]["Properties"]
            stage = node.node.find_child("Code").node.find_child("Stage")
            assert isinstance(stage, AssetStaging), f"{node.node.path} is not zipped from a folder"
            found[props["FunctionName"]] = DeployedFunction(
                name=props["FunctionName"],
                code_dir=Path(stage.source_path),
                handler=props["Handler"],
                environment=props.get("Environment", {}).get("Variables", {}),
            )
    return found


def settings_model_of(fn: DeployedFunction) -> type[BaseModel]:
    """The ``evpm.settings`` model the handler module builds at module level (cold start)."""
    module = fn.code_dir / f"{fn.handler.rsplit('.', 1)[0]}.py"
    tree = ast.parse(module.read_text(), filename=str(module))
    built = {
        node.value.func.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id in settings_module.__all__
    }
    assert len(built) == 1, f"{module} should build one evpm.settings model at import: {built}"
    return getattr(settings_module, built.pop())


def test_every_function_is_checked(deployed: dict[str, DeployedFunction]) -> None:
    # GIVEN the functions the synthesised app defines
    # THEN each has a case below (a new function must be added to FUNCTIONS)
    assert set(deployed) == set(FUNCTIONS)


def test_every_settings_model_is_some_functions(deployed: dict[str, DeployedFunction]) -> None:
    # GIVEN the settings models evpm.settings exports (all but the LogLevel alias)
    models = {n for n in settings_module.__all__ if n.endswith("Settings")}
    # THEN each is what some deployed function reads, so none escapes the contract
    assert {settings_model_of(fn).__name__ for fn in deployed.values()} == models


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_environment_matches_settings_model(
    deployed: dict[str, DeployedFunction], function: str
) -> None:
    # GIVEN the function as the stack synthesises it, and the model its handler reads
    fn = deployed[function]
    model = settings_model_of(fn)
    declared = set(model.model_fields)  # field names ARE the variable names, case included
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    given = set(fn.environment)
    # THEN every variable is declared, and every required field gets a variable
    assert given - declared == set(), f"{function} sets variables {model.__name__} does not declare"
    assert required - given == set(), f"{model.__name__} requires variables {function} lacks"
    # AND the values the template fixes are ones the model accepts
    values = {k: v if isinstance(v, str) else TOKEN for k, v in fn.environment.items()}
    model.model_validate(values)
