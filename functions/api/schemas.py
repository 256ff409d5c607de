"""Response bodies of the HTTP API, with the examples /docs shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from evpm.predictions import Prediction
from evpm.scoring import RULES_SCORER

__all__ = [
    "MODEL_VERSIONS",
    "BatchResponse",
    "HealthResponse",
    "MessageBody",
    "ModelsResponse",
    "NotImplementedBody",
    "PredictionPage",
]

MODEL_VERSIONS = {RULES_SCORER.name: RULES_SCORER.version}


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(examples=["0.1.0"])
    models: dict[str, str] = Field(examples=[MODEL_VERSIONS])


class BatchResponse(BaseModel):
    predictions: list[Prediction]
    model_versions: dict[str, str] = Field(examples=[MODEL_VERSIONS])


class PredictionPage(BaseModel):
    """One page of a vehicle's predictions, newest first."""

    vehicle_id: str = Field(examples=["EV-0042"])
    predictions: list[Prediction]
    next: str | None = Field(
        description="opaque cursor: pass it as ?next= for the following page; null on the last",
        examples=["eyJ2IjoiRVYtMDA0MiIsInQiOiIyMDI0LTA1LTAxVDEyOjAwOjAwLjAwMDAwMFoifQ"],
    )


class ModelsResponse(BaseModel):
    """What serves now (model name → version) and what the registry holds."""

    serving: dict[str, str] = Field(examples=[MODEL_VERSIONS])
    registry: list[dict[str, Any]] = Field(
        default_factory=list, description="registered models and versions (empty until MLflow)"
    )


class MessageBody(BaseModel):
    detail: str = Field(examples=["storage is unavailable; retry shortly"])


class NotImplementedBody(BaseModel):
    detail: str = Field(
        examples=["promote is not available yet: the model lifecycle is not deployed"]
    )
