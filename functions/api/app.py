"""HTTP API Lambda: FastAPI behind API Gateway (REST, proxy integration) through Mangum.

Routes validate with the same :class:`~evpm.telemetry.TelemetryRecord` the stream uses and score
with the same :func:`~evpm.scoring.score_records`, so a reading gets one verdict whichever way
it arrives. Every response names the models that produced it (``model_versions``).

Every route but ``/health`` (and the docs) checks the caller's role (:mod:`access_control`):
the function enforces roles itself because the emulator never runs Lambda authorizers.
"""

from __future__ import annotations

import gc

# Init imports create tens of thousands of objects (modules, classes, functions) that live as
# long as the container; the cyclic GC would scan them again and again while they are created
# (about a tenth of init) and in every full pass after. Collection resumes at the end of this
# module, with them frozen out of later passes in a Lambda container (imports this module once).
gc.disable()

import os
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
from access_control import (
    AccessDeniedError,
    Caller,
    access_denied,
    protected,
    role_lookup_failed,
)
from alert_routes import router as alert_router
from alert_store import OpsAlerts
from api_docs import install_docs
from aws_lambda_powertools import Logger, Metrics
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from pydantic import BaseModel, Field
from request_metrics import RequestMetrics
from roles import ApiKeyTagResolver, RoleLookupError, RoleResolver
from schemas import (
    MODEL_VERSIONS,
    BatchResponse,
    ExplainResponse,
    FeedbackResponse,
    HealthResponse,
    HistoryUsed,
    ImportanceResponse,
    MessageBody,
    ModelsResponse,
    MoveResponse,
    PredictionPage,
    PredictResponse,
)
from starlette.types import ASGIApp, Receive, Scope, Send
from stores import DynamoLabelWriter, DynamoPredictionReader, LabelWriter, PredictionReader

import evpm
from evpm.explain import explain_latest, importance
from evpm.labels import Feedback, Label
from evpm.mlflow_rest import MlflowError, MlflowRegistry
from evpm.pagination import InvalidCursorError, decode_cursor, encode_cursor
from evpm.past_readings import PastReadings, PastUsed
from evpm.pins import PinError
from evpm.scoring import score_records
from evpm.serving import History, PinnedModels, ServedModels
from evpm.settings import ApiSettings
from evpm.telemetry import VEHICLE_ID_PATTERN, TelemetryRecord, to_matrix
from evpm_aws.metrics_bridge import publish_counts
from evpm_aws.model_admin import ModelAdmin, SsmPinStore, UnknownVersionError
from evpm_aws.model_store import mlflow_uri
from evpm_aws.past_readings import DynamoPastReadings
from evpm_aws.serving import CANARY_KEY, answer_canary, pinned_models, served_now

settings = ApiSettings()  # validated at cold start: a missing variable fails loudly
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
metrics = Metrics(
    namespace=settings.POWERTOOLS_METRICS_NAMESPACE, service=settings.POWERTOOLS_SERVICE_NAME
)

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
VehicleId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=VEHICLE_ID_PATTERN, examples=["EV-0042"])
]
ModelName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=MODEL_NAME_PATTERN, examples=["ev-classifier"])
]


class StageRootPath:
    """Set the ASGI ``root_path`` to the API Gateway stage prefix (e.g. ``/v1``).

    Mangum passes the path without the stage and an empty ``root_path``; without this, the
    schema's ``servers`` would miss the stage, and mounted apps (the docs assets), which take
    their path relative to ``root_path`` as ASGI says, would not be found. The prefix is what
    ``requestContext.path`` has in front of ``path``, which also covers custom-domain base
    paths.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event")
        if scope["type"] == "http" and isinstance(event, dict):
            prefix = _stage_prefix(event)
            if prefix and not scope["path"].startswith(f"{prefix}/"):
                # ASGI's path includes root_path; Mounts (the docs assets) strip it again.
                path = f"{prefix}{scope['path']}"
                scope = {**scope, "root_path": prefix, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _stage_prefix(event: dict[str, Any]) -> str:
    context = event.get("requestContext") or {}
    full, path = context.get("path"), event.get("path")
    if full and path and full != path and full.endswith(path):
        return full[: -len(path)].rstrip("/")
    stage = context.get("stage")
    return f"/{stage}" if stage and stage != "$default" and not full else ""


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field and why, without echoing the input back.

    The default echo can be a whole 500-record body, and a NaN in it cannot be rendered as JSON.
    """
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


