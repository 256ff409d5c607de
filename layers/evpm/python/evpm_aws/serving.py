"""The pinned models of a Lambda container: built once, refreshed by TTL, shared by handlers.

Also the canary entry point the lifecycle's smoke test calls with ``lambda:InvokeFunction``
(``{"evpm_canary": {"records": [...]}}``): API Gateway and Kinesis never produce that shape,
and only principals allowed to invoke the function directly can send it.
"""

from __future__ import annotations

import os
from typing import Any

from evpm.mlflow_rest import MlflowRegistry
from evpm.scoring import score_records
from evpm.serving import History, PinnedModels, ServedModels
from evpm.telemetry import TelemetryRecord
from evpm_aws.model_store import BundleLoader, SsmPinStore, mlflow_uri

__all__ = ["CANARY_KEY", "answer_canary", "pinned_models", "served_now"]

CANARY_KEY = "evpm_canary"
_pinned: PinnedModels | None = None


def pinned_models(*, ttl: float | None = None) -> PinnedModels:
    """This container's :class:`PinnedModels` (SSM pins, MLflow registry, S3 files)."""
    global _pinned
    if _pinned is None:
        import boto3

        ssm, s3 = boto3.client("ssm"), boto3.client("s3")
        seconds = ttl if ttl is not None else float(os.environ.get("MODELS_TTL_SECONDS", "10"))
        loader = BundleLoader(lambda: MlflowRegistry(mlflow_uri(ssm)), s3)
        store = SsmPinStore(ssm, os.environ.get("PINS_PARAMETER", "/evpm/serving/pins"))

        def read_pins() -> dict[str, int]:
            pins = store.read()
            loader.prefetch(pins)  # newly pinned versions fetched together, then loaded
            return pins

        _pinned = PinnedModels(read_pins, loader, ttl=seconds)
    return _pinned


def served_now(pinned: PinnedModels, logger: Any) -> ServedModels:
    """The pinned models now; a failed reload keeps the old ones and says so in the log.

    The warning goes to the handler's ``logger`` (JSON, with the invocation's context) from
    the call whose own refresh failed: once per failed refresh (every ``ttl`` at most while
    the failure lasts), not on every request served in between. Those requests still get the
    stale models; ``ModelLoadFailures`` counts each failed refresh (:mod:`evpm.counters`).
    """
    failures = pinned.failed_refreshes
    served = pinned.current()
    if pinned.failed_refreshes != failures:
        logger.warning(
            "serving stale models: the pinned ones could not be loaded",
            extra={
                "error": pinned.last_error,
                "failed_pins": pinned.failed_pins,
                "serving_versions": served.versions,
                "stale": pinned.stale,
            },
        )
    return served


def answer_canary(event: dict[str, Any], pinned: PinnedModels) -> dict[str, Any]:
    """Score the canary readings with the served models (their own history, never stored)."""
    records = [TelemetryRecord.model_validate(r) for r in event[CANARY_KEY]["records"]]
    served = pinned.current()
    predictions = score_records(records, models=served, history=History(served.depth))
    return {
        "model_versions": predictions[0].model_versions if predictions else {},
        "predictions": [p.model_dump(mode="json") for p in predictions],
        "load_error": pinned.last_error,
    }
