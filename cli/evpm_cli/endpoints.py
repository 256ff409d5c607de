"""What a user needs to reach the running system: URLs, keys, names — from the stacks' outputs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from evpm.pins import PINS_PARAMETER, parse_pins
from evpm_cli import services
from evpm_cli.aws import client
from evpm_cli.config import STACKS, CliSettings


def stack_outputs(cfg: CliSettings) -> dict[str, str]:
    cfn = client(cfg, "cloudformation")
    outputs: dict[str, str] = {}
    for name in STACKS:
        try:
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError:
            continue
        for output in stack.get("Outputs", []):
            outputs[output["OutputKey"]] = output["OutputValue"]
    return outputs


def api_url(cfg: CliSettings, outputs: dict[str, str]) -> str | None:
    """The emulator's form of the stage URL (the real one needs DNS that does not exist here)."""
    if "ApiId" not in outputs:
        return None
    return f"{cfg.endpoint}/_aws/execute-api/{outputs['ApiId']}/{outputs.get('ApiStage', 'v1')}"


def api_keys(cfg: CliSettings) -> list[dict[str, Any]]:
    """The development keys with their values: the user needs them to call the API locally."""
    apigw = client(cfg, "apigateway")
    keys = []
    for page in apigw.get_paginator("get_api_keys").paginate(includeValues=True):
        for key in page["items"]:
            if not key.get("name", "").startswith("evpm-"):
                continue
            tags = key.get("tags") or {}
            role = tags.get("evpm:role") or key["name"].removeprefix("evpm-dev-")
            keys.append(
                {
                    "name": key["name"],
                    "id": key["id"],
                    "role": role,
                    "value": key.get("value"),
                    "enabled": key.get("enabled", True),
                }
            )
    return sorted(keys, key=lambda k: k["name"])


def key_for_role(cfg: CliSettings, role: str) -> str:
    for key in api_keys(cfg):
        if key["role"] == role and key["enabled"]:
            return key["value"]
    raise LookupError(f"no enabled API key with role {role!r}; run `evpm status` to list keys")


def describe(cfg: CliSettings, emulator: dict[str, Any]) -> dict[str, Any]:
    """Everything ``evpm status --json`` prints."""
    info: dict[str, Any] = {
        "emulator": {
            "url": cfg.endpoint,
            "health": f"{cfg.endpoint}/_localstack/health",
            "running": bool(emulator.get("running")),
            "pid": emulator.get("pid"),
            "state_dir": str(cfg.state_dir),
        },
        "mlflow": {
            "url": cfg.mlflow_url,
            "running": services.healthy(f"{cfg.mlflow_url}/health"),
            "artifacts": None,
        },
        "training_worker": {
            "running": services.is_running(cfg, services.training_worker(cfg, "-", "-")),
            "log": str(cfg.state_dir / "logs" / "training-worker.log"),
        },
        "region": cfg.region,
        "account": cfg.account,
    }
    if not emulator.get("running"):
        return info
    try:
        outputs = stack_outputs(cfg)
        if outputs.get("ApiId"):
            # CloudFormation's ApiUrl names AWS's host (<id>.execute-api.<region>.amazonaws.com),
            # which does not resolve here: the stacks' outputs give the emulator's address.
            outputs = {**outputs, "ApiUrl": api_url(cfg, outputs)}
        info["stacks"] = outputs
        info["api"] = {
            "url": api_url(cfg, outputs),
            "docs": f"{api_url(cfg, outputs)}/docs" if outputs.get("ApiId") else None,
            "health": f"{api_url(cfg, outputs)}/health" if outputs.get("ApiId") else None,
        }
        info["api_keys"] = api_keys(cfg) if outputs.get("ApiId") else []
        info["stream"] = outputs.get("StreamName")
        info["dlq_url"] = outputs.get("DlqUrl")
        info["predictions_table"] = outputs.get("PredictionsTable")
        info["state_machine_arn"] = outputs.get("StateMachineArn")
        info["training_queue_url"] = outputs.get("TrainingQueueUrl")
        info["serving_pins"] = _pins(cfg)
        info["buckets"] = {k: v for k, v in outputs.items() if k.endswith("BucketName")}
        if "MlflowBucketName" in outputs:
            info["mlflow"]["artifacts"] = f"s3://{outputs['MlflowBucketName']}/mlflow"
    except (BotoCoreError, ClientError) as exc:
        info["error"] = str(exc)
    return info


def _pins(cfg: CliSettings) -> dict[str, int] | None:
    """The serving pins (None until the storage stack exists)."""
    ssm = client(cfg, "ssm")
    try:
        return parse_pins(ssm.get_parameter(Name=PINS_PARAMETER)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None
