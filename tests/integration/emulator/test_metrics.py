"""CloudWatch metrics the emulator publishes as AWS does: EMF lines of a real invocation,
AWS/Lambda (Invocations, Errors, Throttles, Duration, IteratorAge) and AWS/SQS queue depth."""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.integration.emulator.conftest import Emulator

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::000000000000:role/evpm-test-function"
NAMESPACE = "evpm-emf-test"

# A function that prints EMF the way powertools does (one JSON line); on request it also
# prints a line that claims EMF but is cut off, and a document without a namespace.
HANDLER = '''
import json
import time


def handler(event, context):
    if "Records" in event:
        return {"batch": len(event["Records"])}
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    ms = int(time.time() * 1000)
    print(json.dumps({
        "_aws": {"Timestamp": ms, "CloudWatchMetrics": [{
            "Namespace": "{namespace}", "Dimensions": [["service"]],
            "Metrics": [{"Name": "Widgets", "Unit": "Count"},
                        {"Name": "Latency", "Unit": "Milliseconds"}]}]},
        "service": "emf-test", "Widgets": event["widgets"], "Latency": [1.5, 2.5],
    }, separators=(",", ":")))
    if event.get("malformed"):
        print('{"_aws": {"Timestamp": ' + str(ms) + ', "CloudWatchMetrics": [')
        print(json.dumps({"_aws": {"Timestamp": ms, "CloudWatchMetrics": [{
            "Dimensions": [[]], "Metrics": [{"Name": "Orphan"}]}]}, "Orphan": 1}))
    return {"ok": True}
'''.replace("{namespace}", NAMESPACE)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def functions(emulator: Emulator) -> dict[str, str]:
    lam = emulator.client("lambda")
    names = {role: f"evpm-metrics-{role}-{uuid.uuid4().hex[:6]}"
             for role in ("emf", "fails", "stream", "throttled")}
    for name in names.values():
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                            Handler="app.handler", Code={"ZipFile": _zip()},
                            Timeout=10, MemorySize=256)
    for name in names.values():
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return names


def _invoke(emulator: Emulator, name: str, payload: dict[str, Any]) -> tuple[Any, str | None]:
    response = emulator.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload))
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def _window() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"StartTime": now - timedelta(minutes=30), "EndTime": now + timedelta(minutes=30)}


