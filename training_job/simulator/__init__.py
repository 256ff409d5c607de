"""Fleet simulator: physically driven telemetry with failures, RUL and injected anomalies.

Public surface: :func:`simulate_fleet`, :class:`FleetConfig`, :func:`write_parquet`; the
generative model is described in ``MODEL.md`` beside this file.
"""

from __future__ import annotations

from training_job.simulator.fleet import ANOMALY_KINDS, FAILURE_MODES, FleetConfig, simulate_fleet
from training_job.simulator.output import write_parquet

__all__ = ["ANOMALY_KINDS", "FAILURE_MODES", "FleetConfig", "simulate_fleet", "write_parquet"]
