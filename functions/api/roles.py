"""Which role an API key has: the key's ``evpm:role`` tag, read with apigateway GetApiKey.

Why the tag is the source of truth: it travels with the key (``evpm keys create`` sets it, the
serving stack sets it on the dev keys), so there is no second table to keep in step, and an
operator can see a key's role in the console. The lookup is cached per warm container for a
short TTL: a busy function makes one GetApiKey per key per minute, and a changed tag takes
effect within that minute. Revocation does not wait for the TTL: API Gateway itself refuses a
disabled key or one that left the usage plan before the function runs.

The function talks to :class:`RoleResolver`, not to boto3, so tests plug in a dict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from evpm.access import ROLE_TAG, Role, parse_role

__all__ = ["ApiKeyTagResolver", "RoleLookupError", "RoleResolver"]

logger = Logger(child=True)

_MAX_CACHED_KEYS = 1024


class RoleLookupError(Exception):
    """The key's role could not be read (API Gateway unreachable or throttling)."""


class RoleResolver(Protocol):
    """Maps an API key id to its role; ``None`` for an unknown key or one without a valid role."""

    def role_of(self, key_id: str) -> Role | None: ...


class ApiKeyTagResolver:
    """GetApiKey → ``tags[evpm:role]``, cached for ``ttl_seconds`` (0 disables the cache).

    Failures are not cached: a throttled lookup is retried on the next request instead of
    locking a legitimate caller out for a minute.
    """

    def __init__(
        self,
        *,
        client: Any | None = None,
        ttl_seconds: float = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError(f"ttl_seconds must be >= 0, got {ttl_seconds}")
        self._client = client
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[Role | None, float]] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("apigateway")
        return self._client

    def role_of(self, key_id: str) -> Role | None:
        now = self._clock()
        cached = self._cache.get(key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        role = self._lookup(key_id)
        if self.ttl_seconds:
            if len(self._cache) >= _MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[key_id] = (role, now + self.ttl_seconds)
        return role

    def _lookup(self, key_id: str) -> Role | None:
        try:
            key = self.client.get_api_key(apiKey=key_id, includeValue=False)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                logger.warning("API key not found", extra={"api_key_id": key_id})
                return None
            raise RoleLookupError(f"GetApiKey failed: {exc}") from exc
        except BotoCoreError as exc:
            raise RoleLookupError(f"GetApiKey failed: {exc}") from exc
        if not key.get("enabled", True):
            return None
        return parse_role((key.get("tags") or {}).get(ROLE_TAG))
