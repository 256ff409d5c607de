"""``ApiRequests`` and ``ApiLatency`` for every HTTP request, by route template and status class.

An ASGI middleware around the app (outside the exception handlers, so a 422, a 503 and an
unhandled error are all counted, with the time they took; inside ``StageRootPath``, whose scope
copy is the one the router marks with the route it chose). The metrics go into the handler's
own powertools ``Metrics`` and leave in the invocation's one EMF flush
(``@metrics.log_metrics``), beside ``ModelLoadFailures`` and the other counts.

Dimensions, and why these: EMF gives each dimension one value per flush, and one API
invocation in Lambda is one request, so the request's ``route`` and ``status_class`` are added
per invocation. They are added as extra *dimension sets* (``Metrics.add_dimensions``), not to
the flush's main set, so every metric of the flush is published three ways:

* ``{service}`` — as before: the alarms on ``ModelLoadFailures`` and on the API's overall p95
  latency read this one;
* ``{service, status_class}`` — the 5xx-rate alarm reads this (CloudWatch alarms cannot sum
  across routes);
* ``{service, route, status_class}`` — per route, for dashboards.

Every value is bounded: ``route`` is the route's *template* (``/vehicles/{vehicle_id}/
predictions``, never the raw path with a vehicle id in it), ``unmatched`` for a path no route
serves; ``status_class`` is one of ``2xx`` ... ``5xx``.

Outside Lambda (TestClient, uvicorn) several requests can come before a flush; the second one
flushes the first's metrics before adding its own, so no flush ever mixes two requests.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "LATENCY_METRIC",
    "REQUESTS_METRIC",
    "UNMATCHED",
    "RequestMetrics",
    "route_template",
    "status_class",
]

REQUESTS_METRIC = "ApiRequests"
LATENCY_METRIC = "ApiLatency"
UNMATCHED = "unmatched"
"""``route`` of a request no route matched (a 404 from the router): one value for all of them."""


def status_class(status: int) -> str:
    """``"2xx"`` for 200..299 and so on; anything outside 100..599 counts as ``"5xx"``.

    Example: ``status_class(422) == "4xx"``.
    """
    return f"{status // 100}xx" if 100 <= status <= 599 else "5xx"


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope``, or :data:`UNMATCHED`.

    The router puts the route it chose in ``scope["route"]`` (a route whose path matched but
    not its method, a 405, too), on the very scope this middleware passed on: it must sit
    inside any middleware that copies the scope (``StageRootPath`` does).
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestMetrics:
    """Times each HTTP request and counts it, by route template and status class."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the caller gets if the app raises before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.record(route_template(scope), status, elapsed_ms)

    def record(self, route: str, status: int, elapsed_ms: float) -> None:
        """Add one request's count and latency, with its dimension sets, to the next flush."""
        provider: Any = self.metrics.provider
        if REQUESTS_METRIC in self.metrics.metric_set:
            self.metrics.flush_metrics()  # a second request before a flush: not in Lambda
        service = provider.service
        klass = status_class(status)
        base = {"service": service} if service else {}
        self.metrics.add_dimensions(**base, status_class=klass)
        self.metrics.add_dimensions(**base, route=route, status_class=klass)
        self.metrics.add_metric(name=REQUESTS_METRIC, unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(
            name=LATENCY_METRIC, unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 3)
        )
