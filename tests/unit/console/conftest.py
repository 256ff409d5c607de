"""The console under test: the real app with in-memory sources, one signed-in client per role."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import Sources, create_app
from console.config import ConsoleConfig
from tests.unit.console.fakes import (
    FakeFleet,
    FakeKeys,
    FakeLifecycle,
    FakeMonitoring,
    FakeRegistry,
)

SECRETS = {"viewer": "viewer-secret", "fleet-service": "fleet-secret", "ml-admin": "admin-secret"}


@pytest.fixture
def sources() -> Sources:
    return Sources(
        keys=FakeKeys(),
        lifecycle=FakeLifecycle(),
        registry=FakeRegistry(),
        fleet=FakeFleet(),
        monitoring=FakeMonitoring(),
    )


@pytest.fixture
def app_client(tmp_path: Path, sources: Sources) -> TestClient:
    config = ConsoleConfig(state_dir=tmp_path, node_modules=Path("node_modules").resolve())
    return TestClient(create_app(config, sources), follow_redirects=False)


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    return re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)


def sign_in(client: TestClient, secret: str, next_path: str = "/lifecycle"):
    token = login_token(client)
    return client.post("/login", data={"login_csrf": token, "api_key": secret, "next": next_path})


def csrf_of(client: TestClient, path: str = "/lifecycle") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


@pytest.fixture
def signed_in(app_client: TestClient) -> Callable[[str], TestClient]:
    def as_role(role: str) -> TestClient:
        response = sign_in(app_client, SECRETS[role])
        assert response.status_code == 303, response.text
        return app_client

    return as_role
