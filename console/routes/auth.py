"""Sign-in with an API key, sign-out, and the health check.

The sign-in form has its own CSRF token (a random value in a short-lived cookie and in the
form: a page of another site cannot read the cookie to copy it), so no other site can sign a
browser in under a key of its choosing.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from console.web import SignedIn, checked_form, form_fields, page

router = APIRouter()
log = logging.getLogger("console.auth")
LOGIN_COOKIE = "evpm_console_login"


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this console only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/lifecycle"


def _login_page(
    request: Request, *, status: int = 200, message: str | None = None, next_path: str | None = None
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        status_code=status,
        message=message,
        login_csrf=token,
        next_path=_safe_next(next_path),
    )
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=1800, httponly=True, samesite="strict", path="/login"
    )
    return response


@router.get("/healthz", include_in_schema=False)
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_path=next)


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(fields.get("login_csrf", ""), expected):
        return _login_page(
            request,
            status=403,
            next_path=fields.get("next"),
            message="The sign-in form expired. Please enter the key again.",
        )
    value = fields.get("api_key", "").strip()
    key = request.app.state.sources.keys.find(value) if value else None
    message = None
    if key is None:
        message = "That API key is not valid: no evpm API key has this value."
    elif not key.enabled:
        message = f"The API key {key.name!r} is revoked."
    elif key.role is None:
        message = (
            f"The API key {key.name!r} has no evpm role (tag evpm:role), so it may not sign in."
        )
    if message or key is None or key.role is None:
        log.info("sign-in refused", extra={"reason": message})
        return _login_page(request, status=401, message=message, next_path=fields.get("next"))
    store = request.app.state.sessions
    _session, cookie = store.open(key_id=key.id, key_name=key.name, role=key.role, key_value=value)
    log.info("signed in", extra={"key_id": key.id, "key_name": key.name, "role": key.role})
    response = RedirectResponse(_safe_next(fields.get("next")), status_code=303)
    response.set_cookie(
        request.app.state.cookie_name,
        cookie,
        max_age=int(store.seconds),
        httponly=True,
        samesite="strict",
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, ctx: SignedIn) -> Response:
    await checked_form(request, ctx)
    request.app.state.sessions.close(ctx.session)
    log.info("signed out", extra={"key_id": ctx.session.key_id})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(request.app.state.cookie_name, path="/")
    return response
