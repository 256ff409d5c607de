"""The HTTP side: ``/metrics`` (a scrape of CloudWatch), ``/-/healthy``, and a landing page."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from cloudwatch_exporter.logs import event

__all__ = ["make_app", "serve"]

log = logging.getLogger("cloudwatch_exporter.http")

_LANDING = b"""<html><head><title>evpm CloudWatch exporter</title></head><body>
<h1>evpm CloudWatch exporter</h1><p><a href="/metrics">/metrics</a> (each request reads
CloudWatch) &middot; <a href="/-/healthy">/-/healthy</a></p></body></html>
"""

StartResponse = Callable[..., Any]


def make_app(
    registry: CollectorRegistry,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """WSGI app: ``/metrics`` from ``registry``; a cheap ``/-/healthy`` for start-up checks."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics(environ, start_response)
        if path in ("/-/healthy", "/-/ready"):
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"OK\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_LANDING]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics\n"]

    return app


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        event(log, logging.DEBUG, "http_request", client=self.client_address[0], line=format % args)


def serve(registry: CollectorRegistry, address: str, port: int) -> WSGIServer:
    """A threaded server bound to ``address:port`` (not started: call ``serve_forever``)."""
    return make_server(address, port, make_app(registry), ThreadingWSGIServer, _Handler)
