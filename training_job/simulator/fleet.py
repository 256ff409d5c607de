"""Generative fleet model: hourly telemetry of many vehicles, with failures and anomalies.

The model is a set of physical mechanisms (see ``MODEL.md`` beside this file) stepped forward
one hour at a time for *all vehicles at once*: every state is a numpy vector over vehicles, so
the Python loop runs over time steps only (a few thousand) and one million rows take seconds.
Failures are not drawn at random: each failure mode is a hidden or observed state crossing its
threshold, so the remaining useful life of a row is the true time until the next crossing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evpm import health
from evpm.telemetry import FEATURES, SENSOR_RANGES

__all__ = [
    "ANOMALY_KINDS",
    "FAILURE_MODES",
    "FleetConfig",
    "simulate_fleet",
]

FAILURE_MODES: tuple[str, ...] = health.FAILURE_MODES
"""Label vocabulary (evpm's one list of failure modes); index = code used internally. ``none``
means no crossing within horizon."""

ANOMALY_KINDS: tuple[str, ...] = ("none", "spike", "dropout", "stuck", "noise_burst")

_COL = {name: i for i, name in enumerate(FEATURES)}

# Scale of each signal's normal hour-to-hour change: a quarter of the 99.5th percentile of
# its absolute hourly change in a clean fleet, with a floor for the slow signals. Spikes of
# 6-12 scales are beyond any normal change; a corruption of 3 scales is material (_MATERIAL).
_SCALE = np.array(
    [
        17,
        1,
        26,
        140,
        4,
        20,
        12,
        1.8,
        104,
        3000,
        57,
        3,
        13,
        6,
        1,
        5,
        120,
        4,
        8,
        242,
        36,
        300,
        60,
        1.7,
    ],
    dtype=np.float64,
)
# Sensors that can develop a drift or a stuck fault, with the bias that makes a reading unusable.
_FAULTY_SENSORS: dict[str, float] = {
    "Battery_Temperature": 8.0,
    "Motor_Temperature": 10.0,
    "Tire_Pressure": 4.0,
    "Motor_Vibration": 2.0,
    "Battery_Voltage": 25.0,
}
_BURN_IN_HOURS = 2200
"""Hours simulated before the window opens, so every mechanism is under way at hour 0.

Without it the processes that start during the simulation (cooling losses, slow leaks, sensor
faults, bearings from their drawn wear) could only cross late in the window: no thermal
failure in the first 1,000 hours, no leaking tyre in the first 500. A model trained on the
early period and tested on the later one would then face a different mixture of failures,
which is a flaw of the simulation, not a test of the model. 2,200 h is the slowest leak."""

_THERMAL_RISE = 14.0
"""``thermal_risk``: the pack runs, over a week of its own duty, this much above the air."""
_DRIVE_PROFILE = np.array(
    [0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.30, 0.55, 0.60, 0.40, 0.35, 0.40,
     0.45, 0.40, 0.38, 0.42, 0.55, 0.62, 0.50, 0.30, 0.20, 0.12, 0.06, 0.03],
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """What to simulate. ``vehicles x hours`` rows come out; the seed fixes every draw.

    ``rul_cap_hours`` caps the RUL label (the simulation runs that far past the window so
    every label is exact up to the cap); ``horizon_hours`` is how close a crossing must be
    for a row to carry that failure mode instead of ``none``.
    """

    vehicles: int = 500
    hours: int = 2000
    seed: int = 7
    start: str = "2024-01-01T00:00:00Z"
    rul_cap_hours: int = 720
    horizon_hours: int = 336
    anomaly_rate: float = 0.01
    # Changes to the fleet, for drift scenarios (all default to the unchanged fleet):
    climate_offset_c: float = 0.0
    """Added to every vehicle's home climate (a hotter region: the physics follows)."""
    pack_age_fade: float = 0.0
    """Added to every pack's capacity fade when the window opens (0.05 = packs 5 SoH points
    older; the burn-in would otherwise replace them before anyone saw them)."""
    sensor_bias: tuple[tuple[str, float], ...] = ()
    """``(signal, bias)`` added to every vehicle's reading of that signal (a miscalibrated
    sensor model rolled out fleet-wide: the reading moves, never the physics)."""
    hidden_failure_rate: float = 0.0
    """Per vehicle-hour chance, from the window's first hour, of a failure the readings never
    announce (a faulty batch of parts): the outcomes change, the readings do not (a concept
    change only ground truth can show). Drawn from its own random stream, so the readings
    are exactly those of the same fleet without it."""
    hidden_failure_mode: str = "motor_overheating"
    """The failure mode those hidden failures are recorded as."""

    def __post_init__(self) -> None:
        if self.vehicles < 1 or self.hours < 1:
            raise ValueError("vehicles and hours must be >= 1")
        if not 0 <= self.anomaly_rate < 0.5:
            raise ValueError(f"anomaly_rate must be in [0, 0.5) (got {self.anomaly_rate})")
        if self.horizon_hours > self.rul_cap_hours:
            raise ValueError("horizon_hours must not exceed rul_cap_hours")
        if not 0 <= self.pack_age_fade < 0.19:
            raise ValueError(f"pack_age_fade must be in [0, 0.19) (got {self.pack_age_fade})")
        if not 0 <= self.hidden_failure_rate < 0.1:
            raise ValueError(
                f"hidden_failure_rate must be in [0, 0.1) (got {self.hidden_failure_rate})"
            )
        if self.hidden_failure_mode not in FAILURE_MODES[1:]:
            raise ValueError(f"hidden_failure_mode must be one of {FAILURE_MODES[1:]}")
        unknown = [name for name, _ in self.sensor_bias if name not in FEATURES]
        if unknown:
            raise ValueError(f"sensor_bias names unknown signals: {unknown}")


@dataclass(slots=True)
class _Vehicles:
    """Per-vehicle constants: what kind of vehicle, where, how it is used."""

    curb: np.ndarray
    payload: np.ndarray
    cda: np.ndarray
    cap_kwh: np.ndarray
    v_nom: np.ndarray
    r0: np.ndarray
    charger_kw: np.ndarray
    climate: np.ndarray
    hum: np.ndarray
    intensity: np.ndarray
    speed: np.ndarray
    rough: np.ndarray
    stops: np.ndarray
    regen_base: np.ndarray
    tyre_nom: np.ndarray
    k_fade: np.ndarray
    k_bearing: np.ndarray
    k_pad: np.ndarray
    cool_rate: np.ndarray
    cool_onset: np.ndarray
    sensor: np.ndarray
    sensor_kind: np.ndarray
    sensor_onset: np.ndarray
    sensor_rate: np.ndarray


def _draw_vehicles(rng: np.random.Generator, n: int, total: int) -> _Vehicles:
    """Draw a mixed fleet: cars, vans and light trucks, hot and cold climates, mixed duty."""
    kind = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])  # car, van, light truck
    faulty = rng.random(n) < 0.15
    return _Vehicles(
        curb=np.array([1800.0, 2400.0, 3800.0])[kind] * rng.uniform(0.9, 1.1, n),
        payload=np.array([300.0, 1200.0, 3000.0])[kind] * rng.uniform(0.7, 1.3, n),
        cda=np.array([0.62, 0.95, 1.6])[kind],
        cap_kwh=np.array([60.0, 75.0, 110.0])[kind] * rng.uniform(0.9, 1.1, n),
        v_nom=np.where(rng.random(n) < 0.3, 800.0, 400.0),
        r0=rng.uniform(0.08, 0.12, n),
        charger_kw=np.where(rng.random(n) < 0.25, 50.0, 11.0),
        climate=rng.uniform(2.0, 28.0, n),
        hum=rng.uniform(-10.0, 15.0, n),
        intensity=rng.uniform(0.6, 1.5, n),
        speed=rng.uniform(30.0, 80.0, n),
        rough=rng.lognormal(np.log(2.5), 0.5, n),
        stops=rng.uniform(5.0, 40.0, n),
        regen_base=rng.uniform(55.0, 82.0, n),
        tyre_nom=np.array([36.0, 45.0, 65.0])[kind],
        k_fade=rng.lognormal(np.log(2.2e-4), 0.15, n),
        k_bearing=rng.lognormal(np.log(6.0e-4), 0.2, n),
        k_pad=rng.lognormal(np.log(1.8e-8), 0.15, n),
        cool_rate=np.where(rng.random(n) < 0.3, rng.uniform(1 / 2600, 1 / 1800, n), 0.0),
        # Onsets are spread over the burn-in too, so crossings are as frequent early in the
        # window as late (a cooling loss takes 1,100-1,950 h to cross, a sensor fault 800-1,800).
        cool_onset=rng.uniform(-_BURN_IN_HOURS, total - 1300, n),
        sensor=np.where(faulty, rng.integers(0, len(_FAULTY_SENSORS), n), -1),
        sensor_kind=rng.choice(2, size=n, p=[0.7, 0.3]),  # 0 drift, 1 stuck
        sensor_onset=rng.uniform(-_BURN_IN_HOURS, total, n),
        # 1/rate hours from onset to failure: a drift reaches its tolerance, a failing
        # connector's intermittent freezes become a permanent one.
        sensor_rate=rng.uniform(1 / 1800, 1 / 800, n) * rng.choice([-1.0, 1.0], n),
    )


