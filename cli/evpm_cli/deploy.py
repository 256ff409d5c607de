"""Bring the CDK stacks onto the emulator, and skip the work when nothing changed.

Why a fingerprint: ``cdk deploy`` of five unchanged stacks still synthesises and diffs each
one (tens of seconds). Hashing the inputs of the cloud assembly is instant, so a repeated
``evpm up`` only checks that the stacks are still there and healthy.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from evpm_cli.aws import client
from evpm_cli.config import REPO_ROOT, STACKS, CliSettings

FINGERPRINT_INPUTS = ("infra", "functions", "layers", "state_machines", "cdk.json",
                      "package-lock.json", ".build/layers/deps/.requirements.sha256",
                      ".build/layers/deps/.bytecode")
HEALTHY = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}


class DeployError(Exception):
    """A build, bootstrap or deploy step failed."""


def _files(paths: Iterable[str]) -> Iterable[Path]:
    for name in paths:
        path = REPO_ROOT / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                    yield file


def fingerprint() -> str:
    digest = hashlib.sha256()
    for file in _files(FINGERPRINT_INPUTS):
        digest.update(str(file.relative_to(REPO_ROOT)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def stack_statuses(cfg: CliSettings) -> dict[str, str]:
    cfn = client(cfg, "cloudformation")
    statuses: dict[str, str] = {}
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            statuses[stack["StackName"]] = stack["StackStatus"]
    return statuses


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    print(json.dumps({"event": "step", "step": what}), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, **env}, check=False)
    if done.returncode != 0:
        raise DeployError(f"{what} failed (exit {done.returncode}): {' '.join(command)}")
    print(json.dumps({"event": "step_done", "step": what,
                      "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def build_assets(cfg: CliSettings) -> None:
    _run([sys.executable, str(REPO_ROOT / "layers" / "build.py")], {}, "build Lambda layers")


def deploy(cfg: CliSettings, *, force: bool = False) -> bool:
    """Deploy all stacks unless the same inputs are already deployed; True if it deployed."""
    build_assets(cfg)
    # Always the layer just built: an inherited override (as the template tests use) would
    # deploy functions without their dependencies.
    env = {**cfg.aws_env(), "EVPM_DEPS_LAYER_DIR": str(REPO_ROOT / ".build" / "layers" / "deps")}
    statuses = stack_statuses(cfg)
    if "CDKToolkit" not in statuses:
        _run([str(REPO_ROOT / "node_modules/.bin/cdklocal"), "bootstrap",
              f"aws://{cfg.account}/{cfg.region}", "--no-notices"], env, "cdk bootstrap")
    current = fingerprint()
    previous = json.loads(cfg.deploy_stamp.read_text()) if cfg.deploy_stamp.exists() else {}
    all_healthy = all(statuses.get(name) in HEALTHY for name in STACKS)
    if not force and all_healthy and previous.get("fingerprint") == current:
        print(json.dumps({"event": "deploy_skipped", "reason": "stacks up to date"}), flush=True)
        return False
    _run([str(REPO_ROOT / "node_modules/.bin/cdklocal"), "deploy", "--all",
          "--require-approval", "never", "--no-notices", "--progress", "events"],
         env, "cdk deploy")
    cfg.deploy_stamp.parent.mkdir(parents=True, exist_ok=True)
    cfg.deploy_stamp.write_text(json.dumps({"fingerprint": current, "at": time.time()}))
    return True
