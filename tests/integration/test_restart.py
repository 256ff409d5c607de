"""`evpm down && evpm up` keeps what was in the emulated services; a second `up` is quick."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from evpm_cli import loadgen, stream
from tests.integration.conftest import System, drain_dlq, evpm, read_status
from tests.integration.prometheus import single_value
from tests.integration.test_alerts import _drain
from tests.integration.test_api_gateway import RECORD
from tests.integration.test_lifecycle import lifecycle
from tests.integration.test_ops_alerts import _messages, _topic_queue


def _workers(system: System) -> list[str]:
    """Lambda worker processes of this run's state folder (their script lives there)."""
    listing = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    state = system.info["emulator"]["state_dir"]
    return [line for line in listing.splitlines()
            if "evpm_lambda_bootstrap" in line and state in line]


def _silence(alertmanager: str, alertname: str) -> str:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "test_restart", "comment": "must survive evpm down && evpm up",
    }  # fmt: skip
    response = httpx.post(f"{alertmanager}/api/v2/silences", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["silenceID"]


def _alert_after_restart(system: System, prefix: str) -> None:
    url = system.info["stacks"]["AlertsAuditQueueUrl"]
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = {**RECORD, "Brake_Pad_Wear": 95.0, "vehicle_id": f"{prefix}-000", "timestamp": ts}
    kinesis, ddb = system.client("kinesis"), system.client("dynamodb")
    kinesis.put_record(StreamName=system.stream, Data=json.dumps(record).encode(),
                       PartitionKey=record["vehicle_id"])  # fmt: skip
    key = {"vehicle_id": {"S": record["vehicle_id"]}, "ts": {"S": ts}}
    deadline = time.monotonic() + 60
    while "Item" not in ddb.get_item(TableName=system.table, Key=key):
        assert time.monotonic() < deadline, "the critical reading was not stored in 60 s"
        time.sleep(0.5)
    stored = time.monotonic()
    seen: list[dict] = []
    while not seen and time.monotonic() - stored < 10:
        _drain(system, url, prefix, seen)
        time.sleep(0.5)
    assert seen, "no VehicleAlert in the audit queue 10 s after the critical reading was stored"
    assert seen[0]["detail-type"] == "VehicleAlert"
    assert seen[0]["detail"]["failure_mode"] == "brake_wear"


def _ops_alert_after_restart(system: System, alertmanager: str, alertname: str) -> None:
    """A critical alert put into Alertmanager reaches the API's store (GET /alerts) in 60 s."""
    now = datetime.now(UTC)
    alert = {"labels": {"alertname": alertname, "severity": "critical", "service": "test"},
             "annotations": {"summary": "test_restart: Alertmanager -> webhook after a restart"},
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
    posted = httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=30)
    assert posted.status_code == 200, posted.text
    viewer = {"x-api-key": system.keys["viewer"]}
    deadline = time.monotonic() + 60
    while True:
        page = httpx.get(f"{system.api_url}/alerts?active=true", headers=viewer, timeout=30)
        if alertname in [a["alertname"] for a in page.json()["active"]]:
            return
        assert time.monotonic() < deadline, f"{alertname} not stored 60 s after Alertmanager had it"
        time.sleep(2)


def _alarm_action_after_restart(system: System) -> None:
    """Changing an evpm alarm's state publishes to the ops topic, as its action says."""
    cloudwatch = system.client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix="evpm-")["MetricAlarms"]
    assert alarms, "no evpm alarm after the restart"
    alarm = alarms[0]
    queue = _topic_queue(system)
    state = "OK" if alarm["StateValue"] == "ALARM" else "ALARM"
    cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state,
                               StateReason="test_restart: the alarm's action after a restart")
    messages = _messages(system, queue, alarm["AlarmName"], want=1)
    assert messages, f"{alarm['AlarmName']} -> {state} published nothing to the ops topic"
    message = messages[0]
    assert message["Subject"].startswith(f'{state}: "{alarm["AlarmName"]}"')


def test_second_up_is_a_fast_no_op(system: System) -> None:
    started = time.perf_counter()
    done = evpm("up")
    seconds = time.perf_counter() - started
    assert "deploy_skipped" in done.stdout + done.stderr
    assert seconds < 60, f"second up took {seconds:.1f} s"


