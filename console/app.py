"""The console as a FastAPI application: sources, sessions, pages, assets and error pages.

:func:`create_app` takes the data sources as arguments (tests pass fakes);
:func:`real_sources` builds the ones that talk to the running system.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from console.config import ConsoleConfig
from console.errors import (
    NotFoundError,
    PermissionDeniedError,
    RefusedError,
    SourceUnavailableError,
)
from console.evpm_api import EvpmApi
from console.fleet import ApiFleet, FleetSource
from console.keys import ApiGatewayKeys, KeyDirectory
from console.lifecycle import LifecycleSource, StepFunctionsSource
from console.monitoring import HttpMonitoring, MonitoringSource
from console.registry import ApiRegistry, RegistrySource
from console.routes import auth, fleet, lifecycle, models, monitoring
from console.sessions import COOKIE, SessionStore, load_secret
from console.web import NotSignedInError, page, signed_in
from evpm.mlflow_rest import MlflowRegistry

__all__ = ["VENDOR", "Sources", "create_app", "real_sources"]

log = logging.getLogger("console")
STATIC = Path(__file__).parent / "static"
VENDOR: dict[str, str] = {
    # served name -> file under node_modules (package.json pins the versions)
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "dagre.min.js": "dagre/dist/dagre.min.js",
    "cytoscape-dagre.js": "cytoscape-dagre/cytoscape-dagre.js",
}
# Scripts only from this console's own files. Styles may also be inline: cytoscape injects a
# stylesheet for its container (a style cannot run code; scripts stay strict).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Sources:
    """Every outside system the pages read or act on, each behind its Protocol."""

    keys: KeyDirectory
    lifecycle: LifecycleSource
    registry: RegistrySource
    fleet: FleetSource
    monitoring: MonitoringSource


def real_sources(config: ConsoleConfig) -> Sources:
    """The sources of a running system: the emulator's AWS APIs, the evpm API, MLflow,
    Prometheus and Alertmanager, at the configured addresses."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=config.base(config.emulator_url),
            region_name=config.region,
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )

    api = EvpmApi(config.api_url)
    return Sources(
        keys=ApiGatewayKeys(client("apigateway")),
        lifecycle=StepFunctionsSource(client("stepfunctions"), config.state_machine),
        registry=ApiRegistry(api, MlflowRegistry(config.base(config.mlflow_url))),
        fleet=ApiFleet(
            api,
            client("dynamodb"),
            predictions_table=config.predictions_table,
            alert_table=config.alert_table,
        ),
        monitoring=HttpMonitoring(
            config.base(config.prometheus_url), config.base(config.alertmanager_url)
        ),
    )


class _SecurityHeaders(BaseHTTPMiddleware):
    """Pages stay on this origin (CSP), are never framed, and are not cached."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith(("/static/", "/vendor/")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _error(request: Request, status: int, title: str, message: str) -> Response:
    try:
        ctx = signed_in(request)
    except NotSignedInError:
        ctx = None
    return page(request, "error.html", ctx, status_code=status, title=title, message=message)


def _install_errors(app: FastAPI) -> None:
    async def not_signed_in(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotSignedInError)
        return RedirectResponse(f"/login?{urlencode({'next': exc.path})}", status_code=303)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, "Not found", str(exc))

    async def denied(request: Request, exc: Exception) -> Response:
        return _error(request, 403, "Not allowed", str(exc))

    async def refused(request: Request, exc: Exception) -> Response:
        return _error(request, 409, "Refused", str(exc))

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("source unavailable", extra={"path": request.url.path, "error": str(exc)})
        return _error(request, 503, "A data source did not answer", str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return _error(request, 404, "Not found", f"no page {request.url.path}")
        return _error(request, exc.status_code, "Error", str(exc.detail))

    async def invalid(request: Request, exc: Exception) -> Response:
        return _error(request, 404, "Not found", "no such page: a part of the address is not valid")

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", extra={"path": request.url.path})
        return _error(
            request,
            500,
            "Something went wrong",
            "the console logged the error; the page could not be shown",
        )

    app.add_exception_handler(NotSignedInError, not_signed_in)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(PermissionDeniedError, denied)
    app.add_exception_handler(RefusedError, refused)
    app.add_exception_handler(SourceUnavailableError, unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)


def create_app(
    config: ConsoleConfig, sources: Sources, *, sessions: SessionStore | None = None
) -> FastAPI:
    """The console for ``config``'s system, reading through ``sources``."""
    app = FastAPI(title="evpm console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.sources = sources
    app.state.sessions = sessions or SessionStore(
        load_secret(config.state_dir), hours=config.session_hours
    )
    app.state.cookie_name = COOKIE
    app.add_middleware(_SecurityHeaders)
    _install_errors(app)
    for module in (auth, lifecycle, models, fleet, monitoring):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> Response:
        """The front-end packages, from node_modules (installed from npm by `make deps`)."""
        if name not in VENDOR:
            raise NotFoundError(f"no asset {name!r}")
        path = config.node_modules / VENDOR[name]
        if not path.is_file():
            raise SourceUnavailableError(
                f"{VENDOR[name]} is not installed: run `make deps` (npm packages)"
            )
        return FileResponse(
            path, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
        )

    return app
