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

import numpy as np

from evpm.features import compute
from evpm.models import ModelBundle
from evpm.pins import TASK_OF
from evpm.telemetry import FEATURES

__all__ = [
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

    @property
    def depth(self) -> int:
        """Readings of history (current included) that fix every feature of every model."""
        return max((b.spec.features.max_window for b in self.bundles.values()), default=1)

    def version_labels(self) -> dict[str, str]:
        """``model_versions`` entries for a prediction (``{"ev-rul": "2", ...}``)."""
        return {name: str(v) for name, v in sorted(self.versions.items())}


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

    Readings are kept in time order per vehicle. A reading redelivered by the stream, or one
    older than what is held, is scored on the readings strictly before it, so redelivery
    gives the same features as the first delivery (as long as its past is still held).
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
        blocks: list[np.ndarray] = []
        units: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        offset = 0
        for g, (vid, rows) in enumerate(groups):
            held = self._data.get(vid)
            past = np.empty((0, values.shape[1]))
            if held is not None:
                keep = held[0] < times[rows[0]]
                past = held[1][keep][-(self.depth - 1) :] if self.depth > 1 else past[:0]
            block = np.vstack([past, values[rows]]) if len(past) else values[rows]
            blocks.append(block)
            units.append(np.full(len(block), g, dtype=np.int64))
            targets.append(np.arange(offset + len(past), offset + len(block)))
            offset += len(block)
        return np.vstack(blocks), np.concatenate(units), np.concatenate(targets), groups.order

    def remember(
        self,
        vehicle_ids: Sequence[str],
        times: np.ndarray,
        values: np.ndarray,
        groups: VehicleGroups | None = None,
    ) -> None:
        """Add readings (any order); keep the newest ``depth`` distinct times per vehicle."""
        for vid, rows in groups or VehicleGroups.of(vehicle_ids, times):
            t_new, x_new = times[rows], values[rows]
            held = self._data.pop(vid, None)
            if held is not None:
                t_all = np.concatenate([held[0], t_new])
                x_all = np.vstack([held[1], x_new])
                t_uniq, first = np.unique(t_all[::-1], return_index=True)  # newest copy wins
                idx = len(t_all) - 1 - first
                t_new, x_new = t_uniq, x_all[idx]
            self._data[vid] = (t_new[-self.depth :], x_new[-self.depth :])
        while len(self._data) > self.max_vehicles:
            self._data.popitem(last=False)


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
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    by_spec: dict[object, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    for name, bundle in models.bundles.items():
        fspec = bundle.spec.features
        if fspec not in by_spec:
            cols = [_COLUMN[c] for c in fspec.inputs]
            by_spec[fspec] = compute(matrix[:, cols], units, fspec, rows=targets)[inverse]
        out[name] = by_spec[fspec][:, bundle._columns]
    if history is not None:
        history.remember(vehicle_ids, times, values, groups)
    return out


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
    return ModelOutputs(**out)  # type: ignore[arg-type]
