"""Small readers over synthesised templates, shared by the infra tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_cdk.assertions import Template


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    """Resources of one CloudFormation type, by logical id."""
    return template.find_resources(type_)


def only(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    """The single resource of a type (fails if there are none or several)."""
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def logical_id(template: Template, type_: str, **props: Any) -> str:
    """Logical id of the one resource of ``type_`` whose properties include ``props``."""
    matches = [
        lid
        for lid, res in resources(template, type_).items()
        if all(res.get("Properties", {}).get(k) == v for k, v in props.items())
    ]
    assert len(matches) == 1, f"expected one {type_} with {props}, found {matches}"
    return matches[0]


def export_name_of(template: Template, value: Any) -> str:
    """Name of the export whose value is ``value`` (how a consumer stack imports it)."""
    for output in template.to_json().get("Outputs", {}).values():
        if output.get("Value") == value and "Export" in output:
            return output["Export"]["Name"]
    raise AssertionError(f"no export with value {value}")


def policy_statements(template: Template) -> list[dict[str, Any]]:
    """Every IAM statement in the template: policies, managed policies and inline role ones."""
    statements: list[dict[str, Any]] = []
    tpl = template.to_json()
    for res in tpl.get("Resources", {}).values():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            statements += props["PolicyDocument"]["Statement"]
        elif res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    """The statement's actions as a list, whichever form the template used."""
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)
