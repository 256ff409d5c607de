"""Serve the hot data-plane operations of the moto-backed providers straight from moto.

Why: a request to a moto-backed provider normally costs LocalStack a full round of codec work
around moto's own: the gateway parses the JSON body into a service request (walking the API
shapes, base64-decoding every blob), the provider falls through to moto with the *original*
HTTP request (moto parses it again), LocalStack parses moto's HTTP response back into a dict and
serialises that once more. For ``BatchWriteItem`` that overhead was about two thirds of the
emulator's CPU per call (17 ms per 25 items in total), and the stream's throughput is bounded
by the emulator's one core (one GIL).

What: a request handler placed right before ``parse_service_request`` in the gateway's chain.
For a whitelisted operation of a service whose provider here is a pure moto pass-through
(DynamoDB entirely; Kinesis except ``CreateStream``, which our provider rewrites), it hands the
request to moto's dispatcher exactly as ``call_moto`` would and returns moto's HTTP response
unchanged — what a moto server would answer, which the SDKs parse (DynamoDB's CRC32 header is
moto's own). Account and region are already on the request (``x-moto-account-id`` is added by
the chain's account handler, which runs earlier). Anything unexpected — an exception in moto,
no response, a 5xx — falls through to the normal chain, which handles the request as before.

Only pass-through operations are listed: a provider method added later for one of them must
also remove it here (a unit test checks the lists against the providers' own handlers).
Disable with ``EVPM_FAST_MOTO=0``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

FAST_OPERATIONS: dict[str, frozenset[str]] = {
    "dynamodb": frozenset({
        "BatchWriteItem", "PutItem", "GetItem", "BatchGetItem", "DeleteItem", "UpdateItem",
        "Query", "Scan",
    }),
    "kinesis": frozenset({"PutRecord", "PutRecords", "GetRecords", "GetShardIterator"}),
}

_lock = threading.Lock()
_handler: FastMotoHandler | None = None


def operation_of(target: str | None) -> str:
    """``DynamoDB_20120810.BatchWriteItem`` → ``BatchWriteItem`` (JSON protocol target)."""
    return (target or "").rpartition(".")[2]


class FastMotoHandler:
    """Gateway request handler: answer whitelisted operations of enabled services from moto."""

    def __init__(self, dispatch: Callable[[Any], Any] | None = None) -> None:
        self._dispatch = dispatch
        self.enabled: set[str] = set()
        self.served = 0
        self.fell_through = 0

    @property
    def dispatch(self) -> Callable[[Any], Any]:
        if self._dispatch is None:
            from localstack.services.moto import dispatch_to_moto

            self._dispatch = dispatch_to_moto
        return self._dispatch

    def __call__(self, chain: Any, context: Any, response: Any) -> None:
        service = context.service
        if service is None or service.service_name not in self.enabled:
            return
        request = context.request
        if operation_of(request.headers.get("X-Amz-Target")) not in FAST_OPERATIONS.get(
                service.service_name, ()):
            return
        try:
            moto_response = self.dispatch(context)
        except Exception:  # moto's error types vary; the normal chain formats every one
            LOG.debug("fast path fell through", exc_info=True)
            self.fell_through += 1
            return
        if moto_response is None or moto_response.status_code >= 500:
            self.fell_through += 1
            return
        response.update_from(moto_response)
        self.served += 1
        chain.stop()


def enable(service: str) -> bool:
    """Serve ``service``'s fast operations from moto from now on (called by its provider).

    Returns False (and changes nothing) when disabled or the gateway cannot be found.
    """
    global _handler
    if os.environ.get("EVPM_FAST_MOTO", "1") == "0" or service not in FAST_OPERATIONS:
        return False
    with _lock:
        if _handler is None:
            try:
                from localstack.aws import handlers
                from localstack.runtime import get_current_runtime

                chain = get_current_runtime().components.gateway.request_handlers
                position = chain.index(handlers.parse_service_request)
            except (ValueError, AttributeError, ImportError):
                LOG.warning("fast moto path not installed: gateway chain not found")
                return False
            _handler = FastMotoHandler()
            chain.insert(position, _handler)
        _handler.enabled.add(service)
    return True


def stats() -> dict[str, int]:
    return {"served": _handler.served if _handler else 0,
            "fell_through": _handler.fell_through if _handler else 0}
