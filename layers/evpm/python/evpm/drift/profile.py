"""The reference a model's production data is compared with: a profile of its training data.

Why a profile and not the training rows: a profile of a million rows is a few hundred
kilobytes stored beside the model's artifact, and the monitor needs only that to judge a window.

Why per hour of day: a fleet's readings depend on the hour (at 03:00 nearly nothing drives, at
08:00 a third of the fleet does; the air is 10 °C warmer at 15:00 than at dawn). A window of
one hour compared with an all-day reference would alarm every night. So every column keeps one
distribution per hour-of-day *stratum*, and a window is compared with the mixture of strata in
its own proportions (:meth:`NumericColumn.expected`): an hour at 03:00 against the 03:00
reference, a replayed day against the whole day. A stratum the training data barely covers
falls back to the pooled distribution.

Why the reference's own windows set the bar: readings of one hour are not independent draws.
Every vehicle of a fleet shares that hour's weather and that week's season, so an hour of an
unchanged fleet differs from the pooled reference by more than sampling alone explains (the
air is one sample, not five hundred). Given ``chunks`` (e.g. the hour each training row was
read), the profile measures how far the reference's own chunks stray from it, per column, and
keeps a high quantile of those PSIs as that column's ``psi_limit``: a window drifts only when
it strays further than the training data's own hours did (the approach NannyML takes with
its reference chunks).

Per numeric column: inner edges of decile bins (for PSI) and a grid of percentiles at which the
cumulative distribution is kept (for the KS distance), both from the pooled data, then each
stratum's bin proportions and cumulative proportions on them. Per categorical column: the
category list and each stratum's frequencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evpm.drift.stats import PSI_FLOOR
from evpm.telemetry import FEATURES

__all__ = [
    "CHUNK_QUANTILE",
    "CUMULATIVE_SIGNALS",
    "MIN_CHUNK_ROWS",
    "MIN_STRATUM_ROWS",
    "MONITORED_SIGNALS",
    "PROFILE_SCHEMA",
    "STRATA",
    "CategoricalColumn",
    "NumericColumn",
    "ReferenceProfile",
    "Role",
    "build_profile",
    "hour_of_day",
    "present",
]

PROFILE_SCHEMA = "evpm-profile/1"
STRATA = 24
"""Hour-of-day strata (UTC hour of the reading)."""
MIN_STRATUM_ROWS = 30
"""A stratum with fewer reference rows than this uses the pooled distribution instead."""

CUMULATIVE_SIGNALS = ("Charge_Cycles", "Distance_Traveled", "Idle_Time")
"""Signals that only ever grow (cycle count, odometer, idle hours). Every later window of any
fleet sits above its training data, so their "drift" is the calendar, not a change; the fleet's
ageing that matters shows in SoH and the wear signals, which are watched."""
MONITORED_SIGNALS = tuple(name for name in FEATURES if name not in CUMULATIVE_SIGNALS)
"""The 21 signals whose drift is judged (the 24 less :data:`CUMULATIVE_SIGNALS`)."""

MIN_CHUNK_ROWS = 100
"""A reference chunk with fewer rows than this does not count towards ``psi_limit``."""
CHUNK_QUANTILE = 0.995
"""Which quantile of the reference chunks' PSIs becomes a column's ``psi_limit``."""

Role = Literal["input", "output", "label"]
"""What a column is: a model input (feature drift), a model output (prediction drift) or a
ground-truth outcome (label drift)."""


def hour_of_day(epoch_seconds: np.ndarray) -> np.ndarray:
    """The UTC hour (0-23) of each timestamp given in seconds since the epoch."""
    return ((np.asarray(epoch_seconds, dtype=np.int64) // 3600) % 24).astype(np.int64)


def _weights(hours: np.ndarray) -> np.ndarray:
    """Each hour-of-day stratum's share of the window's rows."""
    w = np.bincount(hours, minlength=STRATA)[:STRATA].astype(np.float64)
    return w / max(w.sum(), 1.0)


def present(values: np.ndarray) -> np.ndarray:
    """Which values are there: finite numbers; categories that are not ``None``, NaN or ``""``."""
    if values.dtype.kind in "fiub":
        return np.isfinite(values.astype(np.float64))
    return np.array([v is not None and v == v and v != "" for v in values], dtype=bool)


def _strata(matrix: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per stratum distributions (rows of ``matrix``), thin strata replaced by the pooled one."""
    counts = np.asarray(counts, dtype=np.float64)
    pooled = counts @ matrix / max(counts.sum(), 1.0)
    return np.where((counts >= MIN_STRATUM_ROWS)[:, None], matrix, pooled[None, :])


