"""The Models page, and Promote / Roll back, each behind a confirmation page."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from console.errors import NotFoundError, RefusedError
from console.web import SignedIn, checked_form, page, require
from evpm.pins import MODEL_NAMES

router = APIRouter()
log = logging.getLogger("console.models")


def _model(name: str) -> str:
    if name not in MODEL_NAMES:
        raise NotFoundError(f"no model named {name!r} (models: {', '.join(MODEL_NAMES)})")
    return name


def _version(value: str | None, *, required: bool) -> int | None:
    if not value:
        if required:
            raise RefusedError("which version? (a registered version number)")
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise RefusedError(f"version must be a number, got {value!r}") from exc
    if number < 1:
        raise RefusedError(f"version must be 1 or more, got {number}")
    return number


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, ctx: SignedIn) -> Response:
    require(ctx, "models:read")
    found = request.app.state.sources.registry.models(ctx.key)
    return page(request, "models.html", ctx, models=found)


@router.get("/models/{name}/{action}", response_class=HTMLResponse)
def confirm(
    request: Request, ctx: SignedIn, name: str, action: str, version: str | None = None
) -> Response:
    if action not in ("promote", "rollback"):
        raise NotFoundError(f"no page /models/{name}/{action}")
    require(ctx, "models:promote" if action == "promote" else "models:rollback")
    number = _version(version, required=action == "promote")
    return page(request, "confirm_move.html", ctx, name=_model(name), action=action, version=number)


@router.post("/models/{name}/{action}")
async def move(request: Request, ctx: SignedIn, name: str, action: str) -> Response:
    if action not in ("promote", "rollback"):
        raise NotFoundError(f"no page /models/{name}/{action}")
    require(ctx, "models:promote" if action == "promote" else "models:rollback")
    fields = await checked_form(request, ctx)
    registry = request.app.state.sources.registry
    name = _model(name)
    if action == "promote":
        result = registry.promote(ctx.key, name, _version(fields.get("version"), required=True))
    else:
        result = registry.rollback(ctx.key, name, _version(fields.get("version"), required=False))
    log.info(
        "model moved",
        extra={"action": action, "model": name, "pins": result.pins, "key_id": ctx.session.key_id},
    )
    return page(request, "moved.html", ctx, action=action, result=result)
