"""What CloudWatch gets from a Lambda invocation on AWS: AWS/Lambda metrics and EMF metrics.

Why: LocalStack published ``Invocations`` and ``Errors`` only (one client call and one thread
per invocation), no ``Duration``, ``Throttles`` or ``IteratorAge``; and EMF lines printed by the
functions stayed log lines. The alerts watch all of them.

What, per invocation, all through :mod:`evpm_localstack.metrics_sink`:

* the executor calls :func:`record_invocation` when an invocation ends: ``AWS/Lambda``
  ``Invocations`` 1, ``Errors`` 0 or 1 (a function error, a crash or a timeout), ``Throttles``
  0 and ``Duration`` (ms, the executor's measure: init excluded, a timeout's is the timeout),
  dimension ``FunctionName``; and every EMF document among the invocation's log lines becomes
  metric data in the function's account and region (:mod:`evpm_localstack.emf`). A rejected
  document is dropped with one warning line (``emf_rejected``: function, reason) and counted in
  ``AWS/Logs`` ``EMFParsingErrors`` / ``EMFValidationErrors`` (dimension ``LogGroupName``), as
  CloudWatch does; the invocation's result is never touched;
* an invocation LocalStack throttles (reserved concurrency used up) counts ``Throttles`` 1; one
  whose execution environment failed to start (the executor never ran it) ``Invocations`` 1
  and ``Errors`` 1;
* an event source mapping's batch from a stream counts ``IteratorAge``: the time from the last
  record's ``approximateArrivalTimestamp`` (Kinesis; DynamoDB ``ApproximateCreationDateTime``)
  to the moment the batch is sent to the function, in ms, as AWS defines it;
* LocalStack's own ``Invocations`` / ``Errors`` publishing is switched off (it would count
  every invocation twice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from evpm_localstack import emf, metrics_sink
from evpm_localstack.snapshot_files import log_event

LOG = logging.getLogger(__name__)
NAMESPACE = "AWS/Lambda"
_enabled = False  # set by install(): the executor publishes nothing in a bare LocalStack


def _datum(name: str, function_name: str, timestamp: float, value: float,
           unit: str) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
            "Timestamp": timestamp, "Unit": unit, "Values": [value]}


def invocation_datums(function_name: str, *, timestamp: float, duration_ms: float | None,
                      is_error: bool, throttled: bool = False) -> list[dict[str, Any]]:
    """The AWS/Lambda datums of one invocation (a throttled request is no invocation)."""
    if throttled:
        return [_datum("Throttles", function_name, timestamp, 1, "Count")]
    datums = [
        _datum("Invocations", function_name, timestamp, 1, "Count"),
        _datum("Errors", function_name, timestamp, 1 if is_error else 0, "Count"),
        _datum("Throttles", function_name, timestamp, 0, "Count"),
    ]
    if duration_ms is not None:
        datums.append(_datum("Duration", function_name, timestamp, duration_ms, "Milliseconds"))
    return datums


def iterator_age_ms(events: list[dict[str, Any]], now: float) -> float | None:
    """``now`` minus the arrival time of the batch's last stream record, in ms (None: no stream
    records: an SQS batch, or events without arrival times)."""
    if not events or not isinstance(events[-1], dict):
        return None
    last = events[-1]
    arrived = (last.get("kinesis") or {}).get("approximateArrivalTimestamp")
    if arrived is None:
        arrived = (last.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if not isinstance(arrived, int | float) or isinstance(arrived, bool):
        return None
    return max(0.0, (now - float(arrived)) * 1000.0)


def record_invocation(function_version: Any, *, started_at: float, duration_ms: float | None,
                      is_error: bool, log_lines: Iterable[str]) -> None:
    """Publish one finished invocation's metrics (called by the executor; never raises)."""
    if not _enabled:
        return
    try:
        function_id = function_version.id
        name, account, region = function_id.function_name, function_id.account, function_id.region
        metrics_sink.put(account, region, NAMESPACE, invocation_datums(
            name, timestamp=started_at, duration_ms=duration_ms, is_error=is_error))
        publish_emf(name, account, region, log_lines)
    except Exception as exc:
        LOG.warning("lambda metrics: invocation of %s not recorded: %s",
                    getattr(getattr(function_version, "id", None), "function_name", "?"), exc)


