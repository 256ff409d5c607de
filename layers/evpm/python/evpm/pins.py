"""Serving pins and registry aliases: which version of each model serves, and how that moves.

The pins live in one SSM parameter as JSON (``{"ev-anomaly": 5, "ev-classifier": 3,
"ev-rul": 2}``); the registry keeps the same facts as aliases (``champion`` is what serves,
``previous`` the champion before it). Promotion and rollback are planned here, as pure
functions of the current state, so the state machine's steps, the API's admin routes and the
CLI all move pins and aliases the same way, and the rules are tested without any service.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CHAMPION",
    "MODEL_NAMES",
    "PINS_PARAMETER",
    "PREVIOUS",
    "AliasPlan",
    "PinError",
    "dump_pins",
    "parse_pins",
    "plan_promotion",
    "plan_rollback",
]

PINS_PARAMETER = "/evpm/serving/pins"
"""SSM parameter holding the serving pins (JSON object: model name → version number)."""
MLFLOW_URI_PARAMETER = "/evpm/mlflow/tracking-uri"
"""SSM parameter holding the MLflow tracking server's URI (written by ``evpm up``)."""
CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_NAMES: tuple[str, ...] = ("ev-anomaly", "ev-classifier", "ev-rul")
TASK_OF: dict[str, str] = {"ev-anomaly": "anomaly", "ev-classifier": "classifier", "ev-rul": "rul"}


class PinError(ValueError):
    """Pins that cannot be read, or a move that has no valid target."""


def parse_pins(text: str | None) -> dict[str, int]:
    """Pins from the parameter's JSON; empty text or ``{}`` means nothing is pinned.

    Example: ``parse_pins('{"ev-rul": 2}')`` is ``{"ev-rul": 2}``.
    """
    if not text or not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PinError(f"pins are not JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(raw, dict):
        raise PinError(f"pins must be a JSON object of model name to version (got {text!r})")
    pins: dict[str, int] = {}
    for name, version in raw.items():
        if isinstance(version, bool) or not isinstance(version, int | str):
            raise PinError(f"pin of {name!r} must be a version number (got {version!r})")
        try:
            number = int(version)
        except ValueError as exc:
            raise PinError(f"pin of {name!r} must be a version number (got {version!r})") from exc
        if number < 1:
            raise PinError(f"pin of {name!r} must be >= 1 (got {number})")
        pins[str(name)] = number
    return pins


def dump_pins(pins: Mapping[str, int]) -> str:
    """Canonical JSON of the pins (sorted keys), so equal pins are equal text."""
    return json.dumps({k: int(v) for k, v in sorted(pins.items())}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class AliasPlan:
    """Where one model's pin and aliases go; ``None`` removes the alias / pin."""

    name: str
    champion: int | None
    previous: int | None

    def apply(self, pins: Mapping[str, int]) -> dict[str, int]:
        """The pins after this plan (other models untouched)."""
        out = {k: v for k, v in pins.items() if k != self.name}
        if self.champion is not None:
            out[self.name] = self.champion
        return out


def plan_promotion(name: str, new_version: int, champion: int | None) -> AliasPlan:
    """Promote ``new_version``: it becomes champion, the old champion becomes previous.

    Promoting the version that already serves changes nothing (the plan keeps the aliases).
    """
    if champion == new_version:
        raise PinError(f"{name} version {new_version} is already the champion")
    return AliasPlan(name=name, champion=new_version, previous=champion)


def plan_rollback(
    name: str,
    *,
    champion: int | None,
    previous: int | None,
    to: int | None,
    versions: set[int],
) -> AliasPlan:
    """Serve ``to`` (default: the ``previous`` alias) again; the champion it replaces becomes
    ``previous``, so a second rollback rolls forward again (the registry keeps one step of
    history in aliases; every step is in the state machine's execution history)."""
    target = to if to is not None else previous
    if target is None:
        raise PinError(
            f"{name} has no 'previous' version to roll back to; name the version "
            "(`to` in the API's body, --to on the command line)"
        )
    if target not in versions:
        known = ", ".join(str(v) for v in sorted(versions)) or "none"
        raise PinError(f"{name} has no version {target} (registered: {known})")
    if target == champion:
        raise PinError(f"{name} version {target} is already the champion")
    return AliasPlan(name=name, champion=target, previous=champion)
