"""Domain event counts: bumped anywhere in the process, drained once, published as metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Metrics

from evpm import counters
from evpm.counters import BOOSTER_FALLBACK, COUNTERS, MODEL_LOAD_FAILURES, count, drain
from evpm_aws.metrics_bridge import publish_counts


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    """The counts are process-wide: each test starts and leaves them at zero."""
    drain()
    yield
    drain()


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """Powertools keeps one metric set per process: clear it around the test."""
    m = Metrics(namespace="evpm-test", service="evpm-unit")
    m.clear_metrics()
    yield m
    m.clear_metrics()


def test_a_drain_returns_the_counts_since_the_last_one_and_starts_again() -> None:
    # GIVEN two events of one kind and one of another
    count(BOOSTER_FALLBACK)
    count(BOOSTER_FALLBACK)
    count(MODEL_LOAD_FAILURES)
    # WHEN drained twice
    first, second = drain(), drain()
    # THEN the first holds them and the second nothing
    assert first == {BOOSTER_FALLBACK: 2, MODEL_LOAD_FAILURES: 1}
    assert second == {}


def test_a_snapshot_leaves_the_counts_in_place() -> None:
    count(MODEL_LOAD_FAILURES, 3)
    assert counters.snapshot() == {MODEL_LOAD_FAILURES: 3}
    assert drain() == {MODEL_LOAD_FAILURES: 3}


@pytest.mark.parametrize(("name", "value"), [("", 1), (BOOSTER_FALLBACK, -1)])
def test_a_nameless_or_negative_count_is_refused(name: str, value: int) -> None:
    with pytest.raises(ValueError):
        count(name, value)
    assert drain() == {}


def test_counts_from_many_threads_are_all_kept() -> None:
    # GIVEN 8 threads bumping one counter 1,000 times each (the API serves on several)
    def bump() -> None:
        for _ in range(1000):
            count(BOOSTER_FALLBACK)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN none is lost
    assert drain() == {BOOSTER_FALLBACK: 8000}


def test_publish_counts_adds_each_known_counter_zero_included(metrics: Metrics) -> None:
    # GIVEN one model load failure since the last invocation
    count(MODEL_LOAD_FAILURES)
    # WHEN the handler publishes the counts
    published = publish_counts(metrics)
    # THEN every known counter is a Count metric, the quiet one at 0, and the counts are drained
    emf = metrics.serialize_metric_set()
    assert published == {BOOSTER_FALLBACK: 0, MODEL_LOAD_FAILURES: 1}
    assert {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        name: "Count" for name in COUNTERS
    }
    assert emf[MODEL_LOAD_FAILURES] == [1.0] and emf[BOOSTER_FALLBACK] == [0.0]
    assert drain() == {}


def test_publish_counts_also_passes_on_counters_it_was_not_told_about(metrics: Metrics) -> None:
    count("SomethingNew", 2)
    assert publish_counts(metrics, always=()) == {"SomethingNew": 2}
    assert metrics.serialize_metric_set()["SomethingNew"] == [2.0]