def publish_emf(function_name: str, account: str, region: str, lines: Iterable[str],
                *, now: float | None = None) -> emf.Extracted:
    """Turn the EMF documents among a function's log lines into metric data."""
    extracted = emf.extract(lines, now=now)
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for metric in extracted.metrics:
        by_namespace.setdefault(metric.namespace, []).append(dict(metric.datum))
    for namespace, datums in by_namespace.items():
        metrics_sink.put(account, region, namespace, datums)
    if extracted.errors:
        for error in extracted.errors:
            log_event(LOG, "emf_rejected", logging.WARNING, function=function_name,
                      kind=error.kind, reason=error.reason)
        now_s = time.time() if now is None else now
        group = [{"Name": "LogGroupName", "Value": f"/aws/lambda/{function_name}"}]
        counts = {"parsing": 0, "validation": 0}
        for error in extracted.errors:
            counts[error.kind] += 1
        metrics_sink.put(account, region, "AWS/Logs", [
            {"MetricName": f"EMF{kind.capitalize()}Errors", "Dimensions": group,
             "Timestamp": now_s, "Unit": "Count", "Values": [float(count)]}
            for kind, count in counts.items() if count
        ])
    return extracted


def _publish(function_version: Any, **kwargs: Any) -> None:
    try:
        function_id = function_version.id
        metrics_sink.put(function_id.account, function_id.region, NAMESPACE, invocation_datums(
            function_id.function_name, timestamp=time.time(), duration_ms=None, **kwargs))
    except Exception as exc:
        LOG.warning("lambda metrics: not recorded: %s", exc)


def _publish_iterator_age(function_arn: str, events: Any) -> None:
    try:
        if not isinstance(events, list):
            return
        age = iterator_age_ms(events, time.time())
        if age is None:
            return
        from localstack.services.lambda_.api_utils import function_locators_from_arn

        name, _, account, region = function_locators_from_arn(function_arn)
        if name and account and region:
            metrics_sink.put(account, region, NAMESPACE, [
                _datum("IteratorAge", name, time.time(), age, "Milliseconds")])
    except Exception as exc:
        LOG.warning("lambda metrics: IteratorAge not recorded: %s", exc)


def _not_published(*_args: Any, **_kwargs: Any) -> None:
    """LocalStack's per-invocation metrics: the executor publishes them (and more) instead."""


def install() -> None:
    """Patch LocalStack's Lambda service and event source mapping sender (idempotent)."""
    global _enabled
    from localstack.aws.api.lambda_ import TooManyRequestsException
    from localstack.services.lambda_.event_source_mapping.senders.lambda_sender import (
        LambdaSender,
    )
    from localstack.services.lambda_.invocation import version_manager

    manager_cls = version_manager.LambdaVersionManager
    if getattr(manager_cls, "_evpm_metrics", False):
        return
    version_manager.record_cw_metric_invocation = _not_published
    version_manager.record_cw_metric_error = _not_published
    original_invoke = manager_cls.invoke
    original_send = LambdaSender.send_events

    def invoke(self: Any, *, invocation: Any) -> Any:
        try:
            result = original_invoke(self, invocation=invocation)
        except TooManyRequestsException:
            _publish(self.function_version, is_error=False, throttled=True)
            raise
        if result.is_error and not result.request_id:
            # The environment failed to start (StatusErrorException): no executor invoke ran.
            _publish(self.function_version, is_error=True)
        return result

    def send_events(self: Any, events: Any) -> Any:
        _publish_iterator_age(self.target_arn, events)
        return original_send(self, events)

    manager_cls.invoke = invoke
    LambdaSender.send_events = send_events
    manager_cls._evpm_metrics = True
    _enabled = True
