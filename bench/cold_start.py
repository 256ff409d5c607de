"""Cold start of the scorer and the API Lambdas, measured offline the way the emulator starts them.

``bench/serving.py --gateway`` measures cold starts through the running system. This measures
the same thing without it, so a change can be judged on a quiet bench:

* the functions and layers are **staged as deployed**: ``functions/<name>``, ``layers/evpm`` and
  the built dependency layer (``.build/layers/deps``) are copied with the CDK asset excludes
  (:data:`infra.constructs.layers.ASSET_EXCLUDES`), so exactly the files Lambda would unzip;
* each cold start is a **fresh worker process started like the host executor starts one**: the
  runtime's interpreter (``.state/runtimes/python3.12``, boto3 only), the executor's own
  ``bootstrap.py`` and its control-pipe protocol, the executor's environment (``PYTHONPATH`` =
  function dir then layers, ``PYTHONDONTWRITEBYTECODE=1`` as on read-only ``/opt``, an empty
  ``TMPDIR`` so no model is cached);
* the services are **local stand-ins**: a moto server for SSM, S3, DynamoDB, SQS and
  EventBridge (reached through ``AWS_ENDPOINT_URL``, as in the emulator) and a small MLflow
  registry stub; the pinned versions of the three models sit in S3 as the lifecycle logs them.

Per function it reports ``init_ms`` (process start until the handler module is imported, the
executor's ``Init Duration``), ``first_invoke_ms`` (the first invocation: pins, registry,
downloads, model loading, scoring) and their sum ``cold_ms``, median over ``--repeats`` runs;
``scorer`` and ``api`` are invoked with the lifecycle's canary event (what the gateway bench
sends), ``scorer-stream`` with a Kinesis event (the scorer's real first event: the sinks'
clients and writes too). ``--importtime`` adds, per function, where import time goes by
top-level package, split into init and first invocation. Results go to
``bench/results/cold_start.json``. A run that fails or lacks one of these figures is not a
cold start of 0 ms: the file lists it under ``problems``, claims no target for that function
(``null``), and the benchmark exits 1.

The model bundles are trained once with ``bench/serving.py``'s helper (the training job on a
simulated fleet, as big as the serving bench's) and cached under ``.build/cold_start``.

On a shared machine the wall figures move with the load (recorded at start and end); ``cpu_s``
(the worker's user+system seconds) moves less. For a before/after, ``--baseline`` measures a
second checkout in turn with this one, run by run, under the same load.

Usage:
    .venv/bin/python bench/cold_start.py --help
    .venv/bin/python bench/cold_start.py                      # all functions, 5 runs each
    .venv/bin/python bench/cold_start.py --functions scorer --repeats 9 --importtime
    mkdir -p /tmp/before && git archive <commit> functions layers infra localstack \
        | tar -x -C /tmp/before
    .venv/bin/python bench/cold_start.py --baseline /tmp/before
"""

from __future__ import annotations

import argparse
import ast
import base64
import fnmatch
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "cold_start.json"
BUNDLES = ROOT / ".build" / "cold_start" / "bundles"
DEPS_LAYER = ROOT / ".build" / "layers" / "deps"
BOOTSTRAP = ROOT / "localstack" / "evpm_localstack" / "executor" / "bootstrap.py"
END_MARKER = "\x1eEVPM_END:"
MODELS = ("ev-anomaly", "ev-classifier", "ev-rul")
BUCKET = "evpm-cold-start-models"
REGION = "us-east-1"
TIMEOUT_S = 120.0
TARGET_MS = 1500.0

sys.path.insert(0, str(ROOT / "localstack"))


def log(message: str) -> None:
    print(f"[bench/cold_start] {message}", file=sys.stderr, flush=True)


# -- staging: the files Lambda would unzip -----------------------------------------------------
def asset_ignore(excludes: list[str]) -> Callable[[str, list[str]], set[str]]:
    """``shutil.copytree`` ignore function for CDK asset excludes of the ``**/<glob>`` or
    ``<glob>`` form (CDK's glob mode matches a pattern without a slash at any depth)."""
    globs = []
    for pattern in excludes:
        glob = pattern.removeprefix("**/")
        if "/" in glob:
            raise ValueError(f"unsupported asset exclude {pattern!r} (only '**/<glob>')")
        globs.append(glob)
    return lambda _dir, names: {n for n in names if any(fnmatch.fnmatch(n, g) for g in globs)}


