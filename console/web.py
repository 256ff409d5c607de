"""What every page shares: templates, the signed-in session, permission checks, CSRF-checked
forms, and the few response helpers; so each route module stays a few thin handlers.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from console.config import ConsoleConfig
from console.errors import PermissionDeniedError
from console.sessions import Session, SessionStore
from evpm.access import ROLE_PERMISSIONS, Permission, decide

__all__ = [
    "MAX_FORM_BYTES",
    "Context",
    "NotSignedInError",
    "SignedIn",
    "checked_form",
    "page",
    "require",
    "signed_in",
    "templates",
]

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 16 * 1024
# Autoescaping on for every template: any value from an execution, a vehicle or a key is text.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
)


class NotSignedInError(Exception):
    """No valid session: the app sends the browser to the sign-in page."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class Context:
    """The signed-in user of one request and what the app knows about the system."""

    session: Session
    key: str
    config: ConsoleConfig

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.session.role]


def _store(request: Request) -> SessionStore:
    return request.app.state.sessions


def signed_in(request: Request) -> Context:
    """FastAPI dependency: the request's session, or :class:`NotSignedInError`."""
    store = _store(request)
    session = store.read(request.cookies.get(request.app.state.cookie_name))
    key = store.key_value(session) if session else None
    if session is None or key is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise NotSignedInError(target)
    return Context(session=session, key=key, config=request.app.state.config)


SignedIn = Annotated[Context, Depends(signed_in)]
"""A handler's parameter that is the signed-in user (or a redirect to the sign-in page)."""


def require(ctx: Context, permission: Permission) -> None:
    """The console's own permission check (the API checks its calls again)."""
    decision = decide(role=ctx.session.role, permission=permission, authenticated=True)
    if not decision.allowed:
        raise PermissionDeniedError(decision.reason)


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the console's forms), first values."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


async def checked_form(request: Request, ctx: Context) -> dict[str, str]:
    """The form of a POST, after its CSRF token matched the session's (else 403)."""
    fields = await form_fields(request)
    if not hmac.compare_digest(fields.get("csrf", ""), ctx.session.csrf):
        raise PermissionDeniedError(
            "the form's CSRF token is missing or stale: reload the page and try again"
        )
    return fields


def page(
    request: Request, template: str, ctx: Context | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """Render ``template`` with the session's user, role and CSRF token, and the system's links."""
    config: ConsoleConfig = request.app.state.config
    return templates.TemplateResponse(
        request,
        template,
        {
            "session": ctx.session if ctx else None,
            "csrf": ctx.session.csrf if ctx else "",
            "can": ctx.can if ctx else (lambda _p: False),
            "mlflow_url": config.base(config.mlflow_url),
            "prometheus_url": config.base(config.prometheus_url),
            "alertmanager_url": config.base(config.alertmanager_url),
            "quote": quote,
            **values,
        },
        status_code=status_code,
    )
