"""Who holds an API key: the sign-in check against API Gateway.

The console accepts exactly the keys the API accepts: an enabled key whose ``evpm:role`` tag
names a role (:data:`evpm.access.ROLE_TAG`). The lookup is by value, so it lists the keys with
their values (``get_api_keys(includeValues=True)``), which only a process holding the account's
credentials can do: the console runs beside the emulator with them, as ``evpm status`` does.
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from evpm.access import ROLE_TAG, Role, parse_role

__all__ = ["ApiGatewayKeys", "ApiKey", "KeyDirectory"]


class ApiKey(BaseModel):
    """One API key as the console sees it (no value)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: Role | None
    enabled: bool


class KeyDirectory(Protocol):
    """Finds the key with a given value; None when no key has it."""

    def find(self, value: str) -> ApiKey | None: ...


class ApiGatewayKeys:
    """:class:`KeyDirectory` over API Gateway (the emulator's, or AWS's)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def find(self, value: str) -> ApiKey | None:
        if not value:
            return None
        paginator = self._client.get_paginator("get_api_keys")
        for page in paginator.paginate(includeValues=True):
            for key in page.get("items", []):
                if hmac.compare_digest(str(key.get("value", "")), value):
                    return ApiKey(
                        id=key["id"],
                        name=key.get("name") or key["id"],
                        role=parse_role((key.get("tags") or {}).get(ROLE_TAG)),
                        enabled=bool(key.get("enabled", True)),
                    )
        return None
