"""Signed-in sessions: an HMAC-signed cookie that names the key, never carries its value.

Why signed and server-side both: the cookie says who the user is (key id, name, role) and holds
the CSRF token, so it must not be forgeable, hence the HMAC with a secret made at the first start
and kept 0600 in the state folder. The key's value is needed to call the evpm API on the user's
behalf (the API enforces the key's role as well), so it stays in this process's memory, keyed by
the session id: a stolen cookie alone is not the key, and a restart of the console simply signs
everybody out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from evpm.access import Role

__all__ = ["COOKIE", "Session", "SessionStore", "load_secret"]

COOKIE = "evpm_console"
_SECRET_BYTES = 32


def load_secret(state_dir: Path) -> bytes:
    """The signing secret: read from ``<state>/console/secret``, made (0600) on first use."""
    path = state_dir / "console" / "secret"
    if path.exists():
        secret = bytes.fromhex(path.read_text().strip())
        if len(secret) >= _SECRET_BYTES:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(_SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex())
    os.chmod(path, 0o600)  # also when the file existed with wider bits
    return secret


class Session(BaseModel):
    """What the cookie holds (signed): who signed in, with which role, until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sid: str
    key_id: str
    key_name: str
    role: Role
    csrf: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionStore:
    """Makes and checks session cookies; keeps each session's key value in memory."""

    def __init__(
        self, secret: bytes, *, hours: float = 12.0, clock: Callable[[], float] = time.time
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret
        self.seconds = hours * 3600
        self._clock = clock
        self._keys: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def open(
        self, *, key_id: str, key_name: str, role: Role, key_value: str
    ) -> tuple[Session, str]:
        """A new session and its cookie value."""
        now = self._clock()
        session = Session(
            sid=secrets.token_urlsafe(24),
            key_id=key_id,
            key_name=key_name,
            role=role,
            csrf=secrets.token_urlsafe(24),
            expires=now + self.seconds,
        )
        with self._lock:
            self._forget_expired(now)
            self._keys[session.sid] = (key_value, session.expires)
        payload = _b64(session.model_dump_json().encode())
        return session, f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie names, or None: unsigned, altered, expired, or unknown here
        (signed out, or made before this process started)."""
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            session = Session.model_validate(json.loads(_unb64(payload)))
        except (ValueError, ValidationError):
            return None
        if session.expires <= self._clock():
            return None
        with self._lock:
            known = self._keys.get(session.sid)
        return session if known is not None else None

    def key_value(self, session: Session) -> str | None:
        """The API key value behind a session (for calls to the evpm API on its behalf)."""
        with self._lock:
            known = self._keys.get(session.sid)
        return known[0] if known else None

    def close(self, session: Session) -> None:
        with self._lock:
            self._keys.pop(session.sid, None)

    def _forget_expired(self, now: float) -> None:
        for sid in [sid for sid, (_, until) in self._keys.items() if until <= now]:
            del self._keys[sid]

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token or "")
