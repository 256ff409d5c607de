"""Serve the emulator's gateway with LocalStack's own default server, bound to loopback only.

Why: LocalStack's default HTTP server (twisted) listens on every interface whatever host
``GATEWAY_LISTEN`` names (its IPv4 endpoint is built without ``interface=``), so host mode had
to fall back to hypercorn. Hypercorn costs far more per request: on this machine its asyncio
loop spent about 1 ms of CPU per request (h11 parsing and validation, one task and one thread
hand-off per request) before any AWS work, and LocalStack answers every hypercorn request with
``Connection: close`` (a workaround for an h11 keep-alive stall, localstack#6557), so every SDK
call also paid a new TCP connection. With the stream at a few thousand records a second that
was the largest share of the emulator's one core (one GIL).

What: a runtime-start hook that makes LocalStack's twisted runtime server pass the listen host
as ``interface`` for IPv4 too, which is all twisted needs to bind ``127.0.0.1``. ``ctl`` sets
``GATEWAY_SERVER=twisted`` (``EVPM_GATEWAY_SERVER=hypercorn`` switches back).
"""

from __future__ import annotations

import logging
from typing import Any

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


def bind_listen_host() -> None:
    """Patch ``TwistedRuntimeServer.register`` to listen on the configured host only (idempotent)."""
    from localstack.runtime.server.twisted import TwistedRuntimeServer

    if getattr(TwistedRuntimeServer, "_evpm_binds_host", False):
        return
    original = TwistedRuntimeServer.register

    def register(self: Any, gateway: Any, listen: list[Any], ssl_creds: Any = None) -> None:
        from twisted.internet import endpoints

        captured: list[tuple[Any, ...]] = []
        real_endpoint = endpoints.TCP4ServerEndpoint

        def endpoint_on_host(reactor_: Any, port: int, *args: Any, **kwargs: Any) -> Any:
            host = next((h.host for h in listen if h.port == port), None)
            if host and "interface" not in kwargs:
                kwargs["interface"] = host
            captured.append((port, kwargs.get("interface")))
            return real_endpoint(reactor_, port, *args, **kwargs)

        endpoints.TCP4ServerEndpoint = endpoint_on_host
        try:
            original(self, gateway, listen, ssl_creds)
        finally:
            endpoints.TCP4ServerEndpoint = real_endpoint
        LOG.info("twisted gateway listening on %s", captured)

    TwistedRuntimeServer.register = register
    TwistedRuntimeServer._evpm_binds_host = True


@hooks.on_infra_start(priority=90)
def on_runtime_start() -> None:
    """Runs before the runtime registers its server (``LocalstackRuntime._init_gateway_server``)."""
    bind_listen_host()
