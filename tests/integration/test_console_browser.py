"""The ops console in Debian's Chromium against the suite's system (``evpm up`` starts it):
sign-in and roles, the lifecycle graph against GetExecutionHistory (the latest execution and a
failed one), the models page against MLflow's registry, the fleet and monitoring pages, escaping
and 404 pages, and an axe-core accessibility check of every page (no serious or critical
violation). Screenshots are saved under ``<state>/artifacts/console``.

Cost: one execution the test starts fails at its first state (an empty model list, refused by
CheckRequest in well under a second), and a few readings of one vehicle go through the stream;
everything else reads what ``evpm up`` made.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from evpm.telemetry import EXAMPLE_RECORD
from tests.integration.browser import chromium, foreign, requested_urls
from tests.integration.conftest import System
from tests.integration.console_helpers import (
    axe_violations,
    history_statuses,
    screenshot,
    sign_in,
)

VEHICLE = "EV-CONSOLE-1"
HTML_ID = '<img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def console_url(system: System) -> str:
    url = system.info["console"]["url"]
    assert system.info["console"]["running"], system.info["console"]
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def _machine(system: System) -> str:
    return system.info["state_machine_arn"]


@pytest.fixture(scope="module")
def failed_execution(system: System) -> str:
    """An execution refused at CheckRequest (no model asked for): FAILED in under a second."""
    sfn = system.client("stepfunctions")
    name = f"console-test-{int(time.time())}"
    arn = sfn.start_execution(
        stateMachineArn=_machine(system),
        name=name,
        input=json.dumps({"trigger": "console-test", "models": []}),
    )["executionArn"]
    deadline = time.monotonic() + 60
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the refused execution did not end"
        time.sleep(0.5)
    return name


@pytest.fixture(scope="module")
def scored_vehicle(system: System) -> str:
    """A few readings of one vehicle through the stream, until their predictions are stored."""
    kinesis = system.client("kinesis")
    for hour in range(3):
        record = {
            **EXAMPLE_RECORD,
            "vehicle_id": VEHICLE,
            "timestamp": f"2026-01-05T{10 + hour:02d}:00:00Z",
        }
        kinesis.put_record(
            StreamName=system.stream, Data=json.dumps(record).encode(), PartitionKey=VEHICLE
        )
    table = system.client("dynamodb")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        items = table.query(
            TableName=system.table,
            KeyConditionExpression="vehicle_id = :v",
            ExpressionAttributeValues={":v": {"S": VEHICLE}},
        )["Items"]
        if len(items) == 3:
            return VEHICLE
        time.sleep(1)
    pytest.fail("the vehicle's predictions were not stored within 90 s")


def _check_page(browser: WebDriver, name: str) -> None:
    """Every page: a screenshot, nothing fetched from outside, no CSP violation, and axe-core
    finds no serious or critical violation."""
    screenshot(browser, name)
    urls = requested_urls(browser)
    assert foreign(urls) == [], f"{name}: requests that left 127.0.0.1: {foreign(urls)}"
    csp = [
        e["message"]
        for e in browser.get_log("browser")
        if "Content Security Policy" in e["message"]
    ]
    assert csp == [], f"{name}: {csp}"
    violations = axe_violations(browser)
    assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"


def _drawn(browser: WebDriver) -> dict[str, str]:
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-graph-ready") == "true"
    )
    nodes = browser.execute_script(
        "return window.evpmGraph.nodes().map(n => [n.id(), n.data('status')]);"
    )
    return {node: status for node, status in nodes if status != "marker"}


def _expected(system: System, name: str) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    sfn = system.client("stepfunctions")
    arn = _machine(system).replace(":stateMachine:", ":execution:", 1) + f":{name}"
    described = sfn.describe_execution(executionArn=arn)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=_machine(system))["definition"]
    )
    visited = history_statuses(events, described["status"])
    return visited, described, list(definition["States"])


def _assert_graph_equals_history(browser: WebDriver, system: System, name: str) -> dict[str, Any]:
    visited, described, states = _expected(system, name)
    drawn = _drawn(browser)
    assert set(drawn) == set(states), f"drawn {sorted(drawn)} vs defined {sorted(states)}"
    assert {s: st for s, st in drawn.items() if st != "not-run"} == visited
    table = {
        row.get_attribute("data-state"): row.get_attribute("data-status")
        for row in browser.find_elements(By.CSS_SELECTOR, "#states tbody tr")
    }
    assert table == drawn
    return described


def test_a_wrong_key_gets_the_sign_in_page_again_with_a_message(
    console_url: str, browser: WebDriver
) -> None:
    browser.delete_all_cookies()
    browser.get(f"{console_url}/login")
    _check_page(browser, "01-login")
    field = browser.find_element(By.ID, "api_key")
    field.send_keys("not-a-key-of-this-system")
    field.submit()
    message = WebDriverWait(browser, 30).until(
        ec.visibility_of_element_located((By.ID, "login-error"))
    )
    assert "not valid" in message.text
    assert urllib.parse.urlsplit(browser.current_url).path == "/login"
    screenshot(browser, "02-login-wrong-key")


def test_the_latest_execution_is_drawn_as_its_history_says(
    system: System, console_url: str, browser: WebDriver
) -> None:
    sign_in(browser, console_url, system.keys["viewer"])
    browser.get(f"{console_url}/lifecycle?status=SUCCEEDED")
    _check_page(browser, "03-executions")
    latest = browser.find_element(By.CSS_SELECTOR, "#executions tbody tr td a")
    name = latest.text
    latest.click()
    described = _assert_graph_equals_history(browser, system, name)
    assert described["status"] == "SUCCEEDED"
    assert browser.find_element(By.ID, "execution-status").text == "SUCCEEDED"
    browser.find_element(By.CSS_SELECTOR, "[data-show-state='Promote']").click()
    details = browser.find_element(By.ID, "state-details").text
    assert "Promote" in details and "Output" in details
    _check_page(browser, "04-execution-succeeded")


def test_a_failed_execution_shows_its_failing_state_and_error(
    system: System, console_url: str, browser: WebDriver, failed_execution: str
) -> None:
    sign_in(browser, console_url, system.keys["viewer"])
    browser.get(f"{console_url}/lifecycle?status=FAILED")
    rows = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#executions tbody td a")]
    assert failed_execution in rows
    browser.find_element(By.LINK_TEXT, failed_execution).click()
    described = _assert_graph_equals_history(browser, system, failed_execution)
    assert described["status"] == "FAILED"
    assert _drawn(browser)["RejectRequest"] == "failed"
    assert described["error"] in browser.find_element(By.ID, "execution-error").text
    # the failing state's details are shown on opening, with its error
    details = browser.find_element(By.ID, "state-details").text
    assert "RejectRequest" in details and "InvalidLifecycleRequest" in details
    _check_page(browser, "05-execution-failed")


def _mlflow(system: System, path: str, **params: Any) -> dict[str, Any]:
    url = f"{system.info['mlflow']['url']}/api/2.0/mlflow/{path}"
    response = httpx.get(url, params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def test_the_models_page_shows_mlflows_registry(
    system: System, console_url: str, browser: WebDriver
) -> None:
    sign_in(browser, console_url, system.keys["viewer"])
    browser.get(f"{console_url}/models")
    for model in _mlflow(system, "registered-models/search")["registered_models"]:
        name = model["name"]
        section = browser.find_element(By.ID, f"model-{name}")
        versions = _mlflow(system, "model-versions/search", filter=f"name='{name}'")[
            "model_versions"
        ]
        shown = {
            d.get_attribute("data-version"): d
            for d in section.find_elements(By.CSS_SELECTOR, "details.version")
        }
        assert set(shown) == {v["version"] for v in versions}, name
        aliases = section.find_element(By.CSS_SELECTOR, "[data-aliases]").get_attribute(
            "textContent"
        )
        for alias in model.get("aliases", []):
            assert f"{alias['alias']} → v{alias['version']}" in aliases
        for v in versions:
            tags = {t["key"]: t["value"] for t in v.get("tags", [])}
            block = shown[v["version"]]
            gate = block.find_element(By.CSS_SELECTOR, "[data-gate]").get_attribute("textContent")
            assert gate.strip() == f"gate {'passed' if tags['gate_passed'] == 'true' else 'failed'}"
            checks = block.find_elements(By.CSS_SELECTOR, "[data-gate-report] tbody tr[data-check]")
            assert len(checks) == len(json.loads(tags["gate_report"])), (name, v["version"])
    _check_page(browser, "06-models")


def test_a_viewer_sees_no_promote_button_and_a_direct_post_gets_403(
    system: System, console_url: str, browser: WebDriver
) -> None:
    sign_in(browser, console_url, system.keys["viewer"])
    browser.get(f"{console_url}/models")
    assert browser.find_elements(By.CSS_SELECTOR, "[data-action]") == []
    browser.get(f"{console_url}/lifecycle")
    assert browser.find_elements(By.ID, "start-run") == []
    csrf = browser.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    for path, form in (
        ("/models/ev-rul/promote", {"version": "1"}),
        ("/models/ev-rul/rollback", {}),
        ("/lifecycle/start", {"model-ev-rul": "on"}),
    ):
        response = httpx.post(
            f"{console_url}{path}", data={"csrf": csrf, **form}, cookies=cookies, timeout=30
        )
        assert response.status_code == 403, (path, response.text[:300])
    # an ml-admin sees the actions (promote only appears on a version that does not serve)
    sign_in(browser, console_url, system.keys["ml-admin"])
    browser.get(f"{console_url}/models")
    assert browser.find_elements(By.CSS_SELECTOR, "[data-action='rollback']")
    browser.get(f"{console_url}/lifecycle")
    browser.find_element(By.ID, "start-run").click()
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "confirm")))
    _check_page(browser, "07-start-run-confirmation")


def test_the_fleet_pages_chart_a_vehicle_and_explain_it(
    system: System, console_url: str, browser: WebDriver, scored_vehicle: str
) -> None:
    sign_in(browser, console_url, system.keys["fleet-service"])
    browser.get(f"{console_url}/fleet")
    _check_page(browser, "08-fleet")
    field = browser.find_element(By.ID, "vehicle")
    field.send_keys(scored_vehicle)
    field.submit()
    body = WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.TAG_NAME, "body")))
    WebDriverWait(browser, 30).until(lambda b: body.get_attribute("data-charts-ready") == "true")
    WebDriverWait(browser, 60).until(lambda b: body.get_attribute("data-explanation-ready"))
    assert body.get_attribute("data-explanation-ready") == "true", browser.find_element(
        By.ID, "explanation"
    ).text
    drawn = browser.execute_script(
        "return window.evpmCharts.map(c => c.data.datasets.map(d => d.data.length));"
    )
    assert drawn[0] == [3, 3, 3] and drawn[1] == [3]
    assert browser.find_elements(By.CSS_SELECTOR, "#explanation figure.explain")
    _check_page(browser, "09-vehicle")


def test_monitoring_shows_metrics_alerts_and_what_drift_has(
    system: System, console_url: str, browser: WebDriver
) -> None:
    sign_in(browser, console_url, system.keys["viewer"])
    browser.get(f"{console_url}/monitoring")
    assert browser.find_element(By.ID, "metrics").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert browser.find_elements(By.ID, "drift") or browser.find_elements(By.ID, "drift-absent")
    _check_page(browser, "10-monitoring")


def test_unknown_things_are_404_pages_and_ids_render_as_text(
    system: System, console_url: str, browser: WebDriver
) -> None:
    sign_in(browser, console_url, system.keys["viewer"])
    browser.get(f"{console_url}/lifecycle/executions/no-such-execution")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    browser.get(f"{console_url}/fleet/vehicles/{urllib.parse.quote(HTML_ID, safe='')}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert HTML_ID in browser.find_element(By.ID, "error-message").text
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.title != "1"
    _check_page(browser, "11-not-found")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    response = httpx.get(f"{console_url}/fleet/vehicles/EV-NEVER-SEEN", cookies=cookies, timeout=60)
    assert response.status_code == 404 and "Traceback" not in response.text
