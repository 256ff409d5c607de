"""Reads CloudWatch on each Prometheus scrape: a ``prometheus_client`` custom Collector.

One scrape:

1. **Discovery** — ``ListMetrics`` per namespace (cached for ``discovery_interval``) finds
   the series: the configured metrics whose dimension names are exactly the job's, filtered by
   ``dimension_select``; at most ``max_series`` per metric.
2. **Data** — one ``MetricDataQuery`` per series and statistic, sent by ``GetMetricData`` in
   batches of at most 500 queries (and 100,800 data points), over the window
   ``[end - length, end)`` where ``end`` is ``now - delay`` rounded down to the period: only
   complete periods are read. Percentile queries go in calls of their own, so a CloudWatch
   that cannot compute them (LocalStack's community core) costs only those series.
3. **Exposition** — a gauge per statistic holds the latest complete period's value; a counter
   (``counter: true``) adds each complete period's Sum exactly once. A counter seen at the
   exporter's first discovery starts at 0 and counts what comes after; a series that appears
   later (a first failure, a new route) is shown at 0 once and its window counted on the next
   scrape, so ``increase()`` sees its first events. Data that reaches CloudWatch more than
   ``delay`` after its period ended is not counted.

A failed CloudWatch call never fails the scrape: its series are left out (gauges) or keep
their last value (counters), and the exporter's own metrics say what happened
(``cloudwatch_exporter_*``).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloudwatch_exporter.config import ExporterConfig, Family, JobConfig, MetricConfig
from cloudwatch_exporter.logs import event
from cloudwatch_exporter.naming import PERCENTILE

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

__all__ = ["MAX_DATAPOINTS_PER_CALL", "MAX_QUERIES_PER_CALL", "CloudWatchCollector", "Series"]

MAX_QUERIES_PER_CALL: Final = 500
"""CloudWatch's limit of ``MetricDataQueries`` in one ``GetMetricData``."""
MAX_DATAPOINTS_PER_CALL: Final = 100_800
"""CloudWatch's limit of data points one ``GetMetricData`` returns."""
MAX_CATCH_UP: Final = 3 * 3600
"""Seconds a counter may catch up when scrapes were further apart than ``length``."""

log = logging.getLogger("cloudwatch_exporter")


@dataclass(frozen=True)
class Series:
    """One CloudWatch metric with one set of dimension values."""

    job: JobConfig
    metric: MetricConfig
    dimensions: tuple[tuple[str, str], ...]
    """(CloudWatch name, value) in the order of ``job.dimensions``."""

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return (self.job.name, self.metric.name, self.dimensions)

    @property
    def label_values(self) -> list[str]:
        return [value for _, value in self.dimensions]


@dataclass
class _Counter:
    total: float = 0.0
    counted_through: float | None = None
    """Start (epoch s) of the last period accounted for; None: count the next window whole."""


@dataclass(frozen=True)
class _Query:
    series: Series
    family: Family


@dataclass
class _Listing:
    at: float
    metrics: list[dict[str, Any]]


@dataclass
class _Discovery:
    at: float
    """When the listing it came from was made."""
    series: list[Series]
    dropped: int


@dataclass
class _Health:
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    queries: int = 0
    duration: float = 0.0
    success: bool = False
    last_success: float = 0.0
    series: int = 0
    dropped: int = 0


def _client(config: ExporterConfig) -> CloudWatchClient:
    import boto3
    from botocore.config import Config

    # A scrape must end within Prometheus' scrape timeout: few retries, short timeouts.
    return boto3.client(
        "cloudwatch",
        region_name=config.region,
        config=Config(
            retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=15
        ),
    )


