"""Streaming benchmark: the scorer's own capacity in process, and the stream end to end.

Two measurements, one JSON file (``bench/results/streaming.json``):

``inprocess``
    The scorer handler's ``handle(...)`` on 500-record Kinesis events built from the CLI's
    telemetry generator, timed three ways: (1) *core*: parse, validate, score, select alerts,
    with sinks that only keep what they get; (2) *scorer*: the same plus the real sink code
    (``DynamoPredictionSink``, ``SqsParkedSink``, ``DedupedEventBridgeAlertSink``) building every
    request, given in-memory AWS clients: the scorer's capacity without network; (3) *storage*:
    the same sinks against the running emulator, each sink's round trips timed separately (only
    when a system is running).

``stream``
    Against a running system (``evpm up``): a producer puts generated telemetry (with some
    malformed records and a share of degraded vehicles that raise alerts) on the stream at a
    target rate for ``--duration`` seconds, then waits until every record is accounted for.
    Each prediction item carries ``scored_at``, so the end-to-end rate and latency come from
    the stored items (no polling load while measuring). Zero loss is checked as: records in =
    predictions stored (distinct keys, every key one that was sent) + distinct DLQ entries, no
    duplicate DLQ entry, no batch-level failure record from the event source mapping.
    ``--kill-at S`` SIGKILLs the scorer's Lambda worker process(es) S seconds into the run
    (processes of *this* emulator only, found by their bootstrap command line and function
    name), then checks the same.

Usage::

    EVPM_STATE_DIR=.state/bench EVPM_EMULATOR_PORT=4621 .venv/bin/python bench/streaming.py
    .venv/bin/python bench/streaming.py --only inprocess
    .venv/bin/python bench/streaming.py --only stream --duration 60 --rate 2500 --kill-at 20
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCORER_DIR = ROOT / "functions" / "scorer"
RESULTS = ROOT / "bench" / "results" / "streaming.json"
BATCH = 500
DEGRADED_PAD_WEAR = 75.0  # BRK-PAD watch (> 70 %): failure mode brake_wear, so an alert
SEQ_BASE = 49590330439255740465847791082829142860800123456789


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- traffic ----------------------------------------------------------------------------------
def traffic(count: int, *, vehicles: int, malformed: int, degraded: float, prefix: str,
            seed: int = 7) -> list[tuple[str, bytes, bool]]:
    """The CLI generator's records; the first ``degraded`` share of vehicles has worn pads."""
    from evpm_cli import telemetry_gen

    bad_vehicles = {f"{prefix}-{v:05d}" for v in range(round(vehicles * degraded))}
    out: list[tuple[str, bytes, bool]] = []
    for key, data, valid in telemetry_gen.generate(count, vehicles=vehicles, malformed=malformed,
                                                   seed=seed, prefix=prefix):
        if valid and key in bad_vehicles:
            record = json.loads(data)
            record["Brake_Pad_Wear"] = DEGRADED_PAD_WEAR
            data = json.dumps(record).encode()
        out.append((key, data, valid))
    return out


def kinesis_event(records: list[tuple[str, bytes, bool]], first_seq: int) -> dict[str, Any]:
    """A Kinesis event as the event source mapping builds it."""
    events = []
    for i, (key, data, _valid) in enumerate(records):
        seq = f"{first_seq + i:056d}"
        events.append({
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": seq,
                        "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": time.time()},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{seq}", "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::000000000000:role/bench", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/bench",
        })
    return {"Records": events}


