"""Entry point of the evpm CDK app (``cdk.json`` runs ``.venv/bin/python infra/app.py``).

No AWS calls happen here or in any stack: synthesis works offline with no credentials.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python would put infra/ first on sys.path, and infra/constructs/ would then
# shadow the `constructs` library that aws_cdk imports. Put the repo root there instead.
_REPO_ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == _REPO_ROOT / "infra":
    sys.path[0] = str(_REPO_ROOT)

from aws_cdk import App, Environment, Stack, Tags  # noqa: E402

from infra import constants as c  # noqa: E402
from infra.config import InfraSettings, MissingBuildError  # noqa: E402
from infra.constructs.model_access import ModelAccess  # noqa: E402
from infra.nag import apply_checks  # noqa: E402
from infra.stacks.drift import DriftStack  # noqa: E402
from infra.stacks.ingestion import IngestionStack  # noqa: E402
from infra.stacks.lifecycle import LifecycleStack  # noqa: E402
from infra.stacks.monitoring import MonitoringStack  # noqa: E402
from infra.stacks.scoring import ScoringStack  # noqa: E402
from infra.stacks.serving import ServingStack  # noqa: E402
from infra.stacks.storage import StorageStack  # noqa: E402


def build(app: App, settings: InfraSettings) -> dict[str, Stack]:
    """Add every evpm stack to ``app`` and return them by name (the tests use this too)."""
    env = Environment(account=settings.account, region=settings.region)
    storage = StorageStack(app, c.STORAGE_STACK, settings=settings, env=env)
    model_access = ModelAccess(
        pins=storage.pins_parameter,
        mlflow_uri=storage.mlflow_uri_parameter,
        mlflow_bucket=storage.mlflow_bucket,
    )
    ingestion = IngestionStack(app, c.INGESTION_STACK, settings=settings, env=env)
    scoring = ScoringStack(
        app,
        c.SCORING_STACK,
        settings=settings,
        stream=ingestion.stream,
        dlq=ingestion.dlq,
        predictions_table=storage.predictions_table,
        alert_dedup_table=storage.alert_dedup_table,
        model_access=model_access,
        capture_bucket=storage.raw_bucket,
        env=env,
    )
    monitoring = MonitoringStack(app, c.MONITORING_STACK, settings=settings, env=env)
    serving = ServingStack(
        app,
        c.SERVING_STACK,
        settings=settings,
        predictions_table=storage.predictions_table,
        labels_table=storage.labels_table,
        ops_alerts_table=storage.ops_alerts_table,
        ops_topic=monitoring.ops_topic,
        ops_topic_key=monitoring.ops_topic_key,
        model_access=model_access,
        env=env,
    )
    # The API puts OpsAlert events on the scoring stack's bus (referred to by name).
    serving.add_stack_dependency(scoring)
    lifecycle = LifecycleStack(
        app,
        c.LIFECYCLE_STACK,
        settings=settings,
        artifacts_bucket=storage.artifacts_bucket,
        mlflow_bucket=storage.mlflow_bucket,
        model_access=model_access,
        api_function=serving.function,
        scorer_function=scoring.function,
        env=env,
    )
    drift = DriftStack(
        app,
        c.DRIFT_STACK,
        settings=settings,
        raw_bucket=storage.raw_bucket,
        predictions_table=storage.predictions_table,
        labels_table=storage.labels_table,
        model_access=model_access,
        state_machine=lifecycle.state_machine,
        env=env,
    )
    # The monitor's events go on the scoring stack's alert bus (referred to by name).
    drift.add_stack_dependency(scoring)
    for stack in (storage, ingestion, scoring, serving, lifecycle, monitoring, drift):
        Tags.of(stack).add("project", c.PROJECT)
        Tags.of(stack).add("environment", settings.env_name)
    apply_checks(app)
    return {
        c.STORAGE_STACK: storage,
        c.INGESTION_STACK: ingestion,
        c.SCORING_STACK: scoring,
        c.SERVING_STACK: serving,
        c.LIFECYCLE_STACK: lifecycle,
        c.MONITORING_STACK: monitoring,
        c.DRIFT_STACK: drift,
    }


def main() -> None:
    """Synthesise the app; a missing local build ends with the command that fixes it."""
    app = App()
    try:
        build(app, InfraSettings())
    except MissingBuildError as exc:
        sys.exit(f"evpm infra: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
