"""evpm.access: the role matrix and the decision, without any AWS or HTTP."""

from __future__ import annotations

import pytest

from evpm.access import PERMISSIONS, ROLE_PERMISSIONS, ROLES, decide, parse_role, roles_with

MATRIX = {
    "viewer": {"models:read", "predictions:read", "alerts:read"},
    "fleet-service": {"models:read", "predictions:read", "alerts:read", "predict", "feedback:write"},
    "ml-admin": set(PERMISSIONS),
}


def test_roles_hold_exactly_the_agreed_permissions():
    assert ROLES == ("viewer", "fleet-service", "ml-admin")
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == MATRIX


def test_wider_roles_include_narrower_ones():
    assert ROLE_PERMISSIONS["viewer"] < ROLE_PERMISSIONS["fleet-service"]
    assert ROLE_PERMISSIONS["fleet-service"] < ROLE_PERMISSIONS["ml-admin"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("permission", PERMISSIONS)
def test_decide_follows_the_matrix(role, permission):
    decision = decide(role=role, permission=permission, authenticated=True)
    assert decision.allowed is (permission in MATRIX[role])
    assert decision.status == (200 if decision.allowed else 403)
    assert decision.role == role and decision.permission == permission


def test_refusal_names_the_role_the_permission_and_who_has_it():
    decision = decide(role="viewer", permission="predict", authenticated=True)
    assert decision.reason == (
        "role 'viewer' lacks permission 'predict' (needs role fleet-service, ml-admin)"
    )


def test_no_identity_is_401_naming_the_header():
    decision = decide(role=None, permission="models:read", authenticated=False)
    assert (decision.allowed, decision.status) == (False, 401)
    assert "x-api-key" in decision.reason


def test_key_without_a_valid_role_is_403():
    decision = decide(role=None, permission="models:read", authenticated=True)
    assert (decision.allowed, decision.status) == (False, 403)
    assert "evpm:role" in decision.reason


def test_parse_role_accepts_only_known_roles():
    assert parse_role("ml-admin") == "ml-admin"
    assert parse_role("admin") is None
    assert parse_role(None) is None
    assert roles_with("models:rollback") == ("ml-admin",)