async def _storage_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """503 rather than a bare 500: a DynamoDB hiccup is retryable, and the client should know."""
    logger.exception("storage call failed", exc_info=exc)
    return JSONResponse(
        status_code=503,
        content={"detail": "storage is unavailable; retry shortly"},
        headers={"Retry-After": "1"},
    )


class BatchRequest(BaseModel):
    """Up to ``MAX_BATCH`` readings scored in one vectorised call."""

    records: list[TelemetryRecord] = Field(
        min_length=1,
        max_length=settings.MAX_BATCH,
        description=f"1 to {settings.MAX_BATCH} readings",
    )


class ExplainRequest(BaseModel):
    """One vehicle's recent readings; the latest is explained, the others are its history."""

    records: list[TelemetryRecord] = Field(
        min_length=1,
        max_length=settings.MAX_BATCH,
        description="readings of one vehicle (any order); the latest one is explained",
    )


class PromoteRequest(BaseModel):
    """Which registered version of the model should serve."""

    version: int = Field(ge=1, examples=[3], description="a registered version of this model")


class RollbackRequest(BaseModel):
    """Where to roll back to; by default the version with the ``previous`` alias."""

    to: int | None = Field(default=None, ge=1, examples=[2])


def create_app(
    *,
    roles: RoleResolver | None = None,
    predictions: PredictionReader | None = None,
    labels: LabelWriter | None = None,
    pinned: PinnedModels | None = None,
    admin: ModelAdmin | None = None,
    past: PastReadings | None = None,
    ops_alerts: OpsAlerts | None = None,
) -> FastAPI:
    """Build the app: routes only parse, check the role, call the domain, and shape the reply.

    The collaborators default to the AWS-backed ones (clients built on first use); tests pass
    fakes or moto-backed ones.
    """
    api = FastAPI(
        title="evpm",
        version=evpm.__version__,
        description=(
            "Health assessment of EV telemetry (rules-v1). Send your API key in the x-api-key "
            "header; its role decides what you may call: viewer reads predictions and models, "
            "fleet-service also scores readings and reports feedback, ml-admin also manages "
            "models."
        ),
        docs_url=None,  # api_docs serves /docs and /redoc from packaged assets, not a CDN
        redoc_url=None,
    )
    install_docs(api)
    api.state.roles = roles or ApiKeyTagResolver(ttl_seconds=settings.ROLE_CACHE_SECONDS)
    api.state.predictions = predictions or DynamoPredictionReader(settings.PREDICTIONS_TABLE)
    api.state.labels = labels or DynamoLabelWriter(settings.LABELS_TABLE)
    api.state.past = past or DynamoPastReadings(settings.PREDICTIONS_TABLE)
    api.state.pinned = pinned  # None: this container's pinned models, built on first use
    api.state.admin = admin
    api.state.ops_alerts = ops_alerts or OpsAlerts.from_settings(settings)
    # Times and counts every request, errors included, per route; inside StageRootPath (added
    # after it), whose copy of the scope is the one the router marks with the route it chose.
    api.add_middleware(RequestMetrics, metrics=metrics)
    api.add_middleware(StageRootPath)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(AccessDeniedError, access_denied)
    api.add_exception_handler(RoleLookupError, role_lookup_failed)
    api.add_exception_handler(ClientError, _storage_unavailable)
    api.add_exception_handler(BotoCoreError, _storage_unavailable)
    api.add_exception_handler(MlflowError, _registry_unavailable)

    @api.get("/health", tags=["ops"])
    def health(request: Request) -> HealthResponse:
        """Liveness and what serves; open to probes (no key needed)."""
        served = _served(request)
        return HealthResponse(
            status="ok", version=evpm.__version__, models=MODEL_VERSIONS | served.version_labels()
        )

    @api.post("/predict", tags=["predictions"], **protected("predict"))
    def predict(request: Request, record: TelemetryRecord) -> PredictResponse:
        """Score one reading with the pinned models (not stored: the stream path stores).

        Its rolling features use the vehicle's stored readings before it, as the stream
        scorer does, so the answer equals the stream's prediction for the same reading;
        ``history`` says which stored readings were used (none for a new vehicle).
        """
        served = _served(request)
        history = _history(request, served)
        prediction = score_records([record], models=served, history=history)[0]
        used = history.last_used.get(record.vehicle_id) if served.bundles else None
        return PredictResponse.model_validate(
            {**dict(prediction), "history": _used(used) if served.bundles else None}
        )

    @api.post("/predict/batch", tags=["predictions"], **protected("predict"))
    def predict_batch(request: Request, body: BatchRequest) -> BatchResponse:
        """Score up to MAX_BATCH readings in one call.

        A vehicle's history is its stored readings before its earliest reading in the batch,
        then its earlier readings in the batch (never later ones); ``history`` lists the
        stored readings used per vehicle.
        """
        served = _served(request)
        history = _history(request, served)
        scored = score_records(body.records, models=served, history=history)
        versions = scored[0].model_versions if scored else MODEL_VERSIONS | served.version_labels()
        return BatchResponse(
            predictions=scored,
            model_versions=versions,
            history={vid: _used(u) for vid, u in history.last_used.items()},
        )

    bad_cursor = {
        400: {
            "model": MessageBody,
            "description": "the `next` cursor was not issued by this API for this vehicle",
            "content": {
                "application/json": {
                    "example": {"detail": "invalid next cursor: cursor belongs to another query"}
                }
            },
        }
    }

    @api.get(
        "/vehicles/{vehicle_id}/predictions",
        tags=["predictions"],
        **_merge(protected("predictions:read"), bad_cursor),
    )
    def vehicle_predictions(
        request: Request,
        vehicle_id: VehicleId,
        limit: Annotated[int, Query(ge=1, le=100, description="predictions per page")] = 20,
        cursor: Annotated[
            str | None,
            Query(alias="next", max_length=512, description="`next` of the previous page"),
        ] = None,
    ) -> PredictionPage:
        """A vehicle's stored predictions, latest first, paginated with an opaque cursor."""
        try:
            after = decode_cursor(cursor, vehicle_id=vehicle_id) if cursor else None
        except InvalidCursorError as exc:
            raise HTTPException(status_code=400, detail=f"invalid next cursor: {exc}") from exc
        page = request.app.state.predictions.latest(vehicle_id, limit=limit, after_ts=after)
        following = encode_cursor(vehicle_id, page.last_ts) if page.last_ts else None
        return PredictionPage(vehicle_id=vehicle_id, predictions=page.predictions, next=following)

    unscored = {
        404: {
            "model": MessageBody,
            "description": "no prediction is stored for that reading, and free_standing is false",
            "content": {
                "application/json": {
                    "example": {"detail": _unscored("EV-0042", "2024-05-01T12:00:00.000000Z")}
                }
            },
        }
    }

    @api.post(
        "/feedback",
        status_code=201,
        tags=["feedback"],
        **_merge(protected("feedback:write"), unscored),
    )
    def feedback(request: Request, body: Feedback) -> FeedbackResponse:
        """Report ground truth for a scored reading; every report is kept.

        The reading must have a stored prediction (same vehicle and normalised ``ts``), so the
        label joins it: a typo in ``ts`` is refused (404) rather than stored as an orphan.
        ``free_standing: true`` records an outcome that answers no prediction. A second report
        on the same reading is stored beside the first, with its reporter and time; the label's
        top level is the latest report, and ``reports`` says how many the reading now has.
        """
        caller: Caller = request.state.caller
        label = Label.of(body, received_at=datetime.now(UTC), reported_by=caller.key_id)
        scored = label.free_standing or request.app.state.predictions.exists(
            label.vehicle_id, label.ts
        )
        if not scored:
            raise HTTPException(status_code=404, detail=_unscored(label.vehicle_id, label.ts))
        reports = request.app.state.labels.add(label)
        logger.info(
            "label stored",
            extra={"vehicle_id": label.vehicle_id, "ts": label.ts, "reports": reports},
        )
        return FeedbackResponse(**label.model_dump(), reports=reports)

    nothing_pinned = {409: {"model": MessageBody, "description": "no model is pinned yet"}}
    not_pinned = {404: {"model": MessageBody, "description": "that model is not pinned"}}

    @api.post("/explain", tags=["predictions"], **_merge(protected("predict"), nothing_pinned))
    def explain(request: Request, body: ExplainRequest) -> ExplainResponse:
        """Per-feature contributions of each pinned model for the vehicle's latest reading:
        exact TreeSHAP for the boosters (adding up to the raw output: RUL hours before
        clipping, each class's log-odds margin), squared residuals for the anomaly score."""
        vehicles = {r.vehicle_id for r in body.records}
        if len(vehicles) != 1:
            raise HTTPException(
                status_code=422,
                detail=f"records: all readings must be of one vehicle (got {sorted(vehicles)})",
            )
        served = _served(request)
        if not served.bundles:
            raise HTTPException(status_code=409, detail="no model is pinned: nothing to explain")
        times = np.array([r.timestamp.timestamp() for r in body.records])
        explained = explain_latest(
            served,
            [r.vehicle_id for r in body.records],
            times,
            to_matrix(body.records),
            source=request.app.state.past,
        )
        latest = body.records[int(np.argmax(times))]
        return ExplainResponse(
            vehicle_id=latest.vehicle_id,
            ts=latest.ts,
            models=explained,
            model_versions=served.version_labels(),
        )

    @api.get(
        "/models/{name}/importance",
        tags=["models"],
        **_merge(protected("models:read"), not_pinned),
    )
    def model_importance(
        request: Request,
        name: ModelName,
        top: Annotated[int | None, Query(ge=1, le=1000, description="only the top N")] = None,
    ) -> ImportanceResponse:
        """Global feature importance of the pinned version of ``name`` (normalised to 1)."""
        served = _served(request)
        if name not in served.bundles:
            raise HTTPException(status_code=404, detail=f"{name} is not pinned")
        return ImportanceResponse(
            name=name,
            version=served.versions[name],
            importance=importance(name, served.bundles[name], top),
        )

    registry_down = {
        503: {"model": MessageBody, "description": "the model registry is unreachable"},
    }
    conflict = {
        404: {"model": MessageBody, "description": "no such registered version"},
        409: {"model": MessageBody, "description": "the move is not possible (reason given)"},
    }

    @api.get("/models", tags=["models"], **_merge(protected("models:read"), registry_down))
    def models(request: Request) -> ModelsResponse:
        """What serves now (pins, loaded versions) and every registered version with its
        aliases, metrics and gate verdict."""
        served = _served(request)
        overview = _admin(request).overview()
        return ModelsResponse(
            serving=MODEL_VERSIONS | served.version_labels(),
            pins=overview["pins"],
            registry=overview["models"],
            load_error=_pinned(request).last_error,
        )

    api.include_router(alert_router)  # POST /alerts/webhook (bearer token), GET /alerts

    @api.post(
        "/models/{name}/promote",
        tags=["models"],
        **_merge(protected("models:promote"), conflict | registry_down),
    )
    def promote(request: Request, name: ModelName, body: PromoteRequest) -> MoveResponse:
        """Serve a registered version of ``name`` (ml-admin): alias ``champion`` moves to it,
        the old champion becomes ``previous``, and the serving pin follows."""
        result = _move(lambda: _admin(request).promote(name, body.version))
        logger.info(
            "model promoted by hand", extra={"model": result["name"], "pins": result["pins"]}
        )
        return MoveResponse(**result)

    @api.post(
        "/models/{name}/rollback",
        tags=["models"],
        **_merge(protected("models:rollback"), conflict | registry_down),
    )
    def rollback(
        request: Request, name: ModelName, body: RollbackRequest | None = None
    ) -> MoveResponse:
        """Serve the ``previous`` version of ``name`` again, or the one named in ``to``
        (ml-admin)."""
        result = _move(lambda: _admin(request).rollback(name, body.to if body else None))
        logger.info(
            "model rolled back by hand", extra={"model": result["name"], "pins": result["pins"]}
        )
        return MoveResponse(**result)

    return api


