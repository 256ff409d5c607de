"""Predictions as DynamoDB wire-format items, built for a whole batch at once.

The stream scorer writes every prediction it makes: a 500-record event is 500 items of about
25 attribute values, a dozen of them numbers. DynamoDB's wire format wants each number as its
decimal text, and that text is the costliest part of an item: ``repr`` of 6,000 floats takes
3 ms of the scorer's CPU per event. Here the batch's floats are written as text in one
``orjson.dumps`` (Ryu's shortest round-trip digits, the digits ``repr`` writes, in C) and the
items are assembled around those texts. A test compares every item with what boto3's
``TypeSerializer`` writes for the document form (``evpm.predictions.to_item``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer

from evpm.past_readings import READING_ATTRIBUTE
from evpm.predictions import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from evpm.telemetry import format_timestamp

if TYPE_CHECKING:
    from evpm.predictions import Prediction

__all__ = ["to_wire", "wire_item", "wire_items"]

_SERIALIZER = TypeSerializer()
_NUMBERS = ("anomaly_score", "rul_hours", "rul_low_hours", "rul_high_hours")
"""The optional float fields of a prediction, after ``health_score`` (always there)."""


def to_wire(value: Any) -> dict[str, Any]:
    """A document-form value in DynamoDB wire format, as ``TypeSerializer`` writes it.

    The common types of a prediction item (str, bool, Decimal, int, None, lists, maps) are
    handled here directly - about 5x faster than ``TypeSerializer``, which checks every type
    in turn - and everything else (sets, bytes, ...) goes to ``TypeSerializer`` itself, which
    also raises its usual ``TypeError`` for a float.
    """
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is Decimal or kind is int:
        if kind is Decimal and not value.is_finite():
            return _SERIALIZER.serialize(value)  # raises TypeError, as TypeSerializer does
        # the same context as TypeSerializer: more than 38 digits raises here too
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    if kind is bytes:
        return {"B": value}
    if value is None:
        return {"NULL": True}
    if kind is dict:
        return {"M": {str(k): to_wire(v) for k, v in value.items()}}
    if kind is list or kind is tuple:
        return {"L": [to_wire(v) for v in value]}
    return _SERIALIZER.serialize(value)


def number_texts(values: list[float]) -> list[str]:
    """Each float as DynamoDB ``N`` text: the text :func:`to_wire` gives its
    ``Decimal(repr(value))``, equal as a number (exactly equal text but for exponent form).

    Why orjson: one C call writes all of a batch's numbers, ten times faster than ``repr`` one
    by one, with the same shortest digits. A text with an exponent (``2.1e-6``) goes through
    ``Decimal`` as before (DynamoDB's 38 digits checked); orjson writes a non-finite float as
    ``null``, which is refused here with ``TypeSerializer``'s ``TypeError``.
    """
    if not values:
        return []
    raw = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    texts = raw[1:-1].decode().split(",")
    if b"e" in raw or b"n" in raw:  # rare: tiny or huge numbers; nan/inf
        for i, text in enumerate(texts):
            if "n" in text:
                raise TypeError(f"{values[i]!r} is not a number DynamoDB can store")
            if "e" in text:
                texts[i] = str(DYNAMODB_CONTEXT.create_decimal(Decimal(text)))
    return texts


def wire_items(
    predictions: Sequence[Prediction],
    readings: Sequence[bytes | None],
    *,
    ttl_days: int | None,
) -> list[dict[str, Any]]:
    """``[{k: to_wire(v) for k, v in to_item(p, ...).items()} for p in predictions]``, built
    directly: the same wire values (a test compares them item for item) at a fraction of the
    cost, the numbers of the whole batch written in one call (:func:`number_texts`)."""
    floats: list[float] = []
    for p in predictions:
        floats.append(p.health_score)
        floats.extend(v for v in (getattr(p, k) for k in _NUMBERS) if v is not None)
        if p.failure_probabilities:
            floats.extend(p.failure_probabilities.values())
    texts = iter(number_texts(floats))
    items: list[dict[str, Any]] = []
    for p, reading in zip(predictions, readings, strict=True):
        scored, expires = _stamped(p.scored_at, ttl_days)
        item: dict[str, Any] = {
            PARTITION_KEY: {"S": p.vehicle_id},
            SORT_KEY: {"S": p.ts},
            "record_id": {"S": p.record_id},
            "status": {"S": p.status},
            "health_score": {"N": next(texts)},
            "failure_mode": {"S": p.failure_mode},
            "findings": {"L": [_finding(f) for f in p.findings]} if p.findings else _NO_FINDINGS,
            "model_versions": _versions(tuple(p.model_versions.items())),
            "scored_at": scored,
        }
        # The texts come in the order they were gathered: _NUMBERS, then the probabilities.
        for key in _NUMBERS:
            if getattr(p, key) is not None:
                item[key] = {"N": next(texts)}
        if p.is_anomaly is not None:
            item["is_anomaly"] = {"BOOL": p.is_anomaly}
        if p.predicted_failure is not None:
            item["predicted_failure"] = {"S": p.predicted_failure}
        if p.failure_probabilities is not None:
            item["failure_probabilities"] = {
                "M": {k: {"N": next(texts)} for k in p.failure_probabilities}
            }
        if reading is not None:
            item[READING_ATTRIBUTE] = {"B": reading}
        if ttl_days:
            item[TTL_ATTRIBUTE] = expires
        items.append(item)
    return items


def wire_item(prediction: Prediction, *, ttl_days: int | None, reading: bytes | None) -> dict:
    """One prediction's item (:func:`wire_items` of one)."""
    return wire_items([prediction], [reading], ttl_days=ttl_days)[0]


_NO_FINDINGS: dict[str, list] = {"L": []}  # shared, read-only: items are not mutated after


def _finding(f: Any) -> dict[str, Any]:
    return {
        "M": {
            "rule_id": {"S": f.rule_id},
            "component": {"S": f.component},
            "severity": {"S": f.severity},
            "message": {"S": f.message},
        }
    }


# A batch's predictions share their scoring time and model versions: their wire values are
# made once per batch (read-only dicts, shared by the batch's items), not once per item.
@lru_cache(maxsize=8)
def _stamped(scored_at: datetime, ttl_days: int | None) -> tuple[dict[str, str], dict[str, str]]:
    """``scored_at`` and the TTL attribute ``ttl_days`` after it, on the wire."""
    expires = int((scored_at + timedelta(days=ttl_days or 0)).timestamp())
    return {"S": format_timestamp(scored_at)}, {"N": str(expires)}


@lru_cache(maxsize=8)
def _versions(versions: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"M": {k: {"S": v} for k, v in versions}}