def simulate_fleet(config: FleetConfig | None = None) -> pd.DataFrame:
    """Simulate the fleet and return one row per vehicle-hour, ordered by vehicle then time.

    Columns: ``vehicle_id``, ``timestamp`` (UTC), the 24 signals of
    :data:`evpm.telemetry.FEATURES` (inside their accepted ranges), ``failure_mode``,
    ``rul_hours``, ``is_anomaly``, ``anomaly_kind``.

    Example: ``simulate_fleet(FleetConfig(vehicles=3, hours=48, seed=1)).shape == (144, 30)``.
    """
    cfg = config or FleetConfig()
    n, window = cfg.vehicles, cfg.hours
    total = window + cfg.rul_cap_hours
    rng = np.random.default_rng(cfg.seed)
    veh = _draw_vehicles(rng, n, total)
    veh.climate = veh.climate + cfg.climate_offset_c
    hidden_rng = np.random.default_rng([cfg.seed, 1])
    hidden_code = FAILURE_MODES.index(cfg.hidden_failure_mode)
    signals = np.empty((window, n, len(FEATURES)), dtype=np.float64)
    events = np.zeros((total, n), dtype=np.int8)

    # Hidden and slow states, started at random ages so the fleet is not all new.
    fade = rng.uniform(0.0, 0.19, n)
    cycles = fade / veh.k_fade * rng.uniform(0.8, 1.2, n) * 0.5
    cooling = np.ones(n)
    wear = rng.uniform(0.0, 0.6, n)
    pad = rng.uniform(0.0, 85.0, n)
    tyre = veh.tyre_nom * rng.uniform(0.95, 1.0, n)
    leak = np.zeros(n)
    soc = rng.uniform(40.0, 95.0, n)
    t_bat = veh.climate.copy()
    t_mot = veh.climate.copy()
    t_tyre = veh.climate.copy()
    amb_ar = np.zeros(n)
    rise = np.full(n, 4.0)  # week-long mean of the pack's temperature over the air's
    load = veh.payload * rng.random(n)
    odo = rng.uniform(1_000, 150_000, n)
    idle = odo * rng.uniform(0.5, 1.5, n) * 0.6
    sensor_active = veh.sensor >= 0
    stuck_value = np.zeros(n)
    hour0 = int(pd.Timestamp(cfg.start).hour)
    day0 = int(pd.Timestamp(cfg.start).dayofyear)

    # Hour 0 is the window's first hour; the burn-in before it is simulated, not recorded.
    for t in range(-_BURN_IN_HOURS, total):
        if t == 0 and cfg.pack_age_fade:  # the change arrives with the window: older packs
            fade = np.minimum(fade + cfg.pack_age_fade, 0.195)
        hod = (hour0 + t) % 24
        day = day0 + (hour0 + t) / 24.0
        # Environment: seasonal and daily cycles around each vehicle's climate.
        amb_ar = 0.9 * amb_ar + rng.normal(0.0, 1.0, n)
        amb = (
            veh.climate
            + 9.0 * np.sin(2 * np.pi * (day - 110) / 365)
            + 5.0 * np.sin(2 * np.pi * (hod - 9) / 24)
            + amb_ar
        )
        hum = np.clip(55.0 - 1.5 * (amb - veh.climate) + veh.hum + rng.normal(0, 5, n), 5, 100)
        # Duty: drive or park; parked vehicles charge at night or when low.
        driving = (rng.random(n) < np.clip(veh.intensity * _DRIVE_PROFILE[hod], 0, 0.95)) & (
            soc > 12
        )
        charging = ~driving & (soc < 85) & (((hod >= 19) | (hod < 7)) | (soc < 30))
        speed = np.where(driving, np.clip(veh.speed * rng.lognormal(0, 0.25, n), 5, 140), 0.0)
        redraw = driving & (rng.random(n) < 0.3)
        load = np.where(redraw, veh.payload * rng.random(n) ** 0.7, load)
        rough = np.clip(veh.rough * rng.lognormal(0, 0.3, n), 0.3, 25)
        mass = veh.curb + load
        v = speed / 3.6
        soh = 100.0 * (1.0 - fade)
        r_int = veh.r0 * (1.0 + fade / 0.2)  # resistance doubles at end of life
        # Regenerative braking recovers less when the pack is full or cold.
        regen = np.clip(
            veh.regen_base
            - 25.0 * np.maximum(0.0, soc - 85.0) / 15.0
            - 1.2 * np.maximum(0.0, 10.0 - t_bat)
            + rng.normal(0, 2, n),
            0,
            100,
        )
        # Traction power: rolling (rougher road, more resistance) + aero + HVAC.
        p_cruise = (
            (mass * 9.81 * (0.010 + 0.0015 * rough) * v + 0.5 * 1.2 * veh.cda * v**3) / 0.9 / 1000.0
        )
        hvac = 0.15 * np.abs(amb - 21.0)
        phase = rng.random(n)
        braking = driving & (phase < 0.2)
        accel = driving & (phase >= 0.2) & (phase < 0.45)
        a = rng.uniform(0.5, 2.5, n)
        p_snap = np.where(
            braking,
            -mass * a * v / 1000.0 * regen / 100.0,
            p_cruise + hvac + np.where(accel, mass * a * v / 1000.0 / 0.9, 0.0),
        )
        p_snap = np.where(driving, np.clip(p_snap, -300, 400), 0.0)
        e_drive = np.where(driving, (p_cruise + hvac) * 0.92, 0.0)  # kWh this hour
        cap_now = veh.cap_kwh * (1.0 - fade)
        soc = np.clip(soc - 100.0 * e_drive / cap_now, 0.0, 100.0)
        soc = np.where(
            charging, np.minimum(soc + 100.0 * veh.charger_kw * 0.92 / cap_now, 95.0), soc
        )
        # Battery: current, voltage sag over internal resistance, Joule heat, cooling.
        v_oc = veh.v_nom * (0.86 + 0.14 * soc / 100.0)
        current = np.where(
            driving,
            p_snap * 1000.0 / v_oc,
            np.where(charging, -veh.charger_kw * 1000.0 / v_oc, 0.4),
        )
        volt = v_oc - current * r_int
        i_mean = np.where(driving, e_drive * 1000 / v_oc, np.where(charging, current, 0.0))
        heat_kw = i_mean**2 * r_int / 1000.0
        cooling = np.where(t >= veh.cool_onset, np.maximum(cooling - veh.cool_rate, 0.05), cooling)
        # Joule heat plus the pack's share of inverter/charger losses (6 °C driving, 5 °C
        # charging with healthy cooling) all leave through the cooling loop: a failing loop
        # shows as a pack running ever hotter than the ambient under load.
        t_bat_target = amb + (9.0 * heat_kw + 6.0 * driving + 5.0 * charging) / cooling
        t_bat = t_bat + 0.35 * (t_bat_target - t_bat) + rng.normal(0, 0.3, n)
        rise = rise + (t_bat - amb - rise) / 168.0
        # Capacity fade: throughput x depth-of-discharge stress x Arrhenius, with a knee.
        stress = 1.0 + 1.5 * (soc < 20) + 0.5 * (soc > 90)
        arrh = 2.0 ** ((t_bat - 25.0) / 10.0)
        knee = 1.0 + 4.0 * np.maximum(0.0, fade - 0.12) / 0.08
        throughput = (e_drive + np.where(charging, veh.charger_kw * 0.92, 0)) / veh.cap_kwh / 2
        cycles = cycles + throughput
        fade = fade + veh.k_fade * throughput * stress * arrh * knee + 2e-7 * arrh
        # Motor: bearing wear grows with speed^2, load and road roughness, and feeds itself.
        rpm = speed * 80.0
        wear = wear + driving * veh.k_bearing * (rpm / 8000.0) ** 2 * (1.0 + load / veh.payload) * (
            1.0 + 0.05 * rough
        ) * (1.0 + 3.0 * wear)
        t_mot_target = amb + 0.45 * np.abs(p_snap) + 35.0 * wear * driving + 5.0 * driving
        t_mot = t_mot + 0.5 * (t_mot_target - t_mot) + rng.normal(0, 0.5, n)
        vib = np.where(
            driving,
            0.6 + 0.9 * rpm / 8000.0 + 0.08 * rough + 7.0 * wear**2,
            0.05 + 0.2 * wear**2,
        ) + np.abs(rng.normal(0, 0.1, n))
        torque = np.where(driving, p_snap * 1000.0 / np.maximum(rpm, 300.0) / (2 * np.pi / 60), 0)
        # Brakes: friction takes what regeneration does not; worn pads need more pressure.
        e_friction = driving * veh.stops * 0.5 * mass * v**2 * (1.0 - regen / 100.0)
        pad = pad + veh.k_pad * e_friction
        brake_p = np.where(
            braking,
            a * mass / 1000.0 * 10.0 * (1.0 - regen / 100.0) * (1 + 0.6 * pad / 100),
            0.0,
        ) + np.abs(rng.normal(0, 0.3, n))
        # Tyres: punctures start slow leaks (more on rough roads); gas law for the reading.
        puncture = driving & (leak == 0) & (rng.random(n) < (1 + rough / 5) / 4000.0)
        # A slow leak loses the 25 % that fails a tyre in 800-2,200 hours.
        leak = np.where(puncture, veh.tyre_nom * rng.uniform(0.25 / 2200, 0.25 / 800, n), leak)
        tyre = tyre - 0.001 - leak
        top_up = (leak == 0) & (tyre < veh.tyre_nom - 4) & (rng.random(n) < 0.05)
        tyre = np.where(top_up, veh.tyre_nom, tyre)
        under = np.maximum(0.0, veh.tyre_nom - tyre) / veh.tyre_nom
        t_tyre_target = amb + 0.12 * speed * (1 + 2.0 * under) + 0.0005 * load
        t_tyre = t_tyre + 0.5 * (t_tyre_target - t_tyre)
        p_tyre = tyre * (273.15 + t_tyre) / 293.15
        odo = odo + speed
        idle = idle + driving * 60.0 * rng.uniform(0.0, 0.15, n)

        # Sensor faults: a drifting bias or a frozen value on one sensor of some vehicles.
        since = t - veh.sensor_onset
        sensor_on = sensor_active & (since >= 0)
        tolerance = np.array(list(_FAULTY_SENSORS.values()))[np.maximum(veh.sensor, 0)]
        bias = np.where(sensor_on & (veh.sensor_kind == 0), veh.sensor_rate * since, 0.0)
        bias = bias * tolerance

        # Thresholds: each mechanism crossing its limit is a failure event (first wins).
        crossed = np.stack(
            [
                soh < 80.0,
                rise >= _THERMAL_RISE,
                wear >= 1.0,
                pad >= 90.0,
                tyre < 0.75 * veh.tyre_nom,
                sensor_on
                & (
                    ((veh.sensor_kind == 0) & (np.abs(bias) >= tolerance))
                    | ((veh.sensor_kind == 1) & (since >= 24 + 1 / np.abs(veh.sensor_rate)))
                ),
            ]
        )
        any_crossed = crossed.any(axis=0)
        if t >= 0:
            events[t] = np.where(any_crossed, np.argmax(crossed, axis=0) + 1, 0)
            if cfg.hidden_failure_rate:
                hidden = ~any_crossed & (hidden_rng.random(n) < cfg.hidden_failure_rate)
                events[t] = np.where(hidden, hidden_code, events[t])

        if 0 <= t < window:
            row = signals[t]
            row[:, _COL["SoC"]] = soc
            row[:, _COL["SoH"]] = soh
            row[:, _COL["Battery_Voltage"]] = volt + rng.normal(0, 0.5, n)
            row[:, _COL["Battery_Current"]] = current + rng.normal(0, 0.5, n)
            row[:, _COL["Battery_Temperature"]] = t_bat
            row[:, _COL["Charge_Cycles"]] = cycles
            row[:, _COL["Motor_Temperature"]] = t_mot
            row[:, _COL["Motor_Vibration"]] = vib
            row[:, _COL["Motor_Torque"]] = torque
            row[:, _COL["Motor_RPM"]] = rpm
            row[:, _COL["Power_Consumption"]] = p_snap
            row[:, _COL["Brake_Pad_Wear"]] = pad
            row[:, _COL["Brake_Pressure"]] = brake_p
            row[:, _COL["Reg_Brake_Efficiency"]] = regen
            row[:, _COL["Tire_Pressure"]] = p_tyre + rng.normal(0, 0.15, n)
            row[:, _COL["Tire_Temperature"]] = t_tyre
            row[:, _COL["Suspension_Load"]] = (
                mass / 4.0 * (1.0 + driving * 0.025 * rough * np.abs(rng.normal(0, 1, n)))
            )
            row[:, _COL["Ambient_Temperature"]] = amb
            row[:, _COL["Ambient_Humidity"]] = hum
            row[:, _COL["Load_Weight"]] = load
            row[:, _COL["Driving_Speed"]] = speed
            row[:, _COL["Distance_Traveled"]] = odo
            row[:, _COL["Idle_Time"]] = idle
            row[:, _COL["Route_Roughness"]] = rough
            # Apply the sensor fault to the reading (never to the physics).
            idx = np.flatnonzero(sensor_on)
            if idx.size:
                cols = np.array([_COL[s] for s in _FAULTY_SENSORS])[veh.sensor[idx]]
                kind = veh.sensor_kind[idx]
                reading = row[idx, cols]
                if t == 0:  # a connector already failing before the window holds a real value
                    stuck_value[idx] = reading
                # A failing connector repeats its last reading, ever more often, then always.
                worn = since[idx] * np.abs(veh.sensor_rate[idx])
                hold = (kind == 1) & (since[idx] >= 1) & (rng.random(idx.size) < 0.6 * worn)
                hold |= (kind == 1) & (worn >= 1)
                new = np.where(
                    kind == 1, np.where(hold, stuck_value[idx], reading), reading + bias[idx]
                )
                stuck_value[idx] = new
                row[idx, cols] = new

        # Maintenance after a failure: the crossed component is replaced or repaired.
        if any_crossed.any():
            fade = np.where(crossed[0], 0.0, fade)
            cycles = np.where(crossed[0], 0.0, cycles)
            cooling = np.where(crossed[1] | crossed[0], 1.0, cooling)
            rise = np.where(crossed[1] | crossed[0], 4.0, rise)
            veh.cool_rate = np.where(crossed[1], 0.0, veh.cool_rate)
            wear = np.where(crossed[2], 0.0, wear)
            pad = np.where(crossed[3], 0.0, pad)
            tyre = np.where(crossed[4], veh.tyre_nom, tyre)
            leak = np.where(crossed[4], 0.0, leak)
            sensor_active = sensor_active & ~crossed[5]

    for name, bias in cfg.sensor_bias:
        signals[:, :, _COL[name]] += bias
    rul, mode = _labels(events, window, cfg)
    anomaly = _inject_anomalies(rng, signals, cfg.anomaly_rate)
    return _frame(cfg, signals, rul, mode, anomaly)


