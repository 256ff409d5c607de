"""The HTTP side on 127.0.0.1: /metrics, /-/healthy, and JSON log lines."""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest
from prometheus_client import CollectorRegistry

from cloudwatch_exporter import CloudWatchCollector, load_config
from cloudwatch_exporter.logs import JsonFormatter, event
from cloudwatch_exporter.server import serve
from tests.unit.cloudwatch_exporter.conftest import SHIPPED, Clock


def test_metrics_and_health_over_http(cloudwatch, put, clock: Clock) -> None:
    put("RecordsReceived", 5, clock.now - 100, service="evpm-scorer")
    registry = CollectorRegistry()
    registry.register(CloudWatchCollector(load_config(SHIPPED), client=cloudwatch, clock=clock))
    server = serve(registry, "127.0.0.1", 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/-/healthy").text == "OK\n"
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert 'evpm_records_received_total{service="evpm-scorer"} 0.0' in metrics.text
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    assert server.server_address[0] == "127.0.0.1"


def test_log_lines_are_json(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("cloudwatch_exporter.test")
    with caplog.at_level(logging.INFO, logger="cloudwatch_exporter.test"):
        event(logger, logging.INFO, "scrape", seconds=0.1, series=3)
    line = JsonFormatter().format(caplog.records[0])
    assert json.loads(line) | {"ts": None} == {
        "ts": None,
        "level": "INFO",
        "logger": "cloudwatch_exporter.test",
        "event": "scrape",
        "seconds": 0.1,
        "series": 3,
    }
