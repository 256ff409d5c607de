"""The bearer token Alertmanager sends to ``POST /alerts/webhook``: made once, kept in SSM.

Why here and not in the CDK app: CloudFormation cannot create SecureString parameters, and a
token in a template (or in code) is a token in git. ``evpm up`` calls
:func:`ensure_webhook_token` after the deploy; the monitoring start-up then reads the
parameter and writes the file Alertmanager's ``credentials_file`` names. On AWS an operator
(or a pipeline step) runs the same function once per account and region.

The value is 32 random bytes, URL-safe; an existing token is never replaced (rotating it is
``aws ssm put-parameter --overwrite`` followed by a restart of Alertmanager; the API picks it
up within a minute).
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError

__all__ = ["WEBHOOK_TOKEN_PARAMETER", "ensure_webhook_token"]

WEBHOOK_TOKEN_PARAMETER = "/evpm/alerts/webhook-token"  # = evpm.ops_alerts (a test checks)


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def ensure_webhook_token(ssm: Any, *, name: str = WEBHOOK_TOKEN_PARAMETER) -> str:
    """The webhook token, created as a SecureString with a random value if there is none.

    Safe to call from two processes at once: the create does not overwrite, and the loser of
    the race reads the winner's value.

    Example::

        token = ensure_webhook_token(client(cfg, "ssm"))   # same value on every later call
    """
    try:
        return _read(ssm, name)
    except ClientError as exc:
        if _code(exc) != "ParameterNotFound":
            raise
    try:
        ssm.put_parameter(
            Name=name,
            Value=secrets.token_urlsafe(32),
            Type="SecureString",
            Overwrite=False,
            Description="bearer token Alertmanager sends to the evpm API's POST /alerts/webhook",
        )
    except ClientError as exc:
        if _code(exc) != "ParameterAlreadyExists":
            raise
    return _read(ssm, name)


def _read(ssm: Any, name: str) -> str:
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    if not value.strip():
        raise ValueError(f"SSM parameter {name} is empty: delete it and run `evpm up` again")
    return value
