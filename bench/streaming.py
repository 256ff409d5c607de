"""Streaming benchmark: the scorer's own capacity in process, and the stream end to end.

Two measurements, one JSON file (``bench/results/streaming.json``):

``inprocess``
    The scorer handler's ``handle(...)`` on 500-record Kinesis events from the CLI's telemetry
    generator, with its real sink code (``DynamoPredictionSink``, ``SqsParkedSink``,
    ``DedupedEventBridgeAlertSink``) building every request for in-memory AWS clients: the
    scorer's capacity without network.

    * ``scorer_models`` (per fleet size, ``--inprocess-vehicles``): what the deployed scorer
      runs: the three **pinned models** (the bundles ``bench/cold_start.py`` trains and
      caches, served as ``ServedModels``) and a **warm per-vehicle history**: every vehicle's
      earlier readings go through the same ``handle`` first, untimed, so each timed event
      scores readings whose vehicles hold their full window, as in a long-running stream.
      Every timed event is new (a reading is scored once, in time order). 200 vehicles is the
      stream runs' traffic (2.5 readings of each vehicle per event: the history's general
      path); 500, one reading per vehicle per event (its gathered-by-lag path). The target,
      20,000 records/s, is on ``records_per_s_overall`` (records over the summed batch times,
      not the median batch). ``stages``: the same path on further new events, each stage's
      wall and CPU time per batch from thin timers around the functions the scorer calls
      (decode, validate, features, each model, rules, building predictions, selecting
      alerts, each sink).
    * ``rules_only``: the first fleet's events without models or history: the rules alone,
      labelled so (the figure the README once gave as the scorer's).
    * ``storage_round_trips_emulator`` (only with a running system and not
      ``--in-process-only``): each sink against the emulator, timed on its own.

``stream`` / ``stream_kill``
    Against a running system (``evpm up``): a producer puts generated telemetry (some
    malformed records, a share of degraded vehicles that raise alerts) at a target rate for
    ``--duration`` seconds, keeping each record's shard, sequence number and put time, then
    waits until every record is stored or parked. The scorer's own counters then say what
    happened (:mod:`evpm_cli.stream_audit`): per invocation its EMF metrics in CloudWatch Logs
    name the batch (shard, first/last sequence number) and ``stored_at``, the time its
    prediction writes were acknowledged. From them: **duplicates** (Σ PredictionsWritten -
    distinct items: a prediction written twice, which the table, keyed by vehicle + time,
    hides by overwriting), **redeliveries** (Σ RecordsReceived - records put), **put →
    acknowledged write** latency per record, and the DLQ per sequence number (each malformed
    record once; ``dlq_duplicates`` for a second message). **lost** = valid records without
    their item + malformed records without a DLQ message. ``--kill-at S`` SIGKILLs the
    scorer's Lambda worker process(es) S seconds into the kill run (processes of *this*
    emulator only); an invocation killed that way never flushes its metrics, so its partial
    writes are not counted (its batch, sent again, is counted once).

The benchmark fails loudly (exit 1, each reason under ``problems`` and on stderr, and no
``zero_loss: true``) when the kill run killed no worker, when a measurement is missing (the
audit is incomplete, the models did not score, the history was not warm), or when records
were lost or duplicated.

Usage::

    EVPM_STATE_DIR=.state/bench EVPM_EMULATOR_PORT=4621 .venv/bin/python bench/streaming.py
    .venv/bin/python bench/streaming.py --in-process-only
    .venv/bin/python bench/streaming.py --only stream --duration 60 --rate 2500 --kill-at 20
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import importlib.util
import io
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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
SCORER_DIR = ROOT / "functions" / "scorer"
RESULTS = ROOT / "bench" / "results" / "streaming.json"
BATCH = 500
DEGRADED_PAD_WEAR = 75.0  # BRK-PAD watch (> 70 %): failure mode brake_wear, so an alert
SEQ_BASE = 49590330439255740465847791082829142860800123456789
TARGET_MODELS_RECORDS_PER_S = 20_000
METRICS_OVERHEAD_MAX = 0.05  # issue 14: metrics add at most 5 % to an event's CPU time
BUNDLE_FLEET = (80, 1200)  # vehicles x hours the cached bundles are trained on (cold_start's)
KILL_WINDOW_S = 10.0  # after --kill-at, keep looking for a worker to kill this long
AUDIT_TIMEOUT_S = 90.0  # for the scorer's metrics to reach CloudWatch Logs after the drain


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- traffic ----------------------------------------------------------------------------------
def traffic(
    count: int,
    *,
    vehicles: int,
    malformed: int,
    degraded: float,
    prefix: str,
    seed: int = 7,
    start: datetime | None = None,
) -> list[tuple[str, bytes, bool]]:
    """The CLI generator's records (one a second from ``start``, round robin over the
    vehicles); the first ``degraded`` share of vehicles has worn pads."""
    from evpm_cli import loadgen

    bad_vehicles = {f"{prefix}-{v:05d}" for v in range(round(vehicles * degraded))}
    out: list[tuple[str, bytes, bool]] = []
    for key, data, valid in loadgen.generate(
        count, vehicles=vehicles, malformed=malformed, seed=seed, prefix=prefix, start=start
    ):
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
        events.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": time.time(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/bench",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/bench",
            }
        )
    return {"Records": events}


def events_of(
    records: list[tuple[str, bytes, bool]], start: int, stop: int, *, offset: int = 0
) -> Iterator[dict[str, Any]]:
    """``records[start:stop]`` as 500-record events; sequence numbers by position, after
    ``offset`` (the records that came before on the same shard)."""
    for i in range(start, stop, BATCH):
        yield kinesis_event(records[i : min(i + BATCH, stop)], SEQ_BASE + offset + i)


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


def load_models(folder: Path, *, retrain: bool) -> Any:
    """The three pinned models as the scorer serves them (``ServedModels``), from the bundles
    ``bench/cold_start.py`` trains on the simulated fleet and caches (trained here if absent)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from cold_start import ensure_bundles

    from evpm.models import ModelBundle
    from evpm.serving import ServedModels

    folders = ensure_bundles(folder, *BUNDLE_FLEET, retrain)
    bundles = {name: ModelBundle.load(path) for name, path in folders.items()}
    return ServedModels(versions=dict.fromkeys(bundles, 1), bundles=bundles)


