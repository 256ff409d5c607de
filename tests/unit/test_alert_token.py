"""evpm_cli.alert_token (the webhook's bearer token in SSM) and `evpm alerts` (GET /alerts)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from moto import mock_aws

from evpm.ops_alerts import WEBHOOK_TOKEN_PARAMETER
from evpm_cli import alert_token, main


@pytest.fixture
def ssm(aws_env) -> Any:
    with mock_aws():
        yield boto3.client("ssm")


def test_the_cli_and_the_api_name_the_same_parameter() -> None:
    assert alert_token.WEBHOOK_TOKEN_PARAMETER == WEBHOOK_TOKEN_PARAMETER


def test_first_call_creates_a_random_secure_string_and_later_calls_keep_it(ssm) -> None:
    # WHEN the token is ensured twice
    first = alert_token.ensure_webhook_token(ssm)
    second = alert_token.ensure_webhook_token(ssm)
    # THEN one random value, kept, stored encrypted
    assert first == second and len(first) >= 40
    parameter = ssm.get_parameter(Name=WEBHOOK_TOKEN_PARAMETER)["Parameter"]
    assert parameter["Type"] == "SecureString"
    assert parameter["Version"] == 1


def test_two_systems_get_different_tokens(aws_env) -> None:
    tokens = set()
    for _ in range(2):
        with mock_aws():
            tokens.add(alert_token.ensure_webhook_token(boto3.client("ssm")))
    assert len(tokens) == 2


def test_an_existing_token_is_never_replaced(ssm) -> None:
    ssm.put_parameter(Name=WEBHOOK_TOKEN_PARAMETER, Value="rotated-by-hand", Type="SecureString")
    assert alert_token.ensure_webhook_token(ssm) == "rotated-by-hand"


class _Racing:
    """SSM where another process creates the parameter between our read and our put."""

    def __init__(self) -> None:
        self.value: str | None = None

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
        if self.value is None:
            self.value = "the-other-process-won"
            raise ClientError({"Error": {"Code": "ParameterNotFound"}}, "GetParameter")
        return {"Parameter": {"Value": self.value}}

    def put_parameter(self, **_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ParameterAlreadyExists"}}, "PutParameter")


def test_losing_the_create_race_reads_the_winners_token() -> None:
    assert alert_token.ensure_webhook_token(_Racing()) == "the-other-process-won"


def test_other_ssm_errors_are_not_swallowed(ssm) -> None:
    class Denied:
        def get_parameter(self, **_kwargs: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetParameter")

    with pytest.raises(ClientError):
        alert_token.ensure_webhook_token(Denied())


# --- evpm alerts ---------------------------------------------------------------------------


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)

    def json(self) -> dict[str, Any]:
        return self._body


PAGE = {
    "active": [
        {
            "alertname": "EvpmStreamLag",
            "severity": "warning",
            "starts_at": "2024-05-01T12:00:00.000000Z",
            "summary": "the scorer is 2m behind the stream",
        }
    ],
    "recent": [
        {
            "alertname": "EvpmApi5xxRate",
            "severity": "critical",
            "starts_at": "2024-05-01T10:00:00.000000Z",
            "ends_at": "2024-05-01T10:20:00.000000Z",
        }
    ],
    "hours": 24,
}


@pytest.fixture
def api_calls(monkeypatch) -> list[dict[str, Any]]:
    """`evpm alerts` against a stand-in API: the calls it makes, answered with PAGE."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(main.endpoints, "stack_outputs", lambda cfg: {"ApiId": "abc"})
    monkeypatch.setattr(main.endpoints, "key_for_role", lambda cfg, role: f"key-of-{role}")

    def get(url: str, **kwargs: Any) -> _Response:
        calls.append({"url": url, **kwargs})
        return _Response(200, PAGE)

    monkeypatch.setattr(main.httpx, "get", get)
    return calls


def test_alerts_lists_firing_and_resolved_through_the_gateway_as_a_viewer(api_calls) -> None:
    result = CliRunner().invoke(main.cli, ["alerts"])
    assert result.exit_code == 0, result.output
    [call] = api_calls
    assert call["url"].endswith("/_aws/execute-api/abc/v1/alerts")
    assert call["headers"] == {"x-api-key": "key-of-viewer"}
    assert call["params"] == {"active": "false", "hours": 24, "limit": 50}
    lines = result.output.splitlines()
    assert lines[0] == "firing: 1"
    assert "EvpmStreamLag" in lines[1] and "2024-05-01 12:00:00" in lines[1]
    assert lines[2] == "resolved in the last 24 h: 1"
    assert "-> 2024-05-01 10:20:00" in lines[3]


def test_alerts_active_and_json(api_calls) -> None:
    result = CliRunner().invoke(main.cli, ["alerts", "--active", "--json"])
    assert result.exit_code == 0
    assert api_calls[0]["params"]["active"] == "true"
    assert json.loads(result.output) == PAGE


def test_alerts_refused_by_the_api_exits_1(api_calls, monkeypatch) -> None:
    monkeypatch.setattr(main.httpx, "get", lambda url, **kw: _Response(403, {"detail": "no"}))
    result = CliRunner().invoke(main.cli, ["alerts"])
    assert result.exit_code == 1
