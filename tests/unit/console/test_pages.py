"""The pages with fake sources: what they show, 404 pages for what does not exist, escaping,
and a page (never a traceback) when something breaks."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from console.app import Sources
from console.errors import SourceUnavailableError
from console.monitoring import MetricReading, Series
from tests.unit.console.fakes import HTML_VEHICLE


def test_the_executions_table_lists_status_trigger_start_and_duration(signed_in) -> None:
    page = signed_in("viewer").get("/lifecycle").text
    assert "2 executions" in page
    row = page.split('data-status="SUCCEEDED"')[1].split("</tr>")[0]
    assert "make-up-20260105T120000-abcdef" in row and ">make-up<" in row
    assert "2026-01-05 12:00:00" in row and "2.5 s" in row


def test_the_executions_table_filters_by_status(signed_in) -> None:
    page = signed_in("viewer").get("/lifecycle?status=FAILED").text
    assert "1 execution with status FAILED" in page
    assert "make-up-20260105T120000-abcdef" not in page
    assert '<option value="FAILED" selected>' in page


def test_an_execution_page_draws_the_definition_with_the_history(signed_in) -> None:
    page = signed_in("viewer").get("/lifecycle/executions/ci-20260105T130000-123456").text
    data = json.loads(re.search(r'id="graph-data">(.*?)</script>', page, re.S).group(1))
    statuses = {n["id"]: n["status"] for n in data["nodes"] if n["status"] != "marker"}
    assert statuses == {
        "Check": "succeeded",
        "Reject": "failed",
        "Work": "not-run",
        "Done": "not-run",
        "WorkFailed": "not-run",
    }
    assert "Rejected: bad request" in page
    for script in (
        "/vendor/cytoscape.min.js",
        "/vendor/cytoscape-dagre.js",
        "/static/execution.js",
    ):
        assert f'src="{script}"' in page


def test_a_running_execution_refreshes_itself(signed_in, sources: Sources) -> None:
    detail, events = sources.lifecycle.runs["make-up-20260105T120000-abcdef"]
    sources.lifecycle.runs["make-up-20260105T120000-abcdef"] = (
        detail.model_copy(update={"status": "RUNNING", "stopped": None}),
        events[:4],
    )
    client = signed_in("viewer")
    assert 'src="/static/refresh.js"' in client.get("/lifecycle").text
    page = client.get("/lifecycle/executions/make-up-20260105T120000-abcdef").text
    assert 'src="/static/refresh.js"' in page and 'data-state="Work" data-status="running"' in page


@pytest.mark.parametrize(
    "path",
    [
        "/lifecycle/executions/no-such-run",
        "/lifecycle/executions/bad%20name%3Cb%3E",
        "/fleet/vehicles/EV-NOPE",
        "/models/ev-nope/promote?version=1",
        "/no/such/page",
    ],
)
def test_what_does_not_exist_is_a_404_page(signed_in, path: str) -> None:
    response = signed_in("ml-admin").get(path)
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text and "Traceback" not in response.text


def test_a_vehicle_id_with_html_renders_as_text(signed_in) -> None:
    client = signed_in("viewer")
    fleet = client.get("/fleet").text
    assert HTML_VEHICLE not in fleet and "<b>mode</b>" not in fleet
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in fleet
    assert f'href="/fleet/vehicles/{quote(HTML_VEHICLE, safe="")}"' in fleet
    response = client.get(f"/fleet/vehicles/{quote(HTML_VEHICLE, safe='')}")
    assert response.status_code == 404
    assert HTML_VEHICLE not in response.text and "&lt;script&gt;" in response.text


def test_the_vehicle_page_carries_the_chart_series_oldest_first(signed_in) -> None:
    page = signed_in("viewer").get("/fleet/vehicles/EV-0001").text
    series = json.loads(re.search(r'id="series-data">(.*?)</script>', page, re.S).group(1))
    assert series["rul"] == [100.0 - h for h in range(1, 11)] and len(series["t"]) == 10
    assert series["t"] == sorted(series["t"])
    assert set(series["probabilities"]) == {"none", "brake_wear"}
    assert 'src="/vendor/chart.umd.min.js"' in page and "10 predictions drawn" in page


def test_the_explanation_needs_the_predict_permission(signed_in) -> None:
    client = signed_in("viewer")
    assert (
        "need a key with the predict permission"
        in client.get("/fleet/vehicles/EV-0001/explanation").text
    )


def test_the_explanation_lists_contributions_per_signal(app_client: TestClient, signed_in) -> None:
    page = signed_in("fleet-service").get("/fleet/vehicles/EV-0001/explanation").text
    assert "Brake_Pad_Wear" in page and "-8" in page and "ev-rul v1" in page


def test_the_monitoring_page_says_drift_does_not_exist_yet(signed_in) -> None:
    page = signed_in("viewer").get("/monitoring").text
    assert "Drift monitoring does not exist yet" in page
    assert "EvpmNoTraffic" in page and "no &lt;traffic&gt;" in page
    assert "evpm-api" in page and "no data yet" in page


def test_the_monitoring_page_shows_drift_once_it_exists(signed_in, sources: Sources) -> None:
    sources.monitoring.drift_families.append(
        MetricReading(
            label="evpm_drift_psi",
            query="evpm_drift_psi",
            unit="",
            series=[Series(labels={"signal": "SoH"}, value=0.31)],
        )
    )
    page = signed_in("viewer").get("/monitoring").text
    assert "does not exist yet" not in page and "evpm_drift_psi" in page and "signal=SoH" in page


def test_a_source_that_does_not_answer_gives_a_503_page(
    signed_in, sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**_kwargs):
        raise SourceUnavailableError("Step Functions did not answer: refused")

    monkeypatch.setattr(sources.lifecycle, "executions", down)
    response = signed_in("viewer").get("/lifecycle")
    assert response.status_code == 503 and "Step Functions did not answer" in response.text


def test_an_unexpected_error_is_a_500_page_without_a_traceback(
    signed_in, sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_key):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sources.registry, "models", broken)
    client = signed_in("viewer")
    client_raising = TestClient(
        client.app, raise_server_exceptions=False, cookies=client.cookies, follow_redirects=False
    )
    response = client_raising.get("/models")
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_pages_carry_a_same_origin_content_security_policy(signed_in) -> None:
    response = signed_in("viewer").get("/lifecycle")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_front_end_packages_are_served_from_node_modules(app_client: TestClient) -> None:
    for name in ("chart.umd.min.js", "cytoscape.min.js", "dagre.min.js", "cytoscape-dagre.js"):
        response = app_client.get(f"/vendor/{name}")
        assert response.status_code == 200, name
        assert len(response.content) > 10_000
    assert app_client.get("/vendor/evil.js").status_code == 404
