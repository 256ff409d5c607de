"""The API docs in a real browser, through the emulated API Gateway: open without a key, every
asset from this machine, and operations run from the page once a key is entered.

A user opens ``<API>/docs`` from ``evpm status``; the page, its Swagger UI assets and the schema
pass API Gateway without a key, and "Try it out" calls the API under the same stage path the
page came from (``/_aws/execute-api/<id>/v1`` here, ``/v1`` on AWS).
"""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.browser import chromium, foreign, requested_urls
from tests.integration.conftest import System

# Operations a user must see listed (Swagger UI's ids: operations-<tag>-<operationId>).
HEALTH = "operations-ops-health_health_get"
PREDICT = "operations-predictions-predict_predict_post"
LISTED = {"/health", "/predict", "/predict/batch", "/explain", "/feedback", "/models"}
WAIT_S = 60  # the first request may start the API function cold


@pytest.fixture(scope="module")
def browser() -> WebDriver:
    with chromium() as driver:
        yield driver


def _open_docs(browser: WebDriver, system: System) -> None:
    browser.get(f"{system.api_url}/docs")
    WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.ID, PREDICT)))


def _authorize(browser: WebDriver, key: str) -> None:
    browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
    field = WebDriverWait(browser, 10).until(
        ec.visibility_of_element_located((By.ID, "api_key_value"))
    )
    field.send_keys(key)
    form = field.find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.CSS_SELECTOR, "button.modal-btn.authorize").click()
    browser.find_element(By.CSS_SELECTOR, "button.btn-done").click()


def _try_it_out(browser: WebDriver, operation: str) -> str:
    """Expand the operation, press "Try it out" and "Execute"; the HTTP status it shows."""
    block = browser.find_element(By.ID, operation)
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(block, 10).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, ".try-out__btn"))
    ).click()
    block.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = WebDriverWait(block, WAIT_S).until(
        ec.visibility_of_element_located(
            (By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
        )
    )
    return status.text.strip()


def test_the_schema_and_the_docs_pages_need_no_key(system: System) -> None:
    for page in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
        response = httpx.get(f"{system.api_url}{page}", timeout=60)
        assert response.status_code == 200, f"{page}: {response.status_code} {response.text[:200]}"
    # the operations the page describes still need a key
    assert httpx.post(f"{system.api_url}/predict", json={}, timeout=60).status_code == 403


def test_docs_list_the_operations_with_nothing_loaded_from_outside(
    system: System, browser: WebDriver
) -> None:
    _open_docs(browser, system)
    paths = {
        e.text.replace("\u200b", "")
        for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert paths >= LISTED, f"missing from the page: {LISTED - paths}"
    urls = requested_urls(browser)
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in urls), urls
    assert any(url.endswith("/openapi.json") for url in urls), urls
    assert foreign(urls) == [], f"requests that left 127.0.0.1: {foreign(urls)}"


def test_a_key_entered_on_the_page_runs_health_and_predict(
    system: System, browser: WebDriver
) -> None:
    _open_docs(browser, system)
    _authorize(browser, system.keys["fleet-service"])
    assert _try_it_out(browser, HEALTH) == "200"
    # the body is the documented example reading; the fleet-service key may score it
    assert _try_it_out(browser, PREDICT) == "200"
    urls = requested_urls(browser)
    assert any(url.endswith("/predict") for url in urls), urls
    assert foreign(urls) == [], f"requests that left 127.0.0.1: {foreign(urls)}"


def test_redoc_renders_from_local_assets(system: System, browser: WebDriver) -> None:
    browser.get(f"{system.api_url}/redoc")
    WebDriverWait(browser, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-section-id^='tag/predictions']"))
    )
    urls = requested_urls(browser)
    assert any(url.endswith("/docs-assets/redoc.standalone.js") for url in urls), urls
    assert foreign(urls) == [], f"requests that left 127.0.0.1: {foreign(urls)}"