def _merge(route: dict[str, Any], responses: dict[int, Any]) -> dict[str, Any]:
    return {**route, "responses": {**route["responses"], **responses}}


def _unscored(vehicle_id: str, ts: str) -> str:
    """Why /feedback refused a report, naming the field (404, like an unknown model version)."""
    return (
        f"ts: no scored reading of {vehicle_id} at {ts}; "
        "set free_standing=true to record an outcome that answers no prediction"
    )


def _pinned_of(api: FastAPI) -> PinnedModels:
    """The app's pinned models (given by a test, or this container's, built on first use)."""
    if api.state.pinned is None:
        api.state.pinned = pinned_models(ttl=settings.MODELS_TTL_SECONDS)
    return api.state.pinned


def _pinned(request: Request) -> PinnedModels:
    return _pinned_of(request.app)


def _served(request: Request) -> ServedModels:
    return served_now(_pinned(request), logger)


def _history(request: Request, served: ServedModels) -> History:
    """A request's own history, filled from the vehicles' stored readings (not kept: the
    stored readings are the truth, and another container may have stored more since)."""
    return History(served.depth, source=request.app.state.past)


def _used(used: PastUsed | None) -> HistoryUsed:
    if used is None:
        return HistoryUsed(readings=0)
    return HistoryUsed(readings=used.readings, first_ts=used.first_ts, last_ts=used.last_ts)


