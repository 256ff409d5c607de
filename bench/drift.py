"""Drift benchmark: does the monitor stay quiet on an unchanged fleet and speak up on a changed one?

What it measures, on the fleet simulator (``training_job.simulator``), with the monitor's own
code (:mod:`evpm.drift`) and its default thresholds:

* **reference**: the profile of a training fleet (500 vehicles x 2,000 hours, seed 7): the 21
  monitored signals as inputs (the 24 less the three cumulative counters,
  :data:`evpm.drift.MONITORED_SIGNALS`), the true RUL and failure mode as labels, calibrated on its own hours;
* **null**: 20 one-hour windows of another fleet from the same world (seed 8), spread evenly
  over the same 2,000 hours. Target: at most 1 window flagged. ``null_extended`` repeats it on
  200 windows of two more fleets (seeds 12 and 13, the ones the default ``chunk_margin`` was
  chosen on) and reports the false-alarm rate (no target: a fact);
* **three scenarios**, each a fleet changed from its first hour, judged window by window from
  that hour: *covariate* (climate 8 °C hotter and packs 6 SoH points older), *sensor bias*
  (Motor_Vibration reads 0.5 mm/s high, a quarter of its fault tolerance), *concept* (a hidden
  failure mechanism: motor failures no reading announces, 1 in 1,000 vehicle-hours; the
  readings are bit for bit those of the unchanged fleet). Target: detected within the first
  2 windows, by the route that names the change: an input for covariate, the biased signal for
  the bias, a label column for concept (with no input drifting);
* **scale**: the monitor on 1,000,000 captured rows: 2,000 capture objects of 500 rows
  (:func:`evpm.drift.capture.encode_capture`, as the scorer writes them) read from local files,
  decoded, deduplicated and judged, in a fresh process. Target: <= 20 s and <= 2 GB peak RSS.
  S3 transfer is not in this figure (the objects are on local disk).

What it does not measure: prediction drift and live quality need served models' outputs, which
this benchmark does not train; unit tests cover them (``tests/unit/drift``).

Results go to ``bench/results/drift.json``; the run exits 1 if a target is missed or a figure
could not be measured.

Usage: ``python bench/drift.py [--out FILE] [--rows 1000000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evpm.drift import (
    MONITORED_SIGNALS,
    ReferenceProfile,
    Thresholds,
    build_profile,
    encode_capture,
    judge_window,
)
from evpm.predictions import Prediction, record_id
from evpm.telemetry import FEATURES
from training_job.simulator import FleetConfig, simulate_fleet

ROOT = Path(__file__).resolve().parents[1]
VEHICLES, HOURS = 500, 2000
REFERENCE_SEED, NULL_SEED, EXTENDED_SEEDS = 7, 8, (12, 13)
NULL_WINDOWS, EXTENDED_WINDOWS, SCENARIO_WINDOWS, DETECT_WITHIN = 20, 100, 6, 2
MAX_NULL_FLAGGED = 1
SCALE_SECONDS, SCALE_BYTES = 20.0, 2 * 1024**3
LABELS = {"true_rul_hours": "rul_hours", "true_failure_mode": "failure_mode"}
SCENARIOS: dict[str, dict[str, Any]] = {
    "covariate": {"seed": 21, "climate_offset_c": 8.0, "pack_age_fade": 0.06},
    "sensor_bias": {"seed": 22, "sensor_bias": (("Motor_Vibration", 0.5),)},
    "concept": {"seed": 23, "hidden_failure_rate": 0.001},
}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def columns_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The window as the monitor sees it: signals, and the outcomes joined as labels."""
    out = {name: frame[name].to_numpy() for name in MONITORED_SIGNALS}
    out["true_rul_hours"] = frame["rul_hours"].to_numpy()
    out["true_failure_mode"] = frame["failure_mode"].astype(str).to_numpy(dtype=object)
    return out


def roles() -> dict[str, Any]:
    return {**{name: "input" for name in MONITORED_SIGNALS}, **{name: "label" for name in LABELS}}


def hour_windows(frame: pd.DataFrame, picks: np.ndarray) -> list[tuple[int, pd.DataFrame]]:
    """One window per picked hour index: every vehicle's reading of that hour."""
    stamps = np.sort(frame["timestamp"].unique())
    groups = frame.groupby("timestamp", sort=True)
    return [(int(i), groups.get_group(stamps[i])) for i in picks]


