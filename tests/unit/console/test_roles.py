"""Roles: a viewer reads; an ml-admin also promotes, rolls back and starts runs, each after a
confirmation page, with a CSRF token; a direct POST with a viewer session gets 403."""

from __future__ import annotations

from fastapi.testclient import TestClient

from console.app import Sources
from tests.unit.console.conftest import csrf_of


def test_a_viewer_sees_no_promote_rollback_or_start_button(signed_in) -> None:
    client = signed_in("viewer")
    models = client.get("/models").text
    assert 'data-action="promote"' not in models and 'data-action="rollback"' not in models
    assert "Start a run" not in client.get("/lifecycle").text


def test_an_ml_admin_sees_them(signed_in) -> None:
    client = signed_in("ml-admin")
    models = client.get("/models").text
    assert 'href="/models/ev-rul/promote?version=2" data-action="promote"' in models
    assert 'data-action="rollback"' in models
    assert 'href="/lifecycle/start"' in client.get("/lifecycle").text


def test_a_direct_post_with_a_viewer_session_gets_403(signed_in, sources: Sources) -> None:
    client = signed_in("viewer")
    csrf = csrf_of(client)
    for path, data in (
        ("/models/ev-rul/promote", {"version": "2"}),
        ("/models/ev-rul/rollback", {}),
        ("/lifecycle/start", {"model-ev-rul": "on"}),
    ):
        response = client.post(path, data={"csrf": csrf, **data})
        assert response.status_code == 403, path
        assert "lacks permission" in response.text
    assert client.get("/models/ev-rul/promote?version=2").status_code == 403
    assert sources.registry.moves == [] and sources.lifecycle.started == []


def test_a_post_without_the_csrf_token_gets_403(signed_in, sources: Sources) -> None:
    client = signed_in("ml-admin")
    response = client.post("/models/ev-rul/promote", data={"version": "2"})
    assert response.status_code == 403 and "CSRF" in response.text
    assert sources.registry.moves == []


def test_promote_confirms_then_moves_with_the_users_key(signed_in, sources: Sources) -> None:
    client = signed_in("ml-admin")
    confirm = client.get("/models/ev-rul/promote?version=2")
    assert confirm.status_code == 200 and "Confirm: promote" in confirm.text
    done = client.post("/models/ev-rul/promote", data={"csrf": csrf_of(client), "version": "2"})
    assert done.status_code == 200 and "Champion is now v2" in done.text
    assert sources.registry.moves == [("admin-secret", "promote", "ev-rul", 2)]


def test_rollback_defaults_to_the_previous_version(signed_in, sources: Sources) -> None:
    client = signed_in("ml-admin")
    assert client.get("/models/ev-rul/rollback").status_code == 200
    client.post("/models/ev-rul/rollback", data={"csrf": csrf_of(client), "version": ""})
    assert sources.registry.moves == [("admin-secret", "rollback", "ev-rul", None)]


def test_a_bad_version_or_model_is_refused_not_a_traceback(signed_in) -> None:
    client = signed_in("ml-admin")
    csrf = csrf_of(client)
    bad = client.post("/models/ev-rul/promote", data={"csrf": csrf, "version": "two"})
    assert bad.status_code == 409 and "must be a number" in bad.text
    assert (
        client.post("/models/ev-nope/promote", data={"csrf": csrf, "version": "1"}).status_code
        == 404
    )


def test_start_a_run_sends_the_clis_request_with_the_console_trigger(
    signed_in, sources: Sources
) -> None:
    client = signed_in("ml-admin")
    form = client.get("/lifecycle/start")
    assert form.status_code == 200 and "Confirm: start the run" in form.text
    response = client.post(
        "/lifecycle/start",
        data={"csrf": csrf_of(client), "model-ev-rul": "on", "model-ev-anomaly": "on"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/lifecycle/executions/console-20260105T140000-fedcba"
    [request] = sources.lifecycle.started
    assert request.execution_input() == {
        "trigger": "console by dev-admin",
        "dataset": "fleet",
        "models": ["anomaly", "rul"],
        "options": {"corrupt_labels": False, "force_smoke_failure": False},
    }


def test_a_fleet_service_key_reads_but_may_not_move(app_client: TestClient, signed_in) -> None:
    client = signed_in("fleet-service")
    assert client.get("/models").status_code == 200
    assert client.post("/models/ev-rul/rollback", data={"csrf": csrf_of(client)}).status_code == 403
