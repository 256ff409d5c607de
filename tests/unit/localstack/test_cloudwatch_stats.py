"""Percentiles and exact dimension matching of the emulator's CloudWatch (``cloudwatch_stats``):
the arithmetic on known samples, CloudWatch's rules for negative values and statistic sets, the
dimension filters, and the store query on an SQLite file with the provider's own tables (no
LocalStack needed)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from evpm_localstack import cloudwatch_stats as cs

ONE_TO_HUNDRED = [float(v) for v in range(1, 101)]


# -- the statistic's name ---------------------------------------------------------------------
@pytest.mark.parametrize(("stat", "p"), [
    ("p50", Fraction(50)), ("p95", Fraction(95)), ("p99.9", Fraction(999, 10)),
    ("p95.45", Fraction(9545, 100)), ("p0", Fraction(0)), ("p100", Fraction(100)),
    ("p100.0", Fraction(100)), ("p0.0", Fraction(0)),
])
def test_percentile_names_parse_exactly(stat: str, p: Fraction) -> None:
    assert cs.percentile_of(stat) == p


@pytest.mark.parametrize("stat", [
    "Sum", "Average", "P95", "p", "p95.", "p-1", "p100.01", "p101", "p1000", "tm90", "IQM",
    "PR(:300)", " p95", "p95 ", "",
])
def test_other_names_are_no_percentile(stat: str) -> None:
    assert cs.percentile_of(stat) is None


# -- nearest rank -----------------------------------------------------------------------------
@pytest.mark.parametrize(("stat", "expected"), [
    ("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 100.0), ("p0", 1.0),
    ("p100", 100.0), ("p1", 1.0), ("p1.5", 2.0), ("p90.5", 91.0),
])
def test_nearest_rank_of_one_to_a_hundred(stat: str, expected: float) -> None:
    p = cs.percentile_of(stat)
    assert p is not None
    assert cs.nearest_rank(ONE_TO_HUNDRED, p) == expected


def test_nearest_rank_is_exact_where_floats_are_not() -> None:
    # 0.95 * 100 == 95.00000000000001 in floats: a float rank would give 96 (and p95.45 of
    # 10,000 values 9546)
    assert cs.nearest_rank(ONE_TO_HUNDRED, Fraction(95)) == 95.0
    ten_thousand = [float(v) for v in range(1, 10_001)]
    assert cs.nearest_rank(ten_thousand, cs.percentile_of("p95.45")) == 9545.0
    assert cs.nearest_rank(ten_thousand, cs.percentile_of("p99.99")) == 9999.0


def test_nearest_rank_picks_a_published_value() -> None:
    # latencies of 10 requests: p50 is the 5th, p95 and p99 the 10th (no interpolation)
    latencies = sorted([12.0, 250.0, 8.0, 15.0, 9.0, 11.0, 10.0, 14.0, 13.0, 900.0])
    assert cs.nearest_rank(latencies, 50) == 12.0
    assert cs.nearest_rank(latencies, 90) == 250.0
    assert cs.nearest_rank(latencies, 95) == 900.0
    assert cs.nearest_rank(latencies, 99) == 900.0
    assert cs.nearest_rank([1.5, 1.5, 2.5, 2.5], 50) == 1.5
    assert cs.nearest_rank([1.5, 1.5, 2.5, 2.5], Fraction(501, 10)) == 2.5
    assert cs.nearest_rank([7.0], 99) == 7.0
    assert cs.nearest_rank([], 50) is None


def test_weighted_nearest_rank_counts_each_value_count_times() -> None:
    # PutMetricData Values=[10, 20] Counts=[90, 10]: 100 samples
    samples = [(20.0, 10), (10.0, 90)]
    assert cs.weighted_nearest_rank(samples, 50) == 10.0
    assert cs.weighted_nearest_rank(samples, 90) == 10.0
    assert cs.weighted_nearest_rank(samples, Fraction(901, 10)) == 20.0
    assert cs.weighted_nearest_rank(samples, 0) == 10.0
    assert cs.weighted_nearest_rank(samples, 100) == 20.0
    # fractional counts (SampleCount is a double) and empty counts
    assert cs.weighted_nearest_rank([(1.0, 0.5), (2.0, 0.5)], 50) == 1.0
    assert cs.weighted_nearest_rank([(1.0, 0.5), (2.0, 0.5)], 51) == 2.0
    assert cs.weighted_nearest_rank([(1.0, 0), (2.0, 0)], 50) is None
    # the same answers as expanding the counts
    expanded = sorted([10.0] * 90 + [20.0] * 10)
    for p in (1, 25, 50, 89, 90, 91, 99, 100):
        assert cs.weighted_nearest_rank(samples, p) == cs.nearest_rank(expanded, p)


# -- CloudWatch's rules for a period ----------------------------------------------------------
def test_a_negative_value_leaves_the_period_without_percentiles() -> None:
    assert cs.period_percentile([-1.0, 5.0, 7.0], [], 50) is None
    assert cs.period_percentile([5.0], [(2, -2.0, -1.0, -1.0)], 50) is None
    assert cs.period_percentile([0.0, 5.0], [], 50) == 0.0  # zero is not negative


def test_statistic_sets_count_only_when_they_stand_for_one_value() -> None:
    # SampleCount 1: its one value (the Sum)
    assert cs.period_percentile([], [(1, 42.0, 42.0, 42.0)], 99) == 42.0
    # Minimum == Maximum: SampleCount copies of that value, ranked with the single values
    assert cs.period_percentile([1.0, 2.0], [(8, 40.0, 5.0, 5.0)], 50) == 5.0
    assert cs.period_percentile([1.0, 2.0], [(8, 40.0, 5.0, 5.0)], 20) == 2.0
    assert cs.period_percentile([1.0, 2.0], [(8, 40.0, 5.0, 5.0)], 10) == 1.0
    # a spread of values: CloudWatch has no percentile for the period
    assert cs.period_percentile([1.0, 2.0], [(3, 6.0, 1.0, 3.0)], 50) is None
    # a set of no samples counts nowhere
    assert cs.period_percentile([3.0, 4.0], [(0, 0.0, 0.0, 0.0)], 50) == 3.0
    assert cs.period_percentile([], [(0, 0.0, 0.0, 0.0)], 50) is None


# -- dimensions -------------------------------------------------------------------------------
def dims(**pairs: str) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in pairs.items()]


def test_the_dimension_key_is_the_stores_sorted_column() -> None:
    assert cs.dimensions_key(dims(service="x", route="/y")) == "route=/y\tservice=x\t"
    assert cs.dimensions_key(dims(route="/y", service="x")) == "route=/y\tservice=x\t"
    assert cs.dimensions_key([]) is None
    assert cs.dimensions_key(None) is None


def test_list_metrics_filters_are_exact_subsets() -> None:
    both = dims(service="x", route="/y")
    assert cs.has_dimensions(both, dims(service="x"))
    assert cs.has_dimensions(both, dims(route="/y", service="x"))
    assert cs.has_dimensions(both, [{"Name": "route"}])  # a name-only filter
    assert cs.has_dimensions(both, None)
    assert not cs.has_dimensions(both, dims(service="x", status_class="2xx"))
    assert not cs.has_dimensions(dims(FunctionName="f-2"), dims(FunctionName="f"))
    assert not cs.has_dimensions(dims(FunctionName="F"), dims(FunctionName="f"))
    assert not cs.has_dimensions(dims(myservice="x"), dims(service="x"))
    assert not cs.has_dimensions(None, dims(service="x"))
    assert not cs.has_dimensions(None, [{"Name": "service"}])


# -- the store query --------------------------------------------------------------------------
# The two tables exactly as LocalStack's CloudwatchDatabase creates them.
COMMON = """
    "id" INTEGER, "account_id" TEXT, "region" TEXT, "metric_name" TEXT, "namespace" TEXT,
    "timestamp" NUMERIC, "dimensions" TEXT, "unit" TEXT, "storage_resolution" INTEGER
