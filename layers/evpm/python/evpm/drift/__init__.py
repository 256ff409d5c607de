"""Drift: is production data still what a model learnt from, and are its answers still right?

Pure numpy, no I/O: :mod:`~evpm.drift.profile` builds and holds a model version's reference
profile, :mod:`~evpm.drift.window` judges one window of production data against it,
:mod:`~evpm.drift.quality` grades live predictions against joined ground truth,
:mod:`~evpm.drift.capture` encodes and reads the scorer's captured rows, and
:mod:`~evpm.drift.stats` holds the statistics. The monitor function, the training job
and the benchmark call these; where the data comes from is theirs to decide.
"""

from __future__ import annotations

from evpm.drift.capture import Captured, encode_capture, read_captures, sampled
from evpm.drift.profile import (
    CUMULATIVE_SIGNALS,
    MONITORED_SIGNALS,
    PROFILE_SCHEMA,
    CategoricalColumn,
    NumericColumn,
    ReferenceProfile,
    Role,
    build_profile,
    hour_of_day,
)
from evpm.drift.quality import QualityReport, QualityThresholds, live_quality
from evpm.drift.window import ColumnDrift, Thresholds, WindowReport, WindowStatus, judge_window

__all__ = [
    "CUMULATIVE_SIGNALS",
    "MONITORED_SIGNALS",
    "PROFILE_SCHEMA",
    "Captured",
    "CategoricalColumn",
    "ColumnDrift",
    "NumericColumn",
    "QualityReport",
    "QualityThresholds",
    "ReferenceProfile",
    "Role",
    "Thresholds",
    "WindowReport",
    "WindowStatus",
    "build_profile",
    "encode_capture",
    "hour_of_day",
    "judge_window",
    "live_quality",
    "read_captures",
    "sampled",
]
