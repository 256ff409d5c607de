"""`evpm send`'s fleet source and report, offline: the simulator's vehicles as stream records,
the predictions read back from a (moto) predictions table, the reference rates from the
registry, and the whole chain scored by the scorer's own code with models training_job made.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from pydantic import ValidationError

from evpm.ingest import RawRecord, process_batch
from evpm.predictions import to_item
from evpm.serving import History, ServedModels
from evpm.telemetry import FEATURES, TelemetryRecord, format_timestamp
from evpm_cli import fleet_report, fleet_stream
from evpm_cli.fleet_stream import WARMUP, FleetRequest, plan_fleet
from tests.unit.registry_fake import FakeRegistry

SPECS = Path(__file__).resolve().parents[2] / "training_job" / "specs"


@pytest.fixture(scope="module")
def plan() -> fleet_stream.FleetPlan:
    """Four nominal vehicles, one near a brake failure, ten hours counted, seven poisoned."""
    request = FleetRequest(
        vehicles=4, hours=WARMUP + 10, degraded=1, mode="brake_wear", malformed=7, seed=3,
        prefix="T",
    )  # fmt: skip
    return plan_fleet(request)


def test_readings_are_telemetry_in_time_order_keyed_by_vehicle(plan) -> None:
    # GIVEN a planned fleet WHEN its records are replayed
    records = list(plan.replay())
    valid = [(key, data) for key, data, ok in records if ok]
    # THEN every reading of every vehicle is there, valid, and keyed by its vehicle
    assert len(valid) == len(plan.vehicles) * plan.hours
    times: dict[str, list[datetime]] = defaultdict(list)
    for key, data in valid:
        record = TelemetryRecord.model_validate_json(data)
        assert record.vehicle_id == key
        times[key].append(record.timestamp)
    # AND each vehicle's readings come hour by hour, in time order, from the simulator's clock
    assert set(times) == {v.vehicle_id for v in plan.vehicles}
    for stamps in times.values():
        assert stamps[0] == plan.start
        assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(stamps))
    # AND the malformed records are extra, each refused by the schema
    bad = [data for _, data, ok in records if not ok]
    assert len(bad) == 7
    for data in bad:
        with pytest.raises(ValidationError):
            TelemetryRecord.model_validate_json(data)


def test_nominal_vehicles_are_healthy_and_the_degraded_one_fails_soon(plan) -> None:
    kinds = [v.kind for v in plan.vehicles]
    assert kinds == ["nominal"] * 4 + ["degraded"]
    assert [v.vehicle_id for v in plan.vehicles] == [
        "T-N0000", "T-N0001", "T-N0002", "T-N0003", "T-D00-brake_wear",
    ]  # fmt: skip
    degraded = plan.vehicles[-1]
    assert degraded.label == "brake_wear"
    assert 0 < degraded.hours_to_failure <= fleet_stream.DEGRADED_WITHIN_HOURS
    assert all(v.label == "none" for v in plan.vehicles[:4])


def test_the_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    small = FleetRequest(vehicles=3, hours=WARMUP + 2, seed=11, prefix="S")
    first = list(plan_fleet(small).replay())
    assert first == list(plan_fleet(small).replay())
    other = list(plan_fleet(small.model_copy(update={"seed": 12})).replay())
    assert [d for _, d, _ in other] != [d for _, d, _ in first]


def test_a_wall_clock_step_carries_the_time_it_is_sent(plan) -> None:
    now = datetime(2030, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    step = plan.step(5, now, malformed={2: "wrong_type"})
    assert len(step) == len(plan.vehicles) + 1
    for key, data, ok in step:
        if ok:
            record = TelemetryRecord.model_validate_json(data)
            assert (record.vehicle_id, record.timestamp) == (key, now)
    assert [ok for *_, ok in step].count(False) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hours": WARMUP}, f"hours must exceed {WARMUP}"),
        ({"vehicles": 0}, "nothing to send"),
        ({"mode": "flat_tyre"}, "Input should be"),
        ({"hours": WARMUP + 1, "vehicles": 1, "malformed": WARMUP + 2}, "at most one malformed"),
    ],
)
def test_a_request_that_cannot_be_met_is_refused_with_the_reason(fields, message) -> None:
    with pytest.raises(ValidationError, match=message):
        FleetRequest(**fields)


# --- read back and report -------------------------------------------------------------------


def _table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName="predictions",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "vehicle_id", "KeyType": "HASH"},
            {"AttributeName": "ts", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "vehicle_id", "AttributeType": "S"},
            {"AttributeName": "ts", "AttributeType": "S"},
        ],
    )


def _stamps(plan: fleet_stream.FleetPlan) -> dict[str, list[str]]:
    ts = [format_timestamp(plan.replay_time(h)) for h in range(plan.hours)]
    return {v.vehicle_id: ts for v in plan.vehicles}


def _item(vehicle: str, ts: str, *, anomaly: bool, failure: str) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle,
        "ts": ts,
        "is_anomaly": anomaly,
        "predicted_failure": failure,
        "model_versions": {"ev-anomaly": "3", "ev-classifier": "2", "health": "rules-v1"},
    }


def test_the_report_waits_for_every_prediction_and_counts_full_window_readings(plan) -> None:
    sent = _stamps(plan)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _table(client)
        table = boto3.resource("dynamodb", region_name="us-east-1").Table("predictions")
        # GIVEN every reading stored but the last of one vehicle
        with table.batch_writer() as writer:
            for vehicle in plan.vehicles:
                stamps = sent[vehicle.vehicle_id]
                for i, ts in enumerate(stamps):
                    if vehicle.vehicle_id == "T-N0001" and i == len(stamps) - 1:
                        continue
                    # the warm-up readings are all flagged: they must not count
                    failing = vehicle.kind == "degraded" or i < WARMUP or i == WARMUP + 1
                    first_of_n2 = i == WARMUP and vehicle.vehicle_id == "T-N0002"
                    writer.put_item(
                        Item=_item(
                            vehicle.vehicle_id,
                            ts,
                            anomaly=i < WARMUP or first_of_n2,
                            failure="brake_wear" if failing else "none",
                        )
                    )
        # WHEN read back with no time to wait THEN that vehicle is reported incomplete
        progress: list[int] = []
        stored = fleet_report.read_predictions(
            client, "predictions", sent, timeout=0, on_progress=progress.append
        )
        assert progress == [len(plan.vehicles) - 1]
        assert len(stored["T-N0001"]) == 0
        # WHEN the last one lands THEN all are read
        table.put_item(Item=_item("T-N0001", sent["T-N0001"][-1], anomaly=False, failure="none"))
        stored = fleet_report.read_predictions(
            client, "predictions", sent, timeout=5, sleep=lambda s: None
        )
    summary = fleet_report.summarise(plan.vehicles, sent, stored)
    # THEN the rates cover the nominal vehicles' readings from WARMUP on: 4 x 10 of them, one
    # anomalous and four (each vehicle's second counted reading) predicted failing
    assert summary.stored == summary.expected == len(plan.vehicles) * plan.hours
    assert summary.counted == 40
    assert summary.anomaly_rate == pytest.approx(1 / 40)
    assert summary.failure_rate == pytest.approx(4 / 40)
    assert summary.versions["ev-classifier"] == "2" and not summary.mixed_versions
    (degraded,) = summary.degraded
    assert degraded["flagged"] and degraded["predicted_modes"] == {"brake_wear": 24}


def test_reference_rates_come_from_the_scoring_versions_or_are_unavailable() -> None:
    registry = FakeRegistry()
    metrics = {"nominal_flag_rate": 0.01, "nominal_flag_rate_rows": 9000.0, "pr_auc": 0.4}
    registry.create_version("ev-anomaly", "s3://a", run_id=None, tags={})  # before the metric
    registry.create_version(
        "ev-anomaly", "s3://b", run_id=None, tags={"metrics": json.dumps(metrics)}
    )
    registry.create_version("ev-classifier", "s3://c", run_id=None, tags={"metrics": "{}"})
    # GIVEN the readings scored by ev-anomaly v2 and ev-classifier v1
    ref = fleet_report.reference_rates(registry, {"ev-anomaly": "2", "ev-classifier": "1"})
    assert ref.rates == {"anomaly_rate": 0.01, "failure_rate": None}
    assert ref.readings["anomaly_rate"] == 9000.0
    assert "ev-classifier v1 was trained before nominal_failure_rate" in ref.note
    # AND an old anomaly version says so instead of borrowing a rate
    old = fleet_report.reference_rates(registry, {"ev-anomaly": "1"})
    assert old.rates["anomaly_rate"] is None and "ev-anomaly v1" in old.note
    assert "ev-classifier did not score" in old.note
    report = fleet_report.summarise([], {}, {}).as_dict(old)
    assert report["nominal"]["ratio_to_reference"] == {"anomaly_rate": None, "failure_rate": None}


# --- the whole chain, with models training_job trained ----------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Anomaly detector and classifier trained by the pipeline on a small simulated fleet
    with the served feature windows (so a sent vehicle's first WARMUP readings warm them)."""
    from training_job.io.registry import load_bundle
    from training_job.jobs.base import BoosterParams, DataRef, FeatureParams, MlflowParams, TrainJob
    from training_job.pipeline import run_training
    from training_job.simulator import FleetConfig, simulate_fleet, write_parquet

    tmp = tmp_path_factory.mktemp("fleet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        mp.chdir(tmp)
        frame = simulate_fleet(FleetConfig(vehicles=24, hours=500, seed=5))
        path = write_parquet(frame, str(tmp / "fleet.parquet"))
        job = TrainJob(
            data=DataRef(spec=str(SPECS / "fleet.yaml"), path=path),
            features=FeatureParams(windows=(6, 24, 72, WARMUP + 1), stats=("mean", "slope")),
            models=("anomaly", "classifier"),
            classifier=BoosterParams(
                rounds=20, early_stopping=5, balance=0.5, params={"num_leaves": 15}
            ),
            mlflow=MlflowParams(register_models=False, alias=None),
            reference_rows=16,
        )
        result = run_training(job)
        bundles = {
            result.models[t]["name"]: load_bundle(result.models[t]["artifact_uri"])
            for t in ("anomaly", "classifier")
        }
    return {"job": job, "frame": frame, "result": result, "bundles": bundles}


def test_training_logs_the_rates_on_held_out_nominal_readings(trained) -> None:
    from training_job.core.inputs import time_values
    from training_job.core.split import split_units_time

    # GIVEN the held-out readings of the test vehicles labelled healthy
    frame, job = trained["frame"], trained["job"]
    units = pd.factorize(frame["vehicle_id"])[0]
    split = split_units_time(
        units,
        time_values(frame["timestamp"]),
        test_units=job.split.test_units,
        time_cutoff=job.split.time_cutoff,
        seed=job.split.seed,
    )
    nominal = split.test & (frame["failure_mode"].astype(str) == "none").to_numpy()
    values = frame[list(FEATURES)].to_numpy(dtype=np.float64)
    # WHEN the registered bundles score them
    detector, classifier = trained["bundles"]["ev-anomaly"], trained["bundles"]["ev-classifier"]
    flags = detector.predict_matrix(detector.features(values, units)).flag
    failing = classifier.predict_matrix(classifier.features(values, units)).value != 0
    # THEN the metrics logged with the versions are those shares
    metrics = trained["result"].models
    assert metrics["anomaly"]["metrics"]["nominal_flag_rate"] == flags[nominal].mean()
    assert metrics["classifier"]["metrics"]["nominal_failure_rate"] == failing[nominal].mean()
    assert metrics["classifier"]["metrics"]["nominal_failure_rate_rows"] == nominal.sum()


def test_a_sent_fleet_scored_by_the_scorer_is_reported_as_training_would_count_it(
    trained,
) -> None:
    # GIVEN a nominal fleet and a degraded vehicle, put through the scorer's own code per
    # shard in 500-record batches, with its history, as the stream's Lambda would
    bundles = trained["bundles"]
    served = ServedModels(versions=dict.fromkeys(bundles, 1), bundles=bundles)
    plan = plan_fleet(
        FleetRequest(vehicles=20, degraded=1, mode="brake_wear", malformed=5, seed=7, prefix="X")
    )
    records = list(plan.replay())
    shards: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for key, data, _ in records:
        shards[sum(key.encode()) % 2].append((key, data))
    stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
    parked = 0
    for shard, rows in shards.items():
        history = History(served.depth)
        for i in range(0, len(rows), 500):
            batch = [
                RawRecord(str(i + j), key, f"shardId-{shard}", data)
                for j, (key, data) in enumerate(rows[i : i + 500])
            ]
            outcome = process_batch(batch, models=served, history=history)
            parked += len(outcome.parked)
            for accepted in outcome.accepted:
                item = to_item(accepted.prediction)
                stored[item["vehicle_id"]].append(item)
    assert parked == 5
    # WHEN the report counts them
    summary = fleet_report.summarise(plan.vehicles, _stamps(plan), stored)
    # THEN it counts exactly what scoring each nominal vehicle's whole series at once (the
    # training features) gives on its readings from WARMUP on
    nominal = [v for v in plan.vehicles if v.kind == "nominal"]
    values = np.concatenate([v.values for v in nominal])
    units = np.repeat(np.arange(len(nominal)), plan.hours)
    counted = np.tile(np.arange(plan.hours), len(nominal)) >= WARMUP
    detector, classifier = bundles["ev-anomaly"], bundles["ev-classifier"]
    flags = detector.predict_matrix(detector.features(values, units)).flag[counted]
    failing = (classifier.predict_matrix(classifier.features(values, units)).value != 0)[counted]
    assert summary.counted == counted.sum() == 20 * (plan.hours - WARMUP)
    assert summary.anomaly_rate == flags.mean()
    assert summary.failure_rate == failing.mean()
    # AND the fleet is not on fire: both rates are of the order of the held-out ones (the
    # uniform load generator had 97 % anomalies), and the worn-out brakes are seen
    reference = trained["result"].models
    assert summary.anomaly_rate < 3 * reference["anomaly"]["metrics"]["nominal_flag_rate"]
    assert summary.failure_rate < 0.25
    (degraded,) = summary.degraded
    assert degraded["flagged"], degraded


# --- the command ---------------------------------------------------------------------------


@pytest.mark.parametrize("clock", ["replay", "wall"])
def test_send_puts_the_fleet_and_reports_its_rates_beside_the_reference(
    monkeypatch: pytest.MonkeyPatch, clock: str
) -> None:
    from click.testing import CliRunner

    from evpm_cli import main

    request = FleetRequest(vehicles=3, hours=WARMUP + 4, seed=5, prefix="C")
    plan = plan_fleet(request)
    registry = FakeRegistry()
    for name, versions in (("ev-anomaly", 3), ("ev-classifier", 2)):  # as _item names them
        for _ in range(versions - 1):
            registry.create_version(name, "s3://old", run_id=None, tags={})
    registry.create_version(
        "ev-anomaly", "s3://x", run_id=None, tags={"metrics": '{"nominal_flag_rate": 0.25}'}
    )
    registry.create_version("ev-classifier", "s3://y", run_id=None, tags={"metrics": "{}"})
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="telemetry", ShardCount=1)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        _table(dynamodb)
        clients = {"kinesis": kinesis, "dynamodb": dynamodb}
        monkeypatch.setattr(main, "client", lambda cfg, service: clients[service])
        monkeypatch.setattr(
            main.endpoints,
            "stack_outputs",
            lambda cfg: {"StreamName": "telemetry", "PredictionsTable": "predictions"},
        )
        monkeypatch.setattr(main, "MlflowRegistry", lambda url: registry)
        if clock == "replay":  # GIVEN the scorer stored a prediction of each reading
            table = boto3.resource("dynamodb", region_name="us-east-1").Table("predictions")
            with table.batch_writer() as writer:
                for vehicle, stamps in _stamps(plan).items():
                    for i, ts in enumerate(stamps):
                        writer.put_item(
                            Item=_item(vehicle, ts, anomaly=i == WARMUP + 1, failure="none")
                        )
        # WHEN the fleet is sent
        args = ["send", "--vehicles", "3", "--hours", str(WARMUP + 4), "--seed", "5"]
        args += ["--prefix", "C", "--malformed", "2", "--clock", clock, "--step-seconds", "0"]
        result = CliRunner().invoke(main.cli, [*args, "--timeout", "0"])
        shards = kinesis.describe_stream(StreamName="telemetry")["StreamDescription"]["Shards"]
        iterator = kinesis.get_shard_iterator(
            StreamName="telemetry", ShardId=shards[0]["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        put = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # THEN every reading and the malformed records are on the stream, in order per vehicle
    assert report["sent"] == len(put) == 3 * (WARMUP + 4) + 2
    order: dict[str, list[datetime]] = defaultdict(list)
    for record in put:
        try:
            reading = TelemetryRecord.model_validate_json(record["Data"])
        except ValidationError:
            continue
        assert reading.vehicle_id == record["PartitionKey"]
        order[reading.vehicle_id].append(reading.timestamp)
    assert sorted(order) == ["C-N0000", "C-N0001", "C-N0002"]
    assert all(t == sorted(set(t)) and len(t) == WARMUP + 4 for t in order.values())
    if clock == "wall":  # nothing is scored here: the report says so, with what is missing
        assert report["predictions_stored"] == 0
        assert report["nominal"]["anomaly_rate"] is None
        return
    # AND the rates of the counted readings (one anomaly in four per vehicle) sit beside the
    # reference of the version that scored them; the classifier's is unavailable
    assert report["nominal"]["readings_counted"] == 12
    assert report["nominal"]["anomaly_rate"] == 0.25
    assert report["nominal"]["reference"]["anomaly_rate"] == 0.25
    assert report["nominal"]["ratio_to_reference"] == {"anomaly_rate": 1.0, "failure_rate": None}
    assert "ev-classifier v2 was trained before" in report["nominal"]["reference"]["note"]
