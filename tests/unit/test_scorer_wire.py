"""functions/scorer/wire.py: predictions as DynamoDB wire items, a batch at a time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from boto3.dynamodb.types import TypeSerializer

from evpm.predictions import to_item
from tests.unit.conftest import accepted_records, load_function


@pytest.fixture(scope="module")
def wire() -> Any:
    return load_function("scorer", "wire")


def _as_numbers(wire: Any) -> Any:
    """Wire values with every ``N`` read as a ``Decimal`` (how DynamoDB compares them)."""
    if isinstance(wire, dict):
        if set(wire) == {"N"}:
            return Decimal(wire["N"])
        return {k: _as_numbers(v) for k, v in wire.items()}
    if isinstance(wire, list):
        return [_as_numbers(v) for v in wire]
    return wire


def _document_form(p: Any, ttl: int | None, reading: bytes | None, wire: Any) -> dict:
    return {k: wire.to_wire(v) for k, v in to_item(p, ttl_days=ttl, reading=reading).items()}


@pytest.mark.parametrize("value", [
    "text", "", True, False, None, 7, 0, Decimal("90.0"), Decimal("-1.25E+3"),
    [1, "a", None], {"a": {"b": [Decimal("1.5"), {"c": False}]}}, [], {},
    {"x", "y"}, {Decimal("1"), Decimal("2")}, b"bytes",
])
def test_wire_format_is_what_type_serializer_writes(wire, value: Any) -> None:
    assert wire.to_wire(value) == TypeSerializer().serialize(value)


@pytest.mark.parametrize("value", [1.5, Decimal("NaN"), Decimal("Infinity"), object(),
                                   Decimal("1" * 39)])
def test_wire_format_refuses_what_type_serializer_refuses(wire, value: Any) -> None:
    with pytest.raises(Exception) as ours:
        wire.to_wire(value)
    with pytest.raises(Exception) as theirs:
        TypeSerializer().serialize(value)
    assert type(ours.value) is type(theirs.value)


def test_prediction_items_serialise_as_before(wire, make_payload) -> None:
    for record in accepted_records(make_payload, 20):
        item = to_item(record.prediction, ttl_days=30)
        assert {k: wire.to_wire(v) for k, v in item.items()} == {
            k: TypeSerializer().serialize(v) for k, v in item.items()}


@pytest.mark.parametrize("value", [0.1, 1e-05, 3.5e-07, 2.1e-06, 1e16, 2.5e20, 123456.789, 0.0,
                                   -0.0, 1.0, 17.610687470701016, 1e-130, 9.9e125])
def test_wire_items_equal_the_document_form_on_the_wire(wire, make_payload, value) -> None:
    """The batch builder writes what ``to_wire(to_item(...))`` wrote: the same strings, maps
    and lists, and numbers equal as DynamoDB reads them (``Decimal`` of the text)."""
    for record in accepted_records(make_payload, 12):
        p = record.prediction.model_copy(update={
            "anomaly_score": value, "is_anomaly": bool(value), "predicted_failure": "tire_leak",
            "failure_probabilities": {"none": value, "tire_leak": 1.0 - value},
            "rul_hours": abs(value), "rul_low_hours": 0.0, "rul_high_hours": abs(value) * 2})
        for ttl, reading in ((30, record.reading), (None, None)):
            new = wire.wire_item(p, ttl_days=ttl, reading=reading)
            old = _document_form(p, ttl, reading, wire)
            assert _as_numbers(new) == _as_numbers(old)
            assert set(new) == set(old)


def test_a_mixed_batch_keeps_each_items_numbers_in_place(wire, make_payload) -> None:
    """One call for the batch: items with and without each model's fields, with findings
    and without, in any order, each get their own numbers (none shifted to a neighbour)."""
    rng = np.random.default_rng(3)
    predictions, readings = [], []
    for i, record in enumerate(accepted_records(make_payload, 60)):
        update: dict[str, Any] = {}
        if i % 2:
            update |= {"anomaly_score": float(rng.random()), "is_anomaly": bool(i % 4 == 1)}
        if i % 3:
            probs = rng.dirichlet(np.ones(1 + i % 5))
            update |= {"predicted_failure": "none",
                       "failure_probabilities": {f"c{k}": float(v) for k, v in enumerate(probs)}}
        if i % 5:
            update |= {"rul_hours": float(rng.random() * 900)}
            if i % 10 > 5:
                update |= {"rul_low_hours": float(rng.random()), "rul_high_hours": 1e-7 * i}
        if i == 7:
            update |= {"failure_probabilities": {}}
        predictions.append(record.prediction.model_copy(update=update))
        readings.append(record.reading if i % 6 else None)
    items = wire.wire_items(predictions, readings, ttl_days=30)
    assert len(items) == len(predictions)
    for p, reading, item in zip(predictions, readings, items, strict=True):
        old = _document_form(p, 30, reading, wire)
        assert _as_numbers(item) == _as_numbers(old)
        assert set(item) == set(old)


def test_numpy_and_integer_numbers_are_written_as_numbers(wire) -> None:
    assert [Decimal(t) for t in wire.number_texts([np.float64(0.25), 90, 1e-9])] == [
        Decimal("0.25"), Decimal(90), Decimal("1E-9")]
    assert wire.number_texts([]) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_wire_items_refuse_what_is_not_a_number(wire, make_payload, value) -> None:
    """DynamoDB holds no NaN or infinity: refused with a TypeError, as TypeSerializer does
    (orjson writes them as null, which must not reach the table as a number)."""
    record = accepted_records(make_payload, 1)[0]
    for field in ("anomaly_score", "rul_hours"):
        p = record.prediction.model_copy(update={field: value})
        with pytest.raises(TypeError):
            wire.wire_item(p, ttl_days=None, reading=None)
    p = record.prediction.model_copy(update={"anomaly_score": abs(value)})
    with pytest.raises(TypeError):
        {k: wire.to_wire(v) for k, v in to_item(p).items()}


@pytest.mark.parametrize("value", [5e-324, 1.7976931348623157e308])
def test_numbers_beyond_dynamodbs_range_are_refused_as_before(wire, make_payload, value) -> None:
    """DynamoDB holds 38 digits from 1E-130 to 9.99E+125: beyond, both forms raise alike."""
    p = accepted_records(make_payload, 1)[0].prediction.model_copy(update={"rul_hours": value})
    with pytest.raises(Exception) as ours:
        wire.wire_item(p, ttl_days=None, reading=None)
    with pytest.raises(Exception) as theirs:
        {k: wire.to_wire(v) for k, v in to_item(p).items()}
    assert type(ours.value) is type(theirs.value)