def _labels(events: np.ndarray, window: int, cfg: FleetConfig) -> tuple[np.ndarray, np.ndarray]:
    """RUL = hours to the next crossing (capped); mode = that crossing if within the horizon."""
    total, n = events.shape
    next_t = np.full(n, np.inf)
    next_mode = np.zeros(n, dtype=np.int8)
    rul = np.empty((window, n))
    mode = np.zeros((window, n), dtype=np.int8)
    for t in range(total - 1, -1, -1):
        hit = events[t] > 0
        next_t = np.where(hit, t, next_t)
        next_mode = np.where(hit, events[t], next_mode)
        if t < window:
            remaining = next_t - t
            rul[t] = np.minimum(remaining, cfg.rul_cap_hours)
            mode[t] = np.where(remaining <= cfg.horizon_hours, next_mode, 0)
    return rul, mode


_LOW = np.array([SENSOR_RANGES[f].low for f in FEATURES], dtype=np.float64)
_HIGH = np.array([SENSOR_RANGES[f].high for f in FEATURES], dtype=np.float64)
_MATERIAL = 3.0
"""An injected corruption is an anomaly where it moves a reading by at least this many
typical scales (``_SCALE``) from the true value: smaller errors are within normal variation."""


def _inject_anomalies(rng: np.random.Generator, signals: np.ndarray, rate: float) -> np.ndarray:
    """Corrupt readings in place (``rate`` = share of corrupted rows); return the kind code of
    each row whose readings end up *materially* wrong (see ``_MATERIAL``), else 0.

    Readings are clipped to their accepted ranges first, then corrupted, then clipped again
    (a sensor cannot report outside its range), and the label compares the final reading with
    the true one, so no label names a corruption that clipping or chance erased: a dropout of
    a sensor that reads about 0 anyway, a stuck value that the true signal stays close to.
    Spikes and dropouts hit one sensor for one reading; a noise burst hits six sensors; a stuck
    episode freezes one sensor for 3-12 readings.
    """
    window, n, n_sig = signals.shape
    kind = np.zeros((window, n), dtype=np.int8)
    np.clip(signals, _LOW, _HIGH, out=signals)
    if rate <= 0:
        return kind
    starts = rng.random((window, n)) < rate / 2.5
    starts[0] = False
    t_idx, v_idx = np.nonzero(starts)
    draw = rng.choice(4, size=t_idx.size, p=[0.4, 0.2, 0.2, 0.2]) + 1
    sensor = rng.integers(0, n_sig, t_idx.size)
    sign = rng.choice([-1.0, 1.0], t_idx.size)
    for code, (t, v, s, sg) in zip(draw, zip(t_idx, v_idx, sensor, sign, strict=True), strict=True):
        if code == 1:
            rows, cols = np.array([t]), np.array([s])
            new = signals[t, v, s] + sg * rng.uniform(6, 12) * _SCALE[cols]
        elif code == 2:
            rows, cols, new = np.array([t]), np.array([s]), np.zeros(1)
        elif code == 3:
            end = min(window, t + int(rng.integers(3, 13)))
            rows = np.arange(t + 1, end)
            cols = np.full(rows.size, s)
            new = np.full(rows.size, signals[t, v, s])
        else:
            cols = rng.choice(n_sig, 6, replace=False)
            rows = np.full(6, t)
            new = signals[t, v, cols] + rng.normal(0, 5, 6) * _SCALE[cols]
        new = np.clip(new, _LOW[cols], _HIGH[cols])
        material = np.abs(new - signals[rows, v, cols]) >= _MATERIAL * _SCALE[cols]
        signals[rows, v, cols] = new
        kind[rows[material], v] = code
    return kind


