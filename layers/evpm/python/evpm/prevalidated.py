"""Pydantic models built from values that are already what validation makes of them.

The scorer's hot path builds hundreds of findings, assessments and predictions per batch
from values that came out of validation (or out of numpy as plain floats, bools and
strings already checked). Validating them again costs more than the rest of the batch's
bookkeeping, and ``model_construct`` spends longer filling in defaults field by field in
Python than validation takes; setting the instance's state directly gives the same object
(tests compare such objects with validated ones, types and set fields included).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["prevalidated"]

_set = object.__setattr__


def prevalidated[M: BaseModel](
    cls: type[M], values: dict[str, object], fields_set: frozenset[str] | None = None
) -> M:
    """``cls(**{k: values[k] for k in fields_set})`` without validating again.

    ``values`` holds every field in field order (defaults included), each already valid;
    ``fields_set`` names the fields given explicitly (``None``: all of them).
    """
    given = values.keys() if fields_set is None else fields_set
    if cls.__private_attributes__:  # pragma: no cover - none of evpm's models has any
        given_values: dict[str, Any] = {k: values[k] for k in given}
        return cls.model_construct(**given_values)
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(given))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
