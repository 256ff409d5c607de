"""A vehicle's stored past, read back on a history miss, gives the warm worker's features."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from evpm.past_readings import (
    pack_reading,
    rehydrate,
    stamp_seconds,
    unpack_readings,
)
from evpm.serving import History, ServedModels, score_models
from evpm.telemetry import FEATURES, format_timestamp
from tests.unit.fakes import InMemoryPastReadings
from tests.unit.serving_models import bundles, readings


@pytest.fixture(scope="module")
def served() -> ServedModels:
    return ServedModels(
        versions={"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}, bundles=bundles()
    )


def _stamp(t: float) -> str:
    return format_timestamp(datetime.fromtimestamp(t, UTC))


def _outputs(out) -> dict[str, np.ndarray]:
    return {
        "anomaly_score": out.anomaly_score,
        "failure_proba": out.failure_proba,
        "rul_hours": out.rul_hours,
        "rul_low_hours": out.rul_low_hours,
    }


def _stream(
    served: ServedModels,
    history: History,
    ids: list[str],
    times: np.ndarray,
    values: np.ndarray,
    chunks: list[np.ndarray],
    store: InMemoryPastReadings | None = None,
) -> dict[str, np.ndarray]:
    """Score the chunks in turn on ``history`` (storing each, as the scorer's sink does);
    the outputs in input order."""
    got: dict[str, list[np.ndarray]] = {}
    for chunk in chunks:
        out = score_models(served, [ids[i] for i in chunk], times[chunk], values[chunk], history)
        for key, value in _outputs(out).items():
            got.setdefault(key, []).append(value)
        if store is not None:
            for i in chunk:
                store.store(ids[i], _stamp(times[i]), values[i])
    return {k: np.concatenate(v) for k, v in got.items()}


def test_packed_readings_come_back_bit_for_bit() -> None:
    values = np.random.default_rng(0).normal(size=(3, len(FEATURES))) * 1e6
    values[0, 0] = np.nextafter(1.0, 2.0)
    back = unpack_readings([pack_reading(v) for v in values])
    assert back.tobytes() == values.tobytes()
    assert len(pack_reading(values[0])) == 8 * len(FEATURES)
    with pytest.raises(ValueError, match="expected 192"):
        unpack_readings([b"\x00" * 7])


def test_stamps_give_the_seconds_scoring_uses_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    instants = [
        datetime.fromtimestamp(float(t), UTC).replace(microsecond=int(us))
        for t, us in zip(
            rng.integers(0, 4e9, size=200), rng.integers(0, 1_000_000, size=200), strict=True
        )
    ]
    got = stamp_seconds([format_timestamp(t) for t in instants])
    want = np.array([t.timestamp() for t in instants])
    assert got.tobytes() == want.tobytes()


def test_a_fresh_worker_with_the_stored_past_scores_as_the_warm_one(
    served: ServedModels,
) -> None:
    # GIVEN a stream of 4 vehicles scored in 10 batches by one warm worker
    ids, times, values = readings(vehicles=4, hours=50, seed=3)
    order = np.argsort(times, kind="stable")
    chunks = np.array_split(order, 10)
    warm = _stream(served, History(1), ids, times, values, chunks)
    # WHEN the same stream's worker dies after batch 4 and a fresh one, reading the stored
    # past on a miss, scores the rest (batch 4 redelivered: its readings are stored already)
    store = InMemoryPastReadings()
    first = _stream(served, History(1), ids, times, values, chunks[:5], store)
    fresh = History(1, source=store)
    rest = _stream(served, fresh, ids, times, values, chunks[4:], store)
    # THEN every output of every reading is the warm worker's, bit for bit
    cut = sum(len(c) for c in chunks[:4])
    for key, value in warm.items():
        assert np.array_equal(first[key], value[: len(first[key])]), key
        assert np.array_equal(rest[key], value[cut:]), key
    # AND the fresh worker asked once per vehicle, for readings strictly before its first one
    assert len(store.asked) == 1
    assert sorted(store.asked[0]) == sorted(set(ids))
    # AND without the stored past the same fresh worker would have scored differently
    blind = _stream(served, History(1), ids, times, values, chunks[4:])
    assert not np.array_equal(blind["rul_hours"], warm["rul_hours"][cut:])


def test_only_vehicles_not_held_are_asked_and_what_was_used_is_reported() -> None:
    store = InMemoryPastReadings()
    for h in range(5):
        store.store("EV-A", _stamp(1.7e9 + 3600 * h), np.full(len(FEATURES), h, dtype=float))
    history = History(4)
    history.remember(["EV-B"], np.array([1.7e9]), np.zeros((1, len(FEATURES))))
    at = np.array([1.7e9 + 3600 * 3, 1.7e9 + 3600 * 9, 1.7e9 + 3600 * 2])
    used = rehydrate(history, store, ["EV-A", "EV-B", "EV-C"], at, limit=3)
    # EV-B is held: not asked; EV-A gets its 3 last readings strictly before hour 3
    assert store.asked == [{"EV-A": _stamp(at[0]), "EV-C": _stamp(at[2])}]
    assert used["EV-A"].readings == 3
    assert (used["EV-A"].first_ts, used["EV-A"].last_ts) == (
        _stamp(1.7e9),
        _stamp(1.7e9 + 3600 * 2),
    )
    assert used["EV-C"].readings == 0 and used["EV-C"].first_ts is None
    held_t, held_x = history.held("EV-A")
    assert held_t.tolist() == [1.7e9 + 3600 * h for h in range(3)]
    assert held_x[:, 0].tolist() == [0.0, 1.0, 2.0]


def test_a_batch_with_several_readings_of_a_vehicle_asks_before_its_earliest() -> None:
    store = InMemoryPastReadings()
    history = History(8)
    at = np.array([1.7e9 + 7200, 1.7e9 + 3600, 1.7e9 + 10800])
    rehydrate(history, store, ["EV-A", "EV-A", "EV-A"], at, limit=7)
    assert store.asked == [{"EV-A": _stamp(1.7e9 + 3600)}]