def asset_excludes(root: Path, *variables: str) -> list[str]:
    """The first of ``variables`` that ``infra/constructs/layers.py`` defines, read without
    importing CDK (jsii would start a Node process)."""
    tree = ast.parse((root / "infra" / "constructs" / "layers.py").read_text())
    found = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    for variable in variables:
        if variable in found:
            return list(ast.literal_eval(found[variable]))
    raise SystemExit(f"none of {variables} in {root}/infra/constructs/layers.py")


def stage(target: Path, root: Path, deps_layer: Path) -> dict[str, Path]:
    """Copy the function folders and both layers of ``root`` as CDK would zip them."""
    sources = asset_ignore(asset_excludes(root, "ASSET_EXCLUDES"))
    # Before the layer carried bytecode, the deps layer used the common excludes.
    deps = asset_ignore(asset_excludes(root, "DEPS_ASSET_EXCLUDES", "ASSET_EXCLUDES"))
    out = {}
    for name, source, ignore in (
        ("scorer", root / "functions" / "scorer", sources),
        ("api", root / "functions" / "api", sources),
        ("core", root / "layers" / "evpm", sources),
        ("deps", deps_layer, deps),
    ):
        if not source.is_dir():
            raise SystemExit(f"{source} does not exist (build the layer: layers/build.py)")
        out[name] = target / name
        shutil.copytree(source, out[name], ignore=ignore, symlinks=True)
    return out


def count_bytecode(root: Path) -> tuple[int, int]:
    """(``.py`` files, of which with a cached ``.pyc`` of this CPython) under ``root``."""
    sources = list(root.rglob("*.py"))
    tag = "cpython-312"
    cached = sum(1 for p in sources if (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file())
    return len(sources), cached


# -- the model bundles -------------------------------------------------------------------------
def ensure_bundles(folder: Path, vehicles: int, hours: int, retrain: bool) -> dict[str, Path]:
    """The three bundles' folders (``spec.json`` + model file), trained once and cached."""
    paths = {name: folder / name for name in MODELS}
    if not retrain and all((p / "spec.json").is_file() for p in paths.values()):
        return paths
    log(f"training the three models ({vehicles} vehicles x {hours} h) for the bundles")
    sys.path.insert(0, str(ROOT / "bench"))
    from serving import train_models

    with tempfile.TemporaryDirectory() as tmp:
        bundles, _ = train_models(Path(tmp), vehicles, hours)
    shutil.rmtree(folder, ignore_errors=True)
    for name, bundle in bundles.items():
        paths[name].mkdir(parents=True)
        (paths[name] / "spec.json").write_text(bundle.spec.model_dump_json())
        model = bundle.model.to_json() if bundle.spec.task == "anomaly" else None
        model = model or bundle.model.model_to_string()
        (paths[name] / bundle.model_filename(bundle.spec.task)).write_text(model)
    return paths


# -- local stand-ins for the services ----------------------------------------------------------
class _Registry(BaseHTTPRequestHandler):
    """``GET /api/2.0/mlflow/model-versions/get``: what the serving loader asks MLflow."""

    sources: dict[str, str] = {}

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        source = self.sources.get(query.get("name", ""))
        if url.path.endswith("/model-versions/get") and source:
            status = 200
            body = {
                "model_version": {
                    "name": query["name"],
                    "version": query.get("version", "1"),
                    "source": source,
                    "status": "READY",
                }
            }
        else:
            status, body = 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": self.path}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


class Services:
    """moto (SSM, S3, DynamoDB, SQS, EventBridge) and an MLflow registry stub, on loopback."""

    def __init__(self, bundles: dict[str, Path]) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        _Registry.sources = {name: f"s3://{BUCKET}/1/models/{name}-v1" for name in bundles}
        self.registry = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
        threading.Thread(target=self.registry.serve_forever, daemon=True).start()
        self.mlflow_uri = f"http://127.0.0.1:{self.registry.server_address[1]}"
        self.names = self._provision(bundles)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def _provision(self, bundles: dict[str, Path]) -> dict[str, str]:
        from evpm.pins import MLFLOW_URI_PARAMETER, PINS_PARAMETER

        s3 = self.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for name, folder in bundles.items():
            prefix = _Registry.sources[name].removeprefix(f"s3://{BUCKET}/")
            for file in folder.iterdir():
                s3.upload_file(str(file), BUCKET, f"{prefix}/artifacts/{file.name}")
        ssm = self.client("ssm")
        pins = json.dumps(dict.fromkeys(bundles, 1))
        ssm.put_parameter(Name=PINS_PARAMETER, Value=pins, Type="String", Overwrite=True)
        ssm.put_parameter(
            Name=MLFLOW_URI_PARAMETER, Value=self.mlflow_uri, Type="String", Overwrite=True
        )
        ddb = self.client("dynamodb")
        for table, keys in (
            ("evpm-predictions", ("vehicle_id", "ts")),
            ("evpm-labels", ("vehicle_id", "ts")),
            ("evpm-alert-dedup", ("pk", None)),
        ):
            schema = [{"AttributeName": keys[0], "KeyType": "HASH"}]
            attrs = [{"AttributeName": keys[0], "AttributeType": "S"}]
            if keys[1]:
                schema.append({"AttributeName": keys[1], "KeyType": "RANGE"})
                attrs.append({"AttributeName": keys[1], "AttributeType": "S"})
            ddb.create_table(
                TableName=table,
                KeySchema=schema,
                AttributeDefinitions=attrs,
                BillingMode="PAY_PER_REQUEST",
            )
        dlq = self.client("sqs").create_queue(QueueName="evpm-scoring-dlq")["QueueUrl"]
        self.client("events").create_event_bus(Name="evpm-alerts")
        return {"dlq": dlq}

    def close(self) -> None:
        self.registry.shutdown()
        self.moto.stop()


# -- the functions and their first events ------------------------------------------------------
def canary_event() -> dict[str, Any]:
    """What the gateway bench (and the lifecycle's smoke test) sends: one reading."""
    from evpm.telemetry import EXAMPLE_RECORD

    return {"evpm_canary": {"records": [{**EXAMPLE_RECORD, "vehicle_id": "BENCH-COLD"}]}}


def kinesis_event(records: int = 100) -> dict[str, Any]:
    """A Kinesis event of ``records`` readings of distinct vehicles (the scorer's real input)."""
    from evpm.telemetry import EXAMPLE_RECORD

    out = []
    for i in range(records):
        data = json.dumps({**EXAMPLE_RECORD, "vehicle_id": f"EV-{i:04d}"}).encode()
        sequence = str(49590330439255740465847791082829142860800000000000 + i)
        out.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": f"EV-{i:04d}",
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1714564800.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/scorer",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:kinesis:{REGION}:000000000000:stream/ev-telemetry",
            }
        )
    return {"Records": out}


