"""`evpm send` on the running system: a simulated nominal fleet is scored as the models scored
held-out nominal readings in training, and a vehicle near a brake failure is flagged.

The fleet is the command's default (200 nominal vehicles x 216 h, seed 2026: 9,800 readings
counted) plus one degraded vehicle and 20 malformed records; about 43,000 records, some 20 s
of stream at the emulator's pace. Offline, the same fleet scored by the models `evpm up`
trains gives 0.79x the held-out anomaly rate and 0.93x the held-out failure rate (20 other
seeds: 0.54-1.05x and 0.36-1.61x), so the 2x band below is a real margin, not a fit.
"""

from __future__ import annotations

import json
import time
import uuid

from tests.integration.conftest import System, drain_dlq, evpm

MALFORMED = 20


def test_a_nominal_fleet_is_scored_like_held_out_nominal_vehicles(system: System) -> None:
    # GIVEN the models `evpm up` trained and pinned, WHEN the default fleet is sent with a
    # vehicle whose brakes fail within three days of its last reading
    prefix = f"SIMT{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    done = evpm(
        "send", "--degraded", "1", "--mode", "brake_wear", "--malformed", str(MALFORMED),
        "--prefix", prefix, "--timeout", "240", timeout=600,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])

    # THEN every valid reading was stored and read back
    assert report["predictions_stored"] == report["predictions_expected"], done.stderr
    nominal = report["nominal"]
    assert nominal["readings_counted"] == 200 * (216 - 167)
    # AND the reference rates are those of the versions that scored (logged by training)
    reference = nominal["reference"]
    assert reference["anomaly_rate"] is not None and reference["failure_rate"] is not None, (
        f"no held-out nominal rates in the registry ({reference.get('note')}): models trained "
        "before they were recorded; run `evpm lifecycle run` once"
    )
    # AND both rates are within 2x of the models' rates on held-out nominal readings
    for rate in ("anomaly_rate", "failure_rate"):
        ratio = nominal["ratio_to_reference"][rate]
        assert 0.5 <= ratio <= 2.0, (rate, nominal[rate], reference[rate], done.stderr)
    # AND the degraded vehicle is flagged on most of its last day
    (degraded,) = report["degraded"]
    assert degraded["label"] == "brake_wear"
    assert degraded["flagged"], degraded
    # AND the malformed records went to the DLQ, beside the stored readings
    parked: dict[str, dict] = {}
    deadline = time.monotonic() + 30
    while len(parked) < MALFORMED and time.monotonic() < deadline:
        drain_dlq(system, prefix, parked)
        time.sleep(1)
    assert len(parked) == MALFORMED
    assert elapsed < 180, f"evpm send took {elapsed:.0f} s"
