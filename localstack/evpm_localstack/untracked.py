"""Stop moto remembering every instance ever made of a model class that is created per item.

Why: moto's ``BaseModel.__new__`` appends each new instance to a class-level list,
``instances_tracked`` (for its own model-listing API, which LocalStack does not serve). For a
DynamoDB ``Item`` (one per put, a new one on every overwrite) and a Kinesis ``Record`` (one
per record put) that list is a leak: items overwritten or deleted, and records long trimmed,
stay in memory for the life of the process, and every one of them is a container the cyclic
garbage collector must walk again in each full pass. The table and the shards keep the live
ones; nothing else needs the list.
"""

from __future__ import annotations

from typing import Any


def _plain_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def untrack(cls: type) -> None:
    """Create ``cls`` instances without adding them to ``cls.instances_tracked`` (idempotent)."""
    if cls.__dict__.get("_evpm_untracked"):
        return
    cls.__new__ = staticmethod(_plain_new)  # type: ignore[method-assign, assignment]
    tracked = getattr(cls, "instances_tracked", None)
    if isinstance(tracked, list):
        tracked.clear()
    cls._evpm_untracked = True  # type: ignore[attr-defined]
