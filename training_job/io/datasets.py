"""Data-set specs (YAML), reading, schema checks and fingerprints.

Any fleet table can train the models once a :class:`DatasetSpec` says which column is the unit,
which the time, which are features and which are labels. :func:`validate` refuses a table that
does not match its spec *before* any training starts, with a message naming the column, so a
broken extract never becomes a registered model.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from training_job.core.inputs import add_model_inputs

__all__ = [
    "DataSpecError",
    "DatasetSpec",
    "fingerprint",
    "load_spec",
    "prepare",
    "read_table",
    "validate",
]


class DataSpecError(ValueError):
    """A data set does not match its spec (the message names the column)."""


class DatasetSpec(BaseModel):
    """How to read a fleet table and what its columns mean.

    ``rul_from_run_to_failure`` derives RUL as ``last time of the unit - time`` (every unit ran
    until it failed), clipped at ``rul_cap`` when given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["dataset"] = "dataset"
    name: str
    reader: Literal["parquet", "csv", "table"] = "parquet"
    sep: str | None = None
    column_names: tuple[str, ...] = ()
    unit: str
    time: str
    time_type: Literal["datetime", "number"] = "datetime"
    features: tuple[str, ...] = Field(min_length=1)
    categorical: dict[str, tuple[str, ...]] = {}
    derived: dict[str, str] = {}
    class_label: str | None = None
    classes: tuple[str, ...] = ()
    rul_label: str | None = None
    rul_from_run_to_failure: bool = False
    rul_cap: float | None = None
    anomaly_label: str | None = None
    ranges: dict[str, tuple[float, float]] = {}
    """Plausible ``[low, high]`` per column; readings outside are counted by the data profile
    (reported, not refused: a sensor can misread)."""

    @property
    def signals(self) -> tuple[str, ...]:
        """Model inputs after preparation: features, categorical codes, derived columns."""
        return self.features + tuple(self.categorical) + tuple(self.derived)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read a data-set spec YAML (unknown keys are refused)."""
    return DatasetSpec.model_validate(yaml.safe_load(Path(path).read_text()))


def _read_bytes(uri: str, s3_client: object | None = None) -> bytes:
    if uri.startswith("s3://"):
        import boto3

        bucket, _, key = uri[5:].partition("/")
        client = s3_client or boto3.client("s3")
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
    return Path(uri).read_bytes()


def fingerprint(data: bytes) -> str:
    """sha256 of the bytes the model was trained on (lineage tag of each model version)."""
    return hashlib.sha256(data).hexdigest()


def read_table(
    spec: DatasetSpec, uri: str, s3_client: object | None = None
) -> tuple[pd.DataFrame, str]:
    """Read a table (local path or ``s3://``) as the spec says; return it and its fingerprint."""
    data = _read_bytes(str(uri), s3_client)
    buffer = io.BytesIO(data)
    if spec.reader == "parquet":
        frame = pd.read_parquet(buffer)
    elif spec.reader == "csv":
        frame = pd.read_csv(buffer, sep=spec.sep or ",")
    else:  # whitespace table without header, e.g. C-MAPSS
        frame = pd.read_csv(
            buffer, sep=r"\s+", header=None, names=list(spec.column_names), index_col=False
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, fingerprint(data)


def _required(spec: DatasetSpec) -> list[str]:
    cols = [spec.unit, spec.time, *spec.features, *spec.categorical]
    if spec.class_label:
        cols.append(spec.class_label)
    if spec.rul_label and not spec.rul_from_run_to_failure:
        cols.append(spec.rul_label)
    if spec.anomaly_label:
        cols.append(spec.anomaly_label)
    return cols


def validate(frame: pd.DataFrame, spec: DatasetSpec, *, labels: bool = True) -> None:
    """Raise :class:`DataSpecError` naming the first column that breaks the spec.

    Checks: every column present; unit and time without missing values; time of the declared
    type; features numeric (not boolean); class labels inside ``classes``; RUL numeric, >= 0.
    """
    required = _required(spec) if labels else [spec.unit, spec.time, *spec.features]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataSpecError(f"data set {spec.name!r}: missing column(s) {missing}")
    for key in (spec.unit, spec.time):
        if frame[key].isna().any():
            raise DataSpecError(f"data set {spec.name!r}: column {key!r} has missing values")
    time = frame[spec.time]
    if spec.time_type == "datetime" and not pd.api.types.is_datetime64_any_dtype(time):
        raise DataSpecError(f"column {spec.time!r} must be a datetime (got {time.dtype})")
    if spec.time_type == "number" and not _numeric(time):
        raise DataSpecError(f"column {spec.time!r} must be numeric (got {time.dtype})")
    for col in spec.features:
        if not _numeric(frame[col]):
            raise DataSpecError(f"feature column {col!r} must be numeric (got {frame[col].dtype})")
    for col, allowed in spec.categorical.items():
        bad = set(frame[col].dropna().astype(str).unique()) - set(allowed)
        if bad:
            raise DataSpecError(f"column {col!r} has values {sorted(bad)} outside {list(allowed)}")
    if not labels:
        return
    if spec.class_label and spec.classes:
        values = frame[spec.class_label]
        if values.isna().any():
            raise DataSpecError(f"label column {spec.class_label!r} has missing values")
        bad = set(values.astype(str).unique()) - set(spec.classes)
        if bad:
            raise DataSpecError(
                f"label column {spec.class_label!r} has values {sorted(bad)} outside "
                f"{list(spec.classes)}"
            )
    if spec.rul_label and not spec.rul_from_run_to_failure:
        rul = frame[spec.rul_label]
        if not _numeric(rul) or rul.isna().any() or (rul < 0).any():
            raise DataSpecError(f"label column {spec.rul_label!r} must be numeric, >= 0, no NaN")


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def prepare(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Sorted copy with categorical codes and derived columns added (the model's inputs).

    The same function runs inside the registered model, so derived columns cannot drift.
    """
    out = add_model_inputs(frame, spec.categorical, spec.derived)
    out = out.sort_values([spec.unit, spec.time], kind="stable").reset_index(drop=True)
    if spec.rul_label and spec.rul_from_run_to_failure:
        last = out.groupby(spec.unit, observed=True)[spec.time].transform("max")
        rul = (last - out[spec.time]).astype(np.float64)
        out[spec.rul_label] = rul.clip(upper=spec.rul_cap) if spec.rul_cap else rul
    return out
