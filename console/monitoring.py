"""The Monitoring page's data: key service metrics from Prometheus, firing alerts from
Alertmanager, and drift once the monitor publishes it.

Why these and no more: the alert rules (``monitoring/rules``) already define what matters, on the
recording rules' series; the page shows those numbers and what fires, and links to both UIs for
the rest. Drift does not exist yet: the page says so, and shows every series of a metric family
whose name starts with ``evpm_drift`` as soon as Prometheus has one, so it needs no change when
the drift monitor lands.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from console.errors import SourceUnavailableError

__all__ = [
    "DRIFT_PREFIX",
    "KEY_METRICS",
    "FiringAlert",
    "HttpMonitoring",
    "MetricReading",
    "MonitoringSource",
    "Series",
]

DRIFT_PREFIX = "evpm_drift"
KEY_METRICS: tuple[tuple[str, str, str], ...] = (
    # (label, PromQL, unit)
    ("API requests", "sum by (service, status_class) (evpm:api_requests:rate5m)", "/s"),
    ("API 5xx share", "evpm:api_5xx:ratio_rate5m", "ratio"),
    ("API p95 latency, worst route", "max by (service) (evpm:api_latency_p95_seconds:max)", "s"),
    ("Records received", "evpm:records_received:rate15m", "/s"),
    ("Predictions written, last 15 min", "evpm:predictions_written:increase15m", ""),
    ("Anomaly share of predictions", "evpm:anomalies_flagged:ratio_rate15m", "ratio"),
    ("Lambda error share", "evpm:lambda_errors:ratio_rate5m", "ratio"),
    (
        "Scorer stream lag",
        'max(aws_lambda_iterator_age_maximum_seconds{function_name="evpm-scorer"})',
        "s",
    ),
    ("CloudWatch exporter up", 'up{job="evpm-cloudwatch"}', ""),
)


class Series(BaseModel):
    model_config = ConfigDict(frozen=True)

    labels: dict[str, str]
    value: float


class MetricReading(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    query: str
    unit: str
    series: list[Series]


class FiringAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    severity: str | None
    summary: str | None
    starts_at: str
    labels: dict[str, str]


class MonitoringSource(Protocol):
    def key_metrics(self) -> list[MetricReading]: ...

    def firing_alerts(self) -> list[FiringAlert]: ...

    def drift(self) -> list[MetricReading]:
        """Every ``evpm_drift*`` family's series now; empty while none exists."""
        ...


class HttpMonitoring:
    """:class:`MonitoringSource` over Prometheus's and Alertmanager's HTTP APIs."""

    def __init__(
        self,
        prometheus_url: str,
        alertmanager_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def _get(self, url: str, **params: Any) -> Any:
        try:
            response = self._client.get(url, params=params)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceUnavailableError(f"{url} did not answer: {exc}") from exc

    def _query(self, label: str, query: str, unit: str) -> MetricReading:
        body = self._get(f"{self.prometheus_url}/api/v1/query", query=query)
        series = []
        for item in body.get("data", {}).get("result", []):
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            series.append(Series(labels=dict(item.get("metric") or {}), value=value))
        return MetricReading(label=label, query=query, unit=unit, series=series)

    def key_metrics(self) -> list[MetricReading]:
        return [self._query(*metric) for metric in KEY_METRICS]

    def firing_alerts(self) -> list[FiringAlert]:
        alerts = self._get(
            f"{self.alertmanager_url}/api/v2/alerts",
            active="true",
            silenced="false",
            inhibited="false",
        )
        out = [
            FiringAlert(
                name=a.get("labels", {}).get("alertname", "?"),
                severity=a.get("labels", {}).get("severity"),
                summary=(a.get("annotations") or {}).get("summary"),
                starts_at=a.get("startsAt", ""),
                labels=a.get("labels") or {},
            )
            for a in alerts
            if (a.get("status") or {}).get("state", "active") == "active"
        ]
        return sorted(out, key=lambda a: a.starts_at, reverse=True)

    def drift(self) -> list[MetricReading]:
        names = self._get(f"{self.prometheus_url}/api/v1/label/__name__/values").get("data", [])
        return [
            self._query(name, name, "")
            for name in sorted(n for n in names if n.startswith(DRIFT_PREFIX))
        ]
