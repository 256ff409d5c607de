"""A small client of the evpm API that calls it with the signed-in user's key.

Why through the API and not straight to SSM and the registry: the API checks the key's role on
every call, so a promotion from the console is refused by the API too when the key may not
promote, and the console never holds more power than its user.
"""

from __future__ import annotations

from typing import Any

import httpx

from console.errors import (
    NotFoundError,
    PermissionDeniedError,
    RefusedError,
    SourceUnavailableError,
)

__all__ = ["EvpmApi"]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return detail if isinstance(detail, str) else str(detail)[:300]


class EvpmApi:
    """GET and POST on the API's stage URL with ``x-api-key``; errors become the console's."""

    def __init__(
        self,
        base_url: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def call(
        self,
        method: str,
        path: str,
        key: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        if not self.base_url:
            raise SourceUnavailableError("the evpm API is not deployed (no serving stack)")
        try:
            response = self._client.request(
                method,
                f"{self.base_url}{path}",
                headers={"x-api-key": key},
                json=json,
                params=params,
            )
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(
                f"the evpm API did not answer {method} {path}: {exc}"
            ) from exc
        if response.status_code == 403:
            raise PermissionDeniedError(f"the API refused {method} {path}: {_detail(response)}")
        if response.status_code == 404:
            raise NotFoundError(_detail(response))
        if response.status_code in (400, 409, 422):
            raise RefusedError(_detail(response))
        if response.status_code >= 400:
            raise SourceUnavailableError(
                f"the API answered {response.status_code} to {method} {path}: {_detail(response)}"
            )
        return response.json()
