"""The Monitoring page: key metrics, firing alerts, and drift (or that it does not exist yet)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from console.errors import SourceUnavailableError
from console.web import SignedIn, page, require

router = APIRouter()


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring(request: Request, ctx: SignedIn) -> Response:
    require(ctx, "alerts:read")
    source = request.app.state.sources.monitoring
    problems: list[str] = []
    metrics, alerts, drift = [], [], []
    # Each part on its own: Prometheus down must not hide what Alertmanager says.
    try:
        metrics = source.key_metrics()
        drift = source.drift()
    except SourceUnavailableError as exc:
        problems.append(f"Prometheus: {exc}")
    try:
        alerts = source.firing_alerts()
    except SourceUnavailableError as exc:
        problems.append(f"Alertmanager: {exc}")
    return page(
        request,
        "monitoring.html",
        ctx,
        metrics=metrics,
        alerts=alerts,
        drift=drift,
        problems=problems,
    )
