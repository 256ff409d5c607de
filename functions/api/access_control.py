"""The FastAPI side of access control: who is calling (from API Gateway) and may they do this.

API Gateway authenticates the ``x-api-key`` header against the usage plan and passes the key's
id in ``requestContext.identity.apiKeyId`` (Mangum exposes the event as ``scope["aws.event"]``).
:func:`requires` turns that id into a role through the app's :class:`~roles.RoleResolver` and
lets :func:`evpm.access.decide` answer; a refusal becomes 401 or 403 with a body that says what
is missing. The header dependency below is only there so OpenAPI (and /docs' "Authorize")
documents the key: the decision never trusts the header itself, only the gateway's identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel
from roles import RoleLookupError

from evpm.access import Decision, Permission, Role, decide

__all__ = [
    "AccessDeniedError",
    "Caller",
    "ErrorBody",
    "access_denied",
    "key_id_of",
    "protected",
    "requires",
    "role_lookup_failed",
]

API_KEY_HEADER = APIKeyHeader(
    name="x-api-key",
    auto_error=False,
    description="API key; its role (tag evpm:role) decides which routes it may call",
)


class ErrorBody(BaseModel):
    """Why a request was refused, and what would let it through."""

    detail: str
    role: Role | None = None
    permission: Permission | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of a request: its API key id and the role it maps to."""

    key_id: str
    role: Role


class AccessDeniedError(Exception):
    """A request :func:`evpm.access.decide` refused."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


def key_id_of(request: Request) -> str | None:
    """The API key id API Gateway authenticated, or ``None`` if none reached the function."""
    event = request.scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    identity = (event.get("requestContext") or {}).get("identity") or {}
    key_id = identity.get("apiKeyId") if isinstance(identity, dict) else None
    return key_id if isinstance(key_id, str) and key_id else None


def requires(permission: Permission) -> Callable[..., Caller]:
    """A dependency that lets the request through only if its key's role has ``permission``."""

    def check(request: Request, _header: str | None = Security(API_KEY_HEADER)) -> Caller:
        key_id = key_id_of(request)
        role = request.app.state.roles.role_of(key_id) if key_id else None
        decision = decide(role=role, permission=permission, authenticated=key_id is not None)
        if not decision.allowed or key_id is None or role is None:
            raise AccessDeniedError(decision)
        caller = Caller(key_id=key_id, role=role)
        request.state.caller = caller  # for routes that record who did it (e.g. /feedback)
        return caller

    return check


def protected(permission: Permission) -> dict[str, Any]:
    """Route keyword arguments: the permission check, and its 401/403 documented with examples."""
    return {
        "dependencies": [Depends(requires(permission))],
        "responses": {
            401: {
                "model": ErrorBody,
                "description": "no API key reached the function",
                "content": {
                    "application/json": {
                        "example": {
                            "detail": "missing API key: send the key in the x-api-key header",
                            "role": None,
                            "permission": permission,
                        }
                    }
                },
            },
            403: {
                "model": ErrorBody,
                "description": f"the key's role lacks permission {permission!r}",
                "content": {
                    "application/json": {
                        "example": {
                            "detail": f"role 'viewer' lacks permission {permission!r}",
                            "role": "viewer",
                            "permission": permission,
                        }
                    }
                },
            },
            503: {
                "description": "the key's role or the data store could not be reached; retry",
                "content": {
                    "application/json": {
                        "example": {"detail": "could not check the API key's role; retry shortly"}
                    }
                },
            },
        },
        "openapi_extra": {"x-evpm-permission": permission},
    }


async def access_denied(_request: Request, exc: Exception) -> JSONResponse:
    """401 / 403 with the reason, the caller's role and the permission it lacked."""
    assert isinstance(exc, AccessDeniedError)
    d = exc.decision
    body = ErrorBody(detail=d.reason, role=d.role, permission=d.permission)
    headers = {"WWW-Authenticate": "ApiKey"} if d.status == 401 else None
    return JSONResponse(status_code=d.status, content=body.model_dump(), headers=headers)


async def role_lookup_failed(_request: Request, exc: Exception) -> JSONResponse:
    """503: the key could not be checked right now; retrying is the right move."""
    assert isinstance(exc, RoleLookupError)
    return JSONResponse(
        status_code=503,
        content={"detail": "could not check the API key's role; retry shortly"},
        headers={"Retry-After": "1"},
    )
