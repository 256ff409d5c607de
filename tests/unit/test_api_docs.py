"""The docs pages: packaged assets, relative URLs only, nothing loaded from another host."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.unit.conftest import load_function


@pytest.fixture
def client(monkeypatch) -> TestClient:
    """The app as deployed; the docs need no collaborator (no key, no table, no model)."""
    monkeypatch.setenv("PREDICTIONS_TABLE", "evpm-predictions")
    monkeypatch.setenv("LABELS_TABLE", "evpm-labels")
    return TestClient(load_function("api").app)


def _references(html: str) -> list[str]:
    """Every URL the page loads by itself: src/href attributes and fetch/init calls."""
    return re.findall(r'(?:src|href)="([^"]*)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_load_only_relative_urls(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    refs = _references(html)
    assert refs, "the page references no assets"
    for ref in refs:
        assert not re.match(r"^(https?:)?//", ref), f"{page} loads {ref} from another host"
        assert not ref.startswith("/"), (
            f"{page} uses an absolute path {ref} (breaks under a prefix)"
        )
    assert "cdn" not in html.lower() and "googleapis" not in html
    # and the browser refuses anything from elsewhere the bundles might still ask for
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize("asset", ["swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"])
def test_every_asset_a_page_references_is_served(client, asset):
    pages = client.get("/docs").text + client.get("/redoc").text
    assert f"docs-assets/{asset}" in pages
    response = client.get(f"/docs-assets/{asset}")
    assert response.status_code == 200
    assert len(response.content) > 100_000  # the real bundle, not a placeholder


def test_swagger_ui_is_version_5_which_reads_openapi_3_1(client):
    # FastAPI writes OpenAPI 3.1; Swagger UI 4 refuses to render it.
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    assert re.search(r'"5\.\d+\.\d+"', bundle)


def test_docs_pages_are_not_operations(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/docs", "/redoc"} & set(paths)
    assert not any(path.startswith("/docs-assets") for path in paths)


def test_an_unknown_asset_is_404_and_no_path_escapes_the_folder(client):
    assert client.get("/docs-assets/nothing.js").status_code == 404
    assert client.get("/docs-assets/..%2F..%2Fapp.py").status_code == 404