def _admin(request: Request) -> ModelAdmin:
    if request.app.state.admin is None:
        import boto3

        ssm = boto3.client("ssm")
        request.app.state.admin = ModelAdmin(
            lambda: MlflowRegistry(mlflow_uri(ssm)), SsmPinStore(ssm, settings.PINS_PARAMETER)
        )
    return request.app.state.admin


def _move(action: Any) -> dict[str, Any]:
    """Run a promotion or rollback; its refusals become 404/409 with the reason."""
    try:
        return action()
    except UnknownVersionError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except PinError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


async def _registry_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("model registry call failed", exc_info=exc)
    return JSONResponse(
        status_code=503,
        content={"detail": f"model registry unavailable; retry shortly ({exc})"},
        headers={"Retry-After": "5"},
    )


app = create_app()
_asgi = Mangum(app, lifespan="off")


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (``app.handler``): API Gateway events, or the lifecycle's canary."""
    try:
        if CANARY_KEY in event:
            return answer_canary(event, _pinned_of(app))
        return _asgi(event, context)
    finally:
        publish_counts(metrics)  # the domain code's fallbacks: BoosterFallback, ModelLoadFailures


if os.environ.get("AWS_EXECUTION_ENV"):  # set by Lambda; not where tests re-import this module
    gc.freeze()  # what init built stays for the container's life: never scanned again
gc.enable()
