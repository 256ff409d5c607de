"""Ops alert routes: Alertmanager's webhook in, the list of alerts out.

``POST /alerts/webhook`` is the one route API Gateway lets through without an API key
(Alertmanager 0.25 can send no custom header): the function authenticates it itself, with
the bearer token Alertmanager sends, compared in constant time with the SSM SecureString
``/evpm/alerts/webhook-token``. The token is checked before the body is even parsed, so an
unauthenticated caller learns nothing about the body's format: 401 whatever it sent. A body
that is not a version-4 notification is a 422 naming the field; nothing is stored then.

``GET /alerts`` (role viewer and up) lists the firing alerts and those resolved in the last
``hours``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from access_control import protected
from alert_store import NotifyError, OpsAlerts, TokenUnavailableError
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from evpm.ops_alerts import (
    AlertmanagerWebhook,
    OpsAlert,
    bearer_token,
    ops_alerts_of,
    token_matches,
)
from evpm.telemetry import format_timestamp

__all__ = ["AlertsPage", "WebhookResult", "router"]

router = APIRouter(tags=["alerts"])

BEARER = HTTPBearer(
    auto_error=False,
    description="the webhook token (SSM /evpm/alerts/webhook-token) Alertmanager sends",
)


class WebhookResult(BaseModel):
    """What one notification did: each alert is new, a repeat, a resolution, or stale."""

    received: int = Field(examples=[2], description="alerts in the notification")
    new: int = Field(examples=[1], description="occurrences seen for the first time")
    repeats: int = Field(examples=[0], description="notifications of a known occurrence")
    resolved: int = Field(examples=[1], description="occurrences that went firing -> resolved")
    stale: int = Field(
        examples=[0], description="firing notifications of a resolved occurrence: dropped"
    )
    published: int = Field(examples=[2], description="put on the bus and sent to the topic")


class AlertsPage(BaseModel):
    """Firing alerts, and (unless ``active``) those resolved in the last ``hours``."""

    active: list[OpsAlert]
    recent: list[OpsAlert] = Field(description="resolved in the window, newest first")
    hours: int = Field(examples=[24])


class _Detail(BaseModel):
    detail: str


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` inlined (no recursion in these models), for
    an OpenAPI request body that is documented but parsed by the route itself."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


class _WebhookBodyDoc(dict[str, Any]):
    """The route's ``openapi_extra``: the webhook body's schema, made when ``/openapi.json`` is
    first built rather than at every cold start (pydantic takes some 5 ms to make it).

    FastAPI only asks it whether it is empty and for its ``items()``.
    """

    def __len__(self) -> int:
        return 1

    def items(self) -> Any:
        if not super().__len__():
            schema = _inline(AlertmanagerWebhook.model_json_schema(by_alias=True))
            self["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        return super().items()


def _ops(request: Request) -> OpsAlerts:
    return request.app.state.ops_alerts


def require_webhook_token(
    request: Request, _doc: Annotated[Any, Security(BEARER)] = None
) -> None:
    """401 unless ``Authorization: Bearer <token>`` carries the webhook token.

    The security dependency only documents the scheme; the header is read here, so a
    malformed ``Authorization`` is a 401 like a missing one.
    """
    presented = bearer_token(request.headers.get("authorization"))
    if presented is None:
        raise HTTPException(
            status_code=401,
            detail="missing bearer token: send Authorization: Bearer <webhook token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        expected = _ops(request).token.value()
    except TokenUnavailableError as exc:
        raise HTTPException(
            status_code=503,
            detail=f"the webhook token cannot be checked right now: {exc}",
            headers={"Retry-After": "30"},
        ) from exc
    if not token_matches(presented, expected):
        raise HTTPException(
            status_code=401,
            detail="wrong bearer token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/alerts/webhook",
    dependencies=[Depends(require_webhook_token)],
    responses={
        401: {"model": _Detail, "description": "no bearer token, or the wrong one"},
        422: {"description": "not an Alertmanager version-4 notification; the field is named"},
        503: {
            "model": _Detail,
            "description": "the token or the stores cannot be reached; Alertmanager retries",
        },
    },
    openapi_extra=_WebhookBodyDoc(),
)
def alerts_webhook(
    request: Request, raw: Annotated[bytes, Depends(_raw_body)]
) -> WebhookResult:
    """Alertmanager's webhook receiver (no API key: a bearer token, see above).

    Each alert of the notification, firing or resolved, is stored, put on the ``evpm-alerts``
    bus (``OpsAlert``) and published to the ``evpm-ops-alerts`` topic.
    """
    try:
        hook = AlertmanagerWebhook.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc
    ops = _ops(request)
    alerts = ops_alerts_of(hook, received_at=datetime.now(UTC), ttl_days=ops.ttl_days)
    outcomes = [(alert, ops.store.record(alert)) for alert in alerts]
    publish = [(alert, outcome == "repeat") for alert, outcome in outcomes if outcome != "stale"]
    try:
        ops.notifier.notify(publish)
    except NotifyError as exc:
        raise HTTPException(
            status_code=503,
            detail=f"stored, but not delivered: {exc}",
            headers={"Retry-After": "10"},
        ) from exc
    counts = Counter(outcome for _, outcome in outcomes)
    return WebhookResult(
        received=len(alerts),
        new=counts["new"],
        repeats=counts["repeat"],
        resolved=counts["resolved"],
        stale=counts["stale"],
        published=len(publish),
    )


@router.get("/alerts", **protected("alerts:read"))
def list_alerts(
    request: Request,
    active: Annotated[bool, Query(description="only the alerts firing now")] = False,
    hours: Annotated[
        int, Query(ge=1, le=720, description="resolved alerts of the last N hours")
    ] = 24,
    limit: Annotated[int, Query(ge=1, le=200, description="alerts per list")] = 50,
) -> AlertsPage:
    """Firing ops alerts (newest first), and unless ``active`` those resolved lately."""
    ops = _ops(request)
    firing = ops.store.active(limit=limit)
    since = format_timestamp(datetime.now(UTC) - timedelta(hours=hours))
    resolved = [] if active else ops.store.resolved_since(since, limit=limit)
    return AlertsPage(active=firing, recent=resolved, hours=hours)