# -- in process -------------------------------------------------------------------------------
def load_scorer(env: dict[str, str]) -> Any:
    """Import ``functions/scorer/app.py`` (its settings are read at import, like a cold start)."""
    os.environ.update(env)
    if str(SCORER_DIR) not in sys.path:
        sys.path.insert(0, str(SCORER_DIR))
    spec = importlib.util.spec_from_file_location("evpm_bench_scorer_app", SCORER_DIR / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class KeepSink:
    """Prediction, parked and alert sink in one: keeps what it gets, fails nothing."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, accepted: Any) -> list[str]:
        self.count += len(accepted)
        return []

    def send(self, parked: Any) -> list[str]:
        self.count += len(parked)
        return []

    def publish(self, alerts: Any) -> Any:
        from alert_sink import AlertReport

        return AlertReport(sent=len(alerts))


class MemoryDynamo:
    """The DynamoDB calls the sinks make, answered from a dict (conditions: dedup claims only)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict]]) -> dict:
        with self.lock:
            for table, requests in RequestItems.items():
                for request in requests:
                    item = request["PutRequest"]["Item"]
                    self.items[(table, json.dumps(item.get("vehicle_id")) + item["ts"]["S"])] = item
        return {"UnprocessedItems": {}}

    def put_item(self, TableName: str, Item: dict, **kwargs: Any) -> dict:
        from botocore.exceptions import ClientError

        key = (TableName, Item["alert_key"]["S"])
        with self.lock:
            old = self.items.get(key)
            if (old is not None and old["state"]["S"] == "sent"
                    and int(old["expires_at"]["N"]) > time.time()):
                error: dict[str, Any] = {"Error": {"Code": "ConditionalCheckFailedException",
                                                   "Message": "The conditional request failed"}}
                if kwargs.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                    error["Item"] = old
                raise ClientError(error, "PutItem")
            self.items[key] = Item
        return {}

    def update_item(self, TableName: str, Key: dict, **kwargs: Any) -> dict:
        with self.lock:
            item = self.items.get((TableName, Key["alert_key"]["S"]))
            if item is not None:
                item["state"] = {"S": "sent"}
        return {}

    def delete_item(self, TableName: str, Key: dict, **kwargs: Any) -> dict:
        with self.lock:
            self.items.pop((TableName, Key["alert_key"]["S"]), None)
        return {}


class MemorySqs:
    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class MemoryEvents:
    def put_events(self, Entries: list[dict]) -> dict:
        return {"Entries": [{"EventId": uuid.uuid4().hex} for _ in Entries]}


class Timings(list):
    """Wall seconds per batch, plus the process CPU seconds they took in total."""

    cpu_seconds: float | None = None


def _time_batches(fn: Any, events: list[dict], repeat: int) -> Timings:
    seconds = Timings()
    cpu_started = time.process_time()
    for i in range(repeat):
        event = events[i % len(events)]
        started = time.perf_counter()
        fn(event)
        seconds.append(time.perf_counter() - started)
    seconds.cpu_seconds = time.process_time() - cpu_started
    return seconds


def _summary(seconds: list[float], records: int = BATCH) -> dict[str, float]:
    """Wall-clock figures, and records per CPU-second of this process: the capacity of one
    core, which other load on a shared machine does not shrink the way it shrinks wall time."""
    ordered = sorted(seconds)
    p50 = statistics.median(ordered)
    cpu = getattr(seconds, "cpu_seconds", None)
    return {
        "records_per_cpu_s": round(records * len(ordered) / cpu) if cpu else None,
        "batches": len(ordered),
        "batch_ms_p50": round(p50 * 1000, 2),
        "batch_ms_p90": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        "batch_ms_max": round(ordered[-1] * 1000, 2),
        "records_per_s_p50": round(records / p50),
        "records_per_s_overall": round(records * len(ordered) / sum(ordered)),
    }


