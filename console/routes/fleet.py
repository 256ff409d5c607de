"""Fleet pages: vehicles with recent alerts, one vehicle's charts, its latest explanation."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.errors import (
    NotFoundError,
    PermissionDeniedError,
    RefusedError,
    SourceUnavailableError,
)
from console.fleet import chart_series, valid_vehicle_id
from console.web import SignedIn, page, require

router = APIRouter()
POINTS = (100, 500, 2000, 10000)
# One API page: on the emulator each page costs a query of the vehicle's whole partition
# (~0.3 s at 10,000 stored predictions), so the default view is one page and more is a choice.
DEFAULT_POINTS = 100


@router.get("/fleet", response_class=HTMLResponse)
def fleet(request: Request, ctx: SignedIn, vehicle: str = "") -> Response:
    require(ctx, "predictions:read")
    if vehicle.strip():
        return RedirectResponse(
            f"/fleet/vehicles/{quote(vehicle.strip(), safe='')}", status_code=303
        )
    rows = request.app.state.sources.fleet.alerted_vehicles()
    return page(request, "fleet.html", ctx, rows=rows)


def _vehicle(vehicle_id: str) -> str:
    if not valid_vehicle_id(vehicle_id):
        raise NotFoundError(f"no vehicle {vehicle_id!r}: not a vehicle id")
    return vehicle_id


@router.get("/fleet/vehicles/{vehicle_id}", response_class=HTMLResponse)
def vehicle(
    request: Request, ctx: SignedIn, vehicle_id: str, points: int = DEFAULT_POINTS
) -> Response:
    require(ctx, "predictions:read")
    vehicle_id = _vehicle(vehicle_id)
    points = points if points in POINTS else DEFAULT_POINTS
    found = request.app.state.sources.fleet.predictions(ctx.key, vehicle_id, points)
    return page(
        request,
        "vehicle.html",
        ctx,
        vehicle_id=vehicle_id,
        latest=found[0],
        count=len(found),
        series=chart_series(found),
        points=points,
        choices=POINTS,
    )


@router.get("/fleet/vehicles/{vehicle_id}/explanation", response_class=HTMLResponse)
def explanation(
    request: Request, ctx: SignedIn, vehicle_id: str, predicted: str | None = None
) -> Response:
    """An HTML fragment the vehicle page loads after its charts (it takes an API call that
    scores the reading again, so the page does not wait for it)."""
    require(ctx, "predictions:read")
    vehicle_id = _vehicle(vehicle_id)
    if not ctx.can("predict"):
        return page(
            request,
            "explanation.html",
            ctx,
            explanation=None,
            note="Explanations need a key with the predict permission "
            "(fleet-service or ml-admin): this key is a "
            f"{ctx.session.role}.",
        )
    try:
        found = request.app.state.sources.fleet.explanation(ctx.key, vehicle_id, predicted)
    except (NotFoundError, PermissionDeniedError, RefusedError, SourceUnavailableError) as exc:
        # A fragment inside the vehicle page: the reason as a note, not a whole error page.
        return page(
            request,
            "explanation.html",
            ctx,
            explanation=None,
            note=f"No explanation: {exc}",
        )
    return page(request, "explanation.html", ctx, explanation=found, note=None)
