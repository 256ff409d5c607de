"""HTTP API Lambda: FastAPI behind API Gateway (REST, proxy integration) through Mangum.

Routes validate with the same :class:`~evpm.telemetry.TelemetryRecord` the stream uses and score
with the same :func:`~evpm.scoring.score_records`, so a reading gets one verdict whichever way
it arrives. Every response names the models that produced it (``model_versions``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

import evpm
from evpm.predictions import Prediction
from evpm.scoring import RULES_SCORER, score_records
from evpm.settings import ApiSettings
from evpm.telemetry import TelemetryRecord

settings = ApiSettings()  # validated at cold start: a missing variable fails loudly
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
MODEL_VERSIONS = {RULES_SCORER.name: RULES_SCORER.version}


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(examples=[evpm.__version__])
    models: dict[str, str] = Field(examples=[MODEL_VERSIONS])


class BatchResponse(BaseModel):
    predictions: list[Prediction]
    model_versions: dict[str, str] = Field(examples=[MODEL_VERSIONS])


class StageRootPath:
    """Set the ASGI ``root_path`` to the API Gateway stage prefix (e.g. ``/v1``).

    Mangum passes the path without the stage and an empty ``root_path``; without this, /docs
    would load ``/openapi.json`` instead of ``/v1/openapi.json`` and "Try it out" would miss the
    stage. The prefix is what ``requestContext.path`` has in front of ``path``, which also
    covers custom-domain base paths.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event")
        if scope["type"] == "http" and isinstance(event, dict):
            prefix = _stage_prefix(event)
            if prefix:
                scope = {**scope, "root_path": prefix}
        await self.app(scope, receive, send)


def _stage_prefix(event: dict[str, Any]) -> str:
    context = event.get("requestContext") or {}
    full, path = context.get("path"), event.get("path")
    if full and path and full != path and full.endswith(path):
        return full[: -len(path)].rstrip("/")
    stage = context.get("stage")
    return f"/{stage}" if stage and stage != "$default" and not full else ""


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field and why, without echoing the input back.

    The default echo can be a whole 500-record body, and a NaN in it cannot be rendered as JSON.
    """
    detail = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


class BatchRequest(BaseModel):
    """Up to ``MAX_BATCH`` readings scored in one vectorised call."""

    records: list[TelemetryRecord] = Field(
        min_length=1,
        max_length=settings.MAX_BATCH,
        description=f"1 to {settings.MAX_BATCH} readings",
    )


def create_app() -> FastAPI:
    """Build the app: routes only parse, call the domain, and shape the reply."""
    api = FastAPI(
        title="evpm",
        version=evpm.__version__,
        description="Health assessment of EV telemetry (rules-v1).",
    )
    api.add_middleware(StageRootPath)
    api.add_exception_handler(RequestValidationError, _validation_error)

    @api.get("/health")
    def health() -> HealthResponse:
        return HealthResponse(status="ok", version=evpm.__version__, models=MODEL_VERSIONS)

    @api.post("/predict")
    def predict(record: TelemetryRecord) -> Prediction:
        return score_records([record])[0]

    @api.post("/predict/batch")
    def predict_batch(body: BatchRequest) -> BatchResponse:
        return BatchResponse(predictions=score_records(body.records), model_versions=MODEL_VERSIONS)

    return api


app = create_app()
handler = Mangum(app, lifespan="off")
