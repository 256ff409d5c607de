"""SDK clients pointed at the configured endpoint; the SDK's standard settings do the rest."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from evpm_cli.config import CliSettings


def client(cfg: CliSettings, service: str, *, read_timeout: float = 60, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=cfg.endpoint,
        region_name=cfg.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=read_timeout,
        ),
        **kwargs,
    )


def resource(cfg: CliSettings, service: str) -> Any:
    """A resource API (DynamoDB's document form) on the same endpoint."""
    return boto3.resource(
        service,
        endpoint_url=cfg.endpoint,
        region_name=cfg.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
