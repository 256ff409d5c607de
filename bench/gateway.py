"""Through the emulated API Gateway, warm: ``POST /predict`` beside an echo function on the
same gateway and executor; cold starts of the scorer and the API; package sizes.

Needs a running system (``make up``); reads its endpoints from ``evpm status --json``.
Used by ``bench/serving.py --gateway``; runnable alone: ``python bench/gateway.py --help``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ECHO = "evpm-bench-echo"
ECHO_CODE = (
    "import json\n"
    "def handler(event, context):\n"
    "    return {'statusCode': 200, 'headers': {'content-type': 'application/json'},\n"
    "            'body': event.get('body') or '{}'}\n"
)


def log(message: str) -> None:
    print(f"[bench/gateway] {message}", file=sys.stderr, flush=True)


def status() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "evpm_cli.main", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def _client(info: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=info["emulator"]["url"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def deploy_echo(info: dict[str, Any]) -> str:
    """An echo function behind its own REST API (proxy integration) on the same emulator."""
    lam, apigw = _client(info, "lambda"), _client(info, "apigateway")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", ECHO_CODE)
    try:
        lam.get_function(FunctionName=ECHO)
    except lam.exceptions.ResourceNotFoundException:
        lam.create_function(
            FunctionName=ECHO,
            Runtime="python3.12",
            Handler="app.handler",
            Role="arn:aws:iam::000000000000:role/bench",
            Code={"ZipFile": buf.getvalue()},
            MemorySize=1024,
            Timeout=29,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=ECHO)
    arn = lam.get_function(FunctionName=ECHO)["Configuration"]["FunctionArn"]
    apis = [a for a in apigw.get_rest_apis()["items"] if a["name"] == ECHO]
    api_id = apis[0]["id"] if apis else apigw.create_rest_api(name=ECHO)["id"]
    if not apis:
        root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
        res = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="echo")["id"]
        apigw.put_method(
            restApiId=api_id, resourceId=res, httpMethod="POST", authorizationType="NONE"
        )
        uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
        apigw.put_integration(
            restApiId=api_id,
            resourceId=res,
            httpMethod="POST",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=uri,
        )
        apigw.create_deployment(restApiId=api_id, stageName="bench")
    return f"{info['emulator']['url']}/_aws/execute-api/{api_id}/bench/echo"


def _timed_posts(url: str, body: Any, headers: dict[str, str], n: int) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as http:
        for _ in range(10):
            http.post(url, json=body, headers=headers)
        for _ in range(n):
            t0 = time.perf_counter()
            response = http.post(url, json=body, headers=headers)
            out.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
    return out


def _pct(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "n": len(a),
    }


def warm_gateway(info: dict[str, Any], n: int) -> dict[str, Any]:
    from evpm.telemetry import EXAMPLE_RECORD

    echo_url = deploy_echo(info)
    key = next(k["value"] for k in info["api_keys"] if k["role"] == "fleet-service")
    predict_url = f"{info['api']['url'].rstrip('/')}/predict"
    predict = _timed_posts(predict_url, EXAMPLE_RECORD, {"x-api-key": key}, n)
    echo = _timed_posts(echo_url, EXAMPLE_RECORD, {}, n)
    with httpx.Client(timeout=30) as http:
        versions = http.post(predict_url, json=EXAMPLE_RECORD, headers={"x-api-key": key}).json()[
            "model_versions"
        ]
    p, e = _pct(predict), _pct(echo)
    return {
        "predict": p,
        "echo": e,
        "added_p50_ms": round(p["p50_ms"] - e["p50_ms"], 2),
        "model_versions": versions,
    }


def cold_start(info: dict[str, Any], function: str, event: dict[str, Any]) -> dict[str, Any]:
    """Force a new worker (configuration change), then time the first invocation."""
    lam = _client(info, "lambda")
    config = lam.get_function_configuration(FunctionName=function)
    env = dict(config.get("Environment", {}).get("Variables", {}))
    env["EVPM_BENCH_NONCE"] = str(time.time_ns())
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": env})
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)
    t0 = time.perf_counter()
    first = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode(), LogType="Tail")
    wall = (time.perf_counter() - t0) * 1000
    tail = base64.b64decode(first.get("LogResult", "")).decode(errors="replace")
    init = re.search(r"Init Duration: ([\d.]+) ms", tail)
    duration = re.search(r"\tDuration: ([\d.]+) ms", tail)
    t0 = time.perf_counter()
    lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    warm = (time.perf_counter() - t0) * 1000
    return {
        "init_ms": float(init.group(1)) if init else None,
        "first_invoke_ms": float(duration.group(1)) if duration else None,
        "cold_wall_ms": round(wall, 1),
        "warm_wall_ms": round(warm, 1),
        "error": first.get("FunctionError"),
    }


def package_sizes() -> dict[str, float]:
    def size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    layers = size(ROOT / ".build" / "layers" / "deps") + size(ROOT / "layers" / "evpm")
    return {
        f"{name}_mib": round((size(ROOT / "functions" / name) + layers) / 2**20, 1)
        for name in ("scorer", "api", "lifecycle")
    } | {"lambda_limit_mib": 250.0}


def measure(n: int = 300) -> dict[str, Any]:
    info = status()
    if not info["emulator"]["running"]:
        raise SystemExit("the system is not running: make up first")
    from evpm.telemetry import EXAMPLE_RECORD

    canary = {"evpm_canary": {"records": [{**EXAMPLE_RECORD, "vehicle_id": "BENCH-COLD"}]}}
    log("warm requests through API Gateway: /predict and the echo function")
    out = {"gateway_warm": warm_gateway(info, n)}
    log("cold starts (a configuration change forces a new worker)")
    out["cold_start"] = {
        "scorer": cold_start(info, "evpm-scorer", canary),
        "api": cold_start(info, "evpm-api", canary),
    }
    out["package_unzipped"] = package_sizes()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.requests), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