def functions(staged: dict[str, Path], services: Services) -> dict[str, dict[str, Any]]:
    """Per measured case: code folder, environment (as the stacks set it) and first event."""
    scorer_env = {
        "PREDICTIONS_TABLE": "evpm-predictions",
        "DLQ_URL": services.names["dlq"],
        "ALERT_BUS_NAME": "evpm-alerts",
        "ALERT_DEDUP_TABLE": "evpm-alert-dedup",
        "ALERT_WINDOW_SECONDS": "3600",
        "POWERTOOLS_SERVICE_NAME": "evpm-scorer",
        "POWERTOOLS_METRICS_NAMESPACE": "evpm",
        "LOG_LEVEL": "INFO",
    }
    api_env = {
        "PREDICTIONS_TABLE": "evpm-predictions",
        "LABELS_TABLE": "evpm-labels",
        "POWERTOOLS_SERVICE_NAME": "evpm-api",
        "LOG_LEVEL": "INFO",
    }
    return {
        "scorer": {"code": staged["scorer"], "env": scorer_env, "event": canary_event()},
        "api": {"code": staged["api"], "env": api_env, "event": canary_event()},
        "scorer-stream": {"code": staged["scorer"], "env": scorer_env, "event": kinesis_event()},
    }


# -- one cold start ------------------------------------------------------------------------------
def environment(
    python: Path, case: dict[str, Any], staged: dict[str, Path], services: Services, tmp: Path
) -> dict[str, str]:
    """The host executor's worker environment (``executor._environment``) for this case."""
    path = [str(case["code"])]
    for layer in (staged["core"], staged["deps"]):  # the last layer first, as /opt stacks them
        path += [str(layer / "python" / "lib" / "python3.12" / "site-packages"),
                 str(layer / "python")]  # fmt: skip
    name = "evpm-api" if case["code"] == staged["api"] else "evpm-scorer"
    return {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "PYTHONUNBUFFERED": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **case["env"],
        "AWS_ENDPOINT_URL": services.endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "LAMBDA_TASK_ROOT": str(case["code"]),
        "LAMBDA_RUNTIME_DIR": str(python.parent.parent),
        "PYTHONPATH": os.pathsep.join(path),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_HANDLER": "app.handler",
    }