def _stat(emulator: Emulator, namespace: str, metric: str, dimensions: dict[str, str],
          stat: str) -> float | None:
    """One statistic over the last half hour (one 3600 s bucket), through GetMetricData."""
    result = emulator.client("cloudwatch").get_metric_data(MetricDataQueries=[{
        "Id": "q", "MetricStat": {"Metric": {
            "Namespace": namespace, "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": 3600, "Stat": stat}}], **_window())["MetricDataResults"][0]
    return sum(result["Values"]) if result["Values"] else None


def _listed(emulator: Emulator, namespace: str) -> dict[str, list[dict[str, str]]]:
    metrics = emulator.client("cloudwatch").list_metrics(Namespace=namespace)["Metrics"]
    return {m["MetricName"]: m["Dimensions"] for m in metrics}


def _logged(emulator: Emulator, event: str) -> list[dict[str, Any]]:
    """The emulator's structured log events named ``event`` (its log lines are JSON too)."""
    found = []
    log = emulator.state_dir / "logs" / "localstack.log"
    for raw in log.read_text(errors="replace").splitlines():
        if event not in raw:
            continue
        text = raw
        with contextlib.suppress(ValueError, AttributeError):
            text = json.loads(raw).get("message", raw)
        with contextlib.suppress(ValueError):
            found.append(json.loads(text[text.index("{"):]))
    return [entry for entry in found if entry.get("event") == event]


def _eventually(probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_emf_lines_and_invocations_become_metrics(emulator: Emulator,
                                                  functions: dict[str, str]) -> None:
    name = functions["emf"]
    # GIVEN two invocations, the second also printing two malformed EMF documents
    assert _invoke(emulator, name, {"widgets": 2}) == ({"ok": True}, None)
    assert _invoke(emulator, name, {"widgets": 3, "malformed": True}) == ({"ok": True}, None)

    # THEN the EMF metrics are served (read right after: the reads flush what is queued)
    service = {"service": "emf-test"}
    assert _stat(emulator, NAMESPACE, "Widgets", service, "Sum") == 5
    assert _stat(emulator, NAMESPACE, "Widgets", service, "SampleCount") == 2
    assert _stat(emulator, NAMESPACE, "Latency", service, "SampleCount") == 4  # arrays
    assert _stat(emulator, NAMESPACE, "Latency", service, "Maximum") == 2.5
    stats = emulator.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE, MetricName="Widgets",
        Dimensions=[{"Name": "service", "Value": "emf-test"}],
        Period=3600, Statistics=["Sum", "Average"], **_window())["Datapoints"]
    assert [(p["Sum"], p["Average"], p["Unit"]) for p in stats] == [(5.0, 2.5, "Count")]
    assert _listed(emulator, NAMESPACE) == {
        "Widgets": [{"Name": "service", "Value": "emf-test"}],
        "Latency": [{"Name": "service", "Value": "emf-test"}],
    }

    # AND AWS/Lambda counts both invocations with their durations
    function = {"FunctionName": name}
    assert _stat(emulator, "AWS/Lambda", "Invocations", function, "Sum") == 2
    assert _stat(emulator, "AWS/Lambda", "Errors", function, "Sum") == 0
    assert _stat(emulator, "AWS/Lambda", "Throttles", function, "Sum") == 0
    assert _stat(emulator, "AWS/Lambda", "Duration", function, "SampleCount") == 2
    assert _stat(emulator, "AWS/Lambda", "Duration", function, "Minimum") > 0
    lambda_metrics = emulator.client("cloudwatch").list_metrics(
        Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": name}])["Metrics"]
    assert {m["MetricName"] for m in lambda_metrics} == {
        "Invocations", "Errors", "Throttles", "Duration"}

    # AND the malformed documents were dropped, counted and logged, the invocation unharmed
    assert "Orphan" not in json.dumps(
        emulator.client("cloudwatch").list_metrics()["Metrics"])
    group = {"LogGroupName": f"/aws/lambda/{name}"}
    assert _stat(emulator, "AWS/Logs", "EMFParsingErrors", group, "Sum") == 1
    assert _stat(emulator, "AWS/Logs", "EMFValidationErrors", group, "Sum") == 1
    rejected = [event for event in _logged(emulator, "emf_rejected")
                if event.get("function") == name]
    assert len(rejected) == 2
    assert any("Namespace is missing" in r["reason"] for r in rejected)
    assert any("not valid JSON" in r["reason"] for r in rejected)


def test_a_function_error_counts_as_invocation_and_error(emulator: Emulator,
                                                         functions: dict[str, str]) -> None:
    body, error = _invoke(emulator, functions["fails"], {"fail": True})
    assert error == "Unhandled" and body["errorType"] == "RuntimeError"
    function = {"FunctionName": functions["fails"]}
    assert _stat(emulator, "AWS/Lambda", "Invocations", function, "Sum") == 1
    assert _stat(emulator, "AWS/Lambda", "Errors", function, "Sum") == 1
    assert _stat(emulator, "AWS/Lambda", "Duration", function, "SampleCount") == 1


def test_a_throttled_request_counts_as_throttle_not_invocation(
        emulator: Emulator, functions: dict[str, str]) -> None:
    name = functions["throttled"]
    lam = boto3.client("lambda", endpoint_url=emulator.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(retries={"total_max_attempts": 1}))  # one request
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    function = {"FunctionName": name}
    assert _stat(emulator, "AWS/Lambda", "Throttles", function, "Sum") == 1
    assert _stat(emulator, "AWS/Lambda", "Invocations", function, "Sum") is None


def test_a_kinesis_mapping_reports_iterator_age(emulator: Emulator,
                                                functions: dict[str, str]) -> None:
    kinesis, lam = emulator.client("kinesis"), emulator.client("lambda")
    stream = f"metrics-age-{uuid.uuid4().hex[:6]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    for i in range(3):
        kinesis.put_record(StreamName=stream, Data=json.dumps({"i": i}).encode(),
                           PartitionKey="vehicle-1")
    time.sleep(1.0)  # the records are a second old when they reach the function
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=functions["stream"], StartingPosition="TRIM_HORIZON",
        BatchSize=100)
    try:
        function = {"FunctionName": functions["stream"]}
        age = _eventually(lambda: _stat(emulator, "AWS/Lambda", "IteratorAge", function,
                                        "Maximum"))
        assert age is not None, "no IteratorAge within 60 s"
        assert 1000 <= age < 60_000
        # IteratorAge is taken when the batch is sent; the invocation is counted when it ends
        assert _eventually(lambda: _stat(emulator, "AWS/Lambda", "Invocations", function,
                                         "Sum"), timeout=30) >= 1
    finally:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_sqs_queue_depth_is_sampled(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    queue = f"metrics-depth-{uuid.uuid4().hex[:6]}"
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    # The emulator samples every queue each 60 s (SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL);
    # this route samples now.
    answer = httpx.post(f"{emulator.endpoint}/_evpm/metrics/sample", timeout=30)
    assert answer.status_code == 200 and answer.json()["sqs_sampled"] is True
    depth = {"QueueName": queue}
    assert _stat(emulator, "AWS/SQS", "ApproximateNumberOfMessagesVisible", depth,
                 "Maximum") == 3
    assert _stat(emulator, "AWS/SQS", "NumberOfMessagesSent", depth, "Sum") == 3


def _put(emulator: Emulator, namespace: str, metric: str, dimensions: dict[str, str],
         values: list[float], **extra: Any) -> None:
    """PutMetricData of ``values`` (one sample each, or as ``Counts`` say) stamped now."""
    datum = {"MetricName": metric, "Timestamp": datetime.now(UTC),
             "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()], **extra}
    if values:
        datum["Values"] = values
    emulator.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[datum])


def _stats_namespace() -> str:
    return f"evpm-stats-{uuid.uuid4().hex[:6]}"


def test_percentiles_of_known_values(emulator: Emulator) -> None:
    namespace = _stats_namespace()
    service = {"service": "stats-test"}
    # GIVEN 1 ... 100 ms, shuffled, beside another dimension set of the same metric
    latencies = [float(v) for v in range(1, 101)]
    random.Random(7).shuffle(latencies)
    _put(emulator, namespace, "ApiLatency", service, latencies[:70], Unit="Milliseconds")
    _put(emulator, namespace, "ApiLatency", service, latencies[70:], Unit="Milliseconds")
    _put(emulator, namespace, "ApiLatency", {**service, "route": "/slow"}, [5000.0] * 20,
         Unit="Milliseconds")

    # THEN GetMetricData computes the percentiles (nearest rank) over {service} alone
    results = emulator.client("cloudwatch").get_metric_data(MetricDataQueries=[
        {"Id": f"q{i}", "MetricStat": {"Metric": {
            "Namespace": namespace, "MetricName": "ApiLatency",
            "Dimensions": [{"Name": "service", "Value": "stats-test"}]},
            "Period": 3600, "Stat": stat}}
        for i, stat in enumerate(["p50", "p95", "p99", "p99.9", "p0", "Sum", "SampleCount"])],
        **_window())["MetricDataResults"]
    assert [(r["StatusCode"], r["Values"]) for r in results] == [
        ("Complete", [50.0]), ("Complete", [95.0]), ("Complete", [99.0]),
        ("Complete", [100.0]), ("Complete", [1.0]), ("Complete", [5050.0]),
        ("Complete", [100.0])]

    # AND GetMetricStatistics answers ExtendedStatistics the same
    points = emulator.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName="ApiLatency",
        Dimensions=[{"Name": "service", "Value": "stats-test"}],
        Period=3600, ExtendedStatistics=["p95", "p50"], **_window())["Datapoints"]
    assert [(p["ExtendedStatistics"], p["Unit"]) for p in points] == [
        ({"p95": 95.0, "p50": 50.0}, "Milliseconds")]
    assert "Sum" not in points[0]

    # AND Values with Counts are that many samples: 90 x 10 ms, 10 x 20 ms
    _put(emulator, namespace, "Counted", service, [10.0, 20.0], Counts=[90.0, 10.0])
    assert _stat(emulator, namespace, "Counted", service, "p90") == 10.0
    assert _stat(emulator, namespace, "Counted", service, "p95") == 20.0
    assert _stat(emulator, namespace, "Counted", service, "SampleCount") == 100


def test_percentiles_follow_cloudwatchs_rules(emulator: Emulator) -> None:
    namespace = _stats_namespace()
    service = {"service": "stats-test"}
    # a negative value: the period has no percentile (its other statistics are there)
    _put(emulator, namespace, "Delta", service, [-1.0, 3.0, 5.0])
    assert _stat(emulator, namespace, "Delta", service, "p50") is None
    assert _stat(emulator, namespace, "Delta", service, "Sum") == 7
    # statistic sets: usable when Minimum == Maximum (SampleCount values of it) ...
    _put(emulator, namespace, "Flat", service, [1.0, 2.0])
    _put(emulator, namespace, "Flat", service, [], StatisticValues={
        "SampleCount": 8, "Sum": 40, "Minimum": 5, "Maximum": 5})
    assert _stat(emulator, namespace, "Flat", service, "p50") == 5.0
    assert _stat(emulator, namespace, "Flat", service, "p20") == 2.0
    assert _stat(emulator, namespace, "Flat", service, "SampleCount") == 10
    # ... but not when they stand for a spread of values
    _put(emulator, namespace, "Spread", service, [], StatisticValues={
        "SampleCount": 3, "Sum": 6, "Minimum": 1, "Maximum": 3})
    assert _stat(emulator, namespace, "Spread", service, "p50") is None
    assert _stat(emulator, namespace, "Spread", service, "Average") == 2

    cloudwatch = emulator.client("cloudwatch")
    request = {"Namespace": namespace, "MetricName": "Flat", "Period": 3600,
               "Dimensions": [{"Name": "service", "Value": "stats-test"}], **_window()}
    for wrong in ({"Statistics": ["Sum"], "ExtendedStatistics": ["p95"]}, {}):
        with pytest.raises(cloudwatch.exceptions.InvalidParameterCombinationException):
            cloudwatch.get_metric_statistics(**request, **wrong)
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException):
        cloudwatch.get_metric_statistics(**request, ExtendedStatistics=["p101"])
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException):
        _stat(emulator, namespace, "Flat", service, "p101")


