"""Monitoring beside the emulator: the CloudWatch exporter, Prometheus and Alertmanager.

The configurations in ``monitoring/`` are complete for the default ports; ``evpm up`` renders
this system's copies into ``<state>/monitoring/`` (ports from ``EVPM_*_PORT``, the rule files'
absolute path, the alert webhook) and starts the three processes from them
(:mod:`evpm_cli.services`). The webhook is the deployed API's ``POST /alerts/webhook`` with the
bearer token held in SSM; when either is missing, Alertmanager routes everything to its
``null`` receiver, so alerts are still evaluated and visible in its UI.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from evpm_cli import services
from evpm_cli.aws import client
from evpm_cli.config import REPO_ROOT, CliSettings
from evpm_cli.endpoints import api_url

__all__ = [
    "NULL_RECEIVER",
    "WEBHOOK_PATH",
    "WEBHOOK_RECEIVER",
    "WEBHOOK_TOKEN_PARAMETER",
    "Webhook",
    "render_alertmanager",
    "render_prometheus",
    "start",
    "status",
    "stop",
    "webhook",
    "write_configs",
]

MONITORING: Final = REPO_ROOT / "monitoring"
WEBHOOK_PATH: Final = "/alerts/webhook"
WEBHOOK_RECEIVER: Final = "evpm-webhook"
NULL_RECEIVER: Final = "null"
WEBHOOK_TOKEN_PARAMETER: Final = "/evpm/alerts/webhook-token"
"""= ``evpm.ops_alerts.WEBHOOK_TOKEN_PARAMETER`` (a test checks): the receiver's bearer token."""
TOKEN_FILE: Final = "webhook-token"
"""Beside the rendered alertmanager.yml, which names it relative to itself."""
_HEADER: Final = "# Rendered by `evpm up` from {source}; edit that file, not this one.\n"


@dataclass(frozen=True)
class Webhook:
    url: str
    token: str


def render_prometheus(cfg: CliSettings, template: Path = MONITORING / "prometheus.yml") -> str:
    """``template`` with this system's ports and the rule files' absolute paths."""
    config: dict[str, Any] = yaml.safe_load(template.read_text())
    config["rule_files"] = [
        str(path if Path(path).is_absolute() else (template.parent / path).resolve())
        for path in config.get("rule_files", [])
    ]
    targets = {
        "evpm-cloudwatch": f"127.0.0.1:{cfg.exporter_port}",
        "prometheus": f"127.0.0.1:{cfg.prometheus_port}",
        "alertmanager": f"127.0.0.1:{cfg.alertmanager_port}",
    }
    for job in config.get("scrape_configs", []):
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    for manager in config.get("alerting", {}).get("alertmanagers", []):
        manager["static_configs"] = [{"targets": [targets["alertmanager"]]}]
    return _HEADER.format(source=template) + yaml.safe_dump(config, sort_keys=False)


def render_alertmanager(
    hook: Webhook | None, template: Path = MONITORING / "alertmanager.yml"
) -> str:
    """``template`` with the webhook's URL, or every route to the ``null`` receiver if none.

    The token is not in the text: the receiver reads it from ``webhook-token`` beside it.
    """
    config: dict[str, Any] = yaml.safe_load(template.read_text())
    receivers = {r["name"]: r for r in config.get("receivers", [])}
    if WEBHOOK_RECEIVER not in receivers or NULL_RECEIVER not in receivers:
        raise ValueError(
            f"{template} must define the receivers {WEBHOOK_RECEIVER} and {NULL_RECEIVER}"
        )
    if hook is None:
        _reroute(config["route"], WEBHOOK_RECEIVER, NULL_RECEIVER)
    else:
        for webhook_config in receivers[WEBHOOK_RECEIVER]["webhook_configs"]:
            webhook_config["url"] = hook.url
    return _HEADER.format(source=template) + yaml.safe_dump(config, sort_keys=False)


def _reroute(route: dict[str, Any], old: str, new: str) -> None:
    if route.get("receiver") == old:
        route["receiver"] = new
    for child in route.get("routes", []):
        _reroute(child, old, new)


