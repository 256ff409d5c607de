"""Response bodies of the HTTP API, with the examples /docs shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evpm.labels import LABEL_EXAMPLE, Label
from evpm.predictions import Prediction
from evpm.scoring import RULES_SCORER

__all__ = [
    "MODEL_VERSIONS",
    "BatchResponse",
    "ExplainResponse",
    "FeedbackResponse",
    "HealthResponse",
    "HistoryUsed",
    "ImportanceResponse",
    "MessageBody",
    "ModelsResponse",
    "MoveResponse",
    "PredictResponse",
    "PredictionPage",
]

MODEL_VERSIONS = {RULES_SCORER.name: RULES_SCORER.version}


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(examples=["0.1.0"])
    models: dict[str, str] = Field(examples=[MODEL_VERSIONS])


class HistoryUsed(BaseModel):
    """The stored readings a vehicle's rolling features were computed on.

    The same past the stream scorer uses: the vehicle's last stored readings strictly before
    the one scored, so ``/predict`` of a reading gives the stream's prediction of it.
    """

    readings: int = Field(ge=0, examples=[167], description="stored readings used (0: none)")
    first_ts: str | None = Field(
        default=None, examples=["2024-04-24T13:00:00.000000Z"], description="oldest one used"
    )
    last_ts: str | None = Field(
        default=None, examples=["2024-05-01T11:00:00.000000Z"], description="newest one used"
    )


class PredictResponse(Prediction):
    """A prediction and the stored history its features were computed on."""

    history: HistoryUsed | None = Field(
        default=None, description="the stored readings used; null when no model is pinned"
    )


class BatchResponse(BaseModel):
    predictions: list[Prediction]
    model_versions: dict[str, str] = Field(examples=[MODEL_VERSIONS])
    history: dict[str, HistoryUsed] = Field(
        default_factory=dict,
        description="per vehicle: the stored readings before its earliest reading in the batch "
        "that were used as its history (the batch's own earlier readings come after them)",
    )


class FeedbackResponse(Label):
    """The report as stored, and how many reports the reading now has (this one included).

    Earlier reports are kept beside it, not replaced: ``reports`` above 1 tells the reporter
    that others (or they, earlier) have already said something about this reading.
    """

    model_config = ConfigDict(
        frozen=True, json_schema_extra={"examples": [{**LABEL_EXAMPLE, "reports": 2}]}
    )

    reports: int = Field(
        ge=1, examples=[2], description="reports stored for this reading, this one included"
    )


class PredictionPage(BaseModel):
    """One page of a vehicle's predictions, newest first."""

    vehicle_id: str = Field(examples=["EV-0042"])
    predictions: list[Prediction]
    next: str | None = Field(
        description="opaque cursor: pass it as ?next= for the following page; null on the last",
        examples=["eyJ2IjoiRVYtMDA0MiIsInQiOiIyMDI0LTA1LTAxVDEyOjAwOjAwLjAwMDAwMFoifQ"],
    )


class ModelsResponse(BaseModel):
    """What serves now and what the registry holds."""

    serving: dict[str, str] = Field(
        description="model name → version serving now in this container",
        examples=[{"health": "rules-v1", "ev-anomaly": "1", "ev-classifier": "1", "ev-rul": "1"}],
    )
    pins: dict[str, int] = Field(
        default_factory=dict,
        description="the serving pins (SSM): what every container loads within its TTL",
        examples=[{"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}],
    )
    registry: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per model: aliases and versions with metrics, gate verdict and lineage",
    )
    load_error: str | None = Field(
        default=None, description="why the latest pins could not be loaded (old ones serve)"
    )


class MoveResponse(BaseModel):
    """The result of a promotion or rollback."""

    name: str = Field(examples=["ev-rul"])
    champion: int | None = Field(examples=[2])
    previous: int | None = Field(examples=[1])
    pins_before: dict[str, int] = Field(examples=[{"ev-rul": 1}])
    pins: dict[str, int] = Field(examples=[{"ev-rul": 2}])


class ExplainResponse(BaseModel):
    """Per model: output, base value and per-feature contributions (they add up)."""

    vehicle_id: str = Field(examples=["EV-0042"])
    ts: str = Field(examples=["2024-05-01T12:00:00.000000Z"])
    models: dict[str, Any] = Field(
        examples=[
            {
                "ev-rul": {
                    "model": "ev-rul",
                    "version": 2,
                    "kind": "TreeSHAP on the predicted hours (before clipping)",
                    "output": 412.5,
                    "base_value": 390.1,
                    "contributions": {"SoH__slope168": -12.4, "Brake_Pad_Wear": 34.8},
                    "by_signal": {"SoH": -12.4, "Brake_Pad_Wear": 34.8},
                }
            }
        ]
    )
    model_versions: dict[str, str] = Field(examples=[{"ev-rul": "2"}])


class ImportanceResponse(BaseModel):
    """Global importance of each input feature of one pinned model (sums to 1)."""

    name: str = Field(examples=["ev-rul"])
    version: int = Field(examples=[2])
    importance: dict[str, float] = Field(examples=[{"SoH__slope168": 0.31, "SoH": 0.12}])


class MessageBody(BaseModel):
    detail: str = Field(examples=["storage is unavailable; retry shortly"])