class MemoryDynamo:
    """The DynamoDB calls the sinks make, answered in memory. Predictions are counted (the
    last one kept, to check what was scored); alert claims are kept (their conditions hold)."""

    def __init__(self, predictions_table: str) -> None:
        self.predictions_table = predictions_table
        self.written = 0
        self.last_prediction: dict | None = None
        self.claims: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict]]) -> dict:
        with self.lock:
            for table, requests in RequestItems.items():
                assert table == self.predictions_table, table
                self.written += len(requests)
                self.last_prediction = requests[-1]["PutRequest"]["Item"]
        return {"UnprocessedItems": {}}

    def put_item(self, TableName: str, Item: dict, **kwargs: Any) -> dict:
        from botocore.exceptions import ClientError

        key = (TableName, Item["alert_key"]["S"])
        with self.lock:
            old = self.claims.get(key)
            if (
                old is not None
                and old["state"]["S"] == "sent"
                and int(old["expires_at"]["N"]) > time.time()
            ):
                error: dict[str, Any] = {
                    "Error": {
                        "Code": "ConditionalCheckFailedException",
                        "Message": "The conditional request failed",
                    }
                }
                if kwargs.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                    error["Item"] = old
                raise ClientError(error, "PutItem")
            self.claims[key] = Item
        return {}

    def update_item(self, TableName: str, Key: dict, **kwargs: Any) -> dict:
        with self.lock:
            item = self.claims.get((TableName, Key["alert_key"]["S"]))
            if item is not None:
                item["state"] = {"S": "sent"}
        return {}

    def delete_item(self, TableName: str, Key: dict, **kwargs: Any) -> dict:
        with self.lock:
            self.claims.pop((TableName, Key["alert_key"]["S"]), None)
        return {}


class MemorySqs:
    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class MemoryEvents:
    def put_events(self, Entries: list[dict]) -> dict:
        return {"Entries": [{"EventId": uuid.uuid4().hex} for _ in Entries]}


def memory_sinks(dlq_url: str) -> tuple[Any, Any, Any, MemoryDynamo]:
    """The scorer's three sinks (its own code) on in-memory clients, and the DynamoDB one."""
    import alert_sink
    import sinks

    dynamo = MemoryDynamo("evpm-predictions")
    return (
        sinks.DynamoPredictionSink("evpm-predictions", ttl_days=30, client=dynamo),
        sinks.SqsParkedSink(dlq_url, client=MemorySqs()),
        alert_sink.DedupedEventBridgeAlertSink(
            bus_name="evpm-alerts",
            dedup_table="evpm-alert-dedup",
            window_seconds=3600,
            dynamodb=dynamo,
            events=MemoryEvents(),
        ),
        dynamo,
    )


class Timings(list):
    """Wall seconds per batch, plus the process CPU seconds they took in total."""

    cpu_seconds: float | None = None


def _time_batches(fn: Callable[[dict], None], events: list[dict]) -> Timings:
    """Each event once, in order (a reading is scored once, as in the stream)."""
    seconds = Timings()
    cpu_started = time.process_time()
    for event in events:
        started = time.perf_counter()
        fn(event)
        seconds.append(time.perf_counter() - started)
    seconds.cpu_seconds = time.process_time() - cpu_started
    return seconds


def _summary(seconds: list[float], records: int = BATCH) -> dict[str, float | None]:
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