def _read_message(stream: Any, deadline: float) -> dict[str, Any]:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
        return {"type": "timeout"}
    line = stream.readline()
    return json.loads(line) if line.strip() else {"type": "exit"}


def _check(name: str, event: dict[str, Any], message: dict[str, Any]) -> str | None:
    """Why a first answer does not count (an error, or models that did not load), or None."""
    if message.get("type") != "result":
        return f"{message.get('type')}: {json.dumps(message.get('error'))[:500]}"
    body = json.loads(message["payload"])
    if "evpm_canary" in event:
        versions = body.get("model_versions", {})
        if body.get("load_error") or any(m not in versions for m in MODELS):
            return f"models not served: {versions} {body.get('load_error')}"
    elif body.get("batchItemFailures"):
        return f"{name}: {len(body['batchItemFailures'])} records failed"
    return None


def run_once(
    python: Path,
    bootstrap: Path,
    env: dict[str, str],
    event: dict[str, Any],
    name: str,
    log_path: Path,
) -> dict[str, Any]:
    """Start a worker, time its init and first (then one warm) invocation."""
    control_r, control_w = os.pipe()
    env = {**env, "EVPM_CONTROL_FD": str(control_w)}
    with log_path.open("w") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(python), "-u", str(bootstrap)],
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(control_w,),
            env=env,
            cwd=env["LAMBDA_TASK_ROOT"],
            start_new_session=True,
            text=True,
        )
    os.close(control_w)
    result: dict[str, Any] = {"error": None}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        with os.fdopen(control_r, "r", encoding="utf-8") as control:
            message = _read_message(control, deadline)
            result["init_ms"] = round((time.perf_counter() - started) * 1000, 1)
            if message.get("type") != "ready":
                result["error"] = f"init: {json.dumps(message)[:500]}"
                return result
            for label in ("first_invoke_ms", "warm_invoke_ms"):
                request = {
                    "request_id": f"{label}-{time.time_ns()}",
                    "invoked_arn": f"arn:aws:lambda:{REGION}:000000000000:function:{name}",
                    "payload": json.dumps(event),
                    "trace_id": "",
                    "deadline_ms": int(time.time() * 1000 + TIMEOUT_S * 1000),
                }
                t0 = time.perf_counter()
                assert process.stdin is not None
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                message = _read_message(control, deadline)
                result[label] = round((time.perf_counter() - t0) * 1000, 1)
                error = _check(name, event, message)
                if error:
                    result["error"] = f"{label}: {error}"
                    return result
            result["cold_ms"] = round(result["init_ms"] + result["first_invoke_ms"], 1)
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            _, _, usage = os.wait4(process.pid, 0) if _exits(process) else _kill(process)
            result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
        except ChildProcessError:
            pass
    return result


def _exits(process: subprocess.Popen, grace: float = 10.0) -> bool:
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            return True
        time.sleep(0.02)
    return False


def _kill(process: subprocess.Popen) -> tuple[int, int, Any]:
    os.killpg(process.pid, signal.SIGKILL)
    return os.wait4(process.pid, 0)


def import_breakdown(log_text: str, top: int = 12) -> dict[str, dict[str, float]]:
    """``-X importtime`` self times summed per top-level package, for init and first invoke."""
    phases: dict[str, defaultdict[str, float]] = {
        "init": defaultdict(float),
        "first_invoke": defaultdict(float),
    }
    phase = "init"
    for line in log_text.split("\n"):  # not splitlines(): the marker starts with \x1e
        if END_MARKER in line:
            if phase == "first_invoke":
                break
            phase = "first_invoke"
            continue
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.removeprefix("import time:").split("|")
        if not parts[0].strip().isdigit():
            continue
        package = parts[2].strip().split(".")[0]
        phases[phase][package] += int(parts[0]) / 1000
    out = {}
    for phase, sums in phases.items():
        ranked = sorted(sums.items(), key=lambda kv: kv[1], reverse=True)
        out[phase] = {
            "total_ms": round(sum(sums.values()), 1),
            **{k: round(v, 1) for k, v in ranked[:top]},
        }
    return out