def judge(profile: ReferenceProfile, window: pd.DataFrame) -> dict[str, Any]:
    report = judge_window(profile, columns_of(window), window["timestamp"].dt.hour.to_numpy())
    top = sorted(report.columns, key=lambda c: -c.psi / c.psi_limit)[:3]
    return {
        "status": report.status,
        "rows": report.rows,
        "drifted_inputs": report.drifted("input"),
        "drifted_labels": report.drifted("label"),
        "closest": [
            {"column": c.column, "psi": c.psi, "psi_limit": c.psi_limit, "p_adjusted": c.p_adjusted}
            for c in top
        ],
    }


def reference() -> tuple[ReferenceProfile, float]:
    say(f"reference fleet: {VEHICLES} vehicles x {HOURS} h (seed {REFERENCE_SEED})")
    frame = simulate_fleet(FleetConfig(vehicles=VEHICLES, hours=HOURS, seed=REFERENCE_SEED))
    start = time.perf_counter()
    stamps = frame["timestamp"].dt.tz_localize(None).to_numpy()
    profile = build_profile(
        columns_of(frame),
        roles(),
        frame["timestamp"].dt.hour.to_numpy(),
        chunks=stamps.astype("datetime64[h]").astype(np.int64),
        source=f"simulator seed {REFERENCE_SEED}, {VEHICLES} vehicles x {HOURS} h",
    )
    seconds = time.perf_counter() - start
    say(f"profile of {len(frame):,} rows in {seconds:.1f} s")
    return profile, seconds


def null_runs(profile: ReferenceProfile) -> tuple[dict[str, Any], dict[str, Any]]:
    say(f"null: {NULL_WINDOWS} hourly windows of an unchanged fleet (seed {NULL_SEED})")
    fleet = simulate_fleet(FleetConfig(vehicles=VEHICLES, hours=HOURS, seed=NULL_SEED))
    picks = np.linspace(0, HOURS - 1, NULL_WINDOWS).astype(int)
    windows = [{"hour": h, **judge(profile, w)} for h, w in hour_windows(fleet, picks)]
    flagged = sum(w["status"] == "drift" for w in windows)
    say(f"null: {flagged} of {NULL_WINDOWS} windows flagged (target <= {MAX_NULL_FLAGGED})")
    extended: list[dict[str, Any]] = []
    for seed in EXTENDED_SEEDS:
        fleet = simulate_fleet(FleetConfig(vehicles=VEHICLES, hours=HOURS, seed=seed))
        picks = np.linspace(0, HOURS - 1, EXTENDED_WINDOWS).astype(int)
        extended += [
            {"seed": seed, "hour": h, **judge(profile, w)} for h, w in hour_windows(fleet, picks)
        ]
    extra = sum(w["status"] == "drift" for w in extended)
    say(f"null (extended): {extra} of {len(extended)} windows flagged")
    return (
        {
            "seed": NULL_SEED,
            "windows": windows,
            "flagged": flagged,
            "target_max_flagged": MAX_NULL_FLAGGED,
            "passed": flagged <= MAX_NULL_FLAGGED,
        },
        {
            "seeds": list(EXTENDED_SEEDS),
            "windows": len(extended),
            "flagged": extra,
            "false_alarm_rate": round(extra / len(extended), 4),
            "flagged_windows": [w for w in extended if w["status"] == "drift"],
        },
    )


def detected(name: str, window: dict[str, Any]) -> bool:
    """Whether the window caught the change by the route that names it."""
    if name == "sensor_bias":
        return "Motor_Vibration" in window["drifted_inputs"]
    if name == "concept":
        return bool(window["drifted_labels"])
    return bool(window["drifted_inputs"])


