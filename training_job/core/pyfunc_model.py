"""MLflow pyfunc wrapper (logged as *models from code*: nothing of it is pickled).

The registered artifact is the two files of :class:`evpm.models.ModelBundle` (``spec.json``
and the LightGBM text or ``anomaly.json``); this wrapper only reads them and runs the whole
preprocessing — categorical codes, derived columns, rolling features — before predicting.
Input: a frame with the unit column, the time column and the raw input columns of the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from evpm.models import ModelBundle
from training_job.core.inputs import add_model_inputs, time_values

__all__ = ["EvpmPyfunc", "predict_frame"]


def predict_frame(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions for raw rows, one output row per input row, in input order."""
    spec = bundle.spec
    prepared = add_model_inputs(frame, spec.categorical, spec.derived)
    values = prepared[list(spec.features.inputs)].to_numpy(dtype=np.float64)
    units = pd.factorize(prepared[spec.unit_column])[0]
    times = time_values(prepared[spec.time_column])
    pred = bundle.predict(values, units, times)
    if spec.task == "anomaly":
        assert pred.flag is not None
        return pd.DataFrame({"score": pred.value, "is_anomaly": pred.flag})
    if spec.task == "classifier":
        assert pred.proba is not None
        out = pd.DataFrame({"label": np.asarray(spec.classes)[pred.value.astype(np.int64)]})
        for i, name in enumerate(spec.classes):
            out[f"proba_{name}"] = pred.proba[:, i]
        return out
    return pd.DataFrame({"rul": pred.value})


class EvpmPyfunc(mlflow.pyfunc.PythonModel):
    """Loads a :class:`ModelBundle` from the model's artifacts and predicts with it."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.from_files(
            Path(context.artifacts["spec"]), Path(context.artifacts["model"])
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return predict_frame(self.bundle, model_input)


mlflow.models.set_model(EvpmPyfunc())
