"""The fleet simulator's telemetry as a stream: what ``evpm send`` puts on Kinesis by default.

Why not random readings: the models learnt from ``training_job.simulator``, whose vehicles
age, wear and fail by physical mechanisms, one reading per vehicle-hour. Readings drawn
uniformly from a band, unrelated to that fleet (:mod:`evpm_cli.loadgen`, kept as the
load-test source), are anomalies to a model that knows the fleet: 1,930 of 1,980 were flagged.
This module sends vehicles of that same simulator, so what a fresh system reports about a
healthy fleet can be set beside what the models did on held-out healthy vehicles in training.

How the vehicles are chosen: a pool of vehicles is simulated (seeded; more pools when it holds
too few) and each is kept by its simulated labels:

* **nominal**: none of its *counted* readings is labelled with a failure (its next failure,
  if any, is beyond the label's 336-h horizon from each of them);
* **degraded**: its last reading is labelled with a failure mode (``--mode``, or any) that
  comes within :data:`DEGRADED_WITHIN_HOURS`: a vehicle a model should flag at the end.

Counted readings are those from the :data:`WARMUP`-th on: the scorer keeps each vehicle's last
readings and the models' longest window is a week (168 readings), so a vehicle's first 167
readings are scored on a shorter past than training ever saw (it evaluated readings with their
full week). They are sent all the same (they fill the scorer's history) but not counted.

Time: every vehicle's readings are sent in time order (one simulated hour of the whole fleet
after the other), partition key = vehicle id, so one shard, and one scorer, sees each vehicle's
readings in order. ``replay`` stamps them with the simulator's own hourly times; ``wall``
stamps each simulated hour with the time it is sent (:meth:`FleetPlan.step` takes the stamp).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

import training_job
from evpm.telemetry import FEATURES, VEHICLE_ID_PATTERN, format_timestamp
from evpm_cli.loadgen import MALFORMED_KINDS, poison
from training_job.jobs.base import TrainJob, load_job

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEGRADED_WITHIN_HOURS",
    "MODES",
    "SCENARIOS",
    "WARMUP",
    "FleetPlan",
    "FleetRequest",
    "Scenario",
    "SentVehicle",
    "plan_fleet",
]


_TRAINING = Path(training_job.__file__).parent


def _longest_window() -> int:
    """The longest feature window of the models `evpm up` trains (their training config)."""
    job = load_job(_TRAINING / "configs" / "train_fleet.yaml")
    assert isinstance(job, TrainJob)
    return max(job.features.windows)


def _failure_modes() -> tuple[str, ...]:
    """The classifier's classes but ``none``, from the fleet's data-set spec (read as YAML:
    the simulator, which names them too, needs pandas, too slow an import for every command)."""
    classes = yaml.safe_load((_TRAINING / "specs" / "fleet.yaml").read_text())["classes"]
    return tuple(str(c) for c in classes if c != "none")


WARMUP = _longest_window() - 1
"""Readings of a vehicle before its first counted one: from this index on, every feature
window of the served models is full, as for the held-out readings training evaluated."""

DEGRADED_WITHIN_HOURS = 72.0
"""A degraded vehicle's failure comes at most this long after its last sent reading: the
classifier's label horizon is 336 h, but a failure two weeks away is only starting to show."""

MODES: tuple[str, ...] = _failure_modes()
"""Failure modes a degraded vehicle can be chosen for (``none`` is the nominal fleet)."""

_POOL_STRIDE = 100_003  # seed step between successive pools: the same pools for the same seed
_MAX_POOL = 1000  # vehicles simulated at once: a pool of 1,000 x 2,000 h holds 380 MB
_MAX_EXTRA_POOLS = 12  # pools beyond those the nominal vehicles need, for rare degraded ones


@dataclass(frozen=True, slots=True)
class Scenario:
    """Conditions of the simulated window; ``start`` sets its season (and the replayed times)."""

    start: str
    about: str


SCENARIOS: dict[str, Scenario] = {
    "as-trained": Scenario(
        start="2024-02-17T00:00:00Z",
        about="the season of the models' held-out readings (the training fleet's February)",
    ),
    "summer": Scenario(
        start="2024-07-15T00:00:00Z",
        about="the same kind of fleet in July: air about 17 degC warmer than the winter the "
        "models learnt, batteries and tyres warmer with it (a drift scenario)",
    ),
}
"""Named conditions. A scenario is whatever the simulator expresses without a change to it:
today the calendar (its seasonal cycle of the air temperature); more can be added here."""


