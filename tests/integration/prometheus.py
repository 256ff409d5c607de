"""The running Prometheus, as the integration tests read it: its URL and instant queries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import System


def prometheus_url(system: System) -> str:
    """Prometheus's URL from `evpm status --json` (fails the test when it names none)."""
    info = system.info
    url = ((info.get("monitoring") or {}).get("prometheus") or {}).get("url") or (
        info.get("prometheus") or {}
    ).get("url")
    if not url:
        pytest.fail(f"`evpm status --json` names no Prometheus URL: {sorted(info)}")
    return url.rstrip("/")


def query(prometheus: str, expr: str, at: float | None = None) -> dict[str, Any]:
    """The instant query's whole answer (now, or at the Unix time ``at``), unchecked."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = at
    return httpx.get(f"{prometheus}/api/v1/query", params=params, timeout=30).json()


def single_value(prometheus: str, expr: str, at: float | None = None) -> float | None:
    """The expression's one value, or None when it has no series (at most one is allowed)."""
    answer = query(prometheus, expr, at)
    assert answer.get("status") == "success", (expr, answer)
    result = answer["data"]["result"]
    assert len(result) <= 1, (expr, result)
    return float(result[0]["value"][1]) if result else None
