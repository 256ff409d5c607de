"""Percentile statistics and exact dimension matching in LocalStack's CloudWatch (v2 provider).

Why: the provider's store (``CloudwatchDatabase``) knows five statistics. A percentile
(``p95``, ``p99.9``) in ``GetMetricData`` failed with ``InternalError`` (a ``KeyError`` in its
SQL table of aggregates), ``GetMetricStatistics`` ignored ``ExtendedStatistics`` (and failed
when they came alone). And it matched dimensions with ``dimensions LIKE '%Name=Value%'``: a
query for ``{service=x}`` also summed ``{service=x, route=y}`` (the API publishes each of its
metrics under three dimension sets, so ``{service}`` counted every request three times),
``FunctionName=f`` also matched ``f-2``, and LIKE ignores ASCII case and treats ``_`` and ``%``
in names and values as wildcards. CloudWatch treats each dimension *set* as its own metric:
a query reads the metric whose dimensions are exactly the ones given.

What :func:`install` patches:

* ``CloudwatchDatabase.get_metric_data_stat`` (what ``GetMetricData``, ``GetMetricStatistics``
  and the alarm scheduler read through) is replaced by :func:`read_stat`: the same rows, the
  same periods and the same arithmetic as the provider's SQL for ``SampleCount``, ``Average``,
  ``Sum``, ``Minimum`` and ``Maximum`` (over ``SINGLE_METRICS``, one row per value, and
  ``AGGREGATED_METRICS``, one row per statistic set), but the dimension column must *equal* the
  query's dimension string (``dimensions IS NULL`` for none), and ``pNN`` / ``pNN.NN`` are
  computed from the period's values (:func:`period_percentile`). The provider's SQL could not be
  kept for the five: the ``LIKE`` is inside its query text.
* ``CloudwatchProvider.get_metric_statistics``: the provider's own method answers
  ``Statistics``; ``ExtendedStatistics`` are added to its datapoints (same periods, same units).
* ``CloudwatchDatabase.list_metrics``: the provider's answer, then only the metrics that really
  have every dimension of the filter, name and value exactly (still a subset match, as the
  provider's: a metric with more dimensions is listed) - its ``LIKE`` had the same problems.

Percentiles, as CloudWatch documents them: over the values of each period; a period with a
negative value has none ("not available for metrics when any of the metric values are
negative"); a statistic set counts only if its ``SampleCount`` is 1 (one value, its ``Sum``) or
its ``Minimum`` equals its ``Maximum`` (``SampleCount`` values of that value), otherwise the
period has no percentile. CloudWatch does not document how it ranks; this is the *nearest-rank*
definition: the smallest value such that at least p % of the period's values are <= it, so the
answer is always a published value, ``p0`` the minimum and ``p100`` the maximum (no
interpolation between values).

Everything above the glue (``install`` and the ``_patched_*`` functions) is pure Python and
SQLite: the unit tests run it without LocalStack.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from evpm_localstack import metrics_sink
from evpm_localstack.metrics_sink import dimensions_key

LOG = logging.getLogger(__name__)

BUILTIN_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
# The provider's own mapping: the SQL aggregate over the values, and the statistic-set column
# that stands for a value in it (Average = Sum / SampleCount, computed after).
_AGGREGATE = {"Sum": "SUM(value)", "Average": "SUM(value)", "Minimum": "MIN(value)",
              "Maximum": "MAX(value)", "SampleCount": "SUM(count)"}
_SET_COLUMN = {"Sum": "sum", "Average": "sum", "Minimum": "min", "Maximum": "max",
               "SampleCount": "sample_count"}
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d+)?)")

__all__ = [
    "BUILTIN_STATS",
    "dimensions_key",
    "has_dimensions",
    "install",
    "nearest_rank",
    "percentile_of",
    "period_percentile",
    "read_stat",
    "weighted_nearest_rank",
]


# -- statistics -------------------------------------------------------------------------------
def percentile_of(stat: str) -> Fraction | None:
    """``"p95"`` -> 95, ``"p99.9"`` -> 99.9 (exact); None for anything else (``"P95"``,
    ``"p101"``, ``"tm90"``, ``"Sum"``)."""
    match = _PERCENTILE.fullmatch(stat or "")
    if match is None:
        return None
    p = Fraction(match.group(1))
    return p if p <= 100 else None


def nearest_rank(ordered: Sequence[float], p: Fraction | float) -> float | None:
    """The p-th percentile of values sorted ascending: the value of rank ceil(p/100 * n)
    (rank 1 for p = 0). None for no values."""
    if not ordered:
        return None
    rank = math.ceil(Fraction(p) * len(ordered) / 100)
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def weighted_nearest_rank(samples: Iterable[tuple[float, float]],
                          p: Fraction | float) -> float | None:
    """Nearest rank over (value, count) pairs: the smallest value whose cumulative count
    reaches p % of the total (counts may be fractional, as ``SampleCount`` may be)."""
    ordered = sorted((value, Fraction(count)) for value, count in samples if count > 0)
    if not ordered:
        return None
    target = Fraction(p) * sum(count for _, count in ordered) / 100
    reached = Fraction(0)
    for value, count in ordered:
        reached += count
        if reached >= target:
            return value
    return ordered[-1][0]


def period_percentile(values: Sequence[float], stat_sets: Iterable[Sequence[float | None]],
                      p: Fraction | float) -> float | None:
    """The percentile of one period, by CloudWatch's rules, or None when it has none.

    ``values``: the period's single values, sorted ascending. ``stat_sets``: its statistic
    sets as (SampleCount, Sum, Minimum, Maximum). None when the period has no value, a negative
    value, or a statistic set that stands for different values (SampleCount > 1 and Minimum !=
    Maximum): CloudWatch computes no percentile then."""
    if values and values[0] < 0:
        return None
    samples: list[tuple[float, float]] = []
    for count, total, low, high in stat_sets:
        if not count or count <= 0:
            continue  # no samples: counts nowhere (the provider's SampleCount skips it too)
        if count == 1 and total is not None:
            value = total
        elif low is not None and low == high:
            value = low
        else:
            return None
        if value < 0:
            return None
        samples.append((value, count))
    if not samples:
        return nearest_rank(values, p)
    samples.extend((value, 1) for value in values)
    return weighted_nearest_rank(samples, p)


# -- dimensions -------------------------------------------------------------------------------
def has_dimensions(dimensions: Iterable[Mapping[str, str]] | None,
                   filters: Iterable[Mapping[str, str]] | None) -> bool:
    """``ListMetrics``' filter: the metric has every filter's dimension (a filter without
    ``Value`` asks for the name only). Names and values compare exactly."""
    have = {(d["Name"], d["Value"]) for d in dimensions or ()}
    names = {name for name, _ in have}
    for wanted in filters or ():
        if wanted.get("Value") is None:
            if wanted["Name"] not in names:
                return False
        elif (wanted["Name"], wanted["Value"]) not in have:
            return False
    return True


# -- the store's query ------------------------------------------------------------------------
def _where(account_id: str, region: str, namespace: str, metric_name: str,
           dimensions: Iterable[Mapping[str, str]] | None, unit: str | None,
           low: int, high: int) -> tuple[str, tuple[Any, ...]]:
    clauses = ["account_id = ?", "region = ?", "namespace = ?", "metric_name = ?"]
    params: list[Any] = [account_id, region, namespace, metric_name]
    key = dimensions_key(list(dimensions or ()))
    if key is None:
        clauses.append("dimensions IS NULL")
    else:
        clauses.append("dimensions = ?")
        params.append(key)
    if unit == "NULL_VALUE":  # the provider's marker for "stored without a unit"
        clauses.append("unit IS NULL")
    elif unit:
        clauses.append("unit = ?")
        params.append(unit)
    clauses.append("timestamp >= ? AND timestamp < ?")
    params += [low, high]
    return " AND ".join(clauses), tuple(params)


def read_stat(conn: sqlite3.Connection, *, account_id: str, region: str, namespace: str,
              metric_name: str, dimensions: Iterable[Mapping[str, str]] | None,
              unit: str | None, stat: str, period: int, start: int,
              end: int) -> list[tuple[int, float]]:
    """(period start, value) of every period in [start, end) that has data, oldest first.

    Periods as the provider makes them: ``start``, ``start + period``, ... while < ``end``,
    the last one whole. ``stat``: one of :data:`BUILTIN_STATS` or a percentile
    (:func:`percentile_of`); ValueError for anything else."""
    p = percentile_of(stat)
    if stat not in BUILTIN_STATS and p is None:
        raise ValueError(f"unsupported statistic {stat!r}")
    if period <= 0:
        raise ValueError(f"period must be positive, not {period}")
    periods = max(0, math.ceil((end - start) / period))
    where, params = _where(account_id, region, namespace, metric_name, dimensions, unit,
                           start, start + periods * period)
    bucket = "CAST((timestamp - ?) / ? AS INTEGER)"
    head = (start, period)
    found: list[tuple[int, float]] = []
    if p is None:
        sql = f"""
            SELECT bucket, {_AGGREGATE[stat]}, SUM(count) FROM (
                SELECT {bucket} AS bucket, value, 1 AS count
                FROM SINGLE_METRICS WHERE {where}
                UNION ALL
                SELECT {bucket} AS bucket, {_SET_COLUMN[stat]} AS value, sample_count AS count
                FROM AGGREGATED_METRICS WHERE {where}
            ) GROUP BY bucket ORDER BY bucket"""
        for index, aggregate, count in conn.execute(sql, head + params + head + params):
            if count and aggregate is not None:  # the provider skips a period of count 0
                value = aggregate / count if stat == "Average" else aggregate
                found.append((start + index * period, float(value)))
        return found
    values: dict[int, list[float]] = {}
    for index, value in conn.execute(
            f"SELECT {bucket}, value FROM SINGLE_METRICS WHERE {where} AND value IS NOT NULL "
            "ORDER BY 1, 2",
            head + params):
        values.setdefault(index, []).append(value)
    stat_sets: dict[int, list[tuple[Any, ...]]] = {}
    for index, *row in conn.execute(
            f"SELECT {bucket}, sample_count, sum, min, max FROM AGGREGATED_METRICS "
            f"WHERE {where}", head + params):
        stat_sets.setdefault(index, []).append(tuple(row))
    for index in sorted(values.keys() | stat_sets.keys()):
        value = period_percentile(values.get(index, []), stat_sets.get(index, []), p)
        if value is not None:
            found.append((start + index * period, float(value)))
    return found


# -- LocalStack glue --------------------------------------------------------------------------
def _flush_sink() -> None:
    """Metric data queued by the emulator's sink goes in before a read (as metrics_sink's own
    read wrappers do; this read replaces one of them)."""
    try:
        metrics_sink.SINK.flush()
    except Exception as exc:
        LOG.warning("cloudwatch stats: flush before read failed: %s", exc)


def _unsupported(stat: Any, parameter: str) -> Exception:
    from localstack.aws.api.cloudwatch import InvalidParameterValueException

    return InvalidParameterValueException(
        f"The value {stat} for parameter {parameter} is not supported (the emulator computes "
        f"{', '.join(BUILTIN_STATS)} and percentiles p0 to p100).")


def _patched_get_metric_data_stat(self: Any, account_id: str, region: str, query: Any,
                                  start_time: Any, end_time: Any,
                                  scan_by: str | None) -> dict[str, list]:
    metric_stat = query.get("MetricStat") or {}
    metric = metric_stat.get("Metric") or {}
    stat = metric_stat.get("Stat")
    if stat not in BUILTIN_STATS and percentile_of(stat) is None:
        raise _unsupported(stat, "MetricStat.Stat")
    period = int(metric_stat.get("Period") or 0)
    if period <= 0:
        from localstack.aws.api.cloudwatch import InvalidParameterValueException

        raise InvalidParameterValueException("The parameter Period must be greater than 0.")
    _flush_sink()
    with self.DATABASE_LOCK, \
            contextlib.closing(sqlite3.connect(self.METRICS_DB_READ_ONLY, uri=True)) as conn:
        points = read_stat(
            conn, account_id=account_id, region=region, namespace=metric.get("Namespace"),
            metric_name=metric.get("MetricName"), dimensions=metric.get("Dimensions"),
            unit=metric_stat.get("Unit"), stat=stat, period=period,
            start=int(start_time.timestamp()), end=int(end_time.timestamp()))
    if scan_by is None or scan_by == "TimestampDescending":  # the provider's default order
        points.reverse()
    return {"timestamps": [t for t, _ in points], "values": [v for _, v in points]}


def _patched_list_metrics(original: Callable[..., dict]) -> Callable[..., dict]:
    @functools.wraps(original)
    def list_metrics(self: Any, account_id: str, region: str, namespace: str,
                     metric_name: str, dimensions: list[dict[str, str]]) -> dict:
        result = original(self, account_id, region, namespace, metric_name, dimensions)
        if dimensions:  # the provider's LIKE found a superset: keep the exact matches
            result["metrics"] = [m for m in result.get("metrics", [])
                                 if has_dimensions(m.get("dimensions"), dimensions)]
        return result

    return list_metrics


def _patched_get_metric_statistics(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)  # keeps the @handler marks the dispatch table looks for
    def get_metric_statistics(self: Any, context: Any, namespace: str, metric_name: str,
                              start_time: Any, end_time: Any, period: int,
                              dimensions: Any = None, statistics: Any = None,
                              extended_statistics: Any = None, unit: Any = None,
                              **kwargs: Any) -> Any:
        from localstack.aws.api.cloudwatch import (
            Datapoint,
            InvalidParameterCombinationException,
        )

        if statistics and extended_statistics:
            raise InvalidParameterCombinationException(
                "The parameters Statistics and ExtendedStatistics are mutually exclusive and "
                "you have specified both.")
        if not statistics and not extended_statistics:
            raise InvalidParameterCombinationException(
                "Must specify either Statistics or ExtendedStatistics.")
        for extended in extended_statistics or ():
            if percentile_of(extended) is None:
                raise _unsupported(extended, "ExtendedStatistics")
        # the provider's own answer: its checks (time range, 1,440 datapoints) and Statistics
        result = original(self, context, namespace, metric_name, start_time, end_time, period,
                          dimensions, statistics or [], None, unit, **kwargs)
        if not extended_statistics:
            return result
        database = self.cloudwatch_database
        units = [unit] if unit else database.get_units_for_metric_data_stat(
            account_id=context.account_id, region=context.region, start_time=start_time,
            end_time=end_time, metric_name=metric_name, namespace=namespace)
        points = {(p.get("Unit"), p.get("Timestamp")): p for p in result.get("Datapoints", [])}
        for selected_unit in units:
            label = "None" if selected_unit == "NULL_VALUE" else selected_unit
            for extended in extended_statistics:
                answer = database.get_metric_data_stat(
                    account_id=context.account_id, region=context.region,
                    start_time=start_time, end_time=end_time, scan_by="TimestampDescending",
                    query={"MetricStat": {
                        "Metric": {"MetricName": metric_name, "Namespace": namespace,
                                   "Dimensions": dimensions or []},
                        "Period": period, "Stat": extended, "Unit": selected_unit}})
                for timestamp, value in zip(answer["timestamps"], answer["values"],
                                            strict=True):
                    point = points.setdefault((label, timestamp),
                                              Datapoint(Timestamp=timestamp, Unit=label))
                    point.setdefault("ExtendedStatistics", {})[extended] = float(value)
        result["Datapoints"] = list(points.values())
        return result

    return get_metric_statistics


def install() -> None:
    """Patch the CloudWatch v2 provider's store and ``GetMetricStatistics`` (idempotent)."""
    from localstack.services.cloudwatch.cloudwatch_database_helper import CloudwatchDatabase
    from localstack.services.cloudwatch.provider_v2 import CloudwatchProvider

    if getattr(CloudwatchDatabase, "_evpm_stats", False):
        return
    CloudwatchDatabase.get_metric_data_stat = _patched_get_metric_data_stat
    CloudwatchDatabase.list_metrics = _patched_list_metrics(CloudwatchDatabase.list_metrics)
    CloudwatchProvider.get_metric_statistics = _patched_get_metric_statistics(
        CloudwatchProvider.get_metric_statistics)
    CloudwatchDatabase._evpm_stats = True
    _rebind_loaded_provider()


def _rebind_loaded_provider() -> None:
    """A provider created before the patch keeps the old bound method in its dispatch table
    (LocalStack loads services lazily, so normally none is): point it at the new one."""
    from localstack.services.plugins import SERVICE_PLUGINS

    if "cloudwatch" not in SERVICE_PLUGINS.list_loaded_services():
        return
    service = SERVICE_PLUGINS.get_service("cloudwatch")
    provider = getattr(service, "_provider", None)
    dispatcher = getattr(getattr(service, "skeleton", None), "dispatch_table", {}).get(
        "GetMetricStatistics")
    if provider is not None and dispatcher is not None:
        dispatcher.fn = provider.get_metric_statistics