class CloudWatchCollector(Collector):
    """Collect ``config``'s CloudWatch metrics on every scrape.

    ``client`` is a boto3 CloudWatch client (built from the environment when None: the standard
    ``AWS_ENDPOINT_URL`` points it at the emulator); ``clock`` gives epoch seconds (tests set it).

    Example::

        registry = CollectorRegistry()
        registry.register(CloudWatchCollector(load_config("monitoring/exporter.yaml")))
        generate_latest(registry)        # one scrape, Prometheus text format
    """

    def __init__(
        self,
        config: ExporterConfig,
        *,
        client: CloudWatchClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._listed: dict[str, _Listing] = {}
        self._discovered: dict[str, _Discovery] = {}
        self._counters: dict[tuple[Any, ...], _Counter] = {}
        self.health = _Health()

    @property
    def client(self) -> CloudWatchClient:
        if self._client is None:
            self._client = _client(self.config)
        return self._client

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read CloudWatch (prometheus_client calls this then)."""
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._scrape()
            families.extend(self._health_families())
        yield from families

    # -- one scrape -------------------------------------------------------------------------

    def _scrape(self) -> list[Metric]:
        started = time.perf_counter()
        now = self._clock()
        errors_before = sum(self.health.errors.values())

        groups: dict[tuple[int, int, int, bool], list[_Query]] = {}
        fresh: dict[str, bool] = {}
        for job in self.config.jobs:
            fresh[job.name] = job.name not in self._discovered
            for series in self._discover(job, now):
                for family in job.families(series.metric):
                    extended = PERCENTILE.match(family.statistic) is not None
                    group = groups.setdefault((job.period, job.length, job.delay, extended), [])
                    group.append(_Query(series, family))

        samples: dict[str, list[tuple[list[str], float]]] = {}
        for (period, length, delay, _), queries in groups.items():
            end = math.floor((now - delay) / period) * period
            start = self._window_start(queries, end, period, length)
            for query, data in zip(queries, self._fetch(queries, start, end, period), strict=True):
                if query.family.kind == "counter":
                    value = self._count(query, data, end, period, fresh[query.series.job.name])
                elif data:
                    _, latest = max(data)  # the latest complete period
                    value = latest * query.family.conversion.factor
                else:
                    continue  # failed or no data in the window: no sample, never a stale one
                samples.setdefault(query.family.name, []).append((query.series.label_values, value))

        families: list[Metric] = []
        for _, _, family in self.config.families():
            kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
            metric = kind(family.name, family.help, labels=list(family.labels))
            for labels, value in samples.get(family.name, []):
                metric.add_metric(labels, value)
            families.append(metric)

        self._forget_vanished()
        errors = sum(self.health.errors.values()) - errors_before
        health = self.health
        health.duration = time.perf_counter() - started
        health.success = errors == 0
        if health.success:
            health.last_success = self._clock()
        health.series = sum(len(s) for s in samples.values())
        health.dropped = sum(d.dropped for d in self._discovered.values())
        event(
            log,
            logging.INFO if health.success else logging.WARNING,
            "scrape",
            seconds=round(health.duration, 3),
            series=health.series,
            errors=errors,
            dropped=health.dropped,
        )
        return families

    def _discover(self, job: JobConfig, now: float) -> list[Series]:
        """The job's series: metrics of its namespace with its names and exactly its dimension
        names, selected, at most ``max_series`` per metric (the last good answer when
        CloudWatch fails)."""
        listed = self._list_namespace(job.namespace, now)
        previous = self._discovered.get(job.name)
        if listed is None:
            return previous.series if previous is not None else []
        if previous is not None and previous.at == listed.at:
            return previous.series  # the namespace was not listed again: nothing new
        wanted = set(job.dimensions)
        keys: dict[str, set[tuple[tuple[str, str], ...]]] = {m.name: set() for m in job.metrics}
        for found in listed.metrics:
            if found.get("MetricName") not in keys:
                continue
            values = {d["Name"]: d["Value"] for d in found.get("Dimensions", [])}
            if set(values) == wanted and _selected(job, values):
                keys[found["MetricName"]].add(tuple((n, values[n]) for n in job.dimensions))
        series: list[Series] = []
        dropped = 0
        for metric in job.metrics:
            found_keys = sorted(keys[metric.name])
            if len(found_keys) > job.max_series:
                dropped += len(found_keys) - job.max_series
                event(
                    log,
                    logging.WARNING,
                    "series_dropped",
                    job=job.name,
                    metric=metric.name,
                    found=len(found_keys),
                    kept=job.max_series,
                )
            series.extend(Series(job, metric, key) for key in found_keys[: job.max_series])
        self._discovered[job.name] = _Discovery(listed.at, series, dropped)
        return series

    def _list_namespace(self, namespace: str, now: float) -> _Listing | None:
        """``ListMetrics`` of a whole namespace (all pages), at most every
        ``discovery_interval`` seconds; the previous listing if this one fails."""
        cached = self._listed.get(namespace)
        if cached is not None and now - cached.at < self.config.discovery_interval:
            return cached
        metrics: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Namespace": namespace}
        while True:
            response = self._call("ListMetrics", self.client.list_metrics, **kwargs)
            if response is None:
                return cached
            metrics.extend(response.get("Metrics", []))
            if not response.get("NextToken"):
                break
            kwargs["NextToken"] = response["NextToken"]
        self._listed[namespace] = _Listing(now, metrics)
        return self._listed[namespace]

    def _window_start(self, queries: list[_Query], end: float, period: int, length: int) -> float:
        """``end - length``, or earlier for a counter whose last counted period is older (a
        scrape came late), but never more than :data:`MAX_CATCH_UP` back."""
        start = end - length
        floor = end - max(length, min(MAX_CATCH_UP, 1440 * period))
        for query in queries:
            state = self._counters.get((query.series.key, query.family.name))
            if state is not None and state.counted_through is not None:
                start = min(start, state.counted_through + period)
        if start < floor:
            event(log, logging.WARNING, "counter_gap", lost_seconds=floor - start)
        return max(start, floor)

    def _fetch(
        self, queries: list[_Query], start: float, end: float, period: int
    ) -> list[list[tuple[float, float]] | None]:
        """Data points (epoch s, value) of each query, None where CloudWatch failed it."""
        per_query = max(1, int((end - start) // period))
        size = max(1, min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // per_query))
        out: list[list[tuple[float, float]] | None] = []
        for first in range(0, len(queries), size):
            out.extend(self._get_metric_data(queries[first : first + size], start, end, period))
        return out

    def _get_metric_data(
        self, queries: list[_Query], start: float, end: float, period: int
    ) -> list[list[tuple[float, float]] | None]:
        request: dict[str, Any] = {
            "MetricDataQueries": [
                {
                    "Id": f"q{i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": q.series.job.namespace,
                            "MetricName": q.series.metric.name,
                            "Dimensions": [{"Name": n, "Value": v} for n, v in q.series.dimensions],
                        },
                        "Period": period,
                        "Stat": q.family.statistic,
                    },
                    "ReturnData": True,
                }
                for i, q in enumerate(queries)
            ],
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
            "ScanBy": "TimestampDescending",
        }
        self.health.queries += len(queries)
        found: dict[str, list[tuple[float, float]]] = {f"q{i}": [] for i in range(len(queries))}
        broken: set[str] = set()
        while True:
            response = self._call("GetMetricData", self.client.get_metric_data, **request)
            if response is None:
                return [None] * len(queries)
            for result in response.get("MetricDataResults", []):
                if result.get("StatusCode") in ("InternalError", "Forbidden"):
                    broken.add(result["Id"])
                    continue
                for stamp, value in zip(result["Timestamps"], result["Values"], strict=False):
                    # a CloudWatch without the statistic may answer None (moto: percentiles)
                    if value is not None and math.isfinite(value) and stamp.timestamp() < end:
                        found[result["Id"]].append((stamp.timestamp(), float(value)))
            if not response.get("NextToken"):
                break
            request["NextToken"] = response["NextToken"]
        if broken:
            self.health.errors["GetMetricData"] += 1
            event(log, logging.WARNING, "queries_failed", queries=len(broken))
        return [None if f"q{i}" in broken else found[f"q{i}"] for i in range(len(queries))]

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """One CloudWatch request, counted; None (and an error counted and logged) if it fails."""
        self.health.requests[operation] += 1
        try:
            return method(**kwargs)
        except Exception as exc:  # any failure is reported, never raised
            self.health.errors[operation] += 1
            response = getattr(exc, "response", None)
            code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
            event(
                log,
                logging.WARNING,
                "cloudwatch_error",
                operation=operation,
                code=code or type(exc).__name__,
                error=str(exc)[:500],
            )
            return None

    def _count(
        self,
        query: _Query,
        data: list[tuple[float, float]] | None,
        end: float,
        period: int,
        fresh: bool,
    ) -> float:
        """Add the complete periods not yet counted to the counter; its total."""
        key = (query.series.key, query.family.name)
        state = self._counters.get(key)
        if state is None:
            # At the exporter's first discovery the window is history: count from now on.
            # A series found later is new in CloudWatch: 0 now, its window on the next scrape.
            self._counters[key] = _Counter(counted_through=end - period if fresh else None)
            return 0.0
        if data is None:
            return state.total
        for stamp, value in data:
            if state.counted_through is None or stamp > state.counted_through:
                state.total += value * query.family.conversion.factor
        state.counted_through = end - period
        return state.total

    def _forget_vanished(self) -> None:
        """Drop counters of series that discovery no longer lists."""
        alive = {s.key for d in self._discovered.values() for s in d.series}
        for key in [k for k in self._counters if k[0] not in alive]:
            del self._counters[key]

    # -- the exporter's own health ------------------------------------------------------------

    def _health_families(self) -> list[Metric]:
        health = self.health
        duration = GaugeMetricFamily(
            "cloudwatch_exporter_scrape_duration_seconds",
            "Seconds the last scrape of CloudWatch took.",
            value=health.duration,
        )
        success = GaugeMetricFamily(
            "cloudwatch_exporter_scrape_success",
            "1 if every CloudWatch request of the last scrape succeeded, else 0.",
            value=1.0 if health.success else 0.0,
        )
        last = GaugeMetricFamily(
            "cloudwatch_exporter_last_success_timestamp_seconds",
            "Unix time of the end of the last scrape whose requests all succeeded (0: none yet).",
            value=health.last_success,
        )
        requests = CounterMetricFamily(
            "cloudwatch_exporter_requests_total",
            "CloudWatch API requests made, by operation.",
            labels=["operation"],
        )
        errors = CounterMetricFamily(
            "cloudwatch_exporter_scrape_errors_total",
            "CloudWatch API requests that failed (or whose queries failed), by operation.",
            labels=["operation"],
        )
        for operation in ("ListMetrics", "GetMetricData"):
            requests.add_metric([operation], health.requests[operation])
            errors.add_metric([operation], health.errors[operation])
        queries = CounterMetricFamily(
            "cloudwatch_exporter_metric_data_queries_total",
            "MetricDataQueries sent in GetMetricData requests.",
            value=health.queries,
        )
        series = GaugeMetricFamily(
            "cloudwatch_exporter_series",
            "CloudWatch series exported by the last scrape.",
            value=health.series,
        )
        dropped = GaugeMetricFamily(
            "cloudwatch_exporter_series_dropped",
            "Series discovery found beyond a job's max_series, left out.",
            value=health.dropped,
        )
        return [duration, success, last, requests, errors, queries, series, dropped]


def _selected(job: JobConfig, values: dict[str, str]) -> bool:
    for name, allowed in job.dimension_select.items():
        if values.get(name) not in allowed:
            return False
    for name, pattern in job.dimension_select_regex.items():
        if _compiled(pattern).fullmatch(values.get(name, "")) is None:
            return False
    return True


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
