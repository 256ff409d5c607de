"""Prometheus and Alertmanager configuration, checked by their own tools.

``promtool`` and ``amtool`` come with the Debian packages ``make deps`` installs: a missing
binary fails these tests (it does not skip them), so a machine without them cannot pass.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from moto import mock_aws

from cloudwatch_exporter import CloudWatchCollector, load_config
from evpm_cli.config import CliSettings
from evpm_cli.monitoring import Webhook, render_alertmanager, render_prometheus

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
TEST_FILES = sorted((MONITORING / "tests").glob("*.yml"))


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make deps` (Debian packages prometheus and "
            "prometheus-alertmanager)"
        )
    return path


def run(*command: str | Path, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def alerts_in_rules() -> set[str]:
    return {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_the_rule_files_are_valid() -> None:
    assert RULE_FILES
    run(tool("promtool"), "check", "rules", *RULE_FILES)


def test_the_prometheus_config_is_valid_with_its_rules() -> None:
    out = run(tool("promtool"), "check", "config", MONITORING / "prometheus.yml")
    assert f"{len(RULE_FILES)} rule files found" in out


def test_every_alert_has_unit_tests_that_pass() -> None:
    # GIVEN the alerts and the alerts whose firing the tests expect
    fired = {
        case["alertname"]
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    # THEN every alert is shown firing by some test, and promtool runs them all green
    assert alerts_in_rules() - fired == set()
    assert fired - alerts_in_rules() == set()
    run(tool("promtool"), "test", "rules", *TEST_FILES)


def test_the_required_alerts_exist() -> None:
    assert {
        "EvpmApiLatencyHigh",
        "EvpmApi5xxRate",
        "EvpmScorerErrors",
        "EvpmDlqGrowing",
        "EvpmStreamLag",
        "EvpmNoTraffic",
        "EvpmAnomalyRateSpike",
        "EvpmModelLoadFailure",
        "EvpmServingPinsStale",
        "EvpmLifecycleExecutionFailed",
    } <= alerts_in_rules()


def test_rules_read_only_metrics_the_exporter_produces() -> None:
    # GIVEN the families of the exporter's configuration and the recording rules
    produced = {
        family.name for _, _, family in load_config(MONITORING / "exporter.yaml").families()
    }
    produced |= {
        "cloudwatch_exporter_scrape_errors_total",
        "cloudwatch_exporter_requests_total",
        "cloudwatch_exporter_scrape_success",
        "cloudwatch_exporter_last_success_timestamp_seconds",
    }
    recorded = set()
    exprs = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                recorded |= {rule["record"]} if "record" in rule else set()
                exprs.append(rule["expr"])
    # THEN every evpm_/aws_/exporter metric a rule reads is one of them
    read = {
        name
        for expr in exprs
        for name in re.findall(r"\b((?:evpm|aws|cloudwatch_exporter)_[a-z0-9_]+)\b", expr)
    }
    assert read - produced == set()
    used = {name for expr in exprs for name in re.findall(r"\bevpm:[a-z0-9_:]+", expr)}
    assert used <= recorded


def test_the_exporter_output_passes_promtool_check_metrics(aws_env: None) -> None:
    import boto3
    from prometheus_client import CollectorRegistry, generate_latest

    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        client.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "IteratorAge",
                    "Value": 1500,
                    "Unit": "Milliseconds",
                    "Dimensions": [{"Name": "FunctionName", "Value": "evpm-scorer"}],
                }
            ],
        )
        registry = CollectorRegistry()
        registry.register(
            CloudWatchCollector(load_config(MONITORING / "exporter.yaml"), client=client)
        )
        text = generate_latest(registry).decode()
    # promtool lints names, units, _total on counters; it prints nothing when all is well
    out = run(tool("promtool"), "check", "metrics", stdin=text)
    assert out.strip() == "", out


def test_the_alertmanager_config_is_valid_as_shipped_and_rendered(tmp_path: Path) -> None:
    amtool = tool("amtool")
    run(amtool, "check-config", MONITORING / "alertmanager.yml")
    for name, hook in (
        ("webhook", Webhook("http://127.0.0.1:4566/x/v1/alerts/webhook", "t")),
        ("null", None),
    ):
        rendered = tmp_path / f"{name}.yml"
        rendered.write_text(render_alertmanager(hook))
        out = run(amtool, "check-config", rendered)
        assert "4 inhibit rules" in out and "2 receivers" in out


def test_routes_send_to_the_webhook_or_null_when_none_is_deployed(tmp_path: Path) -> None:
    amtool = tool("amtool")
    shipped = MONITORING / "alertmanager.yml"
    for labels in (["severity=critical", "alertname=EvpmExporterDown"], ["severity=warning"]):
        run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={shipped}",
            "--verify.receivers=evpm-webhook",
            *labels,
        )
    rendered = tmp_path / "null.yml"
    rendered.write_text(render_alertmanager(None))
    for labels in (["severity=critical"], ["severity=warning"]):
        run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={rendered}",
            "--verify.receivers=null",
            *labels,
        )


def test_the_rendered_prometheus_config_is_valid_with_this_systems_ports(tmp_path: Path) -> None:
    cfg = CliSettings(
        state_dir=tmp_path, prometheus_port=9190, alertmanager_port=9193, exporter_port=9196
    )
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(render_prometheus(cfg))
    config = yaml.safe_load(rendered.read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {
        "evpm-cloudwatch": ["127.0.0.1:9196"],
        "prometheus": ["127.0.0.1:9190"],
        "alertmanager": ["127.0.0.1:9193"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:9193"
    ]
    assert config["rule_files"] == [str(MONITORING / "rules" / "*.yml")]
    out = run(tool("promtool"), "check", "config", rendered)
    assert f"{len(RULE_FILES)} rule files found" in out
