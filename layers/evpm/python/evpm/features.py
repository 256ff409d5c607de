"""Per-unit rolling features over the past, shared by training and serving.

Training (``training_job``) and serving (the scorer and API functions) both call
:func:`compute`, so a model never sees features computed one way in training and another way
in production. Every feature of a row is a function of that row and the ``max_window - 1``
rows of the same unit before it — never of later rows, never of another unit — and each
window is reduced in one fixed order, so a server that holds the last ``max_window`` readings
of a vehicle reproduces the training features bit for bit, however much older history
training had. Only numpy is needed (the Lambda layer stays small).

Rows must be ordered by unit, then time (:func:`order` gives that permutation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = [
    "ETA_NEVER",
    "FEATURE_SPEC_VERSION",
    "FeatureSpec",
    "compute",
    "compute_lagged",
    "compute_stacked",
    "order",
]

FEATURE_SPEC_VERSION = "fs-1"
"""Version of the feature *code*; bump when :func:`compute` changes what a name means."""

ETA_NEVER = 1.0e6
"""Projection of a trend that never reaches its threshold (flat, or heading away)."""

Stat = Literal["mean", "std", "slope", "min", "max", "delta"]
Projection = tuple[str, float] | tuple[str, float, Literal["above", "below"]]
"""``(series, threshold[, side])`` of :attr:`FeatureSpec.projections`."""


class FeatureSpec(BaseModel):
    """Which features to build from which signals; stored as JSON inside each model.

    Example::

        spec = FeatureSpec(signals=("SoC", "SoH"), windows=(6, 24), stats=("mean", "slope"))
        spec.names()[:3]   # ['SoC', 'SoH', 'SoC__mean6']
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = FEATURE_SPEC_VERSION
    signals: tuple[str, ...] = Field(min_length=1)
    windows: tuple[int, ...] = (6, 24)
    stats: tuple[Stat, ...] = ("mean", "std", "slope")
    ewm_spans: tuple[int, ...] = ()
    include_raw: bool = True
    passthrough: tuple[str, ...] = ()
    """Numeric columns used as they are, not windowed (e.g. a cycle index)."""
    differences: tuple[tuple[str, str], ...] = ()
    """Pairs ``(a, b)`` of signals whose difference ``a - b`` is windowed like a signal.

    Trees split on one column at a time, so a state that shows only as the gap between two
    readings (a pack running hotter than the air around it as its cooling fails) is invisible
    to them in the two readings' separate windows; its own windows make it a single split."""

    projections: tuple[Projection, ...] = ()
    """``(series, threshold, side)``: readings (hours, for hourly telemetry) until the series'
    straight-line trend over the longest window reaches the threshold (``__eta<w>``), where
    ``side`` says where failure lies (``above`` or ``below`` the threshold): 0 once the trend
    is on that side, :data:`ETA_NEVER` while it heads away. A pair ``(series, threshold)``
    without a side, as older models were trained, has no failed side: a trend past the
    threshold and moving on reads :data:`ETA_NEVER`, as it did for them.

    A wear reading and its slope say together when a limit will be crossed, but only as a
    quotient, which trees approximate badly from few vehicles; the projection hands it over."""

    @field_validator("projections")
    @classmethod
    def _projectable(
        cls, value: tuple[Projection, ...], info: ValidationInfo
    ) -> tuple[Projection, ...]:
        stats = info.data.get("stats", ())
        if value and not ("mean" in stats and "slope" in stats and info.data.get("windows")):
            raise ValueError("projections need windows and the mean and slope stats")
        known = set(info.data.get("signals", ()))
        known |= {f"{a}-{b}" for a, b in info.data.get("differences", ())}
        for series, *_ in value:
            if series not in known:
                raise ValueError(f"projection of {series!r}: no such signal or difference")
        return value

    @field_validator("differences")
    @classmethod
    def _known_pairs(
        cls, value: tuple[tuple[str, str], ...], info: ValidationInfo
    ) -> tuple[tuple[str, str], ...]:
        signals = set(info.data.get("signals", ()))
        for a, b in value:
            if a not in signals or b not in signals or a == b:
                raise ValueError(f"difference ({a!r}, {b!r}) needs two distinct signals")
        return value

    @field_validator("windows", "ewm_spans")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 1 for w in value):
            raise ValueError(f"windows and spans must be >= 1 (got {value})")
        return tuple(sorted(set(value)))

    @property
    def max_window(self) -> int:
        """Readings of history (current one included) that fix every feature of a row."""
        spans = [3 * s for s in self.ewm_spans]
        return max([1, *self.windows, *spans])

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns :func:`compute` expects, in order: signals then passthrough columns."""
        return self.signals + self.passthrough

    @property
    def series(self) -> tuple[str, ...]:
        """What gets windowed: the signals, then each difference (named ``a-b``)."""
        return self.signals + tuple(f"{a}-{b}" for a, b in self.differences)

    def names(self) -> list[str]:
        """Output feature names, in the column order of :func:`compute`."""
        series = self.series
        out = list(series) if self.include_raw else []
        for w in self.windows:
            for stat in self.stats:
                out += [f"{s}__{stat}{w}" for s in series]
        for span in self.ewm_spans:
            out += [f"{s}__ewm{span}" for s in series]
        if self.projections:
            out += [f"{s}__eta{self.windows[-1]}" for s, *_ in self.projections]
        return out + list(self.passthrough)


def order(units: Sequence[object] | np.ndarray, times: np.ndarray) -> np.ndarray:
    """Permutation that sorts rows by unit, then time (stable), as :func:`compute` needs."""
    return np.lexsort((np.asarray(times), np.asarray(units)))


def _group_position(units: np.ndarray) -> np.ndarray:
    """Index of each row within its run of equal consecutive unit values."""
    n = units.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = units[1:] != units[:-1]
    starts = np.flatnonzero(new)
    run = np.repeat(starts, np.diff(np.append(starts, n)))
    return np.arange(n) - run


def compute(
    values: np.ndarray,
    units: np.ndarray,
    spec: FeatureSpec,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Feature matrix ``(n, len(spec.names()))`` from ``values`` ``(n, len(spec.inputs))``.

    ``units`` labels each row's unit; rows must be sorted by unit then time. Windows shorter
    than requested at the start of a unit use the rows available (so the first row's mean is
    its own value, its std and slope 0).

    ``rows`` (indices) limits the output to those rows while still reading their history: a
    server that holds each vehicle's recent readings asks for the features of the new ones
    only. Every output number is computed by the same operations in the same order as in a
    full call, so the two agree bit for bit.

    Example: ``compute(np.ones((3, 1)), np.zeros(3), FeatureSpec(signals=("a",),
    windows=(2,), stats=("mean",)))`` is ``[[1, 1]] * 3``.
    """
    x_all = np.asarray(values, dtype=np.float64)
    if x_all.ndim != 2 or x_all.shape[1] != len(spec.inputs):
        raise ValueError(f"values must have shape (n, {len(spec.inputs)}) (got {x_all.shape})")
    n_sig = len(spec.signals)
    x_sig = np.ascontiguousarray(x_all[:, :n_sig])
    pos_all = _group_position(np.asarray(units))
    if rows is not None:
        idx = np.asarray(rows, dtype=np.int64)
        chunks = [
            _compute_rows(x_sig, pos_all, idx[i : i + _ROW_CHUNK], spec)
            for i in range(0, max(len(idx), 1), _ROW_CHUNK)
        ]
        out = chunks[0] if len(chunks) == 1 else np.vstack(chunks)
        out = _with_projections(out, spec, pos_all[idx])
        if spec.passthrough:
            out = np.hstack([out, x_all[idx, n_sig:]])
        return out
    x_src = _with_differences(x_sig, spec)
    lag = np.empty_like(x_src)

    def shifted(j: int) -> np.ndarray:
        """The reading j rows back, or 0 where that row belongs to another unit."""
        if j == 0:
            return x_src
        lag[:j] = 0.0
        lag[j:] = x_src[:-j]
        lag[pos_all < j] = 0.0
        return lag

    blocks = _accumulate(x_src, pos_all, spec, shifted)
    out = np.hstack(blocks) if blocks else np.zeros((x_src.shape[0], 0))
    out = _with_projections(out, spec, pos_all)
    if spec.passthrough:
        out = np.hstack([out, x_all[:, n_sig:]])
    return out


