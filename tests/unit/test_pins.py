"""Pins and alias moves: parsing, promotion and rollback plans."""

from __future__ import annotations

import pytest

from evpm.pins import PinError, dump_pins, parse_pins, plan_promotion, plan_rollback


def test_pins_round_trip_canonically() -> None:
    pins = parse_pins('{"ev-rul": 2, "ev-anomaly": "5"}')
    assert pins == {"ev-rul": 2, "ev-anomaly": 5}
    assert dump_pins(pins) == '{"ev-anomaly":5,"ev-rul":2}'
    assert parse_pins("") == {} and parse_pins("{}") == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[1]", "JSON object"),
        ('{"ev-rul": 0}', ">= 1"),
        ('{"ev-rul": "x"}', "version number"),
        ("{", "not JSON"),
        ('{"ev-rul": true}', "version number"),
    ],
)
def test_bad_pins_are_refused_with_the_reason(text: str, needle: str) -> None:
    with pytest.raises(PinError, match=needle):
        parse_pins(text)


def test_promotion_moves_champion_to_previous() -> None:
    plan = plan_promotion("ev-rul", 3, champion=2)
    assert (plan.champion, plan.previous) == (3, 2)
    assert plan.apply({"ev-rul": 2, "ev-anomaly": 1}) == {"ev-rul": 3, "ev-anomaly": 1}
    with pytest.raises(PinError, match="already the champion"):
        plan_promotion("ev-rul", 2, champion=2)


def test_rollback_defaults_to_previous_and_can_name_any_registered_version() -> None:
    plan = plan_rollback("ev-rul", champion=3, previous=2, to=None, versions={1, 2, 3})
    assert (plan.champion, plan.previous) == (2, 3)
    plan = plan_rollback("ev-rul", champion=3, previous=2, to=1, versions={1, 2, 3})
    assert (plan.champion, plan.previous) == (1, 3)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"champion": 1, "previous": None, "to": None, "versions": {1}}, "no 'previous'"),
        ({"champion": 2, "previous": 1, "to": 7, "versions": {1, 2}}, "no version 7"),
        ({"champion": 2, "previous": 1, "to": 2, "versions": {1, 2}}, "already the champion"),
    ],
)
def test_impossible_rollbacks_say_why(kwargs: dict, needle: str) -> None:
    with pytest.raises(PinError, match=needle):
        plan_rollback("ev-rul", **kwargs)
