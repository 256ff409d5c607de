"""A small MLflow model-registry client over its REST API (standard library only).

The Lambda functions must not carry the ``mlflow`` package (hundreds of MB, seconds of
import), yet the lifecycle and the API read and move versions and aliases. The registry's
REST API is small and stable (``/api/2.0/mlflow/...``), so this speaks it directly. The same
client serves the CLI, so every caller moves aliases the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["MlflowError", "MlflowRegistry"]


class MlflowError(RuntimeError):
    """The tracking server refused a call or could not be reached; ``code`` is MLflow's."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class MlflowRegistry:
    """Registered models, versions, aliases and tags on one tracking server.

    Example::

        registry = MlflowRegistry("http://127.0.0.1:5000")
        registry.version_by_alias("ev-rul", "champion")   # {"version": "2", "source": ...}
    """

    def __init__(self, tracking_uri: str, *, timeout: float = 10.0) -> None:
        self.base = tracking_uri.rstrip("/") + "/api/2.0/mlflow/"
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base + path
        data = None
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                payload = json.loads(detail)
            except json.JSONDecodeError:
                payload = {"message": detail[:300]}
            raise MlflowError(
                f"MLflow {method} {path}: {payload.get('message', detail[:300])}",
                code=str(payload.get("error_code", "")),
                status=exc.code,
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise MlflowError(f"MLflow unreachable at {self.base}: {exc}") from exc
        return json.loads(text) if text else {}

    # Registered models -------------------------------------------------------------------
    def registered_model(self, name: str) -> dict[str, Any] | None:
        """The registered model (with ``aliases``), or None when it does not exist."""
        try:
            return self._call("GET", "registered-models/get", {"name": name})["registered_model"]
        except MlflowError as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST" or exc.status == 404:
                return None
            raise

    def ensure_registered_model(self, name: str, description: str = "") -> None:
        """Create the registered model unless it exists."""
        if self.registered_model(name) is None:
            self._call(
                "POST", "registered-models/create", {"name": name, "description": description}
            )

    def aliases(self, name: str) -> dict[str, int]:
        """Alias → version number for one model (empty when the model does not exist)."""
        model = self.registered_model(name) or {}
        return {a["alias"]: int(a["version"]) for a in model.get("aliases", [])}

    # Versions -----------------------------------------------------------------------------
    def versions(self, name: str) -> list[dict[str, Any]]:
        """All versions of a model, newest first."""
        out: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {"filter": f"name='{name}'", "max_results": 200}
            if token:
                query["page_token"] = token
            page = self._call("GET", "model-versions/search", query)
            out += page.get("model_versions", [])
            token = page.get("next_page_token", "")
            if not token:
                break
        return sorted(out, key=lambda v: int(v["version"]), reverse=True)

    def version(self, name: str, version: int) -> dict[str, Any]:
        """One version (``source``, ``run_id``, ``tags``, ``aliases``)."""
        return self._call("GET", "model-versions/get", {"name": name, "version": str(version)})[
            "model_version"
        ]

    def create_version(
        self, name: str, source: str, *, run_id: str | None, tags: dict[str, str]
    ) -> int:
        """Register ``source`` (an artifact location) as a new version; returns its number."""
        self.ensure_registered_model(name)
        body: dict[str, Any] = {
            "name": name,
            "source": source,
            "tags": [{"key": k, "value": str(v)[:5000]} for k, v in tags.items()],
        }
        if run_id:
            body["run_id"] = run_id
        return int(self._call("POST", "model-versions/create", body)["model_version"]["version"])

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Tag one version (values are cut at MLflow's 5,000-character limit)."""
        self._call(
            "POST",
            "model-versions/set-tag",
            {"name": name, "version": str(version), "key": key, "value": value[:5000]},
        )

    def run(self, run_id: str) -> dict[str, Any]:
        """One run (``info``, ``data.tags``, ``data.params``, ``data.metrics``)."""
        return self._call("GET", "runs/get", {"run_id": run_id})["run"]

    # Aliases ------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``."""
        self._call(
            "POST",
            "registered-models/alias",
            {"name": name, "alias": alias, "version": str(version)},
        )

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` (no error when it is not set)."""
        try:
            self._call("DELETE", "registered-models/alias", {"name": name, "alias": alias})
        except MlflowError as exc:
            if exc.code not in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                raise

    def set_aliases(self, name: str, *, champion: int | None, previous: int | None) -> None:
        """Make ``champion`` and ``previous`` exactly these versions (None removes the alias)."""
        for alias, version in (("champion", champion), ("previous", previous)):
            if version is None:
                self.delete_alias(name, alias)
            else:
                self.set_alias(name, alias, version)
