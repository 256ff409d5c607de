"""API keys with roles: create (tagged ``evpm:role``, added to the usage plan), list, revoke.

The key's tag is the source of truth the API reads (``functions/api/roles.py``), so creating
a key here is all it takes to give someone a role. Revoking disables the key and takes it out
of every usage plan: API Gateway then refuses it before the function runs, with no cache to
wait for.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from evpm.access import ROLE_TAG, ROLES, parse_role
from evpm_cli.aws import client
from evpm_cli.config import CliSettings

__all__ = ["ROLES", "ApiKeyError", "create", "list_keys", "revoke"]

USAGE_PLAN = "evpm-dev"  # infra/constants.py USAGE_PLAN


class ApiKeyError(Exception):
    """A key operation could not be done (unknown role, plan or key)."""


def _plan_id(apigw: Any, name: str = USAGE_PLAN) -> str:
    for page in apigw.get_paginator("get_usage_plans").paginate():
        for plan in page["items"]:
            if plan.get("name") == name:
                return plan["id"]
    raise ApiKeyError(f"usage plan {name!r} not found: is the serving stack deployed (`evpm up`)?")


def _summary(key: dict[str, Any]) -> dict[str, Any]:
    tags = key.get("tags") or {}
    return {
        "id": key["id"],
        "name": key.get("name"),
        "role": tags.get(ROLE_TAG),
        "enabled": key.get("enabled", True),
        "value": key.get("value"),
    }


def create(cfg: CliSettings, *, role: str, name: str) -> dict[str, Any]:
    """Create an enabled key tagged with ``role``, bind it to the usage plan, return it."""
    if parse_role(role) is None:
        raise ApiKeyError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    apigw = client(cfg, "apigateway")
    plan_id = _plan_id(apigw)
    # A revoked key stays (disabled, for the record) and frees its name for a new key.
    if any(k["name"] == name and k["enabled"] for k in list_keys(cfg, include_values=False)):
        raise ApiKeyError(f"a key named {name!r} exists already; revoke it or pick another name")
    key = apigw.create_api_key(
        name=name,
        description=f"evpm API key for role {role}",
        enabled=True,
        tags={ROLE_TAG: role},
    )
    apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    return _summary(key)


def list_keys(cfg: CliSettings, *, include_values: bool = False) -> list[dict[str, Any]]:
    """Every key that carries an ``evpm:role`` tag, by name; without their values unless
    ``include_values`` (the emulator may send them unasked: they are dropped here, so what
    ``evpm keys list`` promises holds whatever the service does)."""
    apigw = client(cfg, "apigateway")
    keys = []
    for page in apigw.get_paginator("get_api_keys").paginate(includeValues=include_values):
        keys += [_summary(k) for k in page["items"] if ROLE_TAG in (k.get("tags") or {})]
    if not include_values:
        for key in keys:
            del key["value"]
    return sorted(keys, key=lambda k: k["name"] or "")


def revoke(cfg: CliSettings, name_or_id: str) -> dict[str, Any]:
    """Disable the key and remove it from every usage plan; return what was revoked."""
    apigw = client(cfg, "apigateway")
    matches = [k for k in list_keys(cfg) if name_or_id in (k["id"], k["name"])]
    if not matches:
        raise ApiKeyError(f"no evpm key with name or id {name_or_id!r} (see `evpm keys list`)")
    # A name may also belong to keys revoked before (names are reused): the live one is meant.
    live = [k for k in matches if k["enabled"]]
    if not live:
        raise ApiKeyError(f"key {name_or_id!r} is revoked already")
    if len(live) > 1:
        raise ApiKeyError(f"{len(live)} keys are named {name_or_id!r}: revoke one by id")
    key = live[0]
    apigw.update_api_key(
        apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
    removed = []
    for page in apigw.get_paginator("get_usage_plans").paginate():
        for plan in page["items"]:
            try:
                apigw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise
                continue
            removed.append(plan.get("name") or plan["id"])
    return {**key, "enabled": False, "removed_from": removed}
