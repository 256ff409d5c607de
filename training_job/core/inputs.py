"""The model-input preparation that runs both in training and inside the registered model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["add_model_inputs", "time_values"]


def add_model_inputs(
    frame: pd.DataFrame,
    categorical: Mapping[str, Sequence[str]],
    derived: Mapping[str, str],
) -> pd.DataFrame:
    """Copy of ``frame`` with categorical columns as codes and derived columns added.

    An unknown category becomes ``-1``; derived columns are ``DataFrame.eval`` expressions
    over the (coded) columns, e.g. ``"`Torque [Nm]` * `Rotational speed [rpm]`"``.
    """
    out = frame.copy()
    for col, allowed in categorical.items():
        codes = pd.Categorical(out[col].astype(str), categories=list(allowed)).codes
        out[col] = codes.astype(np.float64)
    for name, expr in derived.items():
        out[name] = np.asarray(out.eval(expr, engine="python"), dtype=np.float64)
    return out


def time_values(series: pd.Series) -> np.ndarray:
    """Sortable numpy times: UTC ``datetime64[ns]`` for datetimes, float64 for numbers."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64)
