"""The collector against moto's CloudWatch: put_metric_data, then scrape."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cloudwatch_exporter import CloudWatchCollector, load_config
from cloudwatch_exporter.collector import MAX_QUERIES_PER_CALL
from tests.unit.cloudwatch_exporter.conftest import SHIPPED, T0, Clock, config, scrape

SCORER = (("service", "evpm-scorer"),)


class Spy:
    """A CloudWatch client that records requests and can be told to fail them."""

    def __init__(self, client: Any, fail: set[str] | None = None) -> None:
        self.client = client
        self.fail = fail or set()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _do(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        self.calls.append((operation, kwargs))
        if operation in self.fail:
            raise ClientError(
                {"Error": {"Code": "InternalFailure", "Message": "injected"}}, operation
            )
        return method(**kwargs)

    def list_metrics(self, **kwargs: Any) -> Any:
        return self._do("ListMetrics", self.client.list_metrics, **kwargs)

    def get_metric_data(self, **kwargs: Any) -> Any:
        return self._do("GetMetricData", self.client.get_metric_data, **kwargs)

    def queries_per_call(self) -> list[int]:
        return [len(k["MetricDataQueries"]) for op, k in self.calls if op == "GetMetricData"]


def test_scorer_counters_count_each_complete_period_once(cloudwatch, put, clock: Clock) -> None:
    # GIVEN the shipped config and a scorer that published before the exporter started
    put("RecordsReceived", 5, T0 - 150, service="evpm-scorer")
    collector = CloudWatchCollector(load_config(SHIPPED), client=cloudwatch, clock=clock)

    # WHEN the exporter scrapes for the first time
    _, first = scrape(collector)

    # THEN the counter exists at 0: what came before the exporter is history, not counted
    assert first[("evpm_records_received_total", SCORER)] == 0

    # WHEN more arrives and three scrapes follow a minute apart (windows overlap)
    put("RecordsReceived", 7, T0 - 30, service="evpm-scorer")
    put("RecordsReceived", 4, T0 + 40, service="evpm-scorer")
    values = []
    for minute in (1, 2, 3):
        clock.now = T0 + 60 * minute
        values.append(scrape(collector)[1][("evpm_records_received_total", SCORER)])

    # THEN each period is added once, when it is complete (delay 60 s), never twice
    assert values == [0, 7, 11]


def test_a_series_that_appears_later_shows_0_first(cloudwatch, put, clock: Clock) -> None:
    # GIVEN an exporter that already scraped (the lifecycle had no outcome yet)
    collector = CloudWatchCollector(load_config(SHIPPED), client=cloudwatch, clock=clock)
    scrape(collector)

    # WHEN the first failed execution is published
    put("LifecycleExecutions", 1, T0 - 90, service="evpm-lifecycle", outcome="failed")
    clock.now = T0 + 61  # past the discovery interval
    _, seen = scrape(collector)
    clock.now = T0 + 120
    _, next_scrape = scrape(collector)

    # THEN Prometheus sees 0 then 1, so increase() counts the first failure
    key = (
        "evpm_lifecycle_executions_total",
        (("outcome", "failed"), ("service", "evpm-lifecycle")),
    )
    assert (seen[key], next_scrape[key]) == (0, 1)


def test_names_and_base_units(cloudwatch, put, clock: Clock) -> None:
    # GIVEN Lambda's IteratorAge and Duration in milliseconds and an SQS gauge
    put(
        "IteratorAge",
        2500,
        T0 - 100,
        namespace="AWS/Lambda",
        unit="Milliseconds",
        FunctionName="evpm-scorer",
    )
    put(
        "IteratorAge",
        1200,
        T0 - 200,
        namespace="AWS/Lambda",
        unit="Milliseconds",
        FunctionName="evpm-scorer",
    )
    put(
        "Duration",
        30,
        T0 - 100,
        namespace="AWS/Lambda",
        unit="Milliseconds",
        FunctionName="evpm-api",
    )
    put(
        "Duration",
        50,
        T0 - 100,
        namespace="AWS/Lambda",
        unit="Milliseconds",
        FunctionName="evpm-api",
    )
    put(
        "ApproximateNumberOfMessagesVisible",
        12,
        T0 - 100,
        namespace="AWS/SQS",
        QueueName="evpm-scoring-dlq",
    )
    put("Invocations", 3, T0 - 100, namespace="AWS/Lambda", FunctionName="other-function")

    # WHEN scraped
    text, samples = scrape(
        CloudWatchCollector(load_config(SHIPPED), client=cloudwatch, clock=clock)
    )

    # THEN names are snake_case with the unit last, and values are in seconds
    scorer = (("function_name", "evpm-scorer"),)
    api = (("function_name", "evpm-api"),)
    assert samples[("aws_lambda_iterator_age_maximum_seconds", scorer)] == 2.5  # latest period
    assert samples[("aws_lambda_duration_average_seconds", api)] == 0.04
    assert samples[("aws_lambda_duration_maximum_seconds", api)] == 0.05
    assert (
        samples[
            (
                "aws_sqs_approximate_number_of_messages_visible_maximum",
                (("queue_name", "evpm-scoring-dlq"),),
            )
        ]
        == 12
    )
    assert "# TYPE evpm_records_received_total counter" in text
    assert "# TYPE aws_lambda_iterator_age_maximum_seconds gauge" in text
    # AND dimension_select_regex keeps other functions out
    assert not any(labels == (("function_name", "other-function"),) for _, labels in samples)


def test_percent_and_bytes_become_ratio_and_bytes(cloudwatch, put, clock: Clock) -> None:
    cfg = config(
        jobs=[
            {
                "name": "units",
                "namespace": "evpm",
                "dimensions": ["service"],
                "metrics": [
                    {"name": "DiskUsed", "unit": "Percent", "statistics": ["Maximum"]},
                    {
                        "name": "Payload",
                        "unit": "Kilobytes",
                        "statistics": ["Sum", "SampleCount"],
                        "counter": True,
                    },
                ],
            }
        ]
    )
    put("DiskUsed", 42, T0 - 100, unit="Percent", service="s")
    put("Payload", 2, T0 - 100, unit="Kilobytes", service="s")
    collector = CloudWatchCollector(cfg, client=cloudwatch, clock=clock)
    scrape(collector)
    put("Payload", 3, T0 - 30, unit="Kilobytes", service="s")
    clock.now = T0 + 120
    _, samples = scrape(collector)
    labels = (("service", "s"),)
    assert samples[("evpm_disk_used_maximum_ratio", labels)] == 0.42
    assert samples[("evpm_payload_bytes_total", labels)] == 3 * 1024
    assert samples[("evpm_payload_sample_count", labels)] == 1  # a count: no unit, no scaling


def test_more_than_500_queries_are_split(cloudwatch, put, clock: Clock) -> None:
    # GIVEN 620 series of one metric (620 queries)
    cfg = config(
        length=60,
        jobs=[
            {
                "name": "routes",
                "namespace": "evpm",
                "dimensions": ["service", "route", "status_class"],
                "max_series": 1000,
                "metrics": [
                    {"name": "ApiLatency", "unit": "Milliseconds", "statistics": ["Maximum"]}
                ],
            }
        ],
    )
    data = [
        {
            "MetricName": "ApiLatency",
            "Value": float(i),
            "Unit": "Milliseconds",
            "Timestamp": T0 - 100,
            "Dimensions": [
                {"Name": "service", "Value": "evpm-api"},
                {"Name": "route", "Value": f"/r{i}"},
                {"Name": "status_class", "Value": "2xx"},
            ],
        }
        for i in range(620)
    ]
    for first in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="evpm", MetricData=data[first : first + 500])
    spy = Spy(cloudwatch)

    # WHEN scraped
    _, samples = scrape(CloudWatchCollector(cfg, client=spy, clock=clock))

    # THEN GetMetricData went in two calls of at most 500 queries, and every series came back
    assert spy.queries_per_call() == [MAX_QUERIES_PER_CALL, 120]
    latency = {k: v for k, v in samples.items() if k[0] == "evpm_api_latency_maximum_seconds"}
    assert len(latency) == 620
    assert samples[("cloudwatch_exporter_metric_data_queries_total", ())] == 620
    assert samples[("cloudwatch_exporter_requests_total", (("operation", "GetMetricData"),))] == 2


def test_percentiles_go_in_their_own_call(cloudwatch, put, clock: Clock) -> None:
    # GIVEN a metric read as Maximum and p95 (moto, like LocalStack, cannot compute p95)
    cfg = config(
        jobs=[
            {
                "name": "api",
                "namespace": "evpm",
                "dimensions": ["service"],
                "metrics": [
                    {"name": "ApiLatency", "unit": "Milliseconds", "statistics": ["Maximum", "p95"]}
                ],
            }
        ]
    )
    put("ApiLatency", 300, T0 - 100, unit="Milliseconds", service="evpm-api")
    spy = Spy(cloudwatch)

    _, samples = scrape(CloudWatchCollector(cfg, client=spy, clock=clock))

    # THEN two calls, the percentile alone; no p95 sample rather than a wrong one
    assert sorted(spy.queries_per_call()) == [1, 1]
    stats = [
        k["MetricDataQueries"][0]["MetricStat"]["Stat"]
        for op, k in spy.calls
        if op == "GetMetricData"
    ]
    assert sorted(stats) == ["Maximum", "p95"]
    assert samples[("evpm_api_latency_maximum_seconds", (("service", "evpm-api"),))] == 0.3
    assert not [k for k in samples if k[0] == "evpm_api_latency_p95_seconds"]


def test_a_failed_get_metric_data_shows_in_health_metrics(cloudwatch, put, clock: Clock) -> None:
    # GIVEN a healthy first scrape with a counter and a gauge
    put("RecordsReceived", 5, T0 - 100, service="evpm-scorer")
    put(
        "IteratorAge",
        900,
        T0 - 100,
        namespace="AWS/Lambda",
        unit="Milliseconds",
        FunctionName="evpm-scorer",
    )
    spy = Spy(cloudwatch)
    collector = CloudWatchCollector(load_config(SHIPPED), client=spy, clock=clock)
    _, healthy = scrape(collector)
    assert healthy[("cloudwatch_exporter_scrape_success", ())] == 1
    last_success = healthy[("cloudwatch_exporter_last_success_timestamp_seconds", ())]
    assert last_success == T0

    # WHEN GetMetricData fails on the next scrape
    spy.fail = {"GetMetricData"}
    clock.now = T0 + 60
    _, failed = scrape(collector)

    # THEN the scrape still answers: the counter keeps its value, the stale gauge is left out,
    # and the exporter's own metrics say what failed
    assert failed[("evpm_records_received_total", SCORER)] == 0
    assert (
        "aws_lambda_iterator_age_maximum_seconds",
        (("function_name", "evpm-scorer"),),
    ) not in failed
    errors = failed[("cloudwatch_exporter_scrape_errors_total", (("operation", "GetMetricData"),))]
    assert errors >= 1
    assert failed[("cloudwatch_exporter_scrape_success", ())] == 0
    assert failed[("cloudwatch_exporter_last_success_timestamp_seconds", ())] == last_success
    assert failed[("cloudwatch_exporter_scrape_duration_seconds", ())] > 0


def test_an_unreachable_cloudwatch_does_not_crash_the_scrape(aws_env, clock: Clock) -> None:
    # GIVEN a CloudWatch endpoint where nothing listens
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    # WHEN scraped
    text, samples = scrape(CloudWatchCollector(load_config(SHIPPED), client=client, clock=clock))
    # THEN every family is still there (empty), and ListMetrics failures are counted
    assert "# TYPE evpm_records_received_total counter" in text
    assert (
        samples[("cloudwatch_exporter_scrape_errors_total", (("operation", "ListMetrics"),))] >= 1
    )
    assert samples[("cloudwatch_exporter_series", ())] == 0


def test_max_series_drops_and_counts_the_rest(cloudwatch, put, clock: Clock) -> None:
    cfg = config(
        jobs=[
            {
                "name": "routes",
                "namespace": "evpm",
                "dimensions": ["service", "route", "status_class"],
                "max_series": 3,
                "metrics": [{"name": "ApiRequests", "statistics": ["Sum"], "counter": True}],
            }
        ]
    )
    for i in range(5):
        put("ApiRequests", 1, T0 - 100, service="evpm-api", route=f"/r{i}", status_class="2xx")
    _, samples = scrape(CloudWatchCollector(cfg, client=cloudwatch, clock=clock))
    assert len([k for k in samples if k[0] == "evpm_api_requests_total"]) == 3
    assert samples[("cloudwatch_exporter_series_dropped", ())] == 2


def test_discovery_is_cached_between_scrapes(cloudwatch, put, clock: Clock) -> None:
    put("RecordsReceived", 5, T0 - 100, service="evpm-scorer")
    spy = Spy(cloudwatch)
    collector = CloudWatchCollector(load_config(SHIPPED), client=spy, clock=clock)
    scrape(collector)
    listed = sum(1 for op, _ in spy.calls if op == "ListMetrics")
    clock.now = T0 + 30  # within discovery_interval (60 s)
    scrape(collector)
    assert sum(1 for op, _ in spy.calls if op == "ListMetrics") == listed


def test_a_scrape_of_200_series_takes_at_most_1_s(cloudwatch, clock: Clock) -> None:
    # GIVEN the shipped config and 202 series with data: the scorer's 11 counters for two
    # services, and API requests for 60 routes x 3 status classes
    data = [
        {
            "MetricName": name,
            "Value": 3.0,
            "Unit": "Count",
            "Timestamp": T0 - 100,
            "Dimensions": [{"Name": "service", "Value": service}],
        }
        for name in (
            "RecordsReceived",
            "PredictionsWritten",
            "AnomaliesFlagged",
            "WriteFailures",
            "AlertsSent",
            "AlertsSuppressed",
            "AlertFailures",
            "HistoryRehydrated",
            "HistoryMissing",
            "BoosterFallback",
            "ModelLoadFailures",
        )
        for service in ("evpm-scorer", "evpm-api")
    ] + [
        {
            "MetricName": "ApiRequests",
            "Value": 2.0,
            "Unit": "Count",
            "Timestamp": T0 - 100,
            "Dimensions": [
                {"Name": "service", "Value": "evpm-api"},
                {"Name": "route", "Value": f"/route/{i}"},
                {"Name": "status_class", "Value": status},
            ],
        }
        for i in range(60)
        for status in ("2xx", "4xx", "5xx")
    ]
    cloudwatch.put_metric_data(Namespace="evpm", MetricData=data)
    collector = CloudWatchCollector(load_config(SHIPPED), client=cloudwatch, clock=clock)

    # WHEN scraped twice (the first one discovers), each timed
    timings = []
    for minute in (0, 2):
        clock.now = T0 + 60 * minute
        started = time.perf_counter()
        _, samples = scrape(collector)
        timings.append(time.perf_counter() - started)

    # THEN at least 200 series came out, each scrape within a second
    assert samples[("cloudwatch_exporter_series", ())] >= 200
    assert max(timings) <= 1.0, f"scrapes took {timings}"
