"""LightGBM's own single-row prediction path, set up once per loaded booster.

Why: ``Booster.predict`` on one row spends most of its ~50 µs in Python (a predictor object
and a deep copy of the parameters per call, array checks, ctypes conversions), while the trees
themselves take a few µs to a few tens of µs. LightGBM's C API has a path made for one row at a
time: ``LGBM_BoosterPredictForMatSingleRowFastInit`` fixes the prediction type, the number of
columns and the parameters once, and ``LGBM_BoosterPredictForMatSingleRowFast`` then only walks
the trees. It is the same booster in the same library (its ``Predictor``, trees summed in
order, the objective's own transform), not a re-implementation, so its numbers are the
booster's — the tests compare them bit for bit with ``Booster.predict``. The registered model
file stays the single source of truth.

It is private API of the ``lightgbm`` package (``lightgbm.basic._LIB``), so :func:`row_predictor`
returns ``None`` whenever it cannot be set up and callers keep ``Booster.predict``. That stays
correct but costs every single-vehicle request its ~50 µs per booster again, so it is not
silent: each fallback is counted (``BoosterFallback``, :mod:`evpm.counters`) and logged with
its reason, once per model and reason so that reloading a model does not repeat the line.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from evpm.counters import BOOSTER_FALLBACK, count

if TYPE_CHECKING:
    import lightgbm

__all__ = ["RowPredictor", "row_predictor"]

_log = logging.getLogger(__name__)
_reported: set[tuple[str, str]] = set()  # (model, reason) already logged in this process
_reported_lock = threading.Lock()


class RowPredictor:
    """Predict rows one by one through LightGBM's single-row fast path.

    ``predict(x)`` gives what ``booster.predict(x, num_threads=1)`` gives (``raw_score`` as
    chosen here): shape ``(n,)`` for one output per row, ``(n, k)`` for ``k`` classes.
    The input and output buffers are allocated once; a lock makes one predictor safe to share
    between threads (an API container may serve requests on several).

    Example::

        fast = RowPredictor(booster)
        fast.predict(x)          # == booster.predict(x, num_threads=1), bit for bit
    """

    def __init__(self, booster: lightgbm.Booster, *, raw_score: bool = False) -> None:
        from lightgbm.basic import (
            _C_API_DTYPE_FLOAT64,
            _C_API_PREDICT_NORMAL,
            _C_API_PREDICT_RAW_SCORE,
            _LIB,
            _c_str,
            _safe_call,
        )

        self._booster = booster  # the fast config points into it: keep it alive as long
        self._lib = _LIB
        self._safe_call = _safe_call
        self.num_features = int(booster.num_feature())
        self.num_outputs = int(booster.num_model_per_iteration())
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_C_API_PREDICT_RAW_SCORE if raw_score else _C_API_PREDICT_NORMAL),
                ctypes.c_int(0),
                # What Booster.predict uses by default: the best iteration if one was kept,
                # else every tree (0 or less means all to the C API).
                ctypes.c_int(int(booster.best_iteration)),
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self.num_features),
                _c_str("num_threads=1"),
                ctypes.byref(handle),
            )
        )
        self._handle = handle
        self._row = np.zeros(self.num_features, dtype=np.float64)
        self._out = np.zeros(self.num_outputs, dtype=np.float64)
        self._row_ptr = self._row.ctypes.data_as(ctypes.c_void_p)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64(0)
        self._out_len_ref = ctypes.byref(self._out_len)
        self._lock = threading.Lock()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``x`` ``(n, num_features)``, as ``Booster.predict``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected shape (n, {self.num_features}), got {x.shape}")
        out = np.empty((x.shape[0], self.num_outputs), dtype=np.float64)
        call, handle = self._lib.LGBM_BoosterPredictForMatSingleRowFast, self._handle
        with self._lock:
            for i in range(x.shape[0]):
                self._row[:] = x[i]
                self._safe_call(call(handle, self._row_ptr, self._out_len_ref, self._out_ptr))
                out[i] = self._out
        return out[:, 0] if self.num_outputs == 1 else out

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.LGBM_FastConfigFree(handle)
            handle.value = None


def row_predictor(
    booster: Any, *, raw_score: bool = False, name: str | None = None
) -> RowPredictor | None:
    """A :class:`RowPredictor` for ``booster``, or ``None`` if this LightGBM cannot give one
    (the caller then keeps ``Booster.predict``, which gives the same numbers, only slower).

    A fallback bumps ``BoosterFallback`` every time and is logged, with its reason, the first
    time for each ``name`` (the model) and reason.

    Example::

        row_predictor(booster, name="ev-rul")     # RowPredictor, or None and a warning
    """
    try:
        return RowPredictor(booster, raw_score=raw_score)
    except Exception as exc:  # an older or newer lightgbm without this private API: stay correct
        _fell_back(name or type(booster).__name__, f"{type(exc).__name__}: {exc}")
        return None


def _fell_back(model: str, reason: str) -> None:
    """Count a fallback to ``Booster.predict`` and say why, once per model and reason."""
    count(BOOSTER_FALLBACK)
    with _reported_lock:
        if (model, reason) in _reported:
            return
        _reported.add((model, reason))
    _log.warning(
        "LightGBM single-row fast path unavailable for %s, using Booster.predict: %s",
        model,
        reason,
        extra={"model": model, "reason": reason, "counter": BOOSTER_FALLBACK},
    )
