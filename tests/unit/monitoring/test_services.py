"""How `evpm up` runs monitoring: ports, command lines, rendered configs, the webhook."""

from __future__ import annotations

import stat
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from evpm_cli import monitoring, services
from evpm_cli.config import CliSettings


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliSettings:
    # GIVEN ports from the environment, as the Makefile's TEST_ENV sets them
    monkeypatch.setenv("EVPM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EVPM_PROMETHEUS_PORT", "29090")
    monkeypatch.setenv("EVPM_ALERTMANAGER_PORT", "29093")
    monkeypatch.setenv("EVPM_EXPORTER_PORT", "29106")
    return CliSettings()


def test_ports_come_from_the_environment(cfg: CliSettings) -> None:
    assert (cfg.prometheus_url, cfg.alertmanager_url, cfg.exporter_url) == (
        "http://127.0.0.1:29090",
        "http://127.0.0.1:29093",
        "http://127.0.0.1:29106",
    )


def test_default_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMETHEUS", "ALERTMANAGER", "EXPORTER"):
        monkeypatch.delenv(f"EVPM_{name}_PORT", raising=False)
    cfg = CliSettings()
    assert (cfg.prometheus_port, cfg.alertmanager_port, cfg.exporter_port) == (9090, 9093, 9106)


def test_prometheus_listens_on_loopback_with_its_data_in_the_state_folder(cfg) -> None:
    command = services.prometheus(cfg).command
    assert "--web.listen-address=127.0.0.1:29090" in command
    assert f"--storage.tsdb.path={cfg.state_dir / 'prometheus'}" in command
    assert f"--config.file={cfg.state_dir / 'monitoring' / 'prometheus.yml'}" in command
    assert services.prometheus(cfg).health_url == "http://127.0.0.1:29090/-/ready"


def test_alertmanager_has_no_cluster_port_and_keeps_silences(cfg) -> None:
    command = services.alertmanager(cfg).command
    assert "--web.listen-address=127.0.0.1:29093" in command
    assert "--cluster.listen-address=" in command
    assert f"--storage.path={cfg.state_dir / 'alertmanager'}" in command


def test_the_exporter_reads_the_emulator(cfg) -> None:
    service = services.exporter(cfg)
    assert service.command[1:3] == ["-m", "cloudwatch_exporter"]
    assert service.command[-6:] == [
        "--listen-address", "127.0.0.1", "--port", "29106", "--delay", str(cfg.exporter_delay)]
    assert cfg.exporter_delay == 10  # the emulator stores metrics at once: not CloudWatch's 60
    assert service.env["AWS_ENDPOINT_URL"] == cfg.endpoint
    assert service.health_url == "http://127.0.0.1:29106/-/healthy"


def test_without_a_webhook_every_route_goes_to_null() -> None:
    config = yaml.safe_load(monitoring.render_alertmanager(None))
    assert config["route"]["receiver"] == "null"
    assert {r["receiver"] for r in config["route"]["routes"]} == {"null"}


def test_the_webhook_url_is_filled_in_and_the_token_kept_out_of_the_config() -> None:
    hook = monitoring.Webhook(
        "http://127.0.0.1:4566/_aws/execute-api/abc/v1/alerts/webhook", "s3cret"
    )
    text = monitoring.render_alertmanager(hook)
    config = yaml.safe_load(text)
    assert config["route"]["receiver"] == "evpm-webhook"
    [receiver] = [r for r in config["receivers"] if r["name"] == "evpm-webhook"]
    webhook = receiver["webhook_configs"][0]
    assert webhook["url"] == hook.url
    assert webhook["http_config"]["authorization"] == {
        "type": "Bearer",
        "credentials_file": "webhook-token",
    }
    assert "s3cret" not in text


def test_configs_are_written_once_and_the_token_is_private(cfg: CliSettings) -> None:
    hook = monitoring.Webhook("http://127.0.0.1:4566/x/v1/alerts/webhook", "s3cret")
    assert monitoring.write_configs(cfg, hook) == {"prometheus": True, "alertmanager": True}
    token = cfg.state_dir / "monitoring" / "webhook-token"
    assert token.read_text() == "s3cret"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    # the same again changes nothing (no reload), a new token changes Alertmanager's
    assert monitoring.write_configs(cfg, hook) == {"prometheus": False, "alertmanager": False}
    rotated = monitoring.Webhook(hook.url, "rotated")
    assert monitoring.write_configs(cfg, rotated) == {"prometheus": False, "alertmanager": True}


def test_the_webhook_needs_the_api_and_the_token(
    cfg: CliSettings, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        monkeypatch.setattr(monitoring, "client", lambda _cfg, name: boto3.client(name))
        assert monitoring.webhook(cfg, {}) is None  # no API deployed
        assert monitoring.webhook(cfg, {"ApiId": "abc", "ApiStage": "v1"}) is None  # no token
        boto3.client("ssm").put_parameter(
            Name=monitoring.WEBHOOK_TOKEN_PARAMETER, Value="t0k", Type="SecureString"
        )
        assert monitoring.webhook(cfg, {"ApiId": "abc", "ApiStage": "v1"}) == monitoring.Webhook(
            f"{cfg.endpoint}/_aws/execute-api/abc/v1/alerts/webhook", "t0k"
        )


def test_the_token_parameter_is_the_receivers() -> None:
    alert_token = pytest.importorskip("evpm_cli.alert_token")
    assert monitoring.WEBHOOK_TOKEN_PARAMETER == alert_token.WEBHOOK_TOKEN_PARAMETER


def test_status_names_the_receiver_in_use(cfg: CliSettings) -> None:
    monitoring.write_configs(cfg, None)
    status = monitoring.status(cfg)
    assert status["alertmanager"]["receiver"] == "null"
    assert status["alertmanager"]["webhook"] is None
    assert status["prometheus"]["url"] == "http://127.0.0.1:29090"
    assert status["exporter"]["url"] == "http://127.0.0.1:29106/metrics"