def run_inprocess(args: argparse.Namespace, system: dict | None) -> dict[str, Any]:
    env = {
        "PREDICTIONS_TABLE": "evpm-predictions", "DLQ_URL": "http://127.0.0.1:1/queue/dlq",
        "ALERT_BUS_NAME": "evpm-alerts", "ALERT_DEDUP_TABLE": "evpm-alert-dedup",
        "ALERT_WINDOW_SECONDS": "3600", "POWERTOOLS_SERVICE_NAME": "evpm-scorer",
        "POWERTOOLS_METRICS_NAMESPACE": "evpm", "LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "PINS_PARAMETER": "/evpm/serving/pins", "MLFLOW_URI_PARAMETER": "/evpm/mlflow/tracking-uri",
    }
    if system:
        env["DLQ_URL"] = system["dlq_url"]
    app = load_scorer(env)
    import alert_sink
    import sinks

    prefix = f"BIP{uuid.uuid4().hex[:6]}"
    n_events = max(1, args.events)
    records = traffic(BATCH * n_events, vehicles=args.vehicles, prefix=prefix,
                      malformed=BATCH * n_events * args.malformed_per_10k // 10_000,
                      degraded=args.degraded)
    events = [kinesis_event(records[i * BATCH:(i + 1) * BATCH], SEQ_BASE + i * BATCH)
              for i in range(n_events)]
    keep = KeepSink()
    log(f"in process: {n_events} events x {BATCH} records, {args.repeat} timed batches each")

    def core(event: dict) -> None:
        app.handle(event, predictions=keep, parked=keep, alerts=keep)
        app.metrics.clear_metrics()  # the Lambda decorator flushes them once per invocation

    dynamo = MemoryDynamo()
    window = 3600
    mem_sinks = (
        sinks.DynamoPredictionSink("evpm-predictions", ttl_days=30, client=dynamo),
        sinks.SqsParkedSink(env["DLQ_URL"], client=MemorySqs()),
        alert_sink.DedupedEventBridgeAlertSink(bus_name="evpm-alerts",
                                               dedup_table="evpm-alert-dedup",
                                               window_seconds=window, dynamodb=dynamo,
                                               events=MemoryEvents()),
    )

    def scorer(event: dict) -> None:
        p, q, a = mem_sinks
        response = app.handle(event, predictions=p, parked=q, alerts=a)
        app.metrics.clear_metrics()
        assert not response["batchItemFailures"], response

    for fn in (core, scorer):  # warm: first calls build caches and import lazily
        _time_batches(fn, events, 3)
    result: dict[str, Any] = {
        "event_records": BATCH,
        "malformed_per_10k": args.malformed_per_10k,
        "degraded_vehicle_share": args.degraded,
        "core_in_memory_sinks": _summary(_time_batches(core, events, args.repeat)),
        "scorer_with_sink_code_memory_clients": _summary(
            _time_batches(scorer, events, args.repeat)),
    }
    core, full = result["core_in_memory_sinks"], result["scorer_with_sink_code_memory_clients"]
    log(f"  core {core['records_per_s_p50']:,} rec/s ({core['records_per_cpu_s']:,} per CPU-s), "
        f"scorer with sink code {full['records_per_s_p50']:,} rec/s "
        f"({full['records_per_cpu_s']:,} per CPU-s)")
    result["load_average"] = os.getloadavg()
    if system:
        result["storage_round_trips_emulator"] = _storage(app, sinks, alert_sink, events, system,
                                                          args)
    return result


