"""Outcomes grade exactly the readings the join rules say, and bad label rows are refused."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from evpm.outcomes import (
    Outcome,
    grade,
    outcome_of_feedback,
    parse_outcome_file,
    validate_rows,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _fail(vehicle: str, hours: float, mode: str = "brake_wear") -> Outcome:
    return Outcome(
        vehicle_id=vehicle, at=T0 + timedelta(hours=hours), kind="failure", failure_mode=mode
    )


def _fine(vehicle: str, hours: float) -> Outcome:
    return Outcome(vehicle_id=vehicle, at=T0 + timedelta(hours=hours), kind="no_failure")


def _secs(*hours: float) -> np.ndarray:
    return np.array([(T0 + timedelta(hours=h)).timestamp() for h in hours])


def _brute(vehicle: str, t: float, outcomes: list[Outcome], horizon: float, cap: float):
    """The rules read literally, one reading at a time (the independent answer)."""
    mine = [o for o in outcomes if o.vehicle_id == vehicle]
    after = sorted(
        (o for o in mine if o.kind == "failure" and o.at.timestamp() >= t), key=lambda o: o.at
    )
    seen = max((o.at.timestamp() for o in mine), default=-math.inf)
    if after:
        hours = (after[0].at.timestamp() - t) / 3600
        return after[0], min(hours, cap), after[0].failure_mode if hours <= horizon else "none"
    rul = cap if seen >= t + cap * 3600 else math.nan
    mode = "none" if seen >= t + horizon * 3600 else None
    return None, rul, mode


def test_a_thousand_predictions_join_with_no_missed_and_no_double_match() -> None:
    # GIVEN 1,000 readings of 50 vehicles and their maintenance log, edge cases included:
    rng = random.Random(42)
    vehicles = [f"EV-{i:03d}" for i in range(50)]
    readings = [(v, rng.uniform(0, 2000)) for v in vehicles for _ in range(20)]
    log: list[Outcome] = []
    for i, v in enumerate(vehicles):
        for _ in range(rng.choice([0, 1, 1, 2, 3])):  # two or three failures of one vehicle
            log.append(
                _fail(
                    v, rng.uniform(0, 2400), rng.choice(["brake_wear", "tire_leak", "thermal_risk"])
                )
            )
        if i % 3 == 0:
            log.append(_fine(v, rng.uniform(1500, 3000)))  # seen fine up to a time
    log.append(_fail("EV-000", -50.0))  # a label before any prediction of its vehicle
    first = readings[7]
    log.append(_fail(first[0], first[1], "tire_leak"))  # at a reading
    log.append(_fail("EV-999", 100.0))  # a vehicle with no readings at all
    duplicates = [log[3], log[3]]  # the same outcome sent again...
    late = log[::-1]  # ...and labels arriving late, out of order
    outcomes = late + duplicates
    kept, rejects = validate_rows(
        [
            {
                "vehicle_id": o.vehicle_id,
                "failure_mode": o.failure_mode or "none",
                "event_time": o.at.isoformat(),
            }
            for o in outcomes
        ],
        now=NOW,
        known_vehicle=lambda v: True,
    )
    assert rejects == [] and len(kept) == len({o.key for o in log})
    ids = [v for v, _ in readings]
    secs = _secs(*(h for _, h in readings))
    # WHEN graded
    graded = grade(ids, secs, kept, horizon_hours=336, rul_cap_hours=720)
    # THEN every reading has exactly the failure, RUL and mode the rules give
    missed = double = wrong = 0
    matches: dict[tuple[str, str], int] = {}
    for i, (v, _) in enumerate(readings):
        failure, rul, mode = _brute(v, secs[i], kept, 336, 720)
        got = graded.failures[graded.failure_index[i]] if graded.failure_index[i] >= 0 else None
        missed += failure is not None and got is None
        double += failure is None and got is not None
        wrong += failure is not None and got is not None and got.key != failure.key
        if got is not None:
            matches[got.key] = matches.get(got.key, 0) + 1
        assert (math.isnan(rul) and math.isnan(graded.true_rul_hours[i])) or graded.true_rul_hours[
            i
        ] == pytest.approx(rul)
        assert graded.true_failure_mode[i] == mode
    assert (missed, double, wrong) == (0, 0, 0)
    assert len(readings) == 1_000 and sum(matches.values()) > 300
    # the reading at its own failure time has RUL 0; the early and the orphan labels grade nothing
    assert graded.true_rul_hours[7] == 0.0 and graded.true_failure_mode[7] == "tire_leak"
    early = next(o for o in kept if o.at < T0)
    assert early.key not in matches and all(key[0] != "EV-999" for key in matches)


def test_each_rule_on_one_vehicle() -> None:
    log = [
        _fail("EV-1", 100, "tire_leak"),
        _fail("EV-1", 1000, "thermal_risk"),
        _fine("EV-2", 2000),
    ]
    g = grade(
        ["EV-1", "EV-1", "EV-1", "EV-1", "EV-2", "EV-2", "EV-3"],
        _secs(90, 100.5, 500, 1200, 0, 1800, 0),
        log,
    )
    assert g.true_rul_hours[0] == pytest.approx(10) and g.true_failure_mode[0] == "tire_leak"
    # between two failures: graded by the second, beyond the horizon → "none", RUL capped
    assert g.true_rul_hours[1] == 720 and g.true_failure_mode[1] == "none"
    assert g.true_rul_hours[2] == pytest.approx(500) and g.true_failure_mode[2] == "none"
    # after the last failure, nothing known yet
    assert math.isnan(g.true_rul_hours[3]) and g.true_failure_mode[3] is None
    # seen fine for longer than cap and horizon → cap and "none"; seen fine too briefly → unknown
    assert g.true_rul_hours[4] == 720 and g.true_failure_mode[4] == "none"
    assert math.isnan(g.true_rul_hours[5]) and g.true_failure_mode[5] is None
    # a vehicle without outcomes
    assert math.isnan(g.true_rul_hours[6]) and g.failure_index[6] == -1
    assert grade([], np.array([]), log).true_rul_hours.size == 0
    # no failure known at all: nothing graded, nothing raised
    none = grade(["EV-1", "EV-2"], _secs(0, 0), [_fine("EV-2", 1000)])
    assert none.failure_index.tolist() == [-1, -1] and none.true_rul_hours[1] == 720
    with pytest.raises(ValueError, match="2 vehicle ids for 1 times"):
        grade(["a", "b"], np.array([1.0]), log)


@pytest.mark.parametrize(
    "row,reason",
    [
        (
            {
                "vehicle_id": "EV-404",
                "failure_mode": "tire_leak",
                "event_time": "2024-05-02T00:00:00Z",
            },
            "unknown vehicle 'EV-404'",
        ),
        (
            {
                "vehicle_id": "EV-1",
                "failure_mode": "tire_leak",
                "event_time": "2031-01-01T00:00:00Z",
            },
            "is in the future",
        ),
        (
            {
                "vehicle_id": "EV-1",
                "failure_mode": "tire_leak",
                "reading_ts": "2024-05-01T00:00:00Z",
                "rul_hours": "-3",
            },
            "rul_hours: Value error, negative RUL -3.0",
        ),
        (
            {
                "vehicle_id": "EV-1",
                "failure_mode": "gremlins",
                "event_time": "2024-05-02T00:00:00Z",
            },
            "failure_mode: Value error, unknown failure mode 'gremlins'",
        ),
        (
            {"vehicle_id": "EV-1", "failure_mode": "tire_leak"},
            "give event_time, or reading_ts with rul_hours",
        ),
        (
            {"vehicle_id": "EV-1", "failure_mode": "tire_leak", "event_time": "yesterday"},
            "event_time: ",
        ),
        (
            {
                "vehicle_id": "<b>",
                "failure_mode": "tire_leak",
                "event_time": "2024-05-02T00:00:00Z",
            },
            "vehicle_id: String should match pattern",
        ),
        (
            {
                "vehicle_id": "EV-1",
                "failure_mode": "none",
                "reading_ts": "2024-05-01T00:00:00Z",
                "rul_hours": "3",
            },
            "failure_mode 'none' cannot have one",
        ),
    ],
)
def test_bad_rows_are_rejected_with_the_reason(row: dict, reason: str) -> None:
    kept, rejects = validate_rows([row], now=NOW, known_vehicle=lambda v: v == "EV-1")
    assert kept == [] and len(rejects) == 1
    assert reason in rejects[0].reason and rejects[0].line == 2 and rejects[0].row == row


def test_a_file_with_good_bad_and_repeated_rows_loses_nothing() -> None:
    body = (
        "\ufeffvehicle_id,failure_mode,event_time,reading_ts,rul_hours\n"
        "EV-1,tire_leak,2024-05-02T00:00:00Z,,\n"
        "EV-1,brake_wear,,2024-05-01T00:00:00Z,12\n"
        "EV-1,tire_leak,2024-05-02T00:00:00Z,,\n"
        "EV-7,none,2024-06-01T00:00:00Z,,\n"
        "EV-1,gremlins,2024-05-02T00:00:00Z,,\n"
    ).encode()
    rows = parse_outcome_file(body)
    kept, rejects = validate_rows(rows, now=NOW, known_vehicle=lambda v: v in {"EV-1", "EV-7"})
    assert len(rows) == 5 and len(kept) == 3 and [r.line for r in rejects] == [6]
    assert {o.kind for o in kept} == {"failure", "no_failure"}
    assert next(o for o in kept if o.failure_mode == "brake_wear").at == T0 + timedelta(hours=12)


def test_files_that_are_not_label_csvs_are_refused() -> None:
    with pytest.raises(ValueError, match="header lacks failure_mode"):
        parse_outcome_file(b"vehicle_id,when\nEV-1,now\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_outcome_file(b"\xff\xfe\x00garbage")


def test_feedback_reports_become_outcomes() -> None:
    assert outcome_of_feedback("EV-1", T0, "brake_wear", 36.0) == _fail("EV-1", 36, "brake_wear")
    assert outcome_of_feedback("EV-1", T0, "tire_leak", None) == _fail("EV-1", 0, "tire_leak")
    assert outcome_of_feedback("EV-1", T0, "none", None) == _fine("EV-1", 0)
    assert outcome_of_feedback("EV-1", T0, None, 12.0) is None
