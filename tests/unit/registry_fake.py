"""An in-memory stand-in for :class:`evpm.mlflow_rest.MlflowRegistry` (same methods).

The integration tests run the real MLflow server; unit tests of the lifecycle steps need
only the registry's bookkeeping (versions, tags, aliases), which this keeps in dicts.
"""

from __future__ import annotations

from typing import Any


class FakeRegistry:
    def __init__(self) -> None:
        self.models: dict[str, dict[int, dict[str, Any]]] = {}
        self.alias_map: dict[str, dict[str, int]] = {}
        self.runs: dict[str, dict[str, str]] = {}

    def create_version(
        self, name: str, source: str, *, run_id: str | None, tags: dict[str, str]
    ) -> int:
        versions = self.models.setdefault(name, {})
        number = len(versions) + 1
        versions[number] = {
            "version": str(number),
            "source": source,
            "run_id": run_id,
            "tags": dict(tags),
        }
        return number

    def version(self, name: str, version: int) -> dict[str, Any]:
        return self.models[name][int(version)]

    def versions(self, name: str) -> list[dict[str, Any]]:
        return [self.models[name][v] for v in sorted(self.models.get(name, {}), reverse=True)]

    def aliases(self, name: str) -> dict[str, int]:
        return dict(self.alias_map.get(name, {}))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        if int(version) not in self.models.get(name, {}):
            raise RuntimeError(f"{name} has no version {version}")
        self.alias_map.setdefault(name, {})[alias] = int(version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.alias_map.get(name, {}).pop(alias, None)

    def set_aliases(self, name: str, *, champion: int | None, previous: int | None) -> None:
        for alias, version in (("champion", champion), ("previous", previous)):
            if version is None:
                self.delete_alias(name, alias)
            else:
                self.set_alias(name, alias, version)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.models[name][int(version)]["tags"][key] = value

    def run(self, run_id: str) -> dict[str, Any]:
        tags = self.runs.get(run_id, {})
        return {"data": {"tags": [{"key": k, "value": v} for k, v in tags.items()], "params": []}}
