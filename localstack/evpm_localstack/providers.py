"""moto-backed DynamoDB and Kinesis providers for the LocalStack community core.

Why: the default DynamoDB provider downloads Java + DynamoDB Local (impossible offline) and the
default Kinesis provider runs the Node ``kinesis-local`` on a random port on all interfaces and
manages < 300 records/s. Both APIs are implemented in-process by moto; these providers are the
generated API classes with no methods of their own, wrapped in ``MotoFallbackDispatcher``, so
every operation falls through to moto. Select them with ``PROVIDER_OVERRIDE_DYNAMODB=moto`` and
``PROVIDER_OVERRIDE_KINESIS=moto``.

Each provider exposes its moto ``BackendDict`` through ``accept_state_visitor`` so the
persistence hooks in :mod:`evpm_localstack.persistence` can save and restore it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from localstack.aws.api import RequestContext, handler
from localstack.aws.api.dynamodb import DynamodbApi
from localstack.aws.api.kinesis import CreateStreamInput, KinesisApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider
from localstack.state import StateVisitor

from evpm_localstack.dynamodb_ttl import sweep_expired_items
from evpm_localstack.snapshot_files import log_event

LOG = logging.getLogger(__name__)


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """DynamoDB served entirely by moto, plus a TTL sweeper (moto stores TTL but never expires).

    The sweeper deletes items whose TTL attribute (epoch seconds) lies in the past, every
    ``EVPM_DYNAMODB_TTL_SWEEP_SEC`` seconds (default 60; 0 disables), like AWS does lazily.
    """

    def __init__(self) -> None:
        from evpm_localstack import dynamodb_fast, fast_moto

        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        dynamodb_fast.install()
        fast_moto.enable("dynamodb")

    def accept_state_visitor(self, visitor: StateVisitor) -> None:
        from moto.dynamodb.models import dynamodb_backends

        visitor.visit(dynamodb_backends)

    def on_after_init(self) -> None:
        import os

        interval = float(os.environ.get("EVPM_DYNAMODB_TTL_SWEEP_SEC", "60") or 0)
        if interval > 0:
            self._sweeper = threading.Thread(
                target=self._sweep_loop, args=(interval,), name="evpm-ddb-ttl", daemon=True
            )
            self._sweeper.start()

    def on_before_stop(self) -> None:
        self._stop.set()

    def _sweep_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                removed = sweep_expired_items(time.time())
                if removed:
                    log_event(LOG, "dynamodb_ttl_sweep", removed=removed)
            except Exception:  # never let the sweeper die on one odd table
                LOG.exception("dynamodb TTL sweep failed")


class MotoKinesisProvider(KinesisApi, ServiceLifecycleHook):
    """Kinesis served by moto with constant-time shards (see :mod:`evpm_localstack.kinesis_fast`).

    No ``kinesis-local`` Node process is ever installed or started.
    """

    def __init__(self) -> None:
        from evpm_localstack import fast_moto, kinesis_fast

        kinesis_fast.install()
        fast_moto.enable("kinesis")

    def accept_state_visitor(self, visitor: StateVisitor) -> None:
        from moto.kinesis.models import kinesis_backends

        visitor.visit(kinesis_backends)

    @handler("CreateStream", expand=False)
    def create_stream(self, context: RequestContext, request: CreateStreamInput) -> None:
        """Honour an explicit ShardCount that arrives with ON_DEMAND.

        LocalStack's AWS::Kinesis::Stream handler fills in ``StreamMode: ON_DEMAND`` when a
        template sets only ``ShardCount`` (what CDK emits for ``shardCount: 1``); moto then
        creates 4 shards. Real CloudFormation creates a PROVISIONED stream with that count.
        """
        from localstack.services.moto import call_moto_with_request

        mode = (request.get("StreamModeDetails") or {}).get("StreamMode")
        if request.get("ShardCount") and mode == "ON_DEMAND":
            request = {**request, "StreamModeDetails": {"StreamMode": "PROVISIONED"}}
            call_moto_with_request(context, request)
            return None
        raise NotImplementedError  # fall through to moto unchanged


def _moto_service(provider: Any) -> Service:
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(provider, dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    return _moto_service(MotoDynamoDBProvider())


@aws_provider(api="kinesis", name="moto")
def kinesis_moto() -> Service:
    return _moto_service(MotoKinesisProvider())