MEASURED = ("init_ms", "first_invoke_ms", "cold_ms")
"""What every run must have measured for its function's figures (and targets) to stand."""


def unmeasured(run: dict[str, Any]) -> str | None:
    """Why a run does not count (its error, or a figure it lacks), or None when it does."""
    if run.get("error"):
        return str(run["error"])
    missing = [key for key in MEASURED if run.get(key) is None]
    return f"not measured: {', '.join(missing)}" if missing else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs that measured everything; ``complete`` only when all of them did
    (a median of the runs that happened to succeed is not the function's cold start)."""
    reasons = [unmeasured(r) for r in runs]
    good = [r for r, why in zip(runs, reasons, strict=True) if why is None]
    out: dict[str, Any] = {
        "n": len(good),
        "complete": bool(runs) and len(good) == len(runs),
        "errors": [why for why in reasons if why is not None],
    }
    for key in ("init_ms", "first_invoke_ms", "cold_ms", "warm_invoke_ms", "cpu_s"):
        values = [r[key] for r in good if key in r]
        if values:
            out[f"{key}_median"] = round(statistics.median(values), 3 if key == "cpu_s" else 1)
    out["cold_ms_min"] = min((r["cold_ms"] for r in good), default=None)
    out["runs"] = runs
    return out


def _describe(root: Path) -> str:
    """The commit of ``root`` (with ``+changes`` if its tree differs), or its path."""
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if (
        head.returncode != 0
        or Path(
            subprocess.run(
                [*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True
            ).stdout.strip()
            or "/"
        ).resolve()
        != root.resolve()
    ):
        return str(root)
    paths = ["functions", "layers", "infra/constructs/layers.py"]
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", *paths], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def runtime_interpreter() -> Path:
    """The emulator's python3.12 runtime environment (the SDK only), built on first use."""
    from evpm_localstack.executor.runtimes import runtime_python

    return runtime_python("python3.12")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Offline cold start of the scorer and API Lambdas: staged as deployed, "
        "started like the host executor starts a worker, against local stand-ins of the "
        "services; writes bench/results/cold_start.json.",
    )
    parser.add_argument("--repeats", type=int, default=5, help="cold starts per function")
    parser.add_argument(
        "--functions",
        nargs="+",
        default=["scorer", "api", "scorer-stream"],
        choices=["scorer", "api", "scorer-stream"],
        help="what to measure (scorer and api: canary event; scorer-stream: a Kinesis event)",
    )
    parser.add_argument(
        "--deps-layer",
        type=Path,
        default=DEPS_LAYER,
        help="dependency layer folder (holds python/); default the built one",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="checkout whose functions, core layer and asset excludes are staged (default: "
        "this one; e.g. an older commit unpacked with git archive, for a before/after)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a second checkout measured the same way, run by run in turn with --root (a "
        "before/after under the same machine load), reported under 'baseline'",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra variable of the --root functions' environment (repeatable): try a "
        "setting, with --baseline the same checkout without it",
    )
    parser.add_argument("--python", type=Path, help="runtime interpreter (default: emulator's)")
    parser.add_argument("--bundles", type=Path, default=BUNDLES, help="bundle cache folder")
    parser.add_argument("--retrain", action="store_true", help="train the bundles again")
    parser.add_argument("--vehicles", type=int, default=80, help="fleet to train bundles on")
    parser.add_argument("--hours", type=int, default=1200, help="hours per vehicle")
    parser.add_argument(
        "--importtime", action="store_true", help="add an import-time breakdown per function"
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT})")
    parser.add_argument("--label", default="", help="free text stored with the results")
    args = parser.parse_args(argv)

    python = args.python or runtime_interpreter()
    bundles = ensure_bundles(args.bundles, args.vehicles, args.hours, args.retrain)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "label": args.label,
        "method": "offline: staged assets, host-executor worker protocol, moto + MLflow stub; "
        "medians over --repeats fresh workers (baseline and current interleaved)",
        "model_bytes": {
            name: sum(f.stat().st_size for f in folder.iterdir())
            for name, folder in bundles.items()
        },
    }
    extra_env = dict(item.split("=", 1) for item in args.env)
    if extra_env:
        results["extra_env"] = extra_env
    roots = {"current": args.root.resolve()}
    if args.baseline:
        roots["baseline"] = args.baseline.resolve()
    services = Services(bundles)
    with tempfile.TemporaryDirectory(prefix="evpm-cold-") as tmp_name:
        tmp = Path(tmp_name)
        variants = {}
        for variant, root in roots.items():
            staged = stage(tmp / variant, root, args.deps_layer.resolve())
            bootstrap = tmp / variant / "runtime" / "evpm_lambda_bootstrap.py"
            bootstrap.parent.mkdir()
            shutil.copy(root / BOOTSTRAP.relative_to(ROOT), bootstrap)
            py_files, pyc_files = count_bytecode(staged["deps"])
            variants[variant] = {
                "staged": staged,
                "bootstrap": bootstrap,
                "cases": functions(staged, services),
                "info": {
                    "source": _describe(root),
                    "deps_layer": {"py_files": py_files, "with_bytecode": pyc_files},
                },
                "runs": {name: [] for name in args.functions},
            }
        try:
            for name in args.functions:
                for i in range(args.repeats):
                    for variant, v in variants.items():  # interleaved: same load for both
                        case = v["cases"][name]
                        run_tmp = tmp / "run" / f"{variant}-{name}-{i}"
                        run_tmp.mkdir(parents=True)
                        env = environment(python, case, v["staged"], services, run_tmp)
                        env.update(extra_env if variant == "current" else {})
                        run = run_once(
                            python, v["bootstrap"], env, case["event"], name, run_tmp / "log"
                        )
                        v["runs"][name].append(run)
                        if run["error"]:
                            log(f"{variant} {name} run {i}: {run['error']}")
                            log((run_tmp / "log").read_text()[-3000:])
                for variant, v in variants.items():
                    summary = summarise(v["runs"][name])
                    if args.importtime:
                        case = v["cases"][name]
                        run_tmp = tmp / "run" / f"{variant}-{name}-importtime"
                        run_tmp.mkdir(parents=True)
                        env = environment(python, case, v["staged"], services, run_tmp)
                        env.update(extra_env if variant == "current" else {})
                        env["PYTHONPROFILEIMPORTTIME"] = "1"
                        run = run_once(
                            python, v["bootstrap"], env, case["event"], name, run_tmp / "log"
                        )
                        why = unmeasured(run)
                        if why is not None:  # a failed run's import times are not the function's
                            summary["import_ms_by_package"] = None
                            summary["errors"].append(f"importtime run: {why}")
                            summary["complete"] = False
                        else:
                            summary["import_ms_by_package"] = import_breakdown(
                                (run_tmp / "log").read_text()
                            )
                    v["info"].setdefault("functions", {})[name] = summary
                    log(
                        f"{variant:8} {name:14} init {summary.get('init_ms_median')} ms + first "
                        f"invoke {summary.get('first_invoke_ms_median')} ms = cold "
                        f"{summary.get('cold_ms_median')} ms (median of {summary['n']}), cpu "
                        f"{summary.get('cpu_s_median')} s"
                    )
        finally:
            services.close()
    results |= variants["current"]["info"]
    if "baseline" in variants:
        results["baseline"] = variants["baseline"]["info"]
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    problems = [
        f"{variant} {name}: not measured ({'; '.join(summary['errors'][:3]) or 'no run'})"
        for variant, v in variants.items()
        for name, summary in v["info"]["functions"].items()
        if not summary["complete"]
    ]
    scorer = results["functions"].get("scorer")
    if scorer is not None:
        # Only on a complete measurement: a failed or missing run is no cold start of 0 ms.
        met = scorer["cold_ms_median"] <= TARGET_MS if scorer["complete"] else None
        results["targets"] = {"scorer_cold_start_s<=1.5": met}
    results["problems"] = problems
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    header = ("init ms", "1st inv ms", "cold ms", "warm ms", "cpu s")
    keys = ("init_ms", "first_invoke_ms", "cold_ms", "warm_invoke_ms", "cpu_s")
    print(f"{'(medians)':24}" + "".join(f"{h:>11}" for h in header))
    for variant, v in variants.items():
        for name, summary in v["info"]["functions"].items():
            figures = [summary.get(f"{k}_median", "-") for k in keys]
            print(f"{variant + ' ' + name:24}" + "".join(f"{f:>11}" for f in figures))
    print(f"written: {args.out}")
    if problems:
        for problem in problems:
            log(f"FAILED: {problem}")
        log("the cold start was not measured: no target is claimed (see 'problems')")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
