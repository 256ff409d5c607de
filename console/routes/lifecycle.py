"""Lifecycle pages: the executions table, one execution as a graph, and Start a run."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.errors import NotFoundError, RefusedError
from console.graph import execution_graph
from console.lifecycle import STATUSES, RunRequest, status_counts
from console.web import SignedIn, checked_form, page, require
from evpm.pins import MODEL_NAMES

router = APIRouter()
log = logging.getLogger("console.lifecycle")
# Step Functions execution names: up to 80 characters, none of whitespace, brackets, wildcards
# or the punctuation it forbids; anything else cannot name an execution (a 404 without a call).
_EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")


@router.get("/", include_in_schema=False)
def home() -> Response:
    return RedirectResponse("/lifecycle", status_code=303)


@router.get("/lifecycle", response_class=HTMLResponse)
def executions(request: Request, ctx: SignedIn, status: str = "") -> Response:
    chosen = status if status in STATUSES else None
    source = request.app.state.sources.lifecycle
    rows = source.executions(status=chosen)
    now = datetime.now(UTC)
    return page(
        request,
        "executions.html",
        ctx,
        rows=rows,
        statuses=STATUSES,
        status=chosen,
        counts=status_counts(rows),
        now=now,
        running=any(r.status == "RUNNING" for r in rows),
    )


@router.get("/lifecycle/executions/{name}", response_class=HTMLResponse)
def execution(request: Request, ctx: SignedIn, name: str) -> Response:
    if not _EXECUTION_NAME.match(name):
        raise NotFoundError(f"no execution named {name!r}")
    source = request.app.state.sources.lifecycle
    detail = source.execution(name)
    graph = execution_graph(source.definition(detail.machine_arn), source.history(detail.arn))
    return page(
        request, "execution.html", ctx, execution=detail, graph=graph, now=datetime.now(UTC)
    )


@router.get("/lifecycle/start", response_class=HTMLResponse)
def start_form(request: Request, ctx: SignedIn) -> Response:
    require(ctx, "lifecycle:run")
    return page(request, "start.html", ctx, models=MODEL_NAMES)


@router.post("/lifecycle/start")
async def start(request: Request, ctx: SignedIn) -> Response:
    require(ctx, "lifecycle:run")
    fields = await checked_form(request, ctx)
    models = tuple(m for m in MODEL_NAMES if fields.get(f"model-{m}") == "on")
    if not models:
        raise RefusedError("choose at least one model to train")
    request_ = RunRequest(
        models=models,
        trigger=f"console by {ctx.session.key_name}",
        corrupt_labels=fields.get("corrupt_labels") == "on",
        force_smoke_failure=fields.get("force_smoke_failure") == "on",
    )
    name = request.app.state.sources.lifecycle.start(request_)
    log.info(
        "lifecycle run started",
        extra={"execution": name, "key_id": ctx.session.key_id, "models": list(models)},
    )
    return RedirectResponse(f"/lifecycle/executions/{name}", status_code=303)
