"""Serving the pinned models: per-vehicle history, one vectorised pass, versions named.

The scorer and the API hold a :class:`History` of each vehicle's recent readings (as many as
the models' longest window needs) and a :class:`PinnedModels` that loads exactly the pinned
versions. :func:`score_models` then turns a batch of readings into per-reading model outputs,
computing each reading's rolling features from its own vehicle's past (never from later
readings), with the same :func:`evpm.features.compute` code and operation order as training,
so a served prediction equals the registered artifact's prediction on the same history.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from evpm.counters import MODEL_LOAD_FAILURES, count
from evpm.features import FeatureSpec, compute, compute_lagged, compute_stacked
from evpm.models import ModelBundle
from evpm.past_readings import PastReadings, PastUsed, rehydrate
from evpm.pins import TASK_OF
from evpm.telemetry import FEATURES

__all__ = [
    "FeaturePlan",
    "History",
    "ModelOutputs",
    "PinnedModels",
    "ServedModels",
    "model_inputs",
    "score_models",
]

_log = logging.getLogger(__name__)
_COLUMN = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class ServedModels:
    """The loaded pinned versions: model name → version and → bundle."""

    versions: dict[str, int] = field(default_factory=dict)
    bundles: dict[str, ModelBundle] = field(default_factory=dict)

    @cached_property
    def depth(self) -> int:
        """Readings of history (current included) that fix every feature of every model."""
        return max((b.spec.features.max_window for b in self.bundles.values()), default=1)

    def version_labels(self) -> dict[str, str]:
        """``model_versions`` entries for a prediction (``{"ev-rul": "2", ...}``)."""
        return dict(self._labels)

    @cached_property
    def _labels(self) -> dict[str, str]:
        return {name: str(v) for name, v in sorted(self.versions.items())}

    @cached_property
    def feature_plan(self) -> tuple[FeaturePlan, ...]:
        """One :class:`FeaturePlan` per group of feature specs that one computation serves.

        Worked out once per loaded set, not per request: models that share a spec share one
        :func:`evpm.features.compute` call, and so do specs that differ only in windows,
        statistics, differences and projections (:func:`merged_spec`: the detector's short
        means and the boosters' long windows come out of one pass over the same readings, each
        column equal bit for bit to its own spec's). Column selections that would copy a
        matrix unchanged are skipped. The plan for a few readings (a request);
        :attr:`batch_plan` serves many.
        """
        return self._plan(_mergeable)

    @cached_property
    def batch_plan(self) -> tuple[FeaturePlan, ...]:
        """:attr:`feature_plan` for many readings: specs share a computation only when their
        union adds no column none of them asks for (:func:`_worth_merging`). For a batch the
        extra columns cost more than a second pass over a short spec's lags; for a request,
        the second call costs more than the columns."""
        return self._plan(_worth_merging)

    def plan_for(self, readings: int) -> tuple[FeaturePlan, ...]:
        """The feature plan for a call with this many readings."""
        return self.feature_plan if readings <= _FEW else self.batch_plan

    @cached_property
    def differences(self) -> tuple[tuple[int, int], ...]:
        """Every signal difference a served spec windows, as pairs of :data:`FEATURES`
        columns: what a :class:`History` keeps beside each reading (:meth:`History.derive`),
        after its 24 columns and in this order."""
        pairs = [
            (_COLUMN[a], _COLUMN[b])
            for bundle in self.bundles.values()
            for a, b in bundle.spec.features.differences
        ]
        return tuple(dict.fromkeys(pairs))

    def _plan(self, merge: Callable[[Sequence[FeatureSpec]], bool]) -> tuple[FeaturePlan, ...]:
        """The plans when specs with a common :func:`_merge_key` are merged where ``merge``
        says so, and otherwise computed one per distinct spec."""
        groups: dict[object, list[str]] = {}
        for name, bundle in self.bundles.items():
            groups.setdefault(_merge_key(bundle.spec.features), []).append(name)
        for key, names in list(groups.items()):
            if not merge([self.bundles[n].spec.features for n in names]):
                del groups[key]  # one computation per distinct spec, as they come
                for name in names:
                    groups.setdefault(self.bundles[name].spec.features, []).append(name)
        differences = self.differences
        held = len(FEATURES) + len(differences)  # columns of a History window
        out = []
        for names in groups.values():
            spec = merged_spec([self.bundles[n].spec.features for n in names])
            assert spec is not None
            position = {feature: i for i, feature in enumerate(spec.names())}
            users = []
            same: dict[bytes, np.ndarray] = {}  # models that take the same columns share them
            for name in names:
                bundle = self.bundles[name]
                own = bundle.spec.features.names()
                picked = np.array([position[own[c]] for c in bundle._columns], dtype=np.int64)
                whole = np.array_equal(picked, np.arange(len(position)))
                users.append((name, None if whole else same.setdefault(picked.tobytes(), picked)))
            cols = np.array([_COLUMN[c] for c in spec.inputs], dtype=np.intp)
            whole = np.array_equal(cols, np.arange(len(FEATURES)))
            series = np.array(
                [_COLUMN[c] for c in spec.signals]
                + [
                    len(FEATURES) + differences.index((_COLUMN[a], _COLUMN[b]))
                    for a, b in spec.differences
                ],
                dtype=np.intp,
            )
            out.append(
                FeaturePlan(
                    spec,
                    None if whole else cols,
                    tuple(users),
                    series=None if np.array_equal(series, np.arange(held)) else series,
                    passthrough=np.array([_COLUMN[c] for c in spec.passthrough], dtype=np.intp),
                )
            )
        return tuple(out)


def _merge_key(spec: FeatureSpec) -> object:
    """Specs with equal keys may be computed as one (:func:`merged_spec`): same inputs and
    raw columns, and no EWMs (their sums run over the spec's whole history, which a longer
    merged window would lengthen)."""
    if spec.ewm_spans:
        return spec
    return (spec.version, spec.signals, spec.passthrough, spec.include_raw)


def _mergeable(specs: Sequence[FeatureSpec]) -> bool:
    """Whether :func:`merged_spec` can serve ``specs`` in one computation."""
    return merged_spec(specs) is not None


def _worth_merging(specs: Sequence[FeatureSpec]) -> bool:
    """Whether one computation of :func:`merged_spec` should serve ``specs``: only when it
    computes no column that none of them asks for. A merged spec takes every statistic at
    every window, of every series: the detector's means over 2-4 readings merged with the
    boosters' long windows would add the short windows' spreads and slopes and the
    differences' short windows, about a third more columns than asked for, which cost more
    than a second pass over 4 lags."""
    merged = merged_spec(specs)
    if merged is None:
        return False
    return set(merged.names()) == {name for spec in specs for name in spec.names()}


def merged_spec(specs: Sequence[FeatureSpec]) -> FeatureSpec | None:
    """One spec whose features include every feature of ``specs`` (same names, same numbers),
    or ``None`` when they cannot be merged.

    Every feature of a row is computed elementwise from sums over its own series and window,
    whatever else is computed beside it, so each column equals the column of the same name
    from its own spec bit for bit (the serving tests compare them with training's path).
    ``specs`` must share a :func:`_merge_key`; a single spec is returned as it is. Projections
    are taken at a spec's longest window, so a spec with projections merges only with specs
    whose windows are no longer.
    """
    first = specs[0]
    if all(s == first for s in specs):
        return first
    windows = sorted({w for s in specs for w in s.windows})
    if any(s.projections and s.windows[-1] != windows[-1] for s in specs):
        return None
    projections = [p for s in specs for p in s.projections]
    return FeatureSpec(
        version=first.version,
        signals=first.signals,
        windows=tuple(windows),
        stats=tuple(dict.fromkeys(stat for s in specs for stat in s.stats)),
        include_raw=first.include_raw,
        passthrough=first.passthrough,
        differences=tuple(dict.fromkeys(d for s in specs for d in s.differences)),
        projections=tuple(dict.fromkeys(projections)),
    )


@dataclass(frozen=True)
class FeaturePlan:
    """How the served models' inputs come out of one :func:`evpm.features.compute` call."""

    spec: FeatureSpec
    columns: np.ndarray | None
    """Columns of the :data:`FEATURES` matrix that ``spec`` takes (``None``: all, in order)."""
    users: tuple[tuple[str, np.ndarray | None], ...]
    """``(model name, its columns of the feature matrix)``; ``None``: every column."""
    series: np.ndarray | None = None
    """Columns of a :meth:`History.window` (:data:`FEATURES`, then
    :attr:`ServedModels.differences`) that are ``spec``'s series (``None``: all, in order)."""
    passthrough: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    """Columns of the :data:`FEATURES` matrix that are ``spec``'s passthrough inputs."""


class PinnedModels:
    """The pinned versions, re-read every ``ttl`` seconds; a failed load keeps the old set.

    ``read_pins`` returns the pins (model name → version); ``load`` returns the bundle of one
    version. Loading happens once per changed pin, never per request: a warm container
    checks the pins at most every ``ttl`` seconds and loads only the versions that changed.
    If the pins cannot be read or any pinned version cannot be loaded, nothing changes: the
    old set keeps serving, and the failure is made visible rather than only survived. Each
    failed refresh bumps ``ModelLoadFailures`` (:mod:`evpm.counters`, published by the
    handlers) and logs one warning naming the error, the version that failed and the versions
    still serving; :attr:`last_error`, :attr:`failed_pins`, :attr:`stale` and
    :attr:`failed_refreshes` say the same to the caller (the API's health answer, the
    canary). A refresh every ``ttl`` seconds at most, so a lasting failure logs once per
    ``ttl``, not once per request.
    """

    def __init__(
        self,
        read_pins: Callable[[], Mapping[str, int]],
        load: Callable[[str, int], ModelBundle],
        *,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_pins = read_pins
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._served = ServedModels()
        self._checked_at: float | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        """Why the last refresh failed (``"OSError: ..."``); ``None`` once one succeeds."""
        self.failed_pins: dict[str, int] = {}
        """The pinned version the last refresh could not load (``{"ev-rul": 3}``); empty when
        it succeeded or when the pins themselves could not be read."""
        self.failed_refreshes = 0
        """Failed refreshes since this object was built: a caller that compares it before
        and after :meth:`current` knows whether that call's own refresh failed."""

    @property
    def stale(self) -> bool:
        """Whether the last refresh failed, so what serves may not be what is pinned."""
        return self.last_error is not None

    def current(self) -> ServedModels:
        """The models to serve now (refreshed when the last check is older than ``ttl``)."""
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._ttl:
            return self._served
        with self._lock:
            if self._checked_at is None or now - self._checked_at >= self._ttl:
                self._refresh()
                self._checked_at = now
        return self._served

    def _refresh(self) -> None:
        loading: dict[str, int] = {}  # the version being loaded when a failure strikes
        try:
            pins = {k: int(v) for k, v in self._read_pins().items() if k in TASK_OF}
            if pins == self._served.versions:
                self._succeeded()
                return
            bundles: dict[str, ModelBundle] = {}
            for name, version in pins.items():
                if self._served.versions.get(name) == version:
                    bundles[name] = self._served.bundles[name]
                else:
                    loading = {name: version}
                    bundles[name] = self._load(name, version)
        except Exception as exc:  # any failure keeps the models that work
            self._failed(exc, loading)
            return
        self._served = ServedModels(versions=pins, bundles=bundles)
        self._succeeded()

    def _succeeded(self) -> None:
        self.last_error = None
        self.failed_pins = {}

    def _failed(self, exc: Exception, failed: dict[str, int]) -> None:
        """Keep the old set, and count and log the failure with what still serves."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.failed_pins = failed
        self.failed_refreshes += 1
        count(MODEL_LOAD_FAILURES)
        serving = dict(self._served.versions)
        _log.warning(
            "model load failed (%s), still serving %s: %s",
            failed or "pins unreadable",
            serving or "no models",
            self.last_error,
            extra={
                "error": self.last_error,
                "failed_pins": failed,
                "serving_versions": serving,
                "stale": True,
                "counter": MODEL_LOAD_FAILURES,
            },
        )


class Lags:
    """A batch's readings, one per vehicle, with their held predecessors, lag by lag: what
    :meth:`History.window` gives and :func:`evpm.features.compute_lagged` (many readings) or
    :func:`evpm.features.compute_stacked` (a few) sums.

    Why by index: a batch's whole window is hundreds of thousands of readings; each lag read
    into one small buffer as it is summed stays in cache, where a ``(lags, n, columns)``
    stack would be written to memory and read back.
    """

    def __init__(
        self,
        current: np.ndarray,
        pos: np.ndarray,
        lags: int,
        *,
        flat: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        gathered: np.ndarray | None = None,
    ) -> None:
        self.current = current
        """``(n, columns)``: the readings, each followed by its derived differences (lag 0)."""
        self.pos = pos
        """Predecessors each reading has (at most ``depth - 1``)."""
        self.lags = lags
        """Lags ``0 .. lags - 1`` can be read."""
        self._flat = flat  # the rings' readings, one row per ring position
        self._rows = rows  # (lags - 1, n): the rows of _flat that are lags 1.. (by index)
        self._gathered = gathered  # (lags - 1, n, columns): lags 1.. already gathered
        self._complete = int(pos.min(initial=lags)) + 1  # lags below this exist for every row
        self._buffer = np.empty_like(current)

    def lag(self, j: int) -> np.ndarray:
        """``(n, columns)``: each reading's ``j``-th predecessor, 0 where it has none. The
        array is reused by the next call."""
        if j == 0:
            return self.current
        if self._rows is not None and self._flat is not None:
            np.take(self._flat, self._rows[j - 1], axis=0, out=self._buffer, mode="clip")
        elif self._gathered is not None:
            self._buffer[:] = self._gathered[j - 1]
        else:  # no reading has predecessors
            self._buffer[:] = 0.0
        if j >= self._complete:
            self._buffer[self.pos < j] = 0.0  # no such predecessor: 0, as in training
        return self._buffer

    def stack(self, lags: int) -> np.ndarray:
        """``(lags, n, columns)``: every lag at once, in one gather (a few readings' path)."""
        out = np.empty((lags, *self.current.shape), dtype=np.float64)
        out[0] = self.current
        if self._rows is not None and self._flat is not None:
            np.take(self._flat, self._rows[: lags - 1], axis=0, out=out[1:], mode="clip")
        elif self._gathered is not None:
            out[1:] = self._gathered[: lags - 1]
        else:
            out[1:] = 0.0
        missing = np.arange(1, lags)[:, None] > self.pos[None, :]
        if missing.any():
            out[1:][missing] = 0.0
        return out


class History:
    """The last readings of each vehicle, bounded in depth and in number of vehicles (LRU).

    Readings are kept in time order per vehicle, one per distinct time (a time delivered
    twice keeps its newest reading). A reading redelivered by the stream, or one older than
    what is held, is scored on the readings strictly before it, so redelivery gives the same
    features as the first delivery (as long as its past is still held).

    Storage is one fleet-wide ring per field, ``(slots, depth)`` times and ``(slots, depth,
    columns)`` readings, each vehicle owning a slot, so that a batch with one reading per
    vehicle (the stream's usual batch) is looked up, gathered lag by lag (:meth:`window`) and
    appended (:meth:`remember`) in a few numpy calls for the whole batch instead of a few per
    vehicle. In a slot, the ``k``-th newest reading sits at ring position ``(head + k) %
    depth``; positions that hold no reading have time ``-inf``. Beside each reading's columns
    the rings keep the signal differences the served features window (:meth:`derive`), taken
    once per reading as it arrives rather than once per lag of every batch that reads it.
    """

    def __init__(
        self, depth: int, *, max_vehicles: int = 20_000, source: PastReadings | None = None
    ) -> None:
        self.depth = max(1, depth)
        self.max_vehicles = max_vehicles
        self.source = source
        """Where a vehicle this history does not hold gets its stored past from
        (:func:`evpm.past_readings.rehydrate`); ``None``: it starts empty."""
        self.last_used: dict[str, PastUsed] = {}
        """What the last :func:`model_inputs` call took from :attr:`source`, per vehicle."""
        self._slots: OrderedDict[str, int] = OrderedDict()  # least recently remembered first
        self._free: list[int] = []
        self._raw: int | None = None  # columns of a reading, known from the first one
        self._derived: tuple[tuple[int, int], ...] = ()
        self._minuend = self._subtrahend = np.zeros(0, dtype=np.intp)  # columns of _derived
        self._times = np.empty((0, self.depth), dtype=np.float64)
        self._values = np.empty((0, self.depth, 0), dtype=np.float64)
        self._count = np.zeros(0, dtype=np.int64)
        self._head = np.zeros(0, dtype=np.int64)
        self._lock = threading.RLock()  # the rings change in place: one caller at a time

    def __len__(self) -> int:
        return len(self._slots)

    def holds(self, vehicle_id: str) -> bool:
        """Whether readings of this vehicle are held (it has a slot)."""
        return vehicle_id in self._slots

    def resize(self, depth: int) -> None:
        """Keep more (or fewer) readings per vehicle from now on (the newest ones stay)."""
        depth = max(1, depth)
        with self._lock:
            if depth == self.depth:
                return
            cap = len(self._count)
            times = np.full((cap, depth), -np.inf)
            values = np.empty((cap, depth, self._values.shape[2]), dtype=np.float64)
            slots = np.arange(cap)
            for k in range(min(self.depth, depth)):  # each slot's k-th newest to position k
                at = (self._head + k) % self.depth
                times[:, k] = self._times[slots, at]
                values[:, k] = self._values[slots, at]
            self._count = np.minimum(self._count, depth)
            times[np.arange(depth)[None, :] >= self._count[:, None]] = -np.inf
            self._times, self._values = times, values
            self._head = np.zeros(cap, dtype=np.int64)
            self.depth = depth

    def derive(self, differences: Sequence[tuple[int, int]]) -> None:
        """Keep the differences ``column a - column b`` of these pairs after each reading's
        columns (in this order; what :meth:`window` stacks after the readings' own columns).

        The served models' feature specs window them like signals
        (:attr:`ServedModels.differences`); held readings get the new set at once. Each is
        the same subtraction :func:`evpm.features.compute` makes, so the same number.
        """
        if differences == self._derived:  # the served set's own tuple: every call but one
            return
        pairs = tuple((int(a), int(b)) for a, b in differences)
        with self._lock:
            if pairs == self._derived:
                return
            self._derived = pairs
            self._minuend = np.array([a for a, _ in pairs], dtype=np.intp)
            self._subtrahend = np.array([b for _, b in pairs], dtype=np.intp)
            if self._raw is not None:
                self._values = self._extend(self._values[..., : self._raw])

    def _extend(self, readings: np.ndarray) -> np.ndarray:
        """Readings (columns on the last axis) followed by their derived differences."""
        if not self._derived:
            return np.ascontiguousarray(readings, dtype=np.float64)
        shape = (*readings.shape[:-1], readings.shape[-1] + len(self._derived))
        out = np.empty(shape, dtype=np.float64)
        out[..., : readings.shape[-1]] = readings
        np.subtract(
            readings[..., self._minuend],
            readings[..., self._subtrahend],
            out=out[..., readings.shape[-1] :],
        )
        return out

    def held(self, vehicle_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A vehicle's held ``(times, readings)``, oldest first (copies), or ``None``."""
        with self._lock:
            slot = self._slots.get(vehicle_id)
            held = None if slot is None else self._held(slot)
            return None if held is None else (held[0], held[1][:, : self._raw])

    def _held(self, slot: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A slot's times and readings with their differences, oldest first (copies)."""
        if not self._count[slot]:
            return None
        at = (self._head[slot] + np.arange(self._count[slot] - 1, -1, -1)) % self.depth
        return self._times[slot, at], self._values[slot, at]

    def window(
        self, vehicle_ids: Sequence[str], times: np.ndarray, values: np.ndarray, lags: int
    ) -> Lags | None:
        """Each new reading with its held past, lag by lag, when every reading is of a
        different vehicle (``None`` otherwise: :meth:`assemble` serves any batch).

        Lag 0 of reading ``i`` is the reading followed by its :meth:`derive` differences, lag
        ``j`` its ``j``-th predecessor among the readings held strictly before it (0 where
        there is none), up to ``lags - 1``: the rows :meth:`assemble` would give, in input
        order, read from the rings by index (:class:`Lags`). The rings must not change while
        the lags are read: hold :attr:`lock` from this call until they have been.
        """
        n = len(vehicle_ids)
        if n > 1 and len(set(vehicle_ids)) != n:
            return None
        values = np.asarray(values, dtype=np.float64)
        with self._lock:
            self._check_columns(values)
            current = self._extend(values)
            pos = np.zeros(n, dtype=np.int64)
            slots = np.array([self._slots.get(v, -1) for v in vehicle_ids], dtype=np.int64)
            known = slots >= 0
            if lags <= 1 or self.depth <= 1 or not known.any():
                return Lags(current, pos, lags)
            if n == 1:  # a single request: its lags gathered now, in scalar steps
                past = np.empty((lags - 1, current.shape[1]), dtype=np.float64)
                pos[0] = self._window_one(int(slots[0]), float(times[0]), past)
                return Lags(current, pos, lags, gathered=past[:, None, :])
            slot = np.where(known, slots, 0)  # a new vehicle reads slot 0, then gets zeros
            head = self._head[slot]
            # Held readings at or after a reading's time (it is redelivered, or late) are
            # skipped: ``skip`` of them, the newest; usually none.
            skip = np.zeros(n, dtype=np.int64)
            t = np.asarray(times, dtype=np.float64)
            late = known & (t <= self._times[slot, head])
            if late.any():
                skip[late] = (self._times[slot[late]] >= t[late, None]).sum(axis=1)
            pos[known] = np.minimum(self._count[slot[known]] - skip[known], self.depth - 1)
            lag = np.arange(1, lags, dtype=np.int64)[:, None]
            rows = slot * self.depth + (head + skip - 1 + lag) % self.depth  # (lags - 1, n)
            flat = self._values.reshape(-1, self._values.shape[2])
            return Lags(current, pos, lags, flat=flat, rows=rows)

    @property
    def lock(self) -> threading.RLock:
        """Held while the rings are read or written; hold it around :meth:`window` and the
        reading of its lags when other threads may remember into this history."""
        return self._lock

    def _window_one(self, slot: int, time: float, out: np.ndarray) -> int:
        """:meth:`window`'s lags ``1..`` of one reading into ``out``; returns its ``pos``."""
        head = int(self._head[slot])
        skip = 0
        if not time > self._times[slot, head]:
            skip = int(np.count_nonzero(self._times[slot] >= time))
        pos = min(int(self._count[slot]) - skip, self.depth - 1)
        at = (head + skip + np.arange(min(pos, len(out)))) % self.depth
        out[: len(at)] = self._values[slot, at]
        out[len(at) :] = 0.0
        return pos

    def _check_columns(self, values: np.ndarray) -> None:
        if self._raw is not None and values.shape[1] != self._raw:
            raise ValueError(f"readings have {values.shape[1]} columns, held ones {self._raw}")

    def assemble(
        self,
        vehicle_ids: Sequence[str],
        times: np.ndarray,
        values: np.ndarray,
        groups: VehicleGroups | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows to featurise: ``(matrix, units, targets, order)``.

        ``matrix`` holds, vehicle by vehicle, the held past then the new readings in time
        order; ``units`` labels the vehicles; ``targets`` are the row indices of the new
        readings, and ``order`` maps them back: ``targets[k]`` is input reading ``order[k]``.
        Any batch, several readings of a vehicle too (:meth:`window` is the faster way when
        each reading is of another vehicle).
        """
        groups = groups or VehicleGroups.of(vehicle_ids, times)
        keep = self.depth - 1
        values = np.asarray(values, dtype=np.float64)
        fresh = values[groups.order]  # the new readings, by vehicle then time
        pieces: list[np.ndarray] = []
        past_sizes: list[int] = []
        new_sizes: list[int] = []
        start = 0
        for vid, rows in groups:
            past = self._past(vid, times[rows[0]], keep) if keep else None
            if past is not None and len(past):
                pieces.append(past)
            past_sizes.append(0 if past is None else len(past))
            pieces.append(fresh[start : start + len(rows)])
            new_sizes.append(len(rows))
            start += len(rows)
        matrix = pieces[0] if len(pieces) == 1 else np.concatenate(pieces or [values[:0]])
        sizes = np.add(past_sizes, new_sizes)
        units = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        # The k-th new reading of the batch (in ``order``) sits after its vehicle's past.
        shift = np.cumsum(past_sizes)
        targets = np.arange(start, dtype=np.int64) + np.repeat(shift, new_sizes)
        return matrix, units, targets, groups.order

    def _past(self, vid: str, first: float, keep: int) -> np.ndarray | None:
        """The last ``keep`` held readings of ``vid`` strictly before time ``first``."""
        held = self.held(vid)
        if held is None:
            return None
        held_t, held_x = held
        cut = int(np.searchsorted(held_t, first))  # held times are strictly increasing
        return held_x[max(cut - keep, 0) : cut]

    def remember(
        self,
        vehicle_ids: Sequence[str],
        times: np.ndarray,
        values: np.ndarray,
        groups: VehicleGroups | None = None,
    ) -> None:
        """Add readings (any order); keep the newest ``depth`` distinct times per vehicle."""
        n = len(vehicle_ids)
        if n == 0:
            return
        times = np.asarray(times, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        with self._lock:
            self._check_columns(values)
            if self._raw is None:
                self._raw = values.shape[1]
                width = self._raw + len(self._derived)
                self._values = np.empty((len(self._count), self.depth, width), dtype=np.float64)
            rows = self._extend(values)
            if n == 1:
                self._remember_one(vehicle_ids[0], float(times[0]), rows[0])
            elif len(set(vehicle_ids)) == n:
                self._remember_one_each(vehicle_ids, times, rows)
            else:
                for vid, at in groups or VehicleGroups.of(vehicle_ids, times):
                    slot = self._slot(vid)
                    merged = _merge(self._held(slot), times[at], rows[at], self.depth)
                    self._write(slot, *merged)
            while len(self._slots) > self.max_vehicles:
                _, slot = self._slots.popitem(last=False)
                self._count[slot] = 0
                self._free.append(slot)

    def _remember_one_each(
        self, vehicle_ids: Sequence[str], times: np.ndarray, rows: np.ndarray
    ) -> None:
        """:meth:`remember` of one reading per vehicle, vectorised over the batch: a reading
        newer than all its vehicle holds takes the ring position of the oldest, one at a held
        time replaces that reading in place, and only one between held readings (late) is
        merged vehicle by vehicle."""
        found = [self._slots.get(v, -1) for v in vehicle_ids]
        slot = np.array(
            [self._slot(v) for v in vehicle_ids], dtype=np.int64
        )  # each moved to the most recently remembered end; new vehicles get a slot
        known = np.array(found, dtype=np.int64) >= 0
        head = self._head[slot]
        newer = ~known | (times > self._times[slot, head])
        s, at = slot[newer], (head[newer] - 1) % self.depth
        self._head[s] = at
        self._count[s] = np.minimum(self._count[s] + 1, self.depth)
        self._times[s, at] = times[newer]
        self._values[s, at] = rows[newer]
        if newer.all():
            return
        rest = np.flatnonzero(~newer)
        same = self._times[slot[rest]] == times[rest, None]  # (rest, depth)
        hit = same.any(axis=1)
        self._values[slot[rest[hit]], same[hit].argmax(axis=1)] = rows[rest[hit]]
        for i in rest[~hit].tolist():  # between held readings, or older than all: merge
            merged = _merge(self._held(int(slot[i])), times[i : i + 1], rows[i : i + 1], self.depth)
            self._write(int(slot[i]), *merged)

    def _remember_one(self, vid: str, time: float, row: np.ndarray) -> None:
        """:meth:`_remember_one_each` of a single reading (a request), in scalar steps."""
        known = vid in self._slots
        slot = self._slot(vid)
        head = int(self._head[slot])
        if not known or time > self._times[slot, head]:
            at = (head - 1) % self.depth
            self._head[slot] = at
            self._count[slot] = min(int(self._count[slot]) + 1, self.depth)
            self._times[slot, at] = time
            self._values[slot, at] = row
            return
        same = np.flatnonzero(self._times[slot] == time)
        if len(same):
            self._values[slot, same[0]] = row
            return
        merged = _merge(self._held(slot), np.array([time]), row[None, :], self.depth)
        self._write(slot, *merged)

    def _slot(self, vid: str) -> int:
        """The slot of ``vid`` (a free one, the rings grown if need be, for a new vehicle),
        moved to the most recently remembered end."""
        slot = self._slots.get(vid)
        if slot is not None:
            self._slots.move_to_end(vid)
            return slot
        if not self._free:
            self._grow(len(self._count) + 1)
        slot = self._free.pop()
        self._slots[vid] = slot
        self._times[slot] = -np.inf
        self._count[slot] = 0
        self._head[slot] = 0
        return slot

    def _grow(self, needed: int) -> None:
        """Room for at least ``needed`` vehicles: doubling, but not past ``max_vehicles``
        unless more are needed at once.

        The rings are enlarged in place when nothing else refers to them (numpy's
        ``resize`` checks; ``realloc`` remaps a large block rather than copying it), so a
        container near its vehicle bound does not hold the old and the new rings at once;
        otherwise (a :class:`Lags` being read) they are copied.
        """
        cap = len(self._count)
        new_cap = max(needed, min(max(2 * cap, 16), self.max_vehicles))
        # (called on the attributes themselves: an argument's reference would refuse it)
        try:
            self._times.resize((new_cap, self.depth))
        except ValueError:
            self._times = _copied(self._times, new_cap)
        try:
            self._values.resize((new_cap, *self._values.shape[1:]))
        except ValueError:
            self._values = _copied(self._values, new_cap)
        self._times[cap:] = -np.inf
        self._count = np.concatenate([self._count, np.zeros(new_cap - cap, dtype=np.int64)])
        self._head = np.concatenate([self._head, np.zeros(new_cap - cap, dtype=np.int64)])
        self._free.extend(range(new_cap - 1, cap - 1, -1))  # pop() hands out the lowest first

    def _write(self, slot: int, times: np.ndarray, rows: np.ndarray) -> None:
        """Replace a slot's readings by ``times``/``rows`` (oldest first, at most ``depth``)."""
        n = len(times)
        self._times[slot] = -np.inf
        self._times[slot, :n] = times[::-1]
        self._values[slot, :n] = rows[::-1]
        self._count[slot] = n
        self._head[slot] = 0


def _copied(array: np.ndarray, rows: int) -> np.ndarray:
    """A copy of ``array`` with ``rows`` rows (the new ones uninitialised)."""
    bigger = np.empty((rows, *array.shape[1:]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


def _merge(
    held: tuple[np.ndarray, np.ndarray] | None, t_new: np.ndarray, x_new: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """A vehicle's held readings plus new ones (times sorted): the newest ``depth`` distinct
    times, strictly increasing, where a time seen twice keeps its newest reading.

    The stream's usual cases — readings newer than all held ones, or one reading delivered
    again — are a concatenation or a one-row replacement; anything else merges in general.
    """
    distinct = len(t_new) == 1 or bool(np.all(t_new[1:] > t_new[:-1]))
    if held is None and distinct:
        return t_new[-depth:], x_new[-depth:]
    if held is not None and distinct:
        held_t, held_x = held
        if t_new[0] > held_t[-1]:
            if len(t_new) >= depth:
                return t_new[-depth:], x_new[-depth:]
            room = depth - len(t_new)
            return (
                np.concatenate([held_t[-room:], t_new]),
                np.concatenate([held_x[-room:], x_new]),
            )
        if len(t_new) == 1:
            at = int(np.searchsorted(held_t, t_new[0]))
            if at < len(held_t) and held_t[at] == t_new[0]:
                x_all = held_x.copy()  # never write into arrays a reader may hold
                x_all[at] = x_new[0]
                return held_t, x_all
    t_all, x_all = t_new, x_new
    if held is not None:
        t_all = np.concatenate([held[0], t_new])
        x_all = np.concatenate([held[1], x_new])
    t_uniq, first = np.unique(t_all[::-1], return_index=True)  # newest copy wins
    idx = len(t_all) - 1 - first
    return t_uniq[-depth:], x_all[idx][-depth:]


@dataclass(frozen=True)
class VehicleGroups:
    """A batch's readings grouped by vehicle, each group in time order (sorted once, used by
    both :meth:`History.assemble` and :meth:`History.remember`)."""

    order: np.ndarray
    """Permutation of the batch: by vehicle, then time."""
    groups: list[tuple[str, np.ndarray]]
    """``(vehicle_id, row indices)`` per vehicle, rows in time order."""

    @classmethod
    def of(cls, vehicle_ids: Sequence[str], times: np.ndarray) -> VehicleGroups:
        if len(vehicle_ids) == 1:  # one vehicle's request: nothing to sort
            only = np.zeros(1, dtype=np.int64)
            return cls(order=only, groups=[(str(vehicle_ids[0]), only)])
        ids = np.asarray(vehicle_ids, dtype=str)
        order = np.lexsort((times, ids))
        sorted_ids = ids[order]
        bounds = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1], True])
        return cls(
            order=order,
            groups=[(str(sorted_ids[lo]), order[lo:hi]) for lo, hi in itertools.pairwise(bounds)],
        )

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        return iter(self.groups)


@dataclass(frozen=True)
class ModelOutputs:
    """Per input reading (input order): each pinned model's output; absent models are None."""

    anomaly_score: np.ndarray | None = None
    is_anomaly: np.ndarray | None = None
    failure_mode: np.ndarray | None = None
    failure_proba: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    rul_hours: np.ndarray | None = None
    rul_low_hours: np.ndarray | None = None
    rul_high_hours: np.ndarray | None = None


def model_inputs(
    models: ServedModels,
    vehicle_ids: Sequence[str],
    times: np.ndarray,
    values: np.ndarray,
    history: History | None = None,
) -> dict[str, np.ndarray]:
    """Each served model's input matrix, one row per reading, in input order.

    With a ``history`` the readings' features see their vehicles' held past, and the new
    readings are remembered afterwards; without one each batch is its own history. A batch
    with one reading per vehicle (the stream's usual batch, and a single request) is gathered
    from the history's rings by lag and featurised without sorting or building per-vehicle
    tables (:meth:`History.window`, :func:`evpm.features.compute_stacked`); any other batch
    is assembled vehicle by vehicle. Both give training's features bit for bit.
    """
    n = len(vehicle_ids)
    if n == 0 or not models.bundles:
        return {}
    times = np.asarray(times, dtype=np.float64)
    scratch = history if history is not None else History(models.depth)
    if scratch.depth < models.depth:
        scratch.resize(models.depth)
    out: dict[str, np.ndarray] = {}
    scratch.derive(models.differences)
    if history is not None and history.source is not None:
        history.last_used = rehydrate(
            history, history.source, vehicle_ids, times, limit=models.depth - 1
        )
    with scratch.lock:  # the rings stay as they are while the lags are read
        lags = scratch.window(vehicle_ids, times, values, models.depth)
        if lags is not None:  # one reading per vehicle: read from the rings by lag
            for plan in models.plan_for(n):
                extra = values[:, plan.passthrough] if len(plan.passthrough) else None
                _pick(out, plan, _lagged_features(lags, plan, extra))
            del lags  # its view of the rings: they may now grow in place
            if history is not None:
                history.remember(vehicle_ids, times, values)
            return {name: out[name] for name in models.bundles}
    groups = VehicleGroups.of(vehicle_ids, times)
    matrix, units, targets, order = scratch.assemble(vehicle_ids, times, values, groups)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    for plan in models.plan_for(n):
        source = matrix if plan.columns is None else matrix[:, plan.columns]
        _pick(out, plan, compute(source, units, plan.spec, rows=targets)[inverse])
    if history is not None:
        history.remember(vehicle_ids, times, values, groups)
    return {name: out[name] for name in models.bundles}


def _pick(out: dict[str, np.ndarray], plan: FeaturePlan, features: np.ndarray) -> None:
    """Each of the plan's models' input matrix, taken once per distinct column selection
    (the boosters share theirs; neither changes its input)."""
    taken: dict[int, np.ndarray] = {}
    for name, picked in plan.users:
        if picked is None:
            out[name] = features
        else:
            if id(picked) not in taken:
                taken[id(picked)] = features[:, picked]
            out[name] = taken[id(picked)]


_FEW = 16  # up to this many readings, every lag gathered at once (features' few-rows path)


def _lagged_features(lags: Lags, plan: FeaturePlan, passthrough: np.ndarray | None) -> np.ndarray:
    """A plan's features of a :meth:`History.window`'s readings."""
    series = plan.series
    if len(lags.pos) <= _FEW:
        stack = lags.stack(plan.spec.max_window)
        source = stack if series is None else stack[..., series]
        return compute_stacked(source, lags.pos, plan.spec, passthrough)
    lag_at = lags.lag if series is None else (lambda j: lags.lag(j)[:, series])
    return compute_lagged(lag_at, lags.pos, plan.spec, passthrough)


def score_models(
    models: ServedModels,
    vehicle_ids: Sequence[str],
    times: np.ndarray,
    values: np.ndarray,
    history: History | None = None,
) -> ModelOutputs:
    """Score readings (``values`` in :data:`FEATURES` order) with every served model."""
    inputs = model_inputs(models, vehicle_ids, times, values, history)
    out: dict[str, object] = {}
    for name, x in inputs.items():
        bundle = models.bundles[name]
        pred = bundle.predict_matrix(x)
        task = TASK_OF[name]
        if task == "anomaly":
            out["anomaly_score"] = pred.value
            out["is_anomaly"] = pred.flag
        elif task == "classifier":
            assert pred.proba is not None
            classes = np.asarray(bundle.spec.classes, dtype=object)
            out["failure_mode"] = classes[pred.value.astype(np.int64)]
            out["failure_proba"] = pred.proba
            out["classes"] = tuple(bundle.spec.classes)
        else:
            out["rul_hours"] = pred.value
            out["rul_low_hours"] = pred.low
            out["rul_high_hours"] = pred.high
    return ModelOutputs(**out)  # type: ignore[arg-type]