@lru_cache(maxsize=64)
def _difference_columns(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Signal columns of each difference's ``a`` and ``b`` (cached per frozen spec)."""
    col = {name: i for i, name in enumerate(spec.signals)}
    return (
        np.array([col[a] for a, _ in spec.differences], dtype=np.intp),
        np.array([col[b] for _, b in spec.differences], dtype=np.intp),
    )


def _with_differences(x: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The series of ``x`` (signals on the last axis): the signals, then each difference.

    Elementwise, so differences taken on gathered rows equal those of the whole table."""
    if not spec.differences:
        return x
    a, b = _difference_columns(spec)
    return np.concatenate([x, x[..., a] - x[..., b]], axis=-1)


@lru_cache(maxsize=64)
def _projection_columns(
    spec: FeatureSpec,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each projection's mean and slope column, its threshold and its failed side (+1 above,
    -1 below, 0 none given), cached per frozen spec."""
    names = spec.names()
    w = spec.windows[-1]
    sides = {"above": 1.0, "below": -1.0}
    return (
        np.array([names.index(f"{p[0]}__mean{w}") for p in spec.projections], dtype=np.intp),
        np.array([names.index(f"{p[0]}__slope{w}") for p in spec.projections], dtype=np.intp),
        np.array([p[1] for p in spec.projections], dtype=np.float64),
        np.array([sides[p[2]] if len(p) > 2 else 0.0 for p in spec.projections]),
    )


def _with_projections(windowed: np.ndarray, spec: FeatureSpec, pos: np.ndarray) -> np.ndarray:
    """Append each projection's hours-to-threshold (:func:`_projections`)."""
    if not spec.projections:
        return windowed
    return np.hstack([windowed, _projections(windowed, spec, pos)])


def _projections(windowed: np.ndarray, spec: FeatureSpec, pos: np.ndarray) -> np.ndarray:
    """Each projection's hours-to-threshold ``(rows, projections)``, from the longest
    window's mean and slope in ``windowed``.

    The trend line's value now is the window mean moved forward by half the rows it averaged
    (the mean sits at their middle); elementwise on columns every compute path shares (all
    projections at once, ``(rows, projections)``), so they agree bit for bit.
    """
    half = (np.minimum(pos + 1, spec.windows[-1]).astype(np.float64) - 1.0) / 2.0
    mean_cols, slope_cols, thresholds, sides = _projection_columns(spec)
    mean, slope = windowed[:, mean_cols], windowed[:, slope_cols]
    gap = thresholds - (mean + slope * half[:, None])
    heading = gap * slope > 0
    eta = np.where(heading, gap / np.where(heading, slope, 1.0), ETA_NEVER)
    eta[gap == 0] = 0.0
    # Already on the failed side: crossed, whichever way the trend now points.
    eta[(sides != 0.0) & (sides * gap <= 0.0)] = 0.0
    return np.minimum(eta, ETA_NEVER)


def _assembled(
    blocks: list[np.ndarray],
    spec: FeatureSpec,
    pos: np.ndarray,
    passthrough: np.ndarray | None,
) -> np.ndarray:
    """The feature matrix (:meth:`FeatureSpec.names` order) from the windowed blocks, then
    the projections and the passthrough columns, each copied once into one array (a batch's
    matrix is hundreds of columns wide: stacking it twice costs as much as a statistic)."""
    n = len(pos)
    windowed = sum(block.shape[1] for block in blocks)
    out = np.empty((n, windowed + len(spec.projections) + len(spec.passthrough)))
    at = 0
    for block in blocks:
        out[:, at : at + block.shape[1]] = block
        at += block.shape[1]
    if spec.projections:
        out[:, at : at + len(spec.projections)] = _projections(out[:, :at], spec, pos)
        at += len(spec.projections)
    if spec.passthrough:
        assert passthrough is not None
        out[:, at:] = passthrough
    return out


def _accumulate(
    x: np.ndarray, pos: np.ndarray, spec: FeatureSpec, lag_at: Callable[[int], np.ndarray]
) -> list[np.ndarray]:
    """Raw readings, window statistics and EWMs from each row's lags ``0 .. max_window-1``.

    ``lag_at(j)`` gives the readings ``j`` rows back (0 where the row has no such past). The
    sums run lag by lag in that order, whoever supplies the lags, which is what makes the
    features of a whole table and of chosen rows equal bit for bit.
    """
    blocks: list[np.ndarray] = [x] if spec.include_raw else []
    alphas = [2.0 / (s + 1.0) for s in spec.ewm_spans]
    s0 = np.zeros_like(x)
    s1 = np.zeros_like(x)
    s2 = np.zeros_like(x)
    lo = np.full_like(x, np.inf)
    hi = np.full_like(x, -np.inf)
    e_num = [np.zeros_like(x) for _ in alphas]
    e_den = [np.zeros((x.shape[0], 1)) for _ in alphas]
    window_stats: dict[int, list[np.ndarray]] = {}
    longest = spec.windows[-1] if spec.windows else 0
    extremes = "min" in spec.stats or "max" in spec.stats
    tmp = np.empty_like(x)
    for j in range(spec.max_window):
        lag = lag_at(j)
        if j < longest:
            s0 += lag
            np.multiply(lag, float(j), out=tmp)
            s1 += tmp
            np.multiply(lag, lag, out=tmp)
            s2 += tmp
            if extremes:
                valid = (pos >= j)[:, None]
                np.minimum(lo, np.where(valid, lag, np.inf), out=lo)
                np.maximum(hi, np.where(valid, lag, -np.inf), out=hi)
        for k, alpha in enumerate(alphas):
            weight = (1.0 - alpha) ** j
            np.multiply(lag, weight, out=tmp)
            e_num[k] += tmp
            e_den[k] += weight * (pos >= j)[:, None]
        if j + 1 in spec.windows:
            cnt = np.minimum(pos + 1, j + 1).astype(np.float64)[:, None]
            window_stats[j + 1] = _window(x, cnt, s0, s1, s2, lo, hi, spec.stats)
    for w in spec.windows:
        blocks += window_stats[w]
    blocks += [num / den for num, den in zip(e_num, e_den, strict=True)]
    return blocks


_ROW_CHUNK = 1024  # rows per call: a fleet's batch in one, a table's in bounded memory
_SMALL = 16  # up to this many rows, prefix sums (few numpy calls) beat a loop over lags


def _compute_rows(
    x_sig: np.ndarray, pos_all: np.ndarray, idx: np.ndarray, spec: FeatureSpec
) -> np.ndarray:
    """:func:`compute` for the rows ``idx`` only, from their gathered past readings.

    Only the readings in the rows' windows are read, and their differences taken there (not
    over the whole table). Many rows go through :func:`_accumulate` lag by lag, each lag's
    readings gathered as it is summed; a few rows (a single-vehicle request) are gathered
    into ``(lag, rows, series)`` and take the running sums as cumulative sums along the lag
    axis, which numpy accumulates in the same lag order in a handful of calls. Either way
    every number equals the full computation's bit for bit (the tests compare them).
    """
    horizon = spec.max_window
    pos = pos_all[idx]
    if len(idx) > _SMALL:
        full = int(pos.min(initial=horizon)) + 1  # lags below this exist for every row
        buf = np.empty((len(idx), x_sig.shape[1]))

        def gathered(j: int) -> np.ndarray:
            np.take(x_sig, np.maximum(idx - j, 0), axis=0, out=buf)
            lag = _with_differences(buf, spec)
            if j >= full:
                lag[pos < j] = 0.0
            return lag

        x = _with_differences(x_sig[idx], spec)
        blocks = _accumulate(x, pos, spec, gathered)
        return np.hstack(blocks) if blocks else np.zeros((len(idx), 0))
    lags = np.arange(horizon)
    valid = lags[:, None] <= pos[None, :]  # (lag, rows)
    win = _with_differences(x_sig[np.maximum(idx[None, :] - lags[:, None], 0)], spec)
    if not valid.all():
        win[~valid] = 0.0
    return _few_rows(win, valid, pos, spec)


def compute_stacked(
    window: np.ndarray,
    pos: np.ndarray,
    spec: FeatureSpec,
    passthrough: np.ndarray | None = None,
) -> np.ndarray:
    """Features of ``n`` rows from their series stacked by lag: the rows' features in
    :func:`compute`, bit for bit (the tests compare them).

    ``window`` ``(lags, n, len(spec.series))`` with ``lags >= spec.max_window``:
    ``window[j, i]`` is row ``i``'s series (signals, then each difference) ``j`` rows back in
    its unit (``window[0]`` the row itself), and must be 0 where that is more than ``pos[i]``
    rows back, ``pos[i]`` being how many rows of its unit precede the row (any number from
    ``max_window - 1`` up gives the same features). ``passthrough`` ``(n, len(
    spec.passthrough))`` holds the rows' passthrough columns, if the spec has any.

    Why: a server holding each vehicle's recent readings in rings reads a request's window
    from them in one gather (:meth:`evpm.serving.History.window`), differences included, and
    sums it here with the same operations in the same lag order as :func:`compute`: no
    per-vehicle table is built, no row sorted, no difference taken again
    (:func:`compute_lagged` reads many rows' lags one at a time instead).
    """
    horizon = spec.max_window
    if window.ndim != 3 or window.shape[0] < horizon or window.shape[2] != len(spec.series):
        raise ValueError(
            f"window must have shape (>= {horizon}, n, {len(spec.series)}) (got {window.shape})"
        )
    n = window.shape[1]
    _check_passthrough(spec, passthrough, n)
    pos = np.asarray(pos, dtype=np.int64)
    win = window[:horizon]
    if n <= _SMALL:
        valid = np.arange(horizon)[:, None] <= pos[None, :]
        out = _few_rows(win, valid, pos, spec)
        return _finish(out, spec, pos, passthrough)
    return _assembled(_accumulate(win[0], pos, spec, win.__getitem__), spec, pos, passthrough)


def compute_lagged(
    lag_at: Callable[[int], np.ndarray],
    pos: np.ndarray,
    spec: FeatureSpec,
    passthrough: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`compute_stacked` with the lags read one at a time: ``lag_at(j)`` is
    ``window[j]`` ``(n, len(spec.series))`` (it may reuse one array: each is summed before
    the next is asked for).

    Why: many rows' lags read into one small array stay in cache as they are summed, where a
    whole ``(lags, n, series)`` stack would be written to memory and read back; the sums are
    :func:`_accumulate`'s, as for every other path.
    """
    pos = np.asarray(pos, dtype=np.int64)
    first = lag_at(0)
    n = first.shape[0]
    if first.ndim != 2 or first.shape[1] != len(spec.series):
        raise ValueError(f"lags must have shape (n, {len(spec.series)}) (got {first.shape})")
    _check_passthrough(spec, passthrough, n)
    return _assembled(_accumulate(first.copy(), pos, spec, lag_at), spec, pos, passthrough)


def _check_passthrough(spec: FeatureSpec, passthrough: np.ndarray | None, n: int) -> None:
    if spec.passthrough and (
        passthrough is None or passthrough.shape != (n, len(spec.passthrough))
    ):
        raise ValueError(f"passthrough must have shape ({n}, {len(spec.passthrough)})")


def _finish(
    windowed: np.ndarray, spec: FeatureSpec, pos: np.ndarray, passthrough: np.ndarray | None
) -> np.ndarray:
    """Windowed features followed by the projections and the passthrough columns."""
    out = _with_projections(windowed, spec, pos)
    if spec.passthrough:
        assert passthrough is not None
        out = np.hstack([out, passthrough])
    return out


def _few_rows(win: np.ndarray, valid: np.ndarray, pos: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Windowed features (no projections, no passthrough) of a few rows from ``win``
    ``(lag, rows, series)`` (0 where ``valid`` is False): the running sums as cumulative sums
    along the lag axis, which numpy accumulates in the same lag order as :func:`_accumulate`,
    in a handful of calls (a single-vehicle request's path)."""
    horizon = spec.max_window
    lags = np.arange(horizon)
    x = win[0]
    blocks: list[np.ndarray] = [x] if spec.include_raw else []
    longest = spec.windows[-1] if spec.windows else 0
    if longest:
        head = win[:longest]
        s0 = np.cumsum(head, axis=0)
        s1 = np.cumsum(head * lags[:longest, None, None].astype(np.float64), axis=0)
        s2 = np.cumsum(head * head, axis=0)
        # Every window at once, as (window, rows, series) stacks: the same elementwise
        # operations on the same sums as one window at a time, in a few calls.
        ks = np.asarray(spec.windows) - 1
        s0k = s0[ks]
        lo_k = hi_k = s0k  # placeholders when no extremes are asked for
        if "min" in spec.stats or "max" in spec.stats:
            ok = valid[:longest, :, None]
            lo_k = np.minimum.accumulate(np.where(ok, head, np.inf), axis=0)[ks]
            hi_k = np.maximum.accumulate(np.where(ok, head, -np.inf), axis=0)[ks]
        cnt = np.minimum(pos[None, :, None] + 1, (ks + 1)[:, None, None]).astype(np.float64)
        stats = _window(x, cnt, s0k, s1[ks], s2[ks], lo_k, hi_k, spec.stats)
        # (window, stat, rows, series) -> per row: window, then stat, then series (names())
        stacked = np.stack(stats, axis=1).transpose(2, 0, 1, 3)
        blocks.append(stacked.reshape(len(pos), -1))
    for span in spec.ewm_spans:
        alpha = 2.0 / (span + 1.0)
        weights = np.array([(1.0 - alpha) ** j for j in range(horizon)])
        num = np.cumsum(win * weights[:, None, None], axis=0)[-1]
        den = np.cumsum(weights[:, None] * valid, axis=0)[-1][:, None]
        blocks.append(num / den)
    return np.hstack(blocks) if blocks else np.zeros((len(pos), 0))


def _window(
    x: np.ndarray,
    cnt: np.ndarray,
    s0: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    stats: tuple[Stat, ...],
) -> list[np.ndarray]:
    """Statistics of the last ``w`` rows from running sums (sums over lags ``0..w-1``).

    ``cnt`` is how many readings each window holds, ``min(position + 1, w)`` as floats:
    ``(rows, 1)`` for one window, ``(windows, rows, 1)`` for a stack of them (the sums then
    ``(windows, rows, series)``); the operations are elementwise, so both give equal numbers.
    """
    mean = s0 / cnt
    out: list[np.ndarray] = []
    for stat in stats:
        if stat == "mean":
            out.append(mean)
        elif stat == "std":
            out.append(np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0)))
        elif stat == "slope":
            j_bar = (cnt - 1.0) / 2.0
            s_jj = cnt * (cnt * cnt - 1.0) / 12.0
            cov = s1 - j_bar * s0
            # Lag j is j rows in the past, so the forward-in-time slope is -cov / s_jj.
            out.append(np.where(cnt > 1, -cov / np.where(s_jj > 0, s_jj, 1.0), 0.0))
        elif stat == "min":
            out.append(lo.copy())
        elif stat == "max":
            out.append(hi.copy())
        else:  # delta: how far the current reading is from its recent mean
            out.append(x - mean)
    return out