"""
SCHEMA = f"""
CREATE TABLE "SINGLE_METRICS" ({COMMON}, "value" NUMERIC, PRIMARY KEY("id"));
CREATE TABLE "AGGREGATED_METRICS" ({COMMON}, "sample_count" NUMERIC, "sum" NUMERIC,
    "min" NUMERIC, "max" NUMERIC, PRIMARY KEY("id"));
"""
ACCOUNT, REGION, NS = "000000000000", "us-east-1", "evpm"
T0 = 1_800_000_000  # a period boundary of the queries below


class Store:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)

    def put(self, metric: str, dimensions: list[dict[str, str]], values: list[float], *,
            at: int = T0, unit: str | None = "Milliseconds") -> None:
        self.conn.executemany(
            "INSERT INTO SINGLE_METRICS (account_id, region, metric_name, namespace, timestamp,"
            " dimensions, unit, storage_resolution, value) VALUES (?,?,?,?,?,?,?,?,?)",
            [(ACCOUNT, REGION, metric, NS, at, cs.dimensions_key(dimensions), unit, 60, v)
             for v in values])

    def put_set(self, metric: str, dimensions: list[dict[str, str]], count: float, total: float,
                low: float, high: float, *, at: int = T0, unit: str | None = "Milliseconds",
                ) -> None:
        self.conn.execute(
            "INSERT INTO AGGREGATED_METRICS (account_id, region, metric_name, namespace,"
            " timestamp, dimensions, unit, storage_resolution, sample_count, sum, min, max)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (ACCOUNT, REGION, metric, NS, at, cs.dimensions_key(dimensions), unit, 60, count,
             total, low, high))

    def read(self, metric: str, dimensions: list[dict[str, str]], stat: str, *,
             period: int = 3600, start: int = T0, end: int = T0 + 3600,
             unit: str | None = None) -> list[tuple[int, float]]:
        return cs.read_stat(self.conn, account_id=ACCOUNT, region=REGION, namespace=NS,
                            metric_name=metric, dimensions=dimensions, unit=unit, stat=stat,
                            period=period, start=start, end=end)

    def value(self, metric: str, dimensions: list[dict[str, str]], stat: str,
              **kwargs: Any) -> float | None:
        points = self.read(metric, dimensions, stat, **kwargs)
        assert len(points) <= 1
        return points[0][1] if points else None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    instance = Store(tmp_path / "metrics.db")
    with contextlib.closing(instance.conn):
        yield instance


def test_percentiles_of_a_period_from_the_store(store: Store) -> None:
    service = dims(service="x")
    values = [float(v) for v in range(100, 0, -1)]  # 100 ... 1, stored out of order
    store.put("ApiLatency", service, values[:60], at=T0 + 10)
    store.put("ApiLatency", service, values[60:], at=T0 + 3000)
    assert store.value("ApiLatency", service, "p50") == 50.0
    assert store.value("ApiLatency", service, "p95") == 95.0
    assert store.value("ApiLatency", service, "p99") == 99.0
    assert store.value("ApiLatency", service, "p99.9") == 100.0
    assert store.read("ApiLatency", service, "p95") == [(T0, 95.0)]


def test_each_period_has_its_own_percentile(store: Store) -> None:
    service = dims(service="x")
    store.put("ApiLatency", service, [1.0, 2.0, 3.0, 4.0], at=T0 + 5)
    store.put("ApiLatency", service, [100.0, 200.0], at=T0 + 65)
    store.put("ApiLatency", service, [7.0], at=T0 + 185)
    assert store.read("ApiLatency", service, "p50", period=60, end=T0 + 240) == [
        (T0, 2.0), (T0 + 60, 100.0), (T0 + 180, 7.0)]
    assert store.read("ApiLatency", service, "p100", period=60, end=T0 + 240) == [
        (T0, 4.0), (T0 + 60, 200.0), (T0 + 180, 7.0)]


def test_dimension_sets_match_exactly(store: Store) -> None:
    store.put("ApiLatency", dims(service="x"), [1.0, 2.0])
    store.put("ApiLatency", dims(service="x", route="/y"), [500.0] * 10)
    store.put("ApiLatency", dims(service="x", route="/y/z"), [900.0])
    store.put("ApiLatency", [], [7.0])
    store.put("Duration", dims(FunctionName="f"), [1.0])
    store.put("Duration", dims(FunctionName="f-2"), [1000.0])
    store.put("Duration", dims(FunctionName="F"), [2000.0])
    store.put("Duration", dims(Function_Name="f"), [3000.0])  # `_` was a LIKE wildcard
    store.put("Duration", dims(FunctionName="f%"), [4000.0])  # `%` too

    # {service=x} is its own metric: not the sum of every set that contains service=x
    assert store.value("ApiLatency", dims(service="x"), "Sum") == 3.0
    assert store.value("ApiLatency", dims(service="x"), "SampleCount") == 2.0
    assert store.value("ApiLatency", dims(service="x"), "p99") == 2.0
    assert store.value("ApiLatency", dims(route="/y", service="x"), "Sum") == 5000.0
    assert store.value("ApiLatency", dims(service="x", route="/y"), "Maximum") == 500.0
    assert store.value("ApiLatency", dims(service="x", route="/y/z"), "Sum") == 900.0
    assert store.value("ApiLatency", [], "Sum") == 7.0  # no dimensions: only the bare metric
    assert store.value("ApiLatency", dims(route="/y"), "Sum") is None  # not a published set
    for name, expected in (("f", 1.0), ("f-2", 1000.0), ("F", 2000.0), ("f%", 4000.0)):
        assert store.value("Duration", dims(FunctionName=name), "Sum") == expected
    assert store.value("Duration", dims(Function_Name="f"), "Sum") == 3000.0


def test_the_five_statistics_keep_the_providers_arithmetic(store: Store) -> None:
    service = dims(service="x")
    store.put("Latency", service, [2.0, 4.0, 6.0])
    store.put_set("Latency", service, 4, 40.0, 1.0, 20.0)  # a statistic set of 4 samples
    store.put("Latency", service, [1000.0], unit="Seconds")
    assert store.value("Latency", service, "Sum", unit="Milliseconds") == 52.0
    assert store.value("Latency", service, "SampleCount", unit="Milliseconds") == 7.0
    assert store.value("Latency", service, "Average", unit="Milliseconds") == pytest.approx(52 / 7)
    assert store.value("Latency", service, "Minimum", unit="Milliseconds") == 1.0
    assert store.value("Latency", service, "Maximum", unit="Milliseconds") == 20.0
    # no unit asked: every unit together (the provider's query has no unit filter then)
    assert store.value("Latency", service, "Sum") == 1052.0
    assert store.value("Latency", service, "Sum", unit="Seconds") == 1000.0
    # the set spreads over 1 ... 20: no percentile for the period, as CloudWatch
    assert store.value("Latency", service, "p50", unit="Milliseconds") is None
    assert store.value("Latency", service, "p50", unit="Seconds") == 1000.0


def test_unitless_values_are_asked_for_as_null_value(store: Store) -> None:
    store.put("Widgets", dims(service="x"), [1.0, 2.0], unit=None)
    store.put("Widgets", dims(service="x"), [10.0], unit="Count")
    assert store.value("Widgets", dims(service="x"), "Sum", unit="NULL_VALUE") == 3.0
    assert store.value("Widgets", dims(service="x"), "p100", unit="NULL_VALUE") == 2.0


def test_periods_are_the_providers(store: Store) -> None:
    service = dims(service="x")
    for second in (0, 59, 60, 119, 130):
        store.put("Hits", service, [1.0], at=T0 + 17 + second)
    # periods start at StartTime; the last one is whole even past EndTime (as the provider's)
    assert store.read("Hits", service, "Sum", period=60, start=T0 + 17, end=T0 + 17 + 121) == [
        (T0 + 17, 2.0), (T0 + 77, 2.0), (T0 + 137, 1.0)]
    assert store.read("Hits", service, "SampleCount", period=60, start=T0 + 17,
                      end=T0 + 17 + 120) == [(T0 + 17, 2.0), (T0 + 77, 2.0)]
    assert store.read("Hits", service, "Sum", period=60, start=T0 + 17, end=T0 + 17) == []


def test_other_accounts_regions_and_metrics_are_not_read(store: Store) -> None:
    store.put("Hits", dims(service="x"), [1.0])
    store.conn.execute("UPDATE SINGLE_METRICS SET account_id = '111111111111'")
    store.put("Hits", dims(service="x"), [2.0])
    store.put("Misses", dims(service="x"), [4.0])
    assert store.value("Hits", dims(service="x"), "Sum") == 2.0


def test_unknown_statistics_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unsupported statistic"):
        store.read("Hits", dims(service="x"), "tm90")
    with pytest.raises(ValueError, match="unsupported statistic"):
        store.read("Hits", dims(service="x"), "p101")
    with pytest.raises(ValueError, match="period"):
        store.read("Hits", dims(service="x"), "Sum", period=0)