def _storage(app: Any, sinks: Any, alert_sink: Any, events: list[dict], system: dict,
             args: argparse.Namespace) -> dict[str, Any]:
    """Each sink against the running emulator, timed on its own (prediction writes, DLQ, alerts)."""
    from evpm.alerts import select_alerts
    from evpm.ingest import process_batch

    ddb = system["client"]("dynamodb")
    real = (
        sinks.DynamoPredictionSink(system["table"], ttl_days=30, client=ddb),
        sinks.SqsParkedSink(system["dlq_url"], client=system["client"]("sqs")),
        alert_sink.DedupedEventBridgeAlertSink(bus_name=system["bus"],
                                               dedup_table=system["dedup_table"],
                                               window_seconds=3600, dynamodb=ddb,
                                               events=system["client"]("events")),
    )
    timings: dict[str, list[float]] = {"predictions_write": [], "dlq_send": [],
                                       "alerts_publish": [], "handle_total": []}
    repeat = min(args.repeat, len(events) * 2, 20)
    for i in range(repeat):
        event = events[i % len(events)]
        raw = [app._raw(r) for r in app.KinesisStreamEvent(event).records]
        outcome = process_batch(raw)
        started = time.perf_counter()
        real[0].write(outcome.accepted)
        timings["predictions_write"].append(time.perf_counter() - started)
        started = time.perf_counter()
        if outcome.parked:
            real[1].send(outcome.parked)
        timings["dlq_send"].append(time.perf_counter() - started)
        started = time.perf_counter()
        pending = select_alerts(outcome.accepted)
        if pending:
            real[2].publish(pending)
        timings["alerts_publish"].append(time.perf_counter() - started)
        started = time.perf_counter()
        app.handle(event, predictions=real[0], parked=real[1], alerts=real[2])
        app.metrics.clear_metrics()
        timings["handle_total"].append(time.perf_counter() - started)
    out = {name: _summary(values) for name, values in timings.items()}
    log("  through the emulator: " + ", ".join(
        f"{k} {v['batch_ms_p50']} ms" for k, v in out.items()) + " per 500-record batch (p50)")
    return out


# -- the running system -----------------------------------------------------------------------
def connect() -> dict[str, Any] | None:
    """Endpoints of the running system (``evpm status --json``), or None if nothing runs."""
    evpm = ROOT / ".venv" / "bin" / "evpm"
    done = subprocess.run([str(evpm), "status", "--json"], capture_output=True, text=True,
                          check=False)
    try:
        status = json.loads(done.stdout)
    except json.JSONDecodeError:
        return None
    if not status.get("emulator", {}).get("running"):
        return None
    import boto3
    from botocore.config import Config

    endpoint = status["emulator"]["url"]
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=60,
                    max_pool_connections=16)

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint, region_name=status["region"],
                            aws_access_key_id="test", aws_secret_access_key="test", config=config)

    stacks = status["stacks"]
    return {
        "endpoint": endpoint, "emulator_pid": status["emulator"]["pid"], "client": client,
        "stream": stacks["StreamName"], "table": stacks["PredictionsTable"],
        "dlq_url": stacks["DlqUrl"], "bus": stacks["AlertBusName"],
        "dedup_table": stacks["AlertDedupTable"], "function": stacks["ScorerFunctionName"],
        "state_dir": status["emulator"].get("state_dir"),
    }


def scorer_workers(system: dict) -> list[int]:
    """PIDs of *this* emulator's Lambda worker processes that run the scorer function."""
    from evpm_cli.workers import lambda_workers

    return lambda_workers(system["emulator_pid"], system["function"])


