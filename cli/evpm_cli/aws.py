"""SDK clients pointed at the configured endpoint; the SDK's standard settings do the rest."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from evpm_cli.config import CliSettings


def client(cfg: CliSettings, service: str, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=cfg.endpoint,
        region_name=cfg.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                      read_timeout=60),
        **kwargs,
    )
