"""Retraining that starts itself: when a drift or quality event may start the lifecycle.

The rules, in order (:func:`decide`):

1. an event that names no model the lifecycle trains starts nothing (``no_models``);
2. **one execution at a time**: while any lifecycle execution runs, the event is suppressed
   (``running``), whoever started that execution;
3. **a cool-down** after every execution this trigger starts (6 h by default): an event within
   it is suppressed (``cooldown``), so one change does not retrain every five minutes while
   its new model is still being judged;
4. otherwise the lifecycle starts, with the event's id and cause as its trigger.

Two events at the same instant cannot both start a run: the trigger claims the cool-down with
a conditional write before it starts anything (see ``functions/retrain``), and only one claim
succeeds. Every decision, suppressed ones included, is recorded with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evpm.pins import TASK_OF

__all__ = ["Decision", "TriggerEvent", "cooldown_end", "decide", "lifecycle_input"]


class TriggerEvent(BaseModel):
    """The parts of a ``DriftDetected`` / ``QualityDegraded`` event the trigger reads."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=128)
    detail_type: Literal["DriftDetected", "QualityDegraded"] = Field(alias="detail-type")
    time: datetime
    detail: dict[str, Any]

    @property
    def models(self) -> list[str]:
        return [m for m in self.detail.get("models", []) if m in TASK_OF]

    def cause(self) -> str:
        """One line saying why: the event type and what it names."""
        named = self.detail.get("signals") or self.detail.get("problems") or {}
        parts = [f"{m}: {', '.join(v[:5])}" for m, v in sorted(named.items())]
        return f"{self.detail_type} ({'; '.join(parts) or 'no detail'})"[:500]


class Decision(BaseModel):
    """What the trigger did with one event, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["start", "suppressed"]
    reason: Literal["started", "no_models", "running", "cooldown"]
    detail: str


def decide(
    event: TriggerEvent,
    *,
    running: Sequence[str],
    cooldown_until: datetime | None,
    now: datetime,
) -> Decision:
    """Apply the rules of the module docstring (the claim itself is the caller's)."""
    if not event.models:
        return Decision(action="suppressed", reason="no_models", detail="names no served model")
    if running:
        return Decision(
            action="suppressed", reason="running", detail=f"execution {running[0]} is running"
        )
    if cooldown_until is not None and now < cooldown_until:
        return Decision(
            action="suppressed",
            reason="cooldown",
            detail=f"cool-down until {cooldown_until.isoformat()}",
        )
    return Decision(action="start", reason="started", detail=event.cause())


def cooldown_end(now: datetime, seconds: float) -> datetime:
    """When the cool-down a run started ``now`` ends."""
    return now + timedelta(seconds=seconds)


_OPTIONS = {"corrupt_labels": False, "force_smoke_failure": False}
"""Every option the state machine reads once ``options`` is given (it fails on a missing one)."""


def lifecycle_input(
    event: TriggerEvent, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The state machine's input for a run started by ``event`` (its models, its id, its
    cause), in the shape ``evpm lifecycle run`` sends."""
    return {
        "trigger": "drift",
        "trigger_id": event.id,
        "cause": event.cause(),
        "dataset": "fleet",
        "models": [TASK_OF[m] for m in event.models],
        "options": {**_OPTIONS, **(options or {})},
    }