def test_state_survives_restart(system: System) -> None:
    marker = uuid.uuid4().hex[:8]
    bucket = system.info["buckets"]["RawBucketName"]
    s3, ddb, ssm, sqs = (system.client(s) for s in ("s3", "dynamodb", "ssm", "sqs"))
    s3.put_object(Bucket=bucket, Key=f"restart/{marker}.json", Body=b'{"kept": true}')
    ddb.put_item(TableName=system.table, Item={
        "vehicle_id": {"S": f"RESTART-{marker}"}, "ts": {"S": "2026-01-01T00:00:00.000000Z"},
        "status": {"S": "ok"}})
    ssm.put_parameter(Name=f"/evpm/test/restart-{marker}", Value=marker, Type="String")
    queue_url = sqs.create_queue(QueueName=f"evpm-restart-{marker}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"marker": marker}))

    # Stream work done before the restart: 2 poison records parked in the DLQ.
    prefix = f"RST{marker}"
    records = list(loadgen.generate(20, vehicles=2, malformed=2, prefix=prefix))
    stream.put_all(system.client("kinesis"), system.stream, records)
    parked: dict[str, dict] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(parked) < 2:
        drain_dlq(system, prefix, parked)
        time.sleep(0.5)
    assert len(parked) == 2

    # Monitoring before the restart: a silence in Alertmanager, samples in Prometheus.
    monitoring = system.info["monitoring"]
    alertmanager = monitoring["alertmanager"]["url"].rstrip("/")
    prometheus = monitoring["prometheus"]["url"].rstrip("/")
    silence_id = _silence(alertmanager, f"EvpmRestartTest{marker}")
    kept = 'count_over_time(up{job="prometheus"}[10m])'
    at = time.time() - 1
    samples_before = (single_value(prometheus, kept, at) or 0.0)
    assert samples_before >= 1, "Prometheus had scraped nothing before the restart"

    workers_before = _workers(system)
    assert workers_before, "no Lambda worker was running before the restart"
    evpm("down")
    assert not read_status()["emulator"]["running"]
    assert not _workers(system), "Lambda workers outlived the emulator"
    evpm("up")

    assert s3.get_object(Bucket=bucket, Key=f"restart/{marker}.json")["Body"].read() == \
        b'{"kept": true}'
    item = ddb.get_item(TableName=system.table, Key={
        "vehicle_id": {"S": f"RESTART-{marker}"}, "ts": {"S": "2026-01-01T00:00:00.000000Z"}})
    assert item["Item"]["status"]["S"] == "ok"
    assert ssm.get_parameter(Name=f"/evpm/test/restart-{marker}")["Parameter"]["Value"] == marker
    # Alertmanager kept the silence (active, same matcher); Prometheus its samples before.
    silence = httpx.get(f"{alertmanager}/api/v2/silence/{silence_id}", timeout=30).json()
    assert silence["status"]["state"] == "active", silence
    assert silence["matchers"][0]["value"] == f"EvpmRestartTest{marker}"
    assert (single_value(prometheus, kept, at) or 0.0) == samples_before
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"]
    assert json.loads(messages[0]["Body"]) == {"marker": marker}
    # The deployed system works after the restart, not only its data: the API function and
    # the scorer's event source mapping were restored and run.
    assert read_status()["api"]["url"] == system.api_url
    assert httpx.get(f"{system.api_url}/health", timeout=60).status_code == 200
    lam = system.client("lambda")
    for name in (system.info["stacks"]["ScorerFunctionName"],
                 system.info["stacks"]["ApiFunctionName"]):
        assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active"
    # An alert still reaches the audit queue through the restored EventBridge rule: a
    # critical reading of a new vehicle, its VehicleAlert within 10 s of being stored.
    _alert_after_restart(system, f"{prefix}A")
    # A lifecycle run goes the whole way through the restored state machine: its Lambda steps,
    # the training queue to the worker and the task token back, the registry and the pins.
    outcome = lifecycle("--model", "anomaly", "--trigger", "restart-test")
    assert outcome["status"] == "SUCCEEDED", outcome
    assert {"Train", "Validate", "Register", "Promote", "SmokeTest"} <= set(outcome["states"])
    # Ops alerts: Alertmanager (restarted) posts to the API's webhook, which stores the alert;
    # and a CloudWatch alarm's action still publishes to the people's topic.
    _ops_alert_after_restart(system, alertmanager, f"EvpmRestartProbe{marker}")
    _alarm_action_after_restart(system)
    # The event source mapping resumed after its checkpoint: nothing was delivered twice.
    sentinel = list(loadgen.generate(4, vehicles=1, malformed=1, prefix=f"{prefix}S"))
    stream.put_all(system.client("kinesis"), system.stream, sentinel)
    replayed: dict[str, dict] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(f"{prefix}S" in json.dumps(b)
                                                  for b in replayed.values()):
        drain_dlq(system, prefix, replayed)
        time.sleep(0.5)
    assert any(f"{prefix}S" in json.dumps(b) for b in replayed.values()), "stream not consumed"
    assert not [b for b in replayed.values() if f"{prefix}S" not in json.dumps(b)], \
        "records processed before the restart were delivered again"
