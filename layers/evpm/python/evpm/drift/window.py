"""Judge one window of production data against a model's reference profile.

The decision rule, and why:

* **Too few rows, no verdict.** A window under ``min_rows`` (or, for the ground-truth columns,
  under ``min_labelled`` labelled rows) reports ``insufficient_data`` and never alarms: a
  quiet hour is not evidence of anything.
* **A column drifts only when the change is both large and real**: its PSI is at least
  ``psi`` (an effect size: 0.2 is the conventional "significant shift"), and at least what
  the reference's own hours reached (the column's ``psi_limit``, see
  :mod:`evpm.drift.profile`) times ``chunk_margin``, *and* its test (KS on
  the reference grid for numbers, a G-test for categories) rejects "same distribution" at
  ``alpha`` after Holm's correction across every test of the window. Effect size alone alarms
  on small windows by chance; significance alone alarms on tiny, harmless shifts once a window
  holds thousands of rows. Why a margin of 2 on the reference's own limit: another fleet of
  the same world differs from the training fleet by its mix of vehicles as well as by its
  hours; on two calibration fleets of the drift benchmark (not the ones it reports), 200
  one-hour windows gave 8.5 % false alarms at a margin of 1, 1 % at 1.5 and none at 1.75
  or 2. Holm keeps the chance of *any* false alarm among the 24 signals,
  the outputs and the labels at ``alpha`` per window.
* The window's verdict: ``drift`` if any column drifts. Which role drifted says what kind:
  inputs (covariate drift), outputs (prediction drift), labels (the outcomes changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evpm.drift.profile import CategoricalColumn, NumericColumn, ReferenceProfile, Role, present
from evpm.drift.stats import g_test, holm, ks_distance, ks_pvalue, psi

__all__ = ["ColumnDrift", "Thresholds", "WindowReport", "WindowStatus", "judge_window"]

WindowStatus = Literal["ok", "drift", "insufficient_data"]


class Thresholds(BaseModel):
    """When a window counts as drifted (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi: float = Field(default=0.2, gt=0, description="PSI at or above which a shift is large")
    alpha: float = Field(default=0.01, gt=0, lt=1, description="family-wise error per window")
    chunk_margin: float = Field(
        default=2.0, gt=0, description="multiplier of a column's own psi_limit, if it has one"
    )
    min_rows: int = Field(default=200, ge=1, description="rows a window needs for a verdict")
    min_labelled: int = Field(default=100, ge=1, description="labelled rows for label drift")


class ColumnDrift(BaseModel):
    """One column's comparison with the reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    role: Role
    test: Literal["ks", "g"]
    rows: int
    psi: float
    psi_limit: float = Field(description="the PSI this column had to reach to drift")
    statistic: float = Field(description="KS distance, or the G statistic")
    p_value: float
    p_adjusted: float = Field(description="Holm-adjusted across the window's tests")
    drifted: bool


class WindowReport(BaseModel):
    """The verdict on a window, per column and overall."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: WindowStatus
    rows: int
    labelled: int
    thresholds: Thresholds
    columns: list[ColumnDrift]
    skipped: dict[str, str] = Field(
        default={}, description="columns not tested, with the reason (e.g. too few labels)"
    )

    def drifted(self, role: Role | None = None) -> list[str]:
        """Names of the drifted columns (of one role, if given), most drifted first."""
        hits = [c for c in self.columns if c.drifted and (role is None or c.role == role)]
        return [c.column for c in sorted(hits, key=lambda c: -c.psi)]


def _numeric(
    column: NumericColumn, values: np.ndarray, hours: np.ndarray
) -> tuple[float, float, float]:
    expected_bins, expected_cdf = column.expected(hours)
    n = values.size
    live_bins = np.bincount(column.bin_index(values), minlength=len(column.edges) + 1) / n
    live_cdf = np.searchsorted(np.sort(values), np.asarray(column.grid), side="right") / n
    distance = ks_distance(expected_cdf, live_cdf)
    return psi(expected_bins, live_bins), distance, ks_pvalue(distance, n, column.rows)


def _categorical(
    column: CategoricalColumn, values: np.ndarray, hours: np.ndarray
) -> tuple[float, float, float]:
    expected = column.expected(hours)
    index = {c: i for i, c in enumerate(column.categories)}
    codes = np.array([index.get(str(v), len(index)) for v in values], dtype=np.int64)
    counts = np.bincount(codes, minlength=len(index) + 1).astype(np.float64)
    expected = np.append(expected, 0.0)  # "a category the reference never saw"
    g, p = g_test(expected, counts)
    return psi(expected, counts / counts.sum()), g, p


def judge_window(
    profile: ReferenceProfile,
    columns: Mapping[str, np.ndarray],
    hours: np.ndarray,
    thresholds: Thresholds | None = None,
) -> WindowReport:
    """Compare a window's ``columns`` (each row's ``hours`` of day alongside) with ``profile``.

    Columns the profile does not know are ignored; profile columns the window lacks are listed
    in ``skipped``. Missing values (NaN, ``None``) are left out of their column's test, so a
    label column is judged on its labelled rows only.

    Example: ``judge_window(profile, {"SoC": soc}, hours).status  # "ok" | "drift" | ...``
    """
    limits = thresholds or Thresholds()
    hours = np.asarray(hours, dtype=np.int64)
    rows = int(hours.size)
    label_columns = [c for c in profile.columns("label") if c in columns]
    labelled = max((int(present(np.asarray(columns[c])).sum()) for c in label_columns), default=0)
    skipped: dict[str, str] = {}
    if rows < limits.min_rows:
        return WindowReport(
            status="insufficient_data",
            rows=rows,
            labelled=labelled,
            thresholds=limits,
            columns=[],
            skipped={"*": f"{rows} rows < min_rows {limits.min_rows}"},
        )
    found: list[tuple[str, Role, Literal["ks", "g"], int, float, float, float]] = []
    known: dict[str, NumericColumn | CategoricalColumn] = {**profile.numeric, **profile.categorical}
    for name, column in known.items():
        if name not in columns:
            skipped[name] = "not in the window"
            continue
        values = np.asarray(columns[name])
        if values.shape != hours.shape:
            raise ValueError(f"column {name!r} has {values.size} rows, hours has {rows}")
        keep = present(values)
        need = limits.min_labelled if column.role == "label" else limits.min_rows
        if int(keep.sum()) < need:
            skipped[name] = f"{int(keep.sum())} values < {need}"
            continue
        if isinstance(column, NumericColumn):
            stats = _numeric(column, values[keep].astype(np.float64), hours[keep])
            found.append((name, column.role, "ks", int(keep.sum()), *stats))
        else:
            stats = _categorical(column, values[keep], hours[keep])
            found.append((name, column.role, "g", int(keep.sum()), *stats))
    adjusted = holm([f[6] for f in found])

    def limit_of(name: str) -> float:
        own = known[name].psi_limit
        return max(limits.psi, own * limits.chunk_margin) if own is not None else limits.psi

    results = [
        ColumnDrift(
            column=name,
            role=role,
            test=test,
            rows=n,
            psi=round(value, 6),
            psi_limit=round(limit_of(name), 6),
            statistic=round(stat, 6),
            p_value=p,
            p_adjusted=p_adj,
            drifted=value >= limit_of(name) and p_adj < limits.alpha,
        )
        for (name, role, test, n, value, stat, p), p_adj in zip(found, adjusted, strict=True)
    ]
    status: WindowStatus = "drift" if any(r.drifted for r in results) else "ok"
    return WindowReport(
        status=status,
        rows=rows,
        labelled=labelled,
        thresholds=limits,
        columns=results,
        skipped=skipped,
    )