def drain_dlq(system: dict, prefix: str, seen: dict[str, list[dict]], batch_failures: list,
              sqs: Any) -> None:
    """Move this run's DLQ messages into ``seen`` keyed by Kinesis sequence number."""
    while True:
        batch = sqs.receive_message(QueueUrl=system["dlq_url"], MaxNumberOfMessages=10,
                                    WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return
        for message in batch:
            body = message["Body"]
            if prefix in body:
                parsed = json.loads(body)
                seen.setdefault(parsed["kinesis"]["sequence_number"], []).append(parsed)
            elif "KinesisBatchInfo" in body:  # the mapping gave up on a batch: records lost
                batch_failures.append(json.loads(body))
        sqs.delete_message_batch(QueueUrl=system["dlq_url"], Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def stored_items(system: dict, prefix: str, vehicles: int, ddb: Any) -> list[dict]:
    items: list[dict] = []
    for v in range(vehicles):
        kwargs: dict[str, Any] = {
            "TableName": system["table"], "KeyConditionExpression": "vehicle_id = :v",
            "ExpressionAttributeValues": {":v": {"S": f"{prefix}-{v:05d}"}},
            "ProjectionExpression": "vehicle_id, ts, scored_at",
        }
        while True:
            page = ddb.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def count_vehicle(system: dict, vehicle: str, ddb: Any) -> int:
    total, kwargs = 0, {
        "TableName": system["table"], "Select": "COUNT",
        "KeyConditionExpression": "vehicle_id = :v",
        "ExpressionAttributeValues": {":v": {"S": vehicle}},
    }
    while True:
        page = ddb.query(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _epoch(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def run_stream(args: argparse.Namespace, system: dict, kill_at: float | None) -> dict[str, Any]:
    prefix = f"BS{uuid.uuid4().hex[:6]}"
    total = int(args.rate * args.duration)
    malformed = total * args.malformed_per_10k // 10_000
    label = f"stream{' + worker kill' if kill_at is not None else ''}"
    log(f"{label}: generating {total:,} records ({malformed} malformed, "
        f"{args.degraded:.0%} of {args.vehicles} vehicles degraded), prefix {prefix}")
    records = traffic(total, vehicles=args.vehicles, malformed=malformed,
                      degraded=args.degraded, prefix=prefix, seed=random.randrange(1 << 30))
    expected_keys = set()
    for key, data, valid in records:
        if valid:
            expected_keys.add((key, json.loads(data)["timestamp"]))
    valid_count = len(expected_keys)
    probe_vehicle = f"{prefix}-{args.vehicles - 1:05d}"
    probe_expected = sum(1 for key, _ts in expected_keys if key == probe_vehicle) or 1
    kinesis, ddb, sqs = system["client"]("kinesis"), system["client"]("dynamodb"), \
        system["client"]("sqs")

    # Progress: one vehicle's predictions, scaled (records go round robin over vehicles).
    put_times: list[tuple[int, float]] = []  # (records sent so far, wall time after the call)
    sent = 0
    killed: list[dict] = []
    started_wall = time.time()
    started = time.perf_counter()
    next_report = 5.0
    retried = 0
    for i in range(0, total, BATCH):
        due = i / args.rate
        now = time.perf_counter() - started
        if due > now:
            time.sleep(due - now)
        entries = [{"PartitionKey": k, "Data": d} for k, d, _ in records[i:i + BATCH]]
        for attempt in range(8):
            response = kinesis.put_records(StreamName=system["stream"], Records=entries)
            failed = [e for e, r in zip(entries, response["Records"], strict=True)
                      if "ErrorCode" in r]
            sent += len(entries) - len(failed)
            if not failed:
                break
            retried += len(failed)
            entries = failed
            time.sleep(0.05 * 2 ** attempt)
        else:
            raise RuntimeError(f"put_records kept failing for {len(entries)} records")
        put_times.append((sent, time.time()))
        elapsed = time.perf_counter() - started
        if kill_at is not None and not killed and elapsed >= kill_at:
            for pid in scorer_workers(system):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append({"pid": pid, "at_s": round(elapsed, 2)})
                except ProcessLookupError:
                    pass
            log(f"  SIGKILL scorer worker(s) {[k['pid'] for k in killed]} at {elapsed:.1f} s"
                if killed else f"  no scorer worker found to kill at {elapsed:.1f} s")
            if not killed:
                killed.append({"pid": None, "at_s": round(elapsed, 2)})
        if elapsed >= next_report:
            stored = count_vehicle(system, probe_vehicle, ddb) * valid_count // probe_expected
            log(f"  {elapsed:5.1f} s  put {sent:>7,} ({sent / elapsed:,.0f}/s)  "
                f"stored ≈{stored:>7,}")
            next_report += 5.0
    put_seconds = time.perf_counter() - started
    load_after_put = os.getloadavg()
    log(f"  put {sent:,} records in {put_seconds:.1f} s ({sent / put_seconds:,.0f}/s); "
        "waiting for every record to be stored or parked")

    parked: dict[str, list[dict]] = {}
    batch_failures: list[dict] = []
    deadline = time.perf_counter() + args.drain_timeout
    stored_count = 0
    while time.perf_counter() < deadline:
        drain_dlq(system, prefix, parked, batch_failures, sqs)
        probe = count_vehicle(system, probe_vehicle, ddb)
        estimate = probe * valid_count // probe_expected
        if probe >= probe_expected or time.perf_counter() > deadline - 1:
            stored_count = sum(count_vehicle(system, f"{prefix}-{v:05d}", ddb)
                               for v in range(args.vehicles))
            if stored_count >= valid_count and len(parked) >= malformed:
                break
            log(f"  stored {stored_count:,}/{valid_count:,}, parked {len(parked)}/{malformed}")
        else:
            log(f"  stored ≈{estimate:,}/{valid_count:,}, parked {len(parked)}/{malformed}")
        time.sleep(2)
    drain_dlq(system, prefix, parked, batch_failures, sqs)
    items = stored_items(system, prefix, args.vehicles, ddb)
    keys = [(i["vehicle_id"]["S"], i["ts"]["S"]) for i in items]
    distinct = set(keys)
    unexpected = distinct - expected_keys
    dup_parked = sum(len(v) - 1 for v in parked.values())

    scored = sorted(_epoch(i["scored_at"]["S"]) for i in items if "scored_at" in i)
    first_put = started_wall
    last_put = put_times[-1][1] if put_times else started_wall
    result: dict[str, Any] = {
        "target_rate": args.rate, "duration_s": args.duration, "records_in": sent,
        "valid": valid_count, "malformed": malformed, "put_retried": retried,
        "put_seconds": round(put_seconds, 2), "put_rate": round(sent / put_seconds),
        "predictions_stored": len(items), "distinct_prediction_keys": len(distinct),
        "unexpected_prediction_keys": len(unexpected),
        "dlq_entries_distinct": len(parked), "dlq_duplicate_entries": dup_parked,
        "esm_batch_failure_records": len(batch_failures),
        "killed_workers": killed,
        "load_average_after_put": load_after_put,
    }
    result["zero_loss"] = (len(distinct) + len(parked) == sent and not unexpected
                           and len(distinct) == valid_count and not batch_failures)
    result["no_duplicate_prediction"] = len(items) == len(distinct)
    if scored:
        last = scored[-1]
        span = last - first_put
        result["end_to_end_seconds"] = round(span, 2)
        result["end_to_end_rate"] = round(len(items) / span) if span > 0 else None
        result["lag_after_last_put_s"] = round(last - last_put, 2)
        # Sustained: stored per second over the run, after a 5 s ramp, until the last put.
        per_second = Counter(int(t - first_put) for t in scored)
        window = [per_second.get(s, 0) for s in range(5, max(6, int(last_put - first_put)))]
        result["stored_per_second_during_put"] = {
            "mean": round(statistics.mean(window)) if window else None,
            "min": min(window) if window else None,
            "p10": sorted(window)[len(window) // 10] if window else None,
        }
        # Latency: put-call completion of the batch a record was in → its scored_at.
        put_done = {}
        index = 0
        for count, wall in put_times:
            while index < count:
                put_done[index] = wall
                index += 1
        by_key = {(i["vehicle_id"]["S"], i["ts"]["S"]): _epoch(i["scored_at"]["S"])
                  for i in items if "scored_at" in i}
        latencies = []
        for n, (key, data, valid) in enumerate(records[:sent]):
            if valid:
                ts = json.loads(data)["timestamp"]
                if (key, ts) in by_key and n in put_done:
                    latencies.append(by_key[(key, ts)] - put_done[n])
        if latencies:
            latencies.sort()
            result["latency_s"] = {
                "p50": round(latencies[len(latencies) // 2], 3),
                "p99": round(latencies[int(len(latencies) * 0.99)], 3),
                "max": round(latencies[-1], 3),
            }
    log(f"  {label}: stored {len(items):,} (distinct {len(distinct):,}) + parked "
        f"{len(parked)} of {sent:,} in; zero loss {result['zero_loss']}, no duplicate "
        f"{result['no_duplicate_prediction']}; end to end {result.get('end_to_end_rate')} rec/s")
    return result


# -- output -----------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    rows = [("measurement", "value")]
    ip = results.get("inprocess")
    if ip:
        for name in ("core_in_memory_sinks", "scorer_with_sink_code_memory_clients"):
            s = ip[name]
            rows.append((f"in process {name} (500-record event)",
                         f"{s['records_per_s_p50']:,} rec/s wall (p50 {s['batch_ms_p50']} ms/"
                         f"batch), {s['records_per_cpu_s']:,} rec per CPU-s"))
        for name, s in (ip.get("storage_round_trips_emulator") or {}).items():
            rows.append((f"emulator round trips: {name}",
                         f"p50 {s['batch_ms_p50']} ms / 500 records"))
    for name in ("stream", "stream_kill"):
        s = results.get(name)
        if not s:
            continue
        rows.append((f"{name}: target / put rate", f"{s['target_rate']:,} / {s['put_rate']:,} rec/s"
                     f" for {s['put_seconds']} s"))
        rows.append((f"{name}: end to end", f"{s.get('end_to_end_rate')} rec/s, lag after last "
                     f"put {s.get('lag_after_last_put_s')} s"))
        sps = s.get("stored_per_second_during_put") or {}
        rows.append((f"{name}: stored/s during put", f"mean {sps.get('mean')}, p10 "
                     f"{sps.get('p10')}, min {sps.get('min')}"))
        lat = s.get("latency_s") or {}
        rows.append((f"{name}: latency put→stored", f"p50 {lat.get('p50')} s, p99 {lat.get('p99')}"
                     f" s"))
        rows.append((f"{name}: in = stored + DLQ", f"{s['records_in']:,} = "
                     f"{s['distinct_prediction_keys']:,} + {s['dlq_entries_distinct']}  "
                     f"zero loss {s['zero_loss']}, no duplicate {s['no_duplicate_prediction']}"))
        if name == "stream_kill":
            rows.append((f"{name}: killed", json.dumps(s["killed_workers"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Reads the system from `evpm status --json` "
                                     "(EVPM_STATE_DIR / EVPM_EMULATOR_PORT select which).")
    parser.add_argument("--only", choices=("inprocess", "stream"), help="run one part only")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of producing")
    parser.add_argument("--rate", type=float, default=2500.0, help="target records/s put")
    parser.add_argument("--kill-at", type=float, default=20.0,
                        help="seconds into the kill run to SIGKILL the scorer worker")
    parser.add_argument("--no-kill", action="store_true", help="skip the worker-kill run")
    parser.add_argument("--kill-only", action="store_true", help="only the worker-kill run")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--malformed-per-10k", type=int, default=10)
    parser.add_argument("--degraded", type=float, default=0.05,
                        help="share of vehicles with worn brake pads (they raise alerts)")
    parser.add_argument("--events", type=int, default=8, help="distinct in-process events")
    parser.add_argument("--repeat", type=int, default=40, help="timed in-process batches")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    system = connect()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "system": {k: system[k] for k in ("endpoint", "stream", "table")} if system else None,
    }
    if system:
        shards = system["client"]("kinesis").describe_stream_summary(
            StreamName=system["stream"])["StreamDescriptionSummary"]["OpenShardCount"]
        mappings = system["client"]("lambda").list_event_source_mappings(
            FunctionName=system["function"])["EventSourceMappings"]
        results["system"]["shards"] = shards
        results["system"]["mapping"] = {k: m.get(k) for m in mappings[:1] for k in (
            "BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor",
            "MaximumRetryAttempts")}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part, so an interrupted run keeps what it measured
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    if args.only in (None, "inprocess") and not args.kill_only:
        results["inprocess"] = run_inprocess(args, system)
        save()
    if args.only in (None, "stream"):
        if not system:
            log("no running system (evpm up): stream part skipped")
        else:
            if not args.kill_only:
                results["stream"] = run_stream(args, system, None)
                save()
            if not args.no_kill:
                results["stream_kill"] = run_stream(args, system, args.kill_at)
    save()
    print(table(results))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
