"""In-memory fakes for the scorer's collaborators (no mocking library: plain classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evpm.health import Assessment
from evpm.ingest import AcceptedRecord, ParkedRecord


class CountingScorer:
    """A Scorer that records the shape of each call and calls every row ok."""

    name = "counting"
    version = "c-1"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def assess(self, matrix: np.ndarray) -> list[Assessment]:
        self.shapes.append(matrix.shape)
        ok = Assessment(status="ok", health_score=100.0, failure_mode="none", findings=[])
        return [ok] * matrix.shape[0]


class FakePredictionSink:
    """Keeps what it is given; the sequence numbers in ``fail`` are reported as failed."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.written: list[AcceptedRecord] = []

    def write(self, accepted: Sequence[AcceptedRecord]) -> list[str]:
        self.written.extend(a for a in accepted if a.sequence_number not in self.fail)
        return [a.sequence_number for a in accepted if a.sequence_number in self.fail]


class FakeParkedSink:
    """Keeps parked records; with ``fail_all`` it refuses every one (a DLQ outage)."""

    def __init__(self, *, fail_all: bool = False) -> None:
        self.fail_all = fail_all
        self.sent: list[ParkedRecord] = []

    def send(self, parked: Sequence[ParkedRecord]) -> list[str]:
        if self.fail_all:
            return [p.sequence_number for p in parked]
        self.sent.extend(parked)
        return []


class ScriptedDynamoClient:
    """Answers ``batch_write_item`` from a script: each entry is "ok", "unprocessed" or "error"."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.calls: list[list[dict[str, Any]]] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        [(table, requests)] = RequestItems.items()
        self.calls.append(requests)
        step = self.script.pop(0) if self.script else "ok"
        if step == "error":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "BatchWriteItem",
            )
        if step == "unprocessed":
            return {"UnprocessedItems": {table: requests[:1]}}
        return {"UnprocessedItems": {}}


class ScriptedSqsClient:
    """``send_message_batch`` that fails the entries whose Id is in ``fail_ids``."""

    def __init__(self, fail_ids: set[str] | None = None) -> None:
        self.fail_ids = fail_ids or set()
        self.batches: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(Entries)
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
            for e in Entries
            if e["Id"] in self.fail_ids
        ]
        return {"Successful": [], "Failed": failed}


# --- API: roles, gateway identity, label store -------------------------------------------------


class FakeRoles:
    """A RoleResolver over a dict of key id → role; counts lookups."""

    def __init__(self, roles: dict[str, str]) -> None:
        self.roles = roles
        self.lookups: list[str] = []

    def role_of(self, key_id: str) -> str | None:
        self.lookups.append(key_id)
        return self.roles.get(key_id)


class FakeGateway:
    """Plays API Gateway in front of an ASGI app: the ``x-api-key`` header becomes the key id.

    The real gateway checks the key against the usage plan and passes its *id* in
    ``requestContext.identity.apiKeyId`` (Mangum puts the event in ``scope["aws.event"]``);
    here the header value is used as the id, so tests pick a caller per request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            key = headers.get(b"x-api-key")
            identity = {"apiKeyId": key.decode()} if key else {}
            scope = {**scope, "aws.event": {"requestContext": {"identity": identity}}}
        await self.app(scope, receive, send)


class InMemoryLabels:
    """A LabelWriter that keeps every report by reading key, oldest first."""

    def __init__(self) -> None:
        self.reports: dict[tuple[str, str], list[Any]] = {}

    def add(self, label: Any) -> int:
        reports = self.reports.setdefault((label.vehicle_id, label.ts), [])
        reports.append(label)
        return len(reports)


class ScriptedApiGatewayClient:
    """``get_api_key`` answering from a dict of id → tags, or raising a scripted error code."""

    def __init__(self, keys: dict[str, dict[str, str]], *, error: str | None = None) -> None:
        self.keys = keys
        self.error = error
        self.calls = 0

    def get_api_key(self, apiKey: str, includeValue: bool = False) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "GetApiKey")
        if apiKey not in self.keys:
            raise ClientError(
                {"Error": {"Code": "NotFoundException", "Message": "no"}}, "GetApiKey"
            )
        return {"id": apiKey, "enabled": True, "tags": self.keys[apiKey]}


class FakeAlertSink:
    """Keeps published alerts; alerts whose key is in ``fail_keys`` are reported as failed."""

    def __init__(self, fail_keys: set[str] | None = None) -> None:
        from alert_sink import AlertReport  # functions/scorer is on sys.path once loaded

        self._report = AlertReport
        self.fail_keys = fail_keys or set()
        self.published: list[Any] = []

    def publish(self, alerts: Sequence[Any]) -> Any:
        report = self._report()
        for pending in alerts:
            if pending.alert.key in self.fail_keys:
                report.failed.append(pending.sequence_number)
            else:
                self.published.append(pending)
                report.sent += 1
        return report


class InMemoryPins:
    """The serving pins in a dict (the SSM parameter's stand-in)."""

    def __init__(self, pins: dict[str, int] | None = None) -> None:
        self.pins = dict(pins or {})

    def read(self) -> dict[str, int]:
        return dict(self.pins)

    def write(self, pins: dict[str, int]) -> None:
        self.pins = dict(pins)


def offline_models(app: Any, *, bundles: dict[str, Any] | None = None) -> Any:
    """Give an API app a registry with ev-classifier v1 (previous) and v2 (champion, pinned),
    pins in memory, and served models from ``bundles`` (name → bundle) or none."""
    from evpm.serving import PinnedModels
    from evpm_aws.model_admin import ModelAdmin
    from tests.unit.registry_fake import FakeRegistry

    registry = FakeRegistry()
    for _ in range(2):
        registry.create_version(
            "ev-classifier", "s3://mlflow/m", run_id=None, tags={"metrics": "{}"}
        )
    registry.set_aliases("ev-classifier", champion=2, previous=1)
    pins = {n: 2 if n == "ev-classifier" else 1 for n in bundles} if bundles else {}
    store = InMemoryPins(pins)

    def load(name: str, version: int) -> Any:
        if not bundles or name not in bundles:
            raise KeyError(f"no bundle for {name} v{version}")
        return bundles[name]

    app.state.admin = ModelAdmin(registry, store)
    app.state.pinned = PinnedModels(store.read, load, ttl=0)
    app.state.past = InMemoryPastReadings()
    return registry


class InMemoryPastReadings:
    """Stored readings per vehicle in a dict (the predictions table's stand-in for
    :class:`evpm.past_readings.PastReadings`); ``asked`` records every question."""

    def __init__(self) -> None:
        self.readings: dict[str, dict[str, Any]] = {}
        self.asked: list[dict[str, str]] = []

    def store(self, vehicle_id: str, ts: str, values: Any) -> None:
        import numpy as np

        self.readings.setdefault(vehicle_id, {})[ts] = np.asarray(values, dtype=np.float64)

    def before(self, wanted: dict[str, str], *, limit: int) -> dict[str, Any]:
        import numpy as np

        from evpm.past_readings import Past

        self.asked.append(dict(wanted))
        out = {}
        for vid, ts in wanted.items():
            stamps = sorted(t for t in self.readings.get(vid, {}) if t < ts)[-limit:]
            if stamps:
                values = np.stack([self.readings[vid][t] for t in stamps])
                out[vid] = Past(stamps=stamps, values=values)
        return out
