"""Read and move what serves: the registry's versions and aliases, and the SSM pins.

The API's ``/models`` routes and ``evpm rollback`` use this one class, so a hand promotion, a
hand rollback and the state machine's promotion all leave the same traces: ``champion`` and
``previous`` aliases in MLflow, the pins in SSM, the plan from :mod:`evpm.pins`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from evpm.pins import (
    CHAMPION,
    MODEL_NAMES,
    PREVIOUS,
    PinError,
    plan_promotion,
    plan_rollback,
)
from evpm_aws.model_store import SsmPinStore

__all__ = ["ModelAdmin", "PinStore", "SsmPinStore", "UnknownVersionError"]


class UnknownVersionError(PinError):
    """The named model or version is not in the registry."""


class PinStore(Protocol):
    def read(self) -> dict[str, int]: ...
    def write(self, pins: dict[str, int]) -> None: ...


def _json_tag(tags: dict[str, str], key: str) -> Any:
    try:
        return json.loads(tags[key]) if key in tags else None
    except json.JSONDecodeError:
        return tags[key]


class ModelAdmin:
    """Versions, aliases and pins of evpm's models; moves them as :mod:`evpm.pins` plans."""

    def __init__(self, registry: Any | Callable[[], Any], pins: PinStore) -> None:
        self._registry = registry
        self.pins = pins

    @property
    def registry(self) -> Any:
        if callable(self._registry) and not hasattr(self._registry, "aliases"):
            self._registry = self._registry()
        return self._registry

    def _version_numbers(self, name: str) -> set[int]:
        return {int(v["version"]) for v in self.registry.versions(name)}

    def overview(self) -> dict[str, Any]:
        """Pins, and per model its aliases and versions with their metrics and gate verdict."""
        pins = self.pins.read()
        models = []
        for name in MODEL_NAMES:
            aliases = self.registry.aliases(name)
            versions = []
            for v in self.registry.versions(name):
                tags = (
                    {t["key"]: t["value"] for t in v.get("tags", [])}
                    if isinstance(v.get("tags"), list)
                    else dict(v.get("tags") or {})
                )
                number = int(v["version"])
                versions.append(
                    {
                        "version": number,
                        "aliases": sorted(a for a, n in aliases.items() if n == number),
                        "pinned": pins.get(name) == number,
                        "metrics": _json_tag(tags, "metrics") or {},
                        "gate_passed": tags.get("gate_passed"),
                        "data_fingerprint": tags.get("data_fingerprint"),
                        "git_commit": tags.get("git_commit"),
                        "source": v.get("source"),
                    }
                )
            models.append(
                {"name": name, "pinned": pins.get(name), "aliases": aliases, "versions": versions}
            )
        return {"pins": pins, "models": models}

    def promote(self, name: str, version: int) -> dict[str, Any]:
        """Serve ``version`` of ``name``; the old champion becomes ``previous``."""
        if version not in self._version_numbers(name):
            raise UnknownVersionError(f"{name} has no version {version}")
        plan = plan_promotion(name, version, self.registry.aliases(name).get(CHAMPION))
        return self._apply(plan)

    def rollback(self, name: str, to: int | None = None) -> dict[str, Any]:
        """Serve ``to`` (default: the ``previous`` alias) of ``name`` again."""
        aliases = self.registry.aliases(name)
        plan = plan_rollback(
            name,
            champion=aliases.get(CHAMPION),
            previous=aliases.get(PREVIOUS),
            to=to,
            versions=self._version_numbers(name),
        )
        return self._apply(plan)

    def _apply(self, plan: Any) -> dict[str, Any]:
        before = self.pins.read()
        self.registry.set_aliases(plan.name, champion=plan.champion, previous=plan.previous)
        after = plan.apply(before)
        self.pins.write(after)
        return {
            "name": plan.name,
            "champion": plan.champion,
            "previous": plan.previous,
            "pins_before": before,
            "pins": after,
        }
