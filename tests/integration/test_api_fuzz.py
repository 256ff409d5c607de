"""Fuzz the deployed API through the emulated API Gateway from its served OpenAPI schema.

Same property as the in-process fuzz test (no 5xx), now
through API Gateway, Mangum, the real role lookup and the emulated DynamoDB. Few examples per
operation: every request is a real HTTP round trip.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.conftest import System

pytestmark = pytest.mark.integration

EXAMPLES = 6


def test_deployed_api_gives_no_server_error(system: System) -> None:
    # GIVEN the schema the deployed API serves (behind the gateway, so it needs a key)
    key = system.keys["ml-admin"]
    raw = httpx.get(f"{system.api_url}/openapi.json", headers={"x-api-key": key}, timeout=30)
    assert raw.status_code == 200, raw.text
    schema = schemathesis.openapi.from_dict(raw.json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12  # with GET /alerts and POST /alerts/webhook

    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=system.api_url, headers={"x-api-key": key}, timeout=30)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
        )

    for operation in operations:
        # WHEN requests are generated for it, THEN none is answered with a 5xx
        settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy())(check))()