class StageClock:
    """Wall and CPU time per stage of each handled event, from timers wrapped around the
    functions the scorer calls. A few timed calls per 500-record batch: microseconds, not a
    share. CPU time is the process's (the predictions sink writes from a thread pool), so on a
    shared machine it says what a stage costs when wall time says what it waited too."""

    def __init__(self) -> None:
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.batches: list[dict[str, tuple[float, float]]] = []

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[stage] += time.perf_counter() - wall
                self.cpu[stage] += time.process_time() - cpu

        return timed

    @contextlib.contextmanager
    def installed(self, app: Any, models: Any, sinks: tuple[Any, Any, Any]) -> Iterator[None]:
        """Timers on the scorer's call path; a renamed function fails here, loudly."""
        import evpm.health
        import evpm.ingest
        import evpm.scoring
        import evpm.serving

        targets = [
            (app, "process_batch", "process_batch"),
            (app, "select_alerts", "alerts: select"),
            (evpm.ingest, "score_readings", "score_readings"),
            (evpm.health, "judge", "rules"),
            (evpm.scoring, "score_models", "score_models"),
            (evpm.serving, "model_inputs", "features"),
            (sinks[0], "write", "sink: predictions"),
            (sinks[1], "send", "sink: dlq"),
            (sinks[2], "publish", "sink: alerts"),
        ]
        targets += [(b, "predict_matrix", f"model {n}") for n, b in models.bundles.items()]
        with contextlib.ExitStack() as stack:
            for owner, name, stage in targets:
                original = getattr(owner, name)  # AttributeError: the call path changed
                stack.enter_context(mock.patch.object(owner, name, self.wrap(stage, original)))
            yield

    @staticmethod
    def _stages(t: dict[str, float], total: float) -> dict[str, float]:
        """The measured stages and the ones derived from them (what is left between)."""
        models = sum(v for k, v in t.items() if k.startswith("model "))
        sinks = sum(v for k, v in t.items() if k.startswith("sink: "))
        return {
            "decode (event, base64) and metrics": total
            - t.get("process_batch", 0)
            - t.get("alerts: select", 0)
            - sinks,
            "validate (JSON to readings)": t.get("process_batch", 0) - t.get("score_readings", 0),
            "features": t.get("features", 0),
            **{k: v for k, v in t.items() if k.startswith("model ")},
            "models: outputs": t.get("score_models", 0) - t.get("features", 0) - models,
            "rules": t.get("rules", 0),
            "predictions (objects)": t.get("score_readings", 0)
            - t.get("rules", 0)
            - t.get("score_models", 0),
            "alerts: select": t.get("alerts: select", 0),
            **{k: v for k, v in t.items() if k.startswith("sink: ")},
            "total": total,
        }

    def run(self, fn: Callable[[dict], None], event: dict) -> None:
        """Handle one event and close its batch."""
        wall, cpu = time.perf_counter(), time.process_time()
        fn(event)
        walls = self._stages(self.wall, time.perf_counter() - wall)
        cpus = self._stages(self.cpu, time.process_time() - cpu)
        self.batches.append({k: (walls[k], cpus[k]) for k in walls})
        self.wall.clear()
        self.cpu.clear()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage, ms per batch (wall p50 and mean, CPU mean) and shares of the totals."""
        wall_total = statistics.mean(b["total"][0] for b in self.batches)
        cpu_total = statistics.mean(b["total"][1] for b in self.batches)
        stages = list(dict.fromkeys(k for b in self.batches for k in b))  # a sink may not run
        stages.append(stages.pop(stages.index("total")))
        out = {}
        for stage in stages:
            wall = [b.get(stage, (0.0, 0.0))[0] for b in self.batches]
            cpu = statistics.mean(b.get(stage, (0.0, 0.0))[1] for b in self.batches)
            out[stage] = {
                "ms_p50": round(statistics.median(wall) * 1000, 3),
                "ms_mean": round(statistics.mean(wall) * 1000, 3),
                "cpu_ms_mean": round(cpu * 1000, 3),
                "share": round(statistics.mean(wall) / wall_total, 3),
                "cpu_share": round(cpu / cpu_total, 3) if cpu_total else None,
            }
        return out


def _check_scored_by_models(dynamo: MemoryDynamo, models: Any) -> list[str]:
    """Why the last prediction written does not carry every pinned model's output (or [])."""
    item = dynamo.last_prediction
    if item is None:
        return ["no prediction was written"]
    versions = set(item.get("model_versions", {}).get("M", {}))
    missing = sorted(set(models.bundles) - versions)
    fields = [f for f in ("anomaly_score", "failure_probabilities", "rul_hours") if f not in item]
    if missing or fields:
        return [f"predictions lack models {missing} / fields {fields}"]
    return []