def scenario_runs(profile: ReferenceProfile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, knobs in SCENARIOS.items():
        config = FleetConfig(vehicles=VEHICLES, hours=SCENARIO_WINDOWS, **knobs)
        fleet = simulate_fleet(config)
        picks = np.arange(SCENARIO_WINDOWS)
        windows = [{"hour": h, **judge(profile, w)} for h, w in hour_windows(fleet, picks)]
        first = next((i for i, w in enumerate(windows) if detected(name, w)), None)
        passed = first is not None and first < DETECT_WITHIN
        if name == "concept":  # the readings did not change: no input may be blamed
            passed = passed and not any(w["drifted_inputs"] for w in windows[:DETECT_WITHIN])
        knobs_shown = {k: v for k, v in knobs.items() if k != "seed"}
        say(f"{name} {knobs_shown}: first detected in window {first} (target < {DETECT_WITHIN})")
        out[name] = {
            "change": {k: (list(v) if isinstance(v, tuple) else v) for k, v in knobs.items()},
            "windows": windows,
            "first_detected_window": first,
            "target_within_windows": DETECT_WITHIN,
            "passed": passed,
        }
    return out


def _write_captures(folder: Path, rows: int, batch: int) -> int:
    """Capture objects as the scorer writes them, from a simulated fleet (1 per ``batch``)."""
    vehicles = max(1, rows // HOURS)
    fleet = simulate_fleet(FleetConfig(vehicles=vehicles, hours=HOURS, seed=31)).head(rows)
    readings = fleet[list(FEATURES)].to_numpy()
    stamps = fleet["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_numpy()
    ids = fleet["vehicle_id"].astype(str).to_numpy()
    scored = datetime(2024, 5, 1, 12, tzinfo=UTC)
    objects = 0
    for start in range(0, len(fleet), batch):
        preds = [
            Prediction.model_construct(
                vehicle_id=ids[i],
                ts=stamps[i],
                record_id=record_id(ids[i], stamps[i]),
                status="ok",
                health_score=100.0,
                failure_mode="none",
                findings=[],
                model_versions={"health": "rules-v1", "ev-rul": "3", "ev-anomaly": "2"},
                scored_at=scored,
                anomaly_score=0.01,
                is_anomaly=False,
                predicted_failure="none",
                rul_hours=300.0,
                rul_low_hours=200.0,
                rul_high_hours=400.0,
            )
            for i in range(start, min(start + batch, len(fleet)))
        ]
        body = encode_capture(preds, readings[start : start + batch], captured_at=scored)
        (folder / f"{objects:06d}.json.gz").write_bytes(body)
        objects += 1
        if objects % 500 == 0:
            say(f"scale: {objects * batch:,} rows captured")
    return objects


def _monitor_child(folder: str, profile_path: str) -> None:
    """The measured part, in its own process: read, decode, judge; print figures as JSON."""
    from evpm.drift import ReferenceProfile, hour_of_day, judge_window, read_captures

    start = time.perf_counter()
    profile = ReferenceProfile.model_validate_json(Path(profile_path).read_bytes())
    files = sorted(Path(folder).iterdir())
    captured = read_captures(p.read_bytes() for p in files)
    report = judge_window(profile, captured.columns, hour_of_day(captured.seconds))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_bytes": peak,
                "rows": captured.rows,
                "objects": captured.objects,
                "status": report.status,
            }
        )
    )


def scale_run(profile: ReferenceProfile, rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="evpm-drift-") as tmp:
        folder = Path(tmp) / "capture"
        folder.mkdir()
        say(f"scale: writing {rows:,} captured rows")
        objects = _write_captures(folder, rows, 500)
        size = sum(p.stat().st_size for p in folder.iterdir())
        profile_path = Path(tmp) / "profile.json"
        profile_path.write_text(profile.model_dump_json(by_alias=True))
        say(f"scale: {objects} objects, {size / 1e6:.1f} MB gzip'd; monitoring them")
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), str(profile_path)],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            check=False,
        )
        if done.returncode != 0:
            return {"error": done.stderr[-2000:], "passed": False}
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    passed = (
        figures["rows"] == rows
        and figures["seconds"] <= SCALE_SECONDS
        and figures["peak_rss_bytes"] <= SCALE_BYTES
    )
    say(
        f"scale: {figures['rows']:,} rows in {figures['seconds']:.1f} s, peak "
        f"{figures['peak_rss_bytes'] / 1e9:.2f} GB (targets {SCALE_SECONDS:.0f} s, 2 GB)"
    )
    return {
        **figures,
        "objects_bytes": size,
        "target_seconds": SCALE_SECONDS,
        "target_peak_rss_bytes": SCALE_BYTES,
        "passed": passed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "drift.json"))
    parser.add_argument("--rows", type=int, default=1_000_000, help="captured rows for scale")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _monitor_child(*args.child)
        return 0
    started = time.perf_counter()
    profile, profile_seconds = reference()
    null, extended = null_runs(profile)
    scenarios = scenario_runs(profile)
    scale = scale_run(profile, args.rows)
    results = {
        "thresholds": Thresholds().model_dump(),
        "reference": {
            "source": profile.source,
            "rows": profile.rows,
            "profile_seconds": round(profile_seconds, 2),
            "profile_bytes": len(profile.model_dump_json(by_alias=True)),
            "psi_limits": {
                n: c.psi_limit for n, c in {**profile.numeric, **profile.categorical}.items()
            },
        },
        "null": null,
        "null_extended": extended,
        "scenarios": scenarios,
        "scale": scale,
        "seconds": round(time.perf_counter() - started, 1),
    }
    failed = [
        n for n, r in [("null", null), *scenarios.items(), ("scale", scale)] if not r["passed"]
    ]
    results["passed"] = not failed
    results["failed"] = failed
    Path(args.out).write_text(json.dumps(results, indent=2, default=float) + "\n")
    say(f"wrote {args.out}: {'all targets met' if not failed else 'MISSED: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
