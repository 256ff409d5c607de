"""Who may do what through the API: roles, their permissions, and the allow / deny decision.

Why in the API and not in an authorizer: the emulator never invokes Lambda authorizers, so a
check that lived there would pass everything locally. API Gateway still authenticates (a key in
the usage plan, or 403 before the function runs) and hands the key's *id* to the function in
``requestContext.identity.apiKeyId``; the function looks up the key's role (the key's tag
:data:`ROLE_TAG`) and asks :func:`decide`. This module is the pure half: no AWS, no HTTP.

Example::

    decide(role="viewer", permission="predict", authenticated=True).status   # 403
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "ROLE_PERMISSIONS",
    "ROLE_TAG",
    "Decision",
    "Permission",
    "Role",
    "decide",
    "parse_role",
    "roles_with",
]

ROLE_TAG = "evpm:role"
"""Tag on an API key that names its role (the serving stack and ``evpm keys`` set it)."""

Role = Literal["viewer", "fleet-service", "ml-admin"]
Permission = Literal[
    "models:read",
    "predictions:read",
    "alerts:read",
    "predict",
    "feedback:write",
    "models:promote",
    "models:rollback",
    "lifecycle:run",
]
ROLES: tuple[Role, ...] = get_args(Role)
PERMISSIONS: tuple[Permission, ...] = get_args(Permission)

_READ: frozenset[Permission] = frozenset({"models:read", "predictions:read", "alerts:read"})
_SERVICE: frozenset[Permission] = _READ | {"predict", "feedback:write"}
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    "viewer": _READ,
    "fleet-service": _SERVICE,
    "ml-admin": frozenset(PERMISSIONS),
}
"""Each role's permissions; wider roles include the narrower ones, so no route lists roles."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of an access check: HTTP status to answer with and a reason a human can act on.

    ``status`` is 200 when allowed, 401 when the caller is unknown (no key identity reached the
    function), 403 when the caller is known but may not do this.
    """

    allowed: bool
    status: int
    reason: str
    role: Role | None = None
    permission: Permission | None = None


def parse_role(value: str | None) -> Role | None:
    """The role a tag value names, or ``None`` for a missing or unknown value.

    Example: ``parse_role("viewer") == "viewer"``; ``parse_role("root") is None``.
    """
    return value if value in ROLES else None  # type: ignore[return-value]


def roles_with(permission: Permission) -> tuple[Role, ...]:
    """Roles that hold ``permission``, narrowest first (used in 403 messages).

    Example: ``roles_with("predict") == ("fleet-service", "ml-admin")``.
    """
    return tuple(role for role in ROLES if permission in ROLE_PERMISSIONS[role])


def decide(*, role: Role | None, permission: Permission, authenticated: bool) -> Decision:
    """Allow or refuse one request.

    ``authenticated`` says whether a key identity reached the function at all; ``role`` is the
    role that key maps to (``None`` if the key has no valid role tag).

    Example::

        decide(role="ml-admin", permission="models:promote", authenticated=True).allowed  # True
    """
    if not authenticated:
        return Decision(
            allowed=False,
            status=401,
            reason="missing API key: send the key in the x-api-key header",
            permission=permission,
        )
    needed = ", ".join(roles_with(permission))
    if role is None:
        return Decision(
            allowed=False,
            status=403,
            reason=f"this API key has no valid {ROLE_TAG} tag; permission {permission!r} "
            f"needs a key with role {needed}",
            permission=permission,
        )
    if permission not in ROLE_PERMISSIONS[role]:
        return Decision(
            allowed=False,
            status=403,
            reason=f"role {role!r} lacks permission {permission!r} (needs role {needed})",
            role=role,
            permission=permission,
        )
    return Decision(allowed=True, status=200, reason="allowed", role=role, permission=permission)
