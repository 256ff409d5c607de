"""Sign-in with an API key, the session cookie, and pages that need one."""

from __future__ import annotations

import stat
from pathlib import Path

from fastapi.testclient import TestClient

from console.sessions import COOKIE, SessionStore, load_secret
from tests.unit.console.conftest import login_token, sign_in


def test_every_page_but_healthz_and_login_needs_a_session(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    assert app_client.get("/login").status_code == 200
    for path in (
        "/lifecycle",
        "/models",
        "/fleet",
        "/monitoring",
        "/fleet/vehicles/EV-0001",
        "/lifecycle/executions/x",
    ):
        response = app_client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


def test_the_sign_in_form_has_a_labelled_key_field(app_client: TestClient) -> None:
    page = app_client.get("/login").text
    assert '<label for="api_key">API key</label>' in page
    assert 'id="api_key" name="api_key" type="password"' in page


def test_a_wrong_key_gets_the_sign_in_page_again_with_a_message(app_client: TestClient) -> None:
    response = sign_in(app_client, "not-a-key")
    assert response.status_code == 401
    assert "That API key is not valid" in response.text
    assert 'name="api_key"' in response.text
    assert COOKIE not in response.cookies


def test_revoked_and_untagged_keys_are_refused_with_the_reason(app_client: TestClient) -> None:
    revoked = sign_in(app_client, "revoked-secret")
    assert revoked.status_code == 401 and "is revoked" in revoked.text
    untagged = sign_in(app_client, "norole-secret")
    assert untagged.status_code == 401 and "has no evpm role" in untagged.text


def test_a_good_key_sets_a_strict_httponly_cookie_without_the_key(app_client: TestClient) -> None:
    response = sign_in(app_client, "viewer-secret", next_path="/models")
    assert response.status_code == 303 and response.headers["location"] == "/models"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "viewer-secret" not in cookie
    assert app_client.get("/lifecycle").status_code == 200


def test_sign_in_only_redirects_within_the_console(app_client: TestClient) -> None:
    response = sign_in(app_client, "viewer-secret", next_path="//evil.example/")
    assert response.headers["location"] == "/lifecycle"


def test_sign_in_needs_the_forms_own_token(app_client: TestClient) -> None:
    login_token(app_client)
    response = app_client.post("/login", data={"login_csrf": "forged", "api_key": "viewer-secret"})
    assert response.status_code == 403
    assert COOKIE not in response.cookies


def test_an_altered_cookie_is_no_session(app_client: TestClient) -> None:
    sign_in(app_client, "viewer-secret")
    value = app_client.cookies[COOKIE]
    payload, signature = value.rsplit(".", 1)
    app_client.cookies.set(COOKIE, payload + "x." + signature)
    assert app_client.get("/lifecycle").status_code == 303


def test_sign_out_needs_the_csrf_token_and_ends_the_session(signed_in) -> None:
    client = signed_in("viewer")
    assert client.post("/logout", data={}).status_code == 403
    token = client.get("/lifecycle").text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert client.get("/lifecycle").status_code == 303


def test_the_secret_is_made_once_and_kept_0600(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    path = tmp_path / "console" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path) == first and len(first) == 32


def test_sessions_expire_and_are_forgotten_by_a_new_process() -> None:
    now = [1000.0]
    store = SessionStore(b"s" * 32, hours=1, clock=lambda: now[0])
    session, cookie = store.open(key_id="k", key_name="n", role="viewer", key_value="v")
    assert store.read(cookie) == session and store.key_value(session) == "v"
    assert SessionStore(b"s" * 32, hours=1, clock=lambda: now[0]).read(cookie) is None
    now[0] += 3601
    assert store.read(cookie) is None