def _models_path(
    app: Any, models: Any, vehicles: int, args: argparse.Namespace, dlq_url: str
) -> tuple[dict[str, Any], list[str], list[dict]]:
    """The scorer with the pinned models and a warm history, on a fleet of ``vehicles``:
    its figures, why they do not stand (if so), and the timed events (for the rules alone)."""
    from evpm.serving import History

    depth = models.depth
    prefix = f"BIP{uuid.uuid4().hex[:6]}"
    # The stream's past: every vehicle's depth - 1 readings before the timed ones (round robin,
    # none malformed, so each vehicle holds its full window when the timing starts).
    warm = vehicles * (depth - 1)
    timed, staged = BATCH * args.repeat, BATCH * args.stage_batches
    costed = BATCH * 2 * args.metrics_batches
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    past = traffic(warm, vehicles=vehicles, prefix=prefix, malformed=0,
                   degraded=args.degraded, start=t0)  # fmt: skip
    now = traffic(timed + staged + costed, vehicles=vehicles, prefix=prefix, seed=8,
                  malformed=(timed + staged + costed) * args.malformed_per_10k // 10_000,
                  degraded=args.degraded, start=t0 + timedelta(seconds=warm))  # fmt: skip
    history = History(depth, max_vehicles=max(vehicles, 20_000))
    p, q, a, dynamo = memory_sinks(dlq_url)

    def scorer_models(event: dict, *, flush: bool = False) -> None:
        response = app.handle(event, predictions=p, parked=q, alerts=a, models=models,
                              history=history)  # fmt: skip
        if flush:  # what the Lambda decorator does once per invocation
            app.metrics.flush_metrics()
        else:
            app.metrics.clear_metrics()
        assert not response["batchItemFailures"], response

    log(f"  {vehicles} vehicles: warming their history with {warm:,} readings (untimed)")
    started = time.perf_counter()
    for event in events_of(past, 0, warm):
        scorer_models(event)
    del past
    problems: list[str] = []
    held = [history.held(f"{prefix}-{v:05d}") for v in range(vehicles)]
    short = sum(1 for h in held if h is None or len(h[0]) < depth - 1)
    if short:
        problems.append(f"{short} of {vehicles} vehicles lack a full history")
    log(f"    warmed {len(history)} vehicles in {time.perf_counter() - started:.1f} s")
    timed_events = list(events_of(now, 0, timed, offset=warm))
    staged_events = list(events_of(now, timed, timed + staged, offset=warm))
    costed_events = list(events_of(now, timed + staged, timed + staged + costed, offset=warm))
    del now
    # The scorer freezes what its init built out of the collector's scans; the same here.
    gc.collect()
    gc.freeze()

    summary = _summary(_time_batches(scorer_models, timed_events))
    problems += _check_scored_by_models(dynamo, models)
    clock = StageClock()
    with clock.installed(app, models, (p, q, a)):
        for event in staged_events:
            clock.run(scorer_models, event)
    metrics_cost = _metrics_cost(app, scorer_models, costed_events)
    if metrics_cost["overhead"] > METRICS_OVERHEAD_MAX:
        problems.append(
            f"metrics add {metrics_cost['overhead']:.1%} to an event's CPU time "
            f"(allowed {METRICS_OVERHEAD_MAX:.0%})"
        )
    met = summary["records_per_s_overall"] >= TARGET_MODELS_RECORDS_PER_S
    result = {
        "vehicles": vehicles,
        "readings_per_vehicle_per_event": round(BATCH / min(vehicles, BATCH), 2),
        "warm_readings": warm,
        **summary,
        f"target_records_per_s>={TARGET_MODELS_RECORDS_PER_S}": met,
        "stages": clock.summary(),
        "metrics_cost": metrics_cost,
    }
    log(
        f"    with models: {summary['records_per_s_overall']:,} rec/s overall (p50 batch "
        f"{summary['batch_ms_p50']} ms), {summary['records_per_cpu_s']:,} rec per CPU-s"
    )
    for stage, f in result["stages"].items():
        log(
            f"      {stage:36} {f['ms_mean']:8.2f} ms wall {f['cpu_ms_mean']:8.2f} ms CPU "
            f"per batch ({f['cpu_share']:.1%} of CPU)"
        )
    return result, [f"models path, {vehicles} vehicles: {p}" for p in problems], timed_events


class _CountingSink(io.TextIOBase):
    """A stdout that keeps only how many characters were written to it."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


class NullMetrics:
    """The scorer's ``metrics`` recording nothing: the baseline its metrics are costed against."""

    def add_metric(self, *args: Any, **kwargs: Any) -> None: ...

    def add_metadata(self, *args: Any, **kwargs: Any) -> None: ...

    def clear_metrics(self) -> None: ...

    def flush_metrics(self, *args: Any, **kwargs: Any) -> None: ...


def _metrics_cost(app: Any, handle: Callable[[dict], None], events: list[dict]) -> dict:
    """CPU time per event with the scorer's metrics on (recorded, then flushed as the Lambda
    decorator does: the EMF document serialised and printed, here to a sink that only counts
    the characters) and off (:class:`NullMetrics`), alternating event by event so both see the
    same machine. Raises if an event with the metrics on printed no EMF document."""
    if len(events) < 2:
        raise ValueError("costing the metrics needs at least two events")
    on: list[float] = []
    off: list[float] = []
    null = NullMetrics()
    printed = _CountingSink()
    with mock.patch.dict(os.environ, {"POWERTOOLS_METRICS_DISABLED": "false"}):
        for i, event in enumerate(events):
            started = time.process_time()
            if i % 2:
                with mock.patch.object(app, "metrics", null):
                    handle(event)
                off.append(time.process_time() - started)
            else:
                before = printed.chars
                with contextlib.redirect_stdout(printed):
                    handle(event, flush=True)
                on.append(time.process_time() - started)
                if printed.chars == before:
                    raise RuntimeError("metrics on, yet the event printed no EMF document")
    on_ms, off_ms = statistics.mean(on) * 1000, statistics.mean(off) * 1000
    cost = {
        "events_each": len(off),
        "cpu_ms_per_event_metrics_on": round(on_ms, 3),
        "cpu_ms_per_event_metrics_off": round(off_ms, 3),
        "overhead": round(on_ms / off_ms - 1, 4),
        "emf_chars_per_event": round(printed.chars / len(on)),
        f"target_overhead<={METRICS_OVERHEAD_MAX}": on_ms / off_ms - 1 <= METRICS_OVERHEAD_MAX,
    }
    log(
        f"    metrics on {on_ms:.2f} ms CPU per event, off {off_ms:.2f} ms: "
        f"{cost['overhead']:+.1%} ({len(off)} events each, alternating)"
    )
    return cost


