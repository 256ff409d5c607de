"""The environment the stacks give each function is what that function's settings declare.

The settings models in ``evpm.settings`` are the one contract between infra and function code:
a variable set here but not declared there is dead (or misspelt), and a required field with no
variable here fails the function's cold start.
"""

from __future__ import annotations

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from infra import constants as c
from tests.infra.helpers import only

settings_module = pytest.importorskip(
    "evpm.settings", reason="evpm.settings (ScorerSettings, ApiSettings) not written yet"
)

CASES = [
    (c.SCORING_STACK, c.SCORER_FUNCTION, "ScorerSettings"),
    (c.SERVING_STACK, c.API_FUNCTION, "ApiSettings"),
]


def declared_env_names(model: type[BaseSettings]) -> tuple[set[str], set[str]]:
    """(all env names the model reads, names of required fields), upper-cased."""
    prefix = model.model_config.get("env_prefix", "")
    names: set[str] = set()
    required: set[str] = set()
    for field_name, field in model.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            env = {a for a in alias.choices if isinstance(a, str)}
        elif isinstance(alias, str):
            env = {alias}
        else:
            env = {prefix + field_name}
        env = {e.upper() for e in env}
        names |= env
        if field.is_required():
            required |= env
    return names, required


@pytest.mark.parametrize(("stack", "function", "model_name"), CASES)
def test_function_environment_matches_settings_model(template, stack, function, model_name):
    # GIVEN the function's settings model
    model = getattr(settings_module, model_name)
    declared, required = declared_env_names(model)
    # WHEN the stack synthesises the function
    _, fn = only(template(stack), "AWS::Lambda::Function")
    assert fn["Properties"]["FunctionName"] == function
    given = {k.upper() for k in fn["Properties"]["Environment"]["Variables"]}
    # THEN every variable is declared, and every required field gets a variable
    assert given - declared == set(), f"{function} sets variables {model_name} does not declare"
    assert required - given == set(), f"{model_name} requires variables {function} is not given"