def _frame(
    cfg: FleetConfig, signals: np.ndarray, rul: np.ndarray, mode: np.ndarray, anomaly: np.ndarray
) -> pd.DataFrame:
    """Lay the (time, vehicle) arrays out as rows ordered by vehicle then time, in range."""
    window, n, _ = signals.shape
    flat = signals.transpose(1, 0, 2).reshape(n * window, -1)
    for j, name in enumerate(FEATURES):
        rng_ = SENSOR_RANGES[name]
        np.clip(flat[:, j], rng_.low, rng_.high, out=flat[:, j])
    ids = np.array([f"EV-{i:05d}" for i in range(n)])
    stamps = pd.date_range(cfg.start, periods=window, freq="h", tz="UTC")
    frame = pd.DataFrame(flat, columns=list(FEATURES))
    frame.insert(0, "timestamp", np.tile(stamps.values, n))
    frame["timestamp"] = (
        frame["timestamp"].dt.tz_localize("UTC")
        if frame["timestamp"].dt.tz is None
        else frame["timestamp"]
    )
    frame.insert(0, "vehicle_id", pd.Categorical(np.repeat(ids, window)))
    frame["failure_mode"] = pd.Categorical.from_codes(
        mode.T.reshape(-1), categories=list(FAILURE_MODES)
    )
    frame["rul_hours"] = rul.T.reshape(-1)
    anomaly_codes = anomaly.T.reshape(-1)
    frame["is_anomaly"] = anomaly_codes > 0
    frame["anomaly_kind"] = pd.Categorical.from_codes(anomaly_codes, categories=list(ANOMALY_KINDS))
    return frame