def run_inprocess(args: argparse.Namespace, system: dict | None) -> dict[str, Any]:
    env = {
        "PREDICTIONS_TABLE": "evpm-predictions",
        "DLQ_URL": "http://127.0.0.1:1/queue/dlq",
        "ALERT_BUS_NAME": "evpm-alerts",
        "ALERT_DEDUP_TABLE": "evpm-alert-dedup",
        "ALERT_WINDOW_SECONDS": "3600",
        "POWERTOOLS_SERVICE_NAME": "evpm-scorer",
        "POWERTOOLS_METRICS_NAMESPACE": "evpm",
        "LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "PINS_PARAMETER": "/evpm/serving/pins",
        "MLFLOW_URI_PARAMETER": "/evpm/mlflow/tracking-uri",
    }
    if system:
        env["DLQ_URL"] = system["dlq_url"]
    app = load_scorer(env)
    models = load_models(args.bundles, retrain=args.retrain)
    log(
        f"in process: {len(models.bundles)} pinned models (history depth {models.depth}); "
        f"{args.repeat} timed + {args.stage_batches} staged events of {BATCH} per fleet size"
    )
    result: dict[str, Any] = {
        "event_records": BATCH,
        "malformed_per_10k": args.malformed_per_10k,
        "degraded_vehicle_share": args.degraded,
        "models": {name: b.spec.task for name, b in models.bundles.items()},
        "history_depth": models.depth,
        "scorer_models": {},
    }
    problems: list[str] = []
    rules_events: list[dict] = []
    for vehicles in args.inprocess_vehicles:
        figures, why, timed_events = _models_path(app, models, vehicles, args, env["DLQ_URL"])
        result["scorer_models"][str(vehicles)] = figures
        problems += why
        rules_events = rules_events or timed_events

    rp, rq, ra, _ = memory_sinks(env["DLQ_URL"])

    def rules_only(event: dict) -> None:
        response = app.handle(event, predictions=rp, parked=rq, alerts=ra)
        app.metrics.clear_metrics()
        assert not response["batchItemFailures"], response

    _time_batches(rules_only, rules_events[:3])  # warm its caches (first calls import lazily)
    result["rules_only"] = {
        "vehicles": args.inprocess_vehicles[0],
        **_summary(_time_batches(rules_only, rules_events)),
    }
    rules = result["rules_only"]
    log(
        f"  rules only: {rules['records_per_s_overall']:,} rec/s overall (p50 batch "
        f"{rules['batch_ms_p50']} ms), {rules['records_per_cpu_s']:,} rec per CPU-s"
    )
    result["load_average"] = os.getloadavg()
    if system and not args.in_process_only:
        result["storage_round_trips_emulator"] = _storage(app, rules_events, system)
    result["problems"] = problems
    return result


def _storage(app: Any, events: list[dict], system: dict) -> dict[str, Any]:
    """Each sink against the running emulator, timed on its own (prediction writes, DLQ, alerts)."""
    import alert_sink
    import sinks

    from evpm.alerts import select_alerts
    from evpm.ingest import process_batch

    ddb = system["client"]("dynamodb")
    real = (
        sinks.DynamoPredictionSink(system["table"], ttl_days=30, client=ddb),
        sinks.SqsParkedSink(system["dlq_url"], client=system["client"]("sqs")),
        alert_sink.DedupedEventBridgeAlertSink(
            bus_name=system["bus"],
            dedup_table=system["dedup_table"],
            window_seconds=3600,
            dynamodb=ddb,
            events=system["client"]("events"),
        ),
    )
    timings: dict[str, list[float]] = {
        "predictions_write": [],
        "dlq_send": [],
        "alerts_publish": [],
        "handle_total_rules_only": [],
    }
    for event in events[: min(len(events), 20)]:
        raw = [app._raw(r) for r in event["Records"]]
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
        timings["handle_total_rules_only"].append(time.perf_counter() - started)
    out = {name: _summary(values) for name, values in timings.items()}
    log(
        "  through the emulator: "
        + ", ".join(f"{k} {v['batch_ms_p50']} ms" for k, v in out.items())
        + " per 500-record batch (p50)"
    )
    return out


# -- the running system -----------------------------------------------------------------------
def connect() -> dict[str, Any] | None:
    """Endpoints of the running system (``evpm status --json``), or None if nothing runs."""
    evpm = ROOT / ".venv" / "bin" / "evpm"
    done = subprocess.run(
        [str(evpm), "status", "--json"], capture_output=True, text=True, check=False
    )
    try:
        status = json.loads(done.stdout)
    except json.JSONDecodeError:
        return None
    if not status.get("emulator", {}).get("running"):
        return None
    import boto3
    from botocore.config import Config

    endpoint = status["emulator"]["url"]
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, read_timeout=60, max_pool_connections=16
    )

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=status["region"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )

    stacks = status["stacks"]
    return {
        "endpoint": endpoint,
        "emulator_pid": status["emulator"]["pid"],
        "client": client,
        "stream": stacks["StreamName"],
        "table": stacks["PredictionsTable"],
        "dlq_url": stacks["DlqUrl"],
        "bus": stacks["AlertBusName"],
        "dedup_table": stacks["AlertDedupTable"],
        "function": stacks["ScorerFunctionName"],
        "state_dir": status["emulator"].get("state_dir"),
    }


def scorer_workers(system: dict) -> list[int]:
    """PIDs of *this* emulator's Lambda worker processes that run the scorer function."""
    from evpm_cli.workers import lambda_workers

    return lambda_workers(system["emulator_pid"], system["function"])


def kill_scorer(system: dict, elapsed: float) -> list[dict[str, Any]]:
    """SIGKILL the scorer's workers; the ones actually killed (none found: empty)."""
    killed = []
    for pid in scorer_workers(system):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append({"pid": pid, "at_s": round(elapsed, 2)})
        except ProcessLookupError:
            pass
    return killed