def _mix(matrix: np.ndarray, counts: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """The reference distribution matching ``hours``' mix of strata (rows of ``matrix``)."""
    return np.asarray(_weights(hours) @ _strata(matrix, counts))


class NumericColumn(BaseModel):
    """One numeric column's reference distribution, per hour-of-day stratum."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    edges: tuple[float, ...] = Field(description="inner PSI bin edges; bin i is (e[i-1], e[i]]")
    grid: tuple[float, ...] = Field(description="points the cumulative distribution is kept at")
    counts: tuple[int, ...] = Field(min_length=STRATA, max_length=STRATA)
    bins: tuple[tuple[float, ...], ...] = Field(description="per stratum, bin proportions")
    cdf: tuple[tuple[float, ...], ...] = Field(description="per stratum, P(x <= grid point)")
    psi_limit: float | None = Field(
        default=None, description="the reference's own chunks' PSI at CHUNK_QUANTILE"
    )

    @property
    def rows(self) -> int:
        return int(sum(self.counts))

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Which PSI bin each value falls in."""
        return np.searchsorted(np.asarray(self.edges), values, side="left")

    def expected(self, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(bin proportions, cdf on the grid)`` of the reference for this mix of hours."""
        counts = np.asarray(self.counts)
        return (
            _mix(np.asarray(self.bins), counts, hours),
            _mix(np.asarray(self.cdf), counts, hours),
        )


class CategoricalColumn(BaseModel):
    """One categorical column's reference frequencies, per hour-of-day stratum."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    categories: tuple[str, ...]
    counts: tuple[int, ...] = Field(min_length=STRATA, max_length=STRATA)
    freq: tuple[tuple[float, ...], ...] = Field(description="per stratum, category shares")
    psi_limit: float | None = Field(
        default=None, description="the reference's own chunks' PSI at CHUNK_QUANTILE"
    )

    @property
    def rows(self) -> int:
        return int(sum(self.counts))

    def expected(self, hours: np.ndarray) -> np.ndarray:
        """Category proportions of the reference for this mix of hours."""
        return _mix(np.asarray(self.freq), np.asarray(self.counts), hours)


class ReferenceProfile(BaseModel):
    """What a model version learnt from; stored as JSON beside its artifact.

    ``quality`` holds the version's own held-out figures (``rul_mae``, ``macro_f1``,
    ``anomaly_precision``) that live quality is compared with.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: str = Field(default=PROFILE_SCHEMA, alias="schema")
    source: str = Field(default="", description="what the profile was built from")
    rows: int
    numeric: dict[str, NumericColumn] = {}
    categorical: dict[str, CategoricalColumn] = {}
    quality: dict[str, float] = {}

    def columns(self, role: Role) -> list[str]:
        """The columns of one role, numeric first, in a stable order."""
        return [n for n, c in self.numeric.items() if c.role == role] + [
            n for n, c in self.categorical.items() if c.role == role
        ]


def _chunk_limit(
    codes: np.ndarray,
    hours: np.ndarray,
    chunks: np.ndarray | None,
    matrix: np.ndarray,
    counts: np.ndarray,
) -> float | None:
    """:data:`CHUNK_QUANTILE` of the PSIs of the reference's chunks against the reference.

    ``codes`` = each row's bin or category, ``matrix`` = per stratum proportions. Vectorised
    over chunks: one pass over the rows whatever their number.
    """
    if chunks is None or codes.size == 0:
        return None
    ids, chunk = np.unique(chunks, return_inverse=True)
    sizes = np.bincount(chunk, minlength=ids.size)
    observed = np.zeros((ids.size, matrix.shape[1]))
    np.add.at(observed, (chunk, codes), 1.0)
    mix = np.zeros((ids.size, STRATA))
    np.add.at(mix, (chunk, hours), 1.0)
    strata = _strata(matrix, counts)
    keep = sizes >= MIN_CHUNK_ROWS
    if not keep.any():
        return None
    expected = np.maximum(mix[keep] / sizes[keep, None] @ strata, PSI_FLOOR)
    actual = np.maximum(observed[keep] / sizes[keep, None], PSI_FLOOR)
    values = np.sum((actual - expected) * np.log(actual / expected), axis=1)
    return round(float(np.quantile(values, CHUNK_QUANTILE)), 6)


def _numeric(
    values: np.ndarray,
    hours: np.ndarray,
    chunks: np.ndarray | None,
    role: Role,
    bins: int,
    grid: int,
) -> NumericColumn:
    keep = np.isfinite(values)
    x, h = values[keep], hours[keep]
    c = None if chunks is None else chunks[keep]
    if x.size == 0:
        raise ValueError("a numeric column needs at least one finite value")
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    points = np.unique(np.quantile(x, np.linspace(0.01, 0.99, grid)))
    counts = np.bincount(h, minlength=STRATA)[:STRATA]
    index = np.searchsorted(edges, x, side="left")
    k = len(edges) + 1
    bin_counts = np.zeros((STRATA, k))
    np.add.at(bin_counts, (h, index), 1.0)
    cdf = np.zeros((STRATA, len(points)))
    order = np.argsort(h, kind="stable")
    xs, hs = x[order], h[order]
    starts = np.searchsorted(hs, np.arange(STRATA + 1))
    for s in range(STRATA):
        part = np.sort(xs[starts[s] : starts[s + 1]])
        if part.size:
            cdf[s] = np.searchsorted(part, points, side="right") / part.size
    share = bin_counts / np.maximum(counts[:, None], 1)
    return NumericColumn(
        role=role,
        edges=tuple(float(e) for e in edges),
        grid=tuple(float(p) for p in points),
        counts=tuple(int(c) for c in counts),
        bins=tuple(tuple(round(float(v), 6) for v in row) for row in share),
        cdf=tuple(tuple(round(float(v), 6) for v in row) for row in cdf),
        psi_limit=_chunk_limit(index, h, c, share, counts.astype(np.float64)),
    )


def _categorical(
    values: np.ndarray, hours: np.ndarray, chunks: np.ndarray | None, role: Role
) -> CategoricalColumn:
    keep = present(values)
    x, h = values[keep].astype(str), hours[keep]
    c = None if chunks is None else chunks[keep]
    if x.size == 0:
        raise ValueError("a categorical column needs at least one value")
    categories, codes = np.unique(x, return_inverse=True)
    counts = np.bincount(h, minlength=STRATA)[:STRATA]
    table = np.zeros((STRATA, len(categories)))
    np.add.at(table, (h, codes), 1.0)
    share = table / np.maximum(counts[:, None], 1)
    return CategoricalColumn(
        role=role,
        categories=tuple(str(c) for c in categories),
        counts=tuple(int(c) for c in counts),
        freq=tuple(tuple(round(float(v), 6) for v in row) for row in share),
        psi_limit=_chunk_limit(codes, h, c, share, counts.astype(np.float64)),
    )


def build_profile(
    columns: Mapping[str, np.ndarray],
    roles: Mapping[str, Role],
    hours: np.ndarray,
    *,
    source: str = "",
    chunks: np.ndarray | None = None,
    quality: Mapping[str, float] | None = None,
    bins: int = 10,
    grid: int = 64,
) -> ReferenceProfile:
    """Profile ``columns`` (one array per column, all of one length; ``hours`` = each row's
    hour of day; ``chunks`` = each row's reference window, e.g. the hour it was read, to
    calibrate ``psi_limit``). Float and integer arrays are numeric (NaN = missing); anything else is
    categorical (``None`` or ``""`` = missing).

    Example::

        hours = np.arange(48) % 24
        p = build_profile({"SoC": np.linspace(0, 100, 48)}, {"SoC": "input"}, hours)
        p.numeric["SoC"].rows   # 48
    """
    hours = np.asarray(hours, dtype=np.int64)
    chunks = None if chunks is None else np.asarray(chunks)
    if hours.size and (hours.min() < 0 or hours.max() >= STRATA):
        raise ValueError("hours must be hours of the day, 0-23")
    numeric: dict[str, NumericColumn] = {}
    categorical: dict[str, CategoricalColumn] = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.shape != hours.shape:
            raise ValueError(f"column {name!r} has {values.size} rows, hours has {hours.size}")
        role = roles[name]
        if values.dtype.kind in "fiub":
            numeric[name] = _numeric(values.astype(np.float64), hours, chunks, role, bins, grid)
        else:
            categorical[name] = _categorical(values, hours, chunks, role)
    return ReferenceProfile(
        source=source,
        rows=int(hours.size),
        numeric=numeric,
        categorical=categorical,
        quality=dict(quality or {}),
    )
