"""In-memory collaborators of the ops alert routes (``functions/api/alert_store.py``'s protocols),
and sample Alertmanager notifications.

The store keeps the DynamoDB store's semantics (a firing never overwrites a resolved
occurrence); ``tests/unit/test_api_ops_alerts.py`` runs the same route tests against both.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from evpm.ops_alerts import OpsAlert

TOKEN = "t0ken-for-tests-only"

FIRING_ALERT: dict[str, Any] = {
    "status": "firing",
    "labels": {
        "alertname": "EvpmApiLatencyHigh",
        "severity": "warning",
        "service": "evpm-api",
        "route": "/predict",
        "cloudwatch_alarm": "evpm-api-latency-p95",
    },
    "annotations": {"summary": "API p95 latency 1.3s on /predict over the 1 s budget"},
    "startsAt": "2024-05-01T12:00:00.123Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=evpm%3Aapi_latency",
    "fingerprint": "a1b2c3d4e5f60718",
}


def notification(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """An Alertmanager 0.25 webhook body (version 4) carrying ``alerts``."""
    alerts = alerts or (copy.deepcopy(FIRING_ALERT),)
    return {
        "receiver": "evpm-webhook",
        "status": status or alerts[0]["status"],
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"].get("alertname", "")},
        "commonLabels": dict(alerts[0]["labels"]),
        "commonAnnotations": dict(alerts[0].get("annotations", {})),
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": '{}:{alertname="EvpmApiLatencyHigh"}',
        "truncatedAlerts": 0,
    }


def alert(**changes: Any) -> dict[str, Any]:
    """The sample firing alert with some fields replaced."""
    return {**copy.deepcopy(FIRING_ALERT), **changes}


def resolved(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default: the sample) as Alertmanager sends it once it resolved."""
    return {**copy.deepcopy(base or FIRING_ALERT), "status": "resolved",
            "endsAt": "2024-05-01T12:20:00Z"}


class InMemoryOpsAlertStore:
    """An OpsAlertStore over a dict keyed like the table."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], OpsAlert] = {}

    def record(self, alert: OpsAlert) -> str:
        key = (alert.fingerprint, alert.starts_at)
        old = self.items.get(key)
        if old is not None and old.status == "resolved" and alert.status == "firing":
            return "stale"
        count = old.notifications + 1 if old else 1
        self.items[key] = alert.model_copy(update={"notifications": count})
        if old is None:
            return "new"
        return "repeat" if old.status == alert.status else "resolved"

    def _by(self, status: str) -> list[OpsAlert]:
        found = [a for a in self.items.values() if a.status == status]
        return sorted(found, key=lambda a: a.updated_at, reverse=True)

    def active(self, *, limit: int) -> list[OpsAlert]:
        return self._by("firing")[:limit]

    def resolved_since(self, since: str, *, limit: int) -> list[OpsAlert]:
        return [a for a in self._by("resolved") if a.updated_at >= since][:limit]


class RecordingNotifier:
    """An OpsAlertNotifier that keeps what it was asked to send; ``fail`` makes it refuse."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[OpsAlert, bool]] = []

    def notify(self, alerts: Sequence[tuple[OpsAlert, bool]]) -> None:
        from alert_store import NotifyError

        if self.fail:
            raise NotifyError("the bus is down")
        self.sent.extend(alerts)


class FixedToken:
    """A WebhookToken with a fixed value, or none (``None``: the parameter is missing)."""

    def __init__(self, value: str | None = TOKEN) -> None:
        self._value = value
        self.reads = 0

    def value(self) -> str:
        from alert_store import TokenUnavailableError

        self.reads += 1
        if self._value is None:
            raise TokenUnavailableError("cannot read /evpm/alerts/webhook-token: not found")
        return self._value


def install(app: Any, **kwargs: Any) -> Any:
    """Give ``app`` in-memory ops alert collaborators; returns the ``OpsAlerts`` bundle."""
    from alert_store import OpsAlerts

    ops = OpsAlerts(
        store=kwargs.get("store") or InMemoryOpsAlertStore(),
        notifier=kwargs.get("notifier") or RecordingNotifier(),
        token=kwargs.get("token") or FixedToken(),
        ttl_days=kwargs.get("ttl_days", 30),
    )
    app.state.ops_alerts = ops
    return ops