def drain_dlq(
    system: dict, prefix: str, seen: dict[str, list[dict]], batch_failures: list, sqs: Any
) -> None:
    """Move this run's DLQ messages into ``seen`` keyed by Kinesis sequence number."""
    while True:
        batch = sqs.receive_message(
            QueueUrl=system["dlq_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return
        for message in batch:
            body = message["Body"]
            if prefix in body:
                parsed = json.loads(body)
                seen.setdefault(parsed["kinesis"]["sequence_number"], []).append(parsed)
            elif "KinesisBatchInfo" in body:  # the mapping gave up on a batch: records lost
                batch_failures.append(json.loads(body))
        sqs.delete_message_batch(
            QueueUrl=system["dlq_url"],
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


def stored_keys(system: dict, prefix: str, vehicles: int, ddb: Any) -> list[tuple[str, str]]:
    """(vehicle, reading time) of every prediction item of this run."""
    keys: list[tuple[str, str]] = []
    for v in range(vehicles):
        kwargs: dict[str, Any] = {
            "TableName": system["table"],
            "KeyConditionExpression": "vehicle_id = :v",
            "ExpressionAttributeValues": {":v": {"S": f"{prefix}-{v:05d}"}},
            "ProjectionExpression": "vehicle_id, ts",
        }
        while True:
            page = ddb.query(**kwargs)
            keys += [(i["vehicle_id"]["S"], i["ts"]["S"]) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return keys


def run_stream(args: argparse.Namespace, system: dict, kill_at: float | None) -> dict[str, Any]:
    from evpm_cli import stream_audit

    prefix = f"BS{uuid.uuid4().hex[:6]}"
    total = int(args.rate * args.duration)
    malformed = total * args.malformed_per_10k // 10_000
    label = f"stream{' + worker kill' if kill_at is not None else ''}"
    log(
        f"{label}: generating {total:,} records ({malformed} malformed, "
        f"{args.degraded:.0%} of {args.vehicles} vehicles degraded), prefix {prefix}"
    )
    records = traffic(
        total,
        vehicles=args.vehicles,
        malformed=malformed,
        degraded=args.degraded,
        prefix=prefix,
        seed=random.randrange(1 << 30),
    )
    expected_keys = {(k, json.loads(d)["timestamp"]) for k, d, valid in records if valid}
    valid_count = len(expected_keys)
    vehicle_ids = [f"{prefix}-{v:05d}" for v in range(args.vehicles)]
    probe_vehicle = vehicle_ids[-1]
    probe_expected = sum(1 for key, _ts in expected_keys if key == probe_vehicle) or 1
    client = system["client"]
    kinesis, ddb, sqs, logs = client("kinesis"), client("dynamodb"), client("sqs"), client("logs")
    log_group = stream_audit.log_group_of(system["function"])

    puts: list[stream_audit.PutRecord] = []
    killed: list[dict] = []
    problems: list[str] = []
    started_wall = time.time()
    started = time.perf_counter()
    next_report = 5.0
    for i in range(0, total, BATCH):
        due = i / args.rate
        now = time.perf_counter() - started
        if due > now:
            time.sleep(due - now)
        puts += stream_audit.put_records_timed(kinesis, system["stream"], records[i : i + BATCH])
        elapsed = time.perf_counter() - started
        if kill_at is not None and not killed and kill_at <= elapsed < kill_at + KILL_WINDOW_S:
            killed = kill_scorer(system, elapsed)
            if killed:
                log(f"  SIGKILL scorer worker(s) {[k['pid'] for k in killed]} at {elapsed:.1f} s")
        if elapsed >= next_report:
            stored = (
                stream_audit.count_items(ddb, system["table"], [probe_vehicle])
                * valid_count
                // probe_expected
            )
            log(
                f"  {elapsed:5.1f} s  put {len(puts):>7,} ({len(puts) / elapsed:,.0f}/s)  "
                f"stored ≈{stored:>7,}"
            )
            next_report += 5.0
    put_seconds = time.perf_counter() - started
    load_after_put = os.getloadavg()
    if kill_at is not None and not killed:
        problems.append(
            f"kill run: no scorer worker was killed (none found between {kill_at} and "
            f"{kill_at + KILL_WINDOW_S} s, the put lasted {put_seconds:.1f} s)"
        )
    log(
        f"  put {len(puts):,} records in {put_seconds:.1f} s ({len(puts) / put_seconds:,.0f}/s); "
        "waiting for every record to be stored or parked"
    )

    parked: dict[str, list[dict]] = {}
    batch_failures: list[dict] = []
    deadline = time.perf_counter() + args.drain_timeout
    while time.perf_counter() < deadline:
        drain_dlq(system, prefix, parked, batch_failures, sqs)
        probe = stream_audit.count_items(ddb, system["table"], [probe_vehicle])
        if probe >= probe_expected or time.perf_counter() > deadline - 1:
            stored_count = stream_audit.count_items(ddb, system["table"], vehicle_ids)
            if stored_count >= valid_count and len(parked) >= malformed:
                break
            log(f"  stored {stored_count:,}/{valid_count:,}, parked {len(parked)}/{malformed}")
        else:
            log(
                f"  stored ≈{probe * valid_count // probe_expected:,}/{valid_count:,}, "
                f"parked {len(parked)}/{malformed}"
            )
        time.sleep(2)
    distinct = set(stored_keys(system, prefix, args.vehicles, ddb))
    unexpected = distinct - expected_keys

    def dlq_sequence_numbers() -> list[str]:
        drain_dlq(system, prefix, parked, batch_failures, sqs)
        return [seq for seq, messages in parked.items() for _ in messages]

    log("  reading the scorer's metrics back from CloudWatch Logs")
    audit = stream_audit.collect(
        logs,
        log_group,
        puts,
        start=started_wall - 5,
        items_stored=lambda: len(distinct),
        dlq_sequence_numbers=dlq_sequence_numbers,
        timeout=AUDIT_TIMEOUT_S,
    )
    coverage = stream_audit.cover(
        puts, stream_audit.read_scorer_log(logs, log_group, start=started_wall - 5).invocations
    )
    stored = len(distinct & expected_keys)
    lost_valid = valid_count - stored
    lost = lost_valid + audit.dlq_missing
    problems += [f"audit incomplete: {gap}" for gap in audit.gaps]
    if lost:
        problems.append(
            f"{lost} records lost ({lost_valid} valid without their prediction, "
            f"{audit.dlq_missing} malformed without a DLQ message)"
        )
    if batch_failures:
        problems.append(f"the event source mapping gave up on {len(batch_failures)} batches")
    if unexpected:
        problems.append(f"{len(unexpected)} stored predictions match no record put")
    if audit.complete and audit.duplicates:
        problems.append(f"{audit.duplicates} predictions written more than once")
    if audit.dlq_duplicates or audit.dlq_unexpected:
        problems.append(
            f"DLQ: {audit.dlq_duplicates} duplicate messages, {audit.dlq_unexpected} for records "
            "that were not malformed"
        )

    result: dict[str, Any] = {
        "target_rate": args.rate,
        "duration_s": args.duration,
        "records_in": len(puts),
        "valid": valid_count,
        "malformed": malformed,
        "put_seconds": round(put_seconds, 2),
        "put_rate": round(len(puts) / put_seconds),
        "stored": stored,
        "parked": audit.dlq_distinct,
        "lost": lost,
        "duplicates": audit.duplicates if audit.complete else None,
        "dlq_duplicates": audit.dlq_duplicates,
        "redeliveries": audit.redeliveries if audit.complete else None,
        "latency_put_to_acked_s": audit.latency_s.model_dump() if audit.latency_s else None,
        "unexpected_prediction_keys": len(unexpected),
        "esm_batch_failure_records": len(batch_failures),
        "killed_workers": killed,
        "audit": audit.model_dump(),
        "load_average_after_put": load_after_put,
    }
    acks = sorted(ack for record, ack in coverage.acked if ack is not None and record.valid)
    last_put = max((r.put_at for r in puts), default=started_wall)
    if acks and audit.last_ack_at:
        span = audit.last_ack_at - started_wall
        result["records_per_s"] = round((stored + audit.dlq_distinct) / span) if span > 0 else None
        result["lag_after_last_put_s"] = round(audit.last_ack_at - last_put, 2)
        # Sustained: predictions acknowledged per second, after a 5 s ramp, until the last put.
        per_second = Counter(int(t - started_wall) for t in acks)
        window = [per_second.get(s, 0) for s in range(5, int(last_put - started_wall))]
        result["stored_per_second_during_put"] = {
            "mean": round(statistics.mean(window)) if window else None,
            "min": min(window) if window else None,
            "p10": sorted(window)[len(window) // 10] if window else None,
        }
    else:
        problems.append("no acknowledged write: no rate or latency could be measured")
    # "true" only for a run that did all it claims (a kill run that killed nothing did not);
    # "false" for what was measured to fail; null when it could not be told.
    lossy = bool(lost or batch_failures or unexpected)
    twice = audit.complete and bool(audit.duplicates or audit.dlq_duplicates)
    result["zero_loss"] = True if not problems else (False if lossy else None)
    result["no_duplicate"] = True if not problems else (False if twice else None)
    result["problems"] = problems
    lat = audit.latency_s
    log(
        f"  {label}: in {len(puts):,} = stored {stored:,} + parked {audit.dlq_distinct} + lost "
        f"{lost}; duplicates {result['duplicates']}, DLQ duplicates {audit.dlq_duplicates}, "
        f"redeliveries {result['redeliveries']}; {result.get('records_per_s')} rec/s; put→acked "
        f"p50 {lat.p50 if lat else None} s, p99 {lat.p99 if lat else None} s"
    )
    for problem in problems:
        log(f"  PROBLEM: {problem}")
    return result


# -- output -----------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    rows = [("measurement", "value")]
    ip = results.get("inprocess")
    if ip:
        runs = [
            (f"scorer, 3 pinned models + warm history, {v} vehicles", f)
            for v, f in ip["scorer_models"].items()
        ]
        runs.append(
            (f"scorer, rules only, {ip['rules_only']['vehicles']} vehicles", ip["rules_only"])
        )
        for label, s in runs:
            rows.append(
                (
                    f"in process: {label}",
                    f"{s['records_per_s_overall']:,} rec/s overall (p50 batch "
                    f"{s['batch_ms_p50']} ms), {s['records_per_cpu_s']:,} rec per CPU-s",
                )
            )
            for stage, f in s.get("stages", {}).items():
                rows.append(
                    (
                        f"  {stage}",
                        f"{f['ms_mean']} ms wall, {f['cpu_ms_mean']} ms CPU per batch "
                        f"({f['cpu_share']:.0%} of CPU)",
                    )
                )
        for name, s in (ip.get("storage_round_trips_emulator") or {}).items():
            rows.append(
                (f"emulator round trips: {name}", f"p50 {s['batch_ms_p50']} ms / 500 records")
            )
    for name in ("stream", "stream_kill"):
        s = results.get(name)
        if not s:
            continue
        lat = s.get("latency_put_to_acked_s") or {}
        sps = s.get("stored_per_second_during_put") or {}
        rows += [
            (
                f"{name}: target / put rate",
                f"{s['target_rate']:,} / {s['put_rate']:,} rec/s for {s['put_seconds']} s",
            ),
            (
                f"{name}: end to end",
                f"{s.get('records_per_s')} rec/s, lag after last put "
                f"{s.get('lag_after_last_put_s')} s",
            ),
            (
                f"{name}: stored/s during put",
                f"mean {sps.get('mean')}, p10 {sps.get('p10')}, min {sps.get('min')}",
            ),
            (
                f"{name}: put → acknowledged write",
                f"p50 {lat.get('p50')} s, p95 {lat.get('p95')} s, p99 {lat.get('p99')} s",
            ),
            (
                f"{name}: in = stored + parked + lost",
                f"{s['records_in']:,} = {s['stored']:,} + {s['parked']} + {s['lost']}",
            ),
            (
                f"{name}: duplicates / DLQ dup. / redeliv.",
                f"{s['duplicates']} / {s['dlq_duplicates']} / {s['redeliveries']}",
            ),
        ]
        if name == "stream_kill":
            rows.append((f"{name}: killed", json.dumps(s["killed_workers"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Reads the system from `evpm status --json` (EVPM_STATE_DIR / "
        "EVPM_EMULATOR_PORT select which). Exits 1 when a measurement is missing or records "
        "were lost or duplicated; the reasons are in the JSON under 'problems'.",
    )
    parser.add_argument("--only", choices=("inprocess", "stream"), help="run one part only")
    parser.add_argument(
        "--in-process-only",
        action="store_true",
        help="the in-process part alone, without asking for or touching any running system",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of producing")
    parser.add_argument("--rate", type=float, default=2500.0, help="target records/s put")
    parser.add_argument(
        "--kill-at",
        type=float,
        default=20.0,
        help="seconds into the kill run to SIGKILL the scorer worker",
    )
    parser.add_argument("--no-kill", action="store_true", help="skip the worker-kill run")
    parser.add_argument("--kill-only", action="store_true", help="only the worker-kill run")
    parser.add_argument("--vehicles", type=int, default=200, help="fleet size of the traffic")
    parser.add_argument(
        "--malformed-per-10k", type=int, default=10, help="malformed records per 10,000 put"
    )
    parser.add_argument(
        "--degraded",
        type=float,
        default=0.05,
        help="share of vehicles with worn brake pads (they raise alerts)",
    )
    parser.add_argument(
        "--inprocess-vehicles",
        type=int,
        nargs="+",
        default=[200, 500],
        help="fleet sizes for the in-process models path (200: the stream runs' traffic, 2.5 "
        "readings per vehicle per event; 500: one reading per vehicle per event)",
    )
    parser.add_argument(
        "--repeat", type=int, default=40, help="timed in-process events (each one new)"
    )
    parser.add_argument(
        "--stage-batches", type=int, default=10, help="in-process events timed stage by stage"
    )
    parser.add_argument(
        "--metrics-batches",
        type=int,
        default=20,
        help="in-process events with the metrics on, and as many off, to cost them",
    )
    parser.add_argument(
        "--bundles",
        type=Path,
        default=ROOT / ".build" / "cold_start" / "bundles",
        help="cached model bundles (bench/cold_start.py's; trained here when absent)",
    )
    parser.add_argument("--retrain", action="store_true", help="train the bundles again")
    parser.add_argument(
        "--drain-timeout", type=float, default=180.0, help="seconds to wait for every record"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})"
    )
    args = parser.parse_args(argv)
    if args.in_process_only and args.only == "stream":
        parser.error("--in-process-only and --only stream exclude each other")

    system = None if args.in_process_only else connect()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "system": {k: system[k] for k in ("endpoint", "stream", "table")} if system else None,
    }
    if system:
        shards = system["client"]("kinesis").describe_stream_summary(StreamName=system["stream"])[
            "StreamDescriptionSummary"
        ]["OpenShardCount"]
        mappings = system["client"]("lambda").list_event_source_mappings(
            FunctionName=system["function"]
        )["EventSourceMappings"]
        results["system"]["shards"] = shards
        results["system"]["mapping"] = {
            k: m.get(k)
            for m in mappings[:1]
            for k in (
                "BatchSize",
                "MaximumBatchingWindowInSeconds",
                "ParallelizationFactor",
                "MaximumRetryAttempts",
            )
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part, so an interrupted run keeps what it measured
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    if (args.only in (None, "inprocess") or args.in_process_only) and not args.kill_only:
        results["inprocess"] = run_inprocess(args, system)
        save()
    if args.only in (None, "stream") and not args.in_process_only:
        if not system:
            log("no running system (evpm up): stream part skipped")
        else:
            if not args.kill_only:
                results["stream"] = run_stream(args, system, None)
                save()
            if not args.no_kill:
                results["stream_kill"] = run_stream(args, system, args.kill_at)
    problems = [
        f"{part}: {problem}"
        for part in ("inprocess", "stream", "stream_kill")
        for problem in (results.get(part) or {}).get("problems", [])
    ]
    results["problems"] = problems
    save()
    print(table(results))
    print(f"\nwritten to {args.out}")
    if problems:
        for problem in problems:
            log(f"FAILED: {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