def test_a_dimension_set_is_its_own_metric(emulator: Emulator) -> None:
    namespace = _stats_namespace()
    _put(emulator, namespace, "Requests", {"service": "x"}, [1.0, 2.0])
    _put(emulator, namespace, "Requests", {"service": "x", "route": "/y"}, [100.0])
    _put(emulator, namespace, "Requests", {"service": "x", "route": "/y/z"}, [1000.0])
    _put(emulator, namespace, "Requests", {}, [10000.0])
    _put(emulator, namespace, "Duration", {"FunctionName": "f"}, [1.0])
    _put(emulator, namespace, "Duration", {"FunctionName": "f-2"}, [50.0])
    _put(emulator, namespace, "Duration", {"FunctionName": "F"}, [70.0])

    # a query for {service=x} reads that set only, not every set that contains service=x
    assert _stat(emulator, namespace, "Requests", {"service": "x"}, "Sum") == 3
    assert _stat(emulator, namespace, "Requests", {"service": "x"}, "p100") == 2.0
    assert _stat(emulator, namespace, "Requests", {"route": "/y", "service": "x"}, "Sum") == 100
    assert _stat(emulator, namespace, "Requests", {}, "Sum") == 10000
    assert _stat(emulator, namespace, "Requests", {"route": "/y"}, "Sum") is None
    for name, expected in (("f", 1), ("f-2", 50), ("F", 70)):
        assert _stat(emulator, namespace, "Duration", {"FunctionName": name}, "Sum") == expected
    points = emulator.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName="Requests", Period=3600, Statistics=["SampleCount"],
        Dimensions=[{"Name": "service", "Value": "x"}], **_window())["Datapoints"]
    assert [p["SampleCount"] for p in points] == [2.0]

    # ListMetrics filters by the dimensions a metric has (more are fine), values exactly
    def listed(**filters: str) -> list[list[dict[str, str]]]:
        metrics = emulator.client("cloudwatch").list_metrics(
            Namespace=namespace,
            Dimensions=[{"Name": k, "Value": v} for k, v in filters.items()])["Metrics"]
        return sorted([m.get("Dimensions", []) for m in metrics], key=str)

    assert listed(service="x") == sorted([
        [{"Name": "service", "Value": "x"}],
        [{"Name": "route", "Value": "/y"}, {"Name": "service", "Value": "x"}],
        [{"Name": "route", "Value": "/y/z"}, {"Name": "service", "Value": "x"}]], key=str)
    assert listed(route="/y") == [
        [{"Name": "route", "Value": "/y"}, {"Name": "service", "Value": "x"}]]
    assert listed(FunctionName="f") == [[{"Name": "FunctionName", "Value": "f"}]]


def test_metrics_survive_a_restart(emulator: Emulator, functions: dict[str, str]) -> None:
    # Runs last: the earlier tests' metric data is in the store and goes into the snapshot.
    function = {"FunctionName": functions["emf"]}
    assert _stat(emulator, "AWS/Lambda", "Invocations", function, "Sum") == 2
    emulator.stop()
    emulator.start()
    assert _stat(emulator, "AWS/Lambda", "Invocations", function, "Sum") == 2
    assert _stat(emulator, NAMESPACE, "Widgets", {"service": "emf-test"}, "Sum") == 5
    # and the restored store takes new data
    assert _invoke(emulator, functions["emf"], {"widgets": 4}) == ({"ok": True}, None)
    assert _stat(emulator, "AWS/Lambda", "Invocations", function, "Sum") == 3
    assert _stat(emulator, NAMESPACE, "Widgets", {"service": "emf-test"}, "Sum") == 9
