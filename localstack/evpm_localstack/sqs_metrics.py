"""AWS/SQS metrics go through the metrics sink instead of a CloudWatch client call each.

Why: LocalStack's SQS provider already publishes what AWS does - every
``SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL`` seconds (default 60) a thread samples
``ApproximateNumberOfMessagesVisible``, ``...NotVisible`` and ``...Delayed`` of every queue
(dimension ``QueueName``), and each send, receive and delete counts ``NumberOfMessagesSent``,
``SentMessageSize``, ``NumberOfMessagesReceived``, ``NumberOfEmptyReceives``,
``NumberOfMessagesDeleted`` - but each through ``put_metric_data`` on an internal client, one
SQLite commit per datum (about 1.4 ms of emulator CPU each; an idle poller's empty receives
alone cost that several times a second).

What: the two publishing functions the SQS provider calls write the same datums into
:mod:`evpm_localstack.metrics_sink` (batched, read-your-writes like every metric here). The
sampling thread, its interval and the metric set stay LocalStack's. ``POST
/_evpm/metrics/sample`` samples every queue now and flushes the sink (for tests, which need
not wait a minute).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from evpm_localstack import metrics_sink

NAMESPACE = "AWS/SQS"


def _datum(queue_name: str, metric: str, value: float, unit: str | None,
           timestamp: float) -> dict[str, Any]:
    return {"MetricName": metric, "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
            "Timestamp": timestamp, "Unit": unit or "Count", "Values": [value]}


def publish_sqs_metric(account_id: str, region: str, queue_name: str, metric: str,
                       value: float = 1, unit: str = "Count") -> None:
    metrics_sink.put(account_id, region, NAMESPACE,
                     [_datum(queue_name, metric, value, unit, time.time())])


def publish_sqs_metric_batch(account_id: str, region: str,
                             sqs_metric_batch_data: list[dict[str, Any]]) -> None:
    now = time.time()
    metrics_sink.put(account_id, region, NAMESPACE, [
        _datum(d["QueueName"], d["MetricName"], d.get("Value", 1), d.get("Unit"), now)
        for d in sqs_metric_batch_data
    ])


SAMPLE_PATH = "/_evpm/metrics/sample"


def install() -> None:
    """Point the SQS provider's publishing at the sink, add the sampling route (idempotent)."""
    from localstack.services.edge import ROUTER
    from localstack.utils.cloudwatch import cloudwatch_util

    if cloudwatch_util.publish_sqs_metric is publish_sqs_metric:
        return
    # The SQS provider imports both names from here when it is first loaded (lazily, after
    # this runs); if it already was, its own references are replaced too.
    modules = [cloudwatch_util]
    if (provider := sys.modules.get("localstack.services.sqs.provider")) is not None:
        modules.append(provider)
    for module in modules:
        module.publish_sqs_metric = publish_sqs_metric
        module.publish_sqs_metric_batch = publish_sqs_metric_batch
    ROUTER.add(SAMPLE_PATH, _sample_route, methods=["POST"])


def _sample_route(request: Any) -> Any:
    from localstack.http import Response

    sampled = sample_queues_now()
    metrics_sink.SINK.flush()
    return Response.for_json({"sqs_sampled": sampled, "flushed": True})


def sample_queues_now() -> bool:
    """Run the SQS provider's sampling of every queue at once (False: SQS not running)."""
    from localstack.services.plugins import SERVICE_PLUGINS

    if not SERVICE_PLUGINS.is_running("sqs"):
        return False
    worker = getattr(SERVICE_PLUGINS.get_service("sqs").lifecycle_hook,
                     "_cloudwatch_publish_worker", None)
    if worker is None:
        return False
    worker.publish_approximate_cloudwatch_metrics()
    return True