class FleetRequest(BaseModel):
    """What to send: how many nominal and degraded vehicles, for how long, under what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vehicles: int = Field(200, ge=0, le=5000, description="nominal vehicles")
    hours: int = Field(216, ge=2, le=2000, description="readings per vehicle (one an hour)")
    degraded: int = Field(0, ge=0, le=200, description="vehicles near a failure at the end")
    mode: Literal["any", *MODES] = "any"  # type: ignore[valid-type]
    scenario: Literal[*SCENARIOS] = "as-trained"  # type: ignore[valid-type]
    seed: int = 2026
    prefix: str = Field("SIM", pattern=VEHICLE_ID_PATTERN, max_length=40)
    malformed: int = Field(0, ge=0, description="extra invalid records mixed in")

    @model_validator(mode="after")
    def _something_counted(self) -> FleetRequest:
        if self.vehicles + self.degraded == 0:
            raise ValueError("nothing to send: give --vehicles or --degraded")
        if self.malformed > self.hours * (self.vehicles + self.degraded):
            raise ValueError("at most one malformed record per reading")
        if self.hours <= WARMUP:
            raise ValueError(
                f"hours must exceed {WARMUP} (got {self.hours}): a vehicle's first {WARMUP} "
                "readings fill the models' week-long window and are not counted"
            )
        return self


@dataclass(frozen=True, slots=True)
class SentVehicle:
    """One simulated vehicle as sent: its readings and what the simulator knows of it."""

    vehicle_id: str
    kind: Literal["nominal", "degraded"]
    label: str
    """``failure_mode`` label of its last reading (``none`` for a nominal vehicle)."""
    hours_to_failure: float
    """``rul_hours`` of its last reading (720 = the cap: no failure within a month)."""
    values: np.ndarray
    """``(hours, 24)`` readings in :data:`evpm.telemetry.FEATURES` order."""


@dataclass(frozen=True)
class FleetPlan:
    """The chosen vehicles, and their readings of each simulated hour as stream records."""

    request: FleetRequest
    vehicles: tuple[SentVehicle, ...]
    start: datetime
    """Time of the first reading in ``replay`` (the scenario's simulated calendar)."""

    @property
    def hours(self) -> int:
        return self.request.hours

    def replay_time(self, hour: int) -> datetime:
        """The simulator's own time of the ``hour``-th reading (one an hour from ``start``)."""
        return self.start + timedelta(hours=hour)

    def malformed_at(self) -> dict[int, dict[int, str]]:
        """Hour -> {vehicle index: poison kind} of the malformed copies, spread evenly over
        the run and cycling through the kinds (as the load generator spreads its own)."""
        n, total = len(self.vehicles), self.hours * len(self.vehicles)
        out: dict[int, dict[int, str]] = {}
        for i in range(self.request.malformed):
            at = round(i * total / self.request.malformed)
            out.setdefault(at // n, {})[at % n] = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        return out

    def step(
        self, hour: int, stamp: datetime, *, malformed: Mapping[int, str] | None = None
    ) -> list[tuple[str, bytes, bool]]:
        """Every vehicle's reading of one simulated hour, stamped ``stamp``, as
        ``(partition_key, data, is_valid)``; the vehicles in ``malformed`` (index -> kind)
        also send a poisoned copy of it, after the valid one, so no reading is lost to it."""
        ts = format_timestamp(stamp)
        out: list[tuple[str, bytes, bool]] = []
        bad = malformed or {}
        for index, vehicle in enumerate(self.vehicles):
            record: dict = {"vehicle_id": vehicle.vehicle_id, "timestamp": ts}
            record.update(zip(FEATURES, vehicle.values[hour].tolist(), strict=True))
            out.append((vehicle.vehicle_id, json.dumps(record).encode(), True))
            if index in bad:
                out.append((vehicle.vehicle_id, poison(record, bad[index]), False))
        return out

    def replay(self) -> Iterator[tuple[str, bytes, bool]]:
        """All records in ``replay`` time: hour by hour, each vehicle's in time order."""
        bad = self.malformed_at()
        for hour in range(self.hours):
            yield from self.step(hour, self.replay_time(hour), malformed=bad.get(hour))


def plan_fleet(
    request: FleetRequest, *, on_pool: Callable[[int, int], None] | None = None
) -> FleetPlan:
    """Simulate pools of vehicles until the request is met; keep them in pool order.

    Deterministic by ``seed`` (and the request): the same vehicles and readings every time.
    ``on_pool(pool_index, vehicles_simulated)`` is called after each pool (progress).
    Raises ``ValueError`` when the pools hold too few degraded vehicles of the requested mode
    (sensor faults and tyre leaks near failure are the rarest).
    """
    from training_job.simulator import FleetConfig, simulate_fleet  # pandas: only when sending

    scenario = SCENARIOS[request.scenario]
    nominal: list[SentVehicle] = []
    degraded: list[SentVehicle] = []
    # A pool of this size holds the nominal vehicles (about 70 % of vehicles qualify over a
    # two-day count) and, among 300, a few near a failure of a given mode at the end.
    size = max(20, math.ceil(request.vehicles * 1.5) + (300 if request.degraded else 0))
    size = min(size, _MAX_POOL)
    pools = math.ceil(request.vehicles * 1.5 / size) + _MAX_EXTRA_POOLS
    for k in range(pools):
        need_nominal = request.vehicles - len(nominal)
        need_degraded = request.degraded - len(degraded)
        if need_nominal <= 0 and need_degraded <= 0:
            break
        frame = simulate_fleet(
            FleetConfig(
                vehicles=size,
                hours=request.hours,
                seed=request.seed + _POOL_STRIDE * k,
                start=scenario.start,
            )
        )
        found_nominal, found_degraded = _choose(frame, request)
        nominal += found_nominal[: max(need_nominal, 0)]
        degraded += found_degraded[: max(need_degraded, 0)]
        if on_pool is not None:
            on_pool(k, size)
    if len(nominal) < request.vehicles or len(degraded) < request.degraded:
        want = "any mode" if request.mode == "any" else request.mode
        raise ValueError(
            f"{pools} pools of {size} simulated vehicles held {len(nominal)} nominal and "
            f"{len(degraded)} degraded vehicles ({want}, failing within "
            f"{DEGRADED_WITHIN_HOURS:.0f} h of the last reading); ask for fewer"
        )
    named = [_named(v, f"{request.prefix}-N{i:04d}") for i, v in enumerate(nominal)] + [
        _named(v, f"{request.prefix}-D{i:02d}-{v.label}") for i, v in enumerate(degraded)
    ]
    start = datetime.fromisoformat(scenario.start).astimezone(UTC)
    return FleetPlan(request=request, vehicles=tuple(named), start=start)


def _named(vehicle: SentVehicle, vehicle_id: str) -> SentVehicle:
    return SentVehicle(
        vehicle_id=vehicle_id,
        kind=vehicle.kind,
        label=vehicle.label,
        hours_to_failure=vehicle.hours_to_failure,
        values=vehicle.values,
    )


def _choose(
    frame: pd.DataFrame, request: FleetRequest
) -> tuple[list[SentVehicle], list[SentVehicle]]:
    """The pool's nominal and degraded vehicles (see the module docstring), in pool order."""
    hours = request.hours
    n = len(frame) // hours
    values = frame[list(FEATURES)].to_numpy(dtype=np.float64).reshape(n, hours, len(FEATURES))
    modes = frame["failure_mode"].astype(str).to_numpy().reshape(n, hours)
    rul = frame["rul_hours"].to_numpy(dtype=np.float64).reshape(n, hours)
    is_nominal = (modes[:, WARMUP:] == "none").all(axis=1)
    last_mode, last_rul = modes[:, -1], rul[:, -1]
    wanted = (last_mode != "none") if request.mode == "any" else (last_mode == request.mode)
    is_degraded = wanted & (last_rul <= DEGRADED_WITHIN_HOURS)
    nominal = [
        SentVehicle("", "nominal", "none", float(last_rul[i]), values[i])
        for i in np.flatnonzero(is_nominal)
    ]
    degraded = [
        SentVehicle("", "degraded", str(last_mode[i]), float(last_rul[i]), values[i])
        for i in np.flatnonzero(is_degraded)
    ]
    return nominal, degraded
