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

from evpm.features import FeatureSpec, compute
from evpm.models import ModelBundle
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
_NO_ROWS = np.empty((0, len(FEATURES)), dtype=np.float64)


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
        matrix unchanged are skipped.
        """
        groups: dict[object, list[str]] = {}
        for name, bundle in self.bundles.items():
            groups.setdefault(_merge_key(bundle.spec.features), []).append(name)
        for key, names in list(groups.items()):
            if merged_spec([self.bundles[n].spec.features for n in names]) is None:
                del groups[key]  # one computation per distinct spec, as they come
                for name in names:
                    groups.setdefault(self.bundles[name].spec.features, []).append(name)
        out = []
        for names in groups.values():
            spec = merged_spec([self.bundles[n].spec.features for n in names])
            assert spec is not None
            position = {feature: i for i, feature in enumerate(spec.names())}
            users = []
            for name in names:
                bundle = self.bundles[name]
                own = bundle.spec.features.names()
                picked = np.array([position[own[c]] for c in bundle._columns], dtype=np.int64)
                whole = np.array_equal(picked, np.arange(len(position)))
                users.append((name, None if whole else picked))
            cols = np.array([_COLUMN[c] for c in spec.inputs], dtype=np.intp)
            whole = np.array_equal(cols, np.arange(len(FEATURES)))
            out.append(FeaturePlan(spec, None if whole else cols, tuple(users)))
        return tuple(out)


def _merge_key(spec: FeatureSpec) -> object:
    """Specs with equal keys may be computed as one (:func:`merged_spec`): same inputs and
    raw columns, and no EWMs (their sums run over the spec's whole history, which a longer
    merged window would lengthen)."""
    if spec.ewm_spans:
        return spec
    return (spec.version, spec.signals, spec.passthrough, spec.include_raw)


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


class PinnedModels:
    """The pinned versions, re-read every ``ttl`` seconds; a failed load keeps the old set.

    ``read_pins`` returns the pins (model name → version); ``load`` returns the bundle of one
    version. Loading happens once per changed pin, never per request: a warm container
    checks the pins at most every ``ttl`` seconds and loads only the versions that changed.
    If any pinned version cannot be loaded, nothing changes and the error is kept in
    :attr:`last_error` (the caller logs it and keeps serving what it has).
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
        try:
            pins = {k: int(v) for k, v in self._read_pins().items() if k in TASK_OF}
            if pins == self._served.versions:
                self.last_error = None
                return
            bundles = {
                name: self._served.bundles[name]
                if self._served.versions.get(name) == version
                else self._load(name, version)
                for name, version in pins.items()
            }
        except Exception as exc:  # any failure keeps the models that work
            self.last_error = f"{type(exc).__name__}: {exc}"
            _log.warning("keeping models %s: %s", self._served.versions, self.last_error)
            return
        self._served = ServedModels(versions=pins, bundles=bundles)
        self.last_error = None


class History:
    """The last readings of each vehicle, bounded in depth and in number of vehicles (LRU).

    Readings are kept in time order per vehicle, one per distinct time (a time delivered
    twice keeps its newest reading). A reading redelivered by the stream, or one older than
    what is held, is scored on the readings strictly before it, so redelivery gives the same
    features as the first delivery (as long as its past is still held).
    """

    def __init__(self, depth: int, *, max_vehicles: int = 20_000) -> None:
        self.depth = max(1, depth)
        self.max_vehicles = max_vehicles
        self._data: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def resize(self, depth: int) -> None:
        """Keep more (or fewer) readings per vehicle from now on."""
        self.depth = max(1, depth)

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
        """
        groups = groups or VehicleGroups.of(vehicle_ids, times)
        keep = self.depth - 1
        if len(groups.groups) == 1:  # one vehicle (a single request): a few numpy calls
            vid, rows = groups.groups[0]
            past = self._past(vid, times[rows[0]], keep)
            new = values[rows]
            matrix = np.concatenate([past, new]) if len(past) else new
            targets = np.arange(len(past), len(matrix), dtype=np.int64)
            return matrix, np.zeros(len(matrix), dtype=np.int64), targets, groups.order
        fresh = values[groups.order]  # the new readings, by vehicle then time
        pieces: list[np.ndarray] = []
        past_sizes: list[int] = []
        new_sizes: list[int] = []
        start = 0
        for vid, rows in groups:
            past = self._past(vid, times[rows[0]], keep)
            if len(past):
                pieces.append(past)
            past_sizes.append(len(past))
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

    def _past(self, vid: str, first: float, keep: int) -> np.ndarray:
        """The last ``keep`` held readings of ``vid`` strictly before time ``first``."""
        held = self._data.get(vid) if keep else None
        if held is None:
            return _NO_ROWS
        held_t, held_x = held
        # Held times are strictly increasing, so the readings before ``first`` are a prefix:
        # all of them when the stream is in order (the common case).
        cut = len(held_t) if held_t[-1] < first else int(np.searchsorted(held_t, first))
        return held_x[max(cut - keep, 0) : cut]

    def remember(
        self,
        vehicle_ids: Sequence[str],
        times: np.ndarray,
        values: np.ndarray,
        groups: VehicleGroups | None = None,
    ) -> None:
        """Add readings (any order); keep the newest ``depth`` distinct times per vehicle."""
        for vid, rows in groups or VehicleGroups.of(vehicle_ids, times):
            held = self._data.pop(vid, None)
            self._data[vid] = _merge(held, times[rows], values[rows], self.depth)
        while len(self._data) > self.max_vehicles:
            self._data.popitem(last=False)


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
    readings are remembered afterwards; without one each batch is its own history.
    """
    n = len(vehicle_ids)
    if n == 0 or not models.bundles:
        return {}
    times = np.asarray(times, dtype=np.float64)
    scratch = history if history is not None else History(models.depth)
    if scratch.depth < models.depth:
        scratch.resize(models.depth)
    groups = VehicleGroups.of(vehicle_ids, times)
    matrix, units, targets, order = scratch.assemble(vehicle_ids, times, values, groups)
    inverse = None
    if n > 1:
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
    out: dict[str, np.ndarray] = {}
    for plan in models.feature_plan:
        source = matrix if plan.columns is None else matrix[:, plan.columns]
        features = compute(source, units, plan.spec, rows=targets)
        if inverse is not None:
            features = features[inverse]
        for name, picked in plan.users:
            out[name] = features if picked is None else features[:, picked]
    if history is not None:
        history.remember(vehicle_ids, times, values, groups)
    return {name: out[name] for name in models.bundles}


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