def webhook(cfg: CliSettings, outputs: dict[str, str]) -> Webhook | None:
    """The deployed alert receiver, or None when the API or its token is not there yet."""
    base = api_url(cfg, outputs)
    if base is None:
        return None
    try:
        token = client(cfg, "ssm").get_parameter(Name=WEBHOOK_TOKEN_PARAMETER, WithDecryption=True)[
            "Parameter"
        ]["Value"]
    except (BotoCoreError, ClientError):
        return None
    return Webhook(url=f"{base}{WEBHOOK_PATH}", token=token)


def _write(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` unless ``path`` already holds it; True if it changed."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)
    return True


def write_configs(cfg: CliSettings, hook: Webhook | None) -> dict[str, bool]:
    """Render both configs (and the token file) into the state folder; which ones changed."""
    folder = services.monitoring_dir(cfg)
    token_changed = _write(folder / TOKEN_FILE, hook.token if hook else "", mode=0o600)
    return {
        "prometheus": _write(folder / "prometheus.yml", render_prometheus(cfg)),
        "alertmanager": _write(folder / "alertmanager.yml", render_alertmanager(hook))
        or token_changed,
    }


def start(cfg: CliSettings, outputs: dict[str, str]) -> None:
    """Render the configs, start the exporter, Alertmanager and Prometheus (in that order, so
    each finds what it sends to), and reload a running one whose config changed."""
    services.require_binaries()
    changed = write_configs(cfg, webhook(cfg, outputs))
    services.start(cfg, services.exporter(cfg))
    for service, url, key in (
        (services.alertmanager(cfg), cfg.alertmanager_url, "alertmanager"),
        (services.prometheus(cfg), cfg.prometheus_url, "prometheus"),
    ):
        was_running = services.is_running(cfg, service)
        services.start(cfg, service)
        if was_running and changed[key]:
            try:
                httpx.post(f"{url}/-/reload", timeout=10).raise_for_status()
            except httpx.HTTPError as exc:
                raise services.ServiceError(
                    f"{service.name} did not reload its config: {exc}"
                ) from exc


def stop(cfg: CliSettings) -> list[str]:
    """Stop Prometheus, Alertmanager and the exporter; the names of those that ran."""
    stopped = []
    for service in (services.prometheus(cfg), services.alertmanager(cfg), services.exporter(cfg)):
        if services.stop(cfg, service):
            stopped.append(service.name)
    return stopped


def status(cfg: CliSettings) -> dict[str, Any]:
    """URLs and state of the three, and where Alertmanager sends alerts."""
    receiver, webhook_url = None, None
    rendered = services.monitoring_dir(cfg) / "alertmanager.yml"
    with contextlib.suppress(OSError, yaml.YAMLError, KeyError, TypeError):
        config = yaml.safe_load(rendered.read_text())
        receiver = config["route"]["receiver"]
        if receiver == WEBHOOK_RECEIVER:
            hooks = {r["name"]: r for r in config["receivers"]}[WEBHOOK_RECEIVER]
            webhook_url = hooks["webhook_configs"][0]["url"]
    return {
        "prometheus": {
            "url": cfg.prometheus_url,
            "running": services.healthy(f"{cfg.prometheus_url}/-/ready"),
            "alerts": f"{cfg.prometheus_url}/alerts",
            "rules": str(MONITORING / "rules"),
            "data": str(cfg.state_dir / "prometheus"),
        },
        "alertmanager": {
            "url": cfg.alertmanager_url,
            "running": services.healthy(f"{cfg.alertmanager_url}/-/ready"),
            "receiver": receiver,
            "webhook": webhook_url,
            "data": str(cfg.state_dir / "alertmanager"),
        },
        "exporter": {
            "url": f"{cfg.exporter_url}/metrics",
            "running": services.healthy(f"{cfg.exporter_url}/-/healthy"),
            "config": str(MONITORING / "exporter.yaml"),
            "log": str(cfg.state_dir / "logs" / "cloudwatch-exporter.log"),
        },
    }
