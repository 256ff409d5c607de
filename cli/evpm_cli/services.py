"""Background services beside the emulator: MLflow, the training worker, monitoring
(the CloudWatch exporter, Prometheus and Alertmanager; their configs: :mod:`evpm_cli.monitoring`)
and the ops console.

Each runs as a host process bound to 127.0.0.1, with a pidfile and a log under the state folder,
so `evpm down` can stop exactly what `evpm up` started and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from evpm_cli.config import REPO_ROOT, CliSettings


class ServiceError(Exception):
    """A background service failed to start or stop."""


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str | None
    """None: no HTTP health; alive for ``settle_seconds`` after start counts as healthy."""
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 90.0
    settle_seconds: float = 3.0

    def paths(self, cfg: CliSettings) -> tuple[Path, Path]:
        return (
            cfg.state_dir / "pids" / f"{self.name}.json",
            cfg.state_dir / "logs" / f"{self.name}.log",
        )


def _pid(pidfile: Path) -> int | None:
    try:
        pid = int(json.loads(pidfile.read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def healthy(url: str | None) -> bool:
    if url is None:
        return True  # liveness is the pid check
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start(cfg: CliSettings, service: Service) -> int:
    """Start ``service`` unless it already runs; wait until its health URL answers."""
    pidfile, logfile = service.paths(cfg)
    if (pid := _pid(pidfile)) and healthy(service.health_url):
        return pid
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as log:
        process = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **service.env},
            start_new_session=True,
        )
    pidfile.write_text(json.dumps({"pid": process.pid, "command": service.command}))
    print(
        json.dumps({"event": "service_starting", "service": service.name, "pid": process.pid}),
        file=sys.stderr,
        flush=True,
    )
    deadline = time.monotonic() + service.startup_timeout
    settled = time.monotonic() + (service.settle_seconds if service.health_url is None else 0)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{service.name} exited with {process.returncode}; see {logfile}")
        if time.monotonic() >= settled and healthy(service.health_url):
            print(
                json.dumps(
                    {"event": "service_ready", "service": service.name, "url": service.health_url}
                ),
                file=sys.stderr,
                flush=True,
            )
            return process.pid
        time.sleep(0.5)
    stop(cfg, service)
    raise ServiceError(
        f"{service.name} not healthy after {service.startup_timeout:.0f} s; see {logfile}"
    )


def stop(cfg: CliSettings, service: Service, timeout: float = 15.0) -> bool:
    """Stop the service's whole process group; True if something was running."""
    pidfile, _ = service.paths(cfg)
    pid = _pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A child of this very process stays a zombie (and its group alive) until reaped.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def is_running(cfg: CliSettings, service: Service) -> bool:
    pidfile, _ = service.paths(cfg)
    return _pid(pidfile) is not None


def mlflow(cfg: CliSettings, artifact_bucket: str) -> Service:
    """MLflow tracking server: SQLite backend in the state folder, artifacts in emulated S3."""
    db = cfg.state_dir / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return Service(
        name="mlflow",
        command=[
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(cfg.mlflow_port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--default-artifact-root",
            f"s3://{artifact_bucket}/mlflow",
            "--no-serve-artifacts",
        ],
        health_url=f"{cfg.mlflow_url}/health",
        env={**cfg.aws_env(), **cfg.mlflow_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )


def training_worker(cfg: CliSettings, queue_url: str, raw_bucket: str) -> Service:
    """The lifecycle's training worker (``python -m training_job.worker``): takes Train tasks
    from the training queue, trains, answers the state machine."""
    return Service(
        name="training-worker",
        command=[
            sys.executable,
            "-m",
            "training_job.worker",
            "--queue-url",
            queue_url,
            "--raw-bucket",
            raw_bucket,
        ],
        health_url=None,
        env={**cfg.aws_env(), **cfg.mlflow_env()},
    )


def _binary(*names: str) -> str:
    """The first of ``names`` on PATH (Debian names Alertmanager ``prometheus-alertmanager``)."""
    for name in names:
        if found := shutil.which(name):
            return found
    raise ServiceError(
        f"{' or '.join(names)} not found: run `make deps` (installs the Debian "
        "packages prometheus and prometheus-alertmanager)"
    )


def monitoring_dir(cfg: CliSettings) -> Path:
    """Where the rendered Prometheus and Alertmanager configs live (see evpm_cli.monitoring)."""
    return cfg.state_dir / "monitoring"


def exporter(cfg: CliSettings) -> Service:
    """The CloudWatch exporter (``python -m cloudwatch_exporter``), reading the emulator."""
    return Service(
        name="cloudwatch-exporter",
        command=[
            sys.executable,
            "-m",
            "cloudwatch_exporter",
            "--config",
            str(REPO_ROOT / "monitoring" / "exporter.yaml"),
            "--listen-address",
            "127.0.0.1",
            "--port",
            str(cfg.exporter_port),
            "--delay",
            str(cfg.exporter_delay),
        ],
        health_url=f"{cfg.exporter_url}/-/healthy",
        env=cfg.aws_env(),
        startup_timeout=30.0,
    )


def prometheus(cfg: CliSettings) -> Service:
    """Prometheus on 127.0.0.1 with its TSDB in the state folder (kept across restarts)."""
    return Service(
        name="prometheus",
        command=[
            shutil.which("prometheus") or "prometheus",
            f"--config.file={monitoring_dir(cfg) / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{cfg.prometheus_port}",
            f"--web.external-url={cfg.prometheus_url}",
            f"--storage.tsdb.path={cfg.state_dir / 'prometheus'}",
            "--storage.tsdb.retention.time=15d",
            "--web.enable-lifecycle",  # POST /-/reload after `evpm up` renders a new config
            "--log.format=json",
        ],
        health_url=f"{cfg.prometheus_url}/-/ready",
        startup_timeout=60.0,
    )


def alertmanager(cfg: CliSettings) -> Service:
    """Alertmanager on 127.0.0.1 without clustering; silences and notification log in the
    state folder, so they survive a restart."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    return Service(
        name="alertmanager",
        command=[
            binary or "alertmanager",
            f"--config.file={monitoring_dir(cfg) / 'alertmanager.yml'}",
            f"--storage.path={cfg.state_dir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{cfg.alertmanager_port}",
            f"--web.external-url={cfg.alertmanager_url}",
            "--cluster.listen-address=",
            "--log.format=json",
        ],
        health_url=f"{cfg.alertmanager_url}/-/ready",
        startup_timeout=60.0,
    )


def console(cfg: CliSettings, outputs: dict[str, str] | None = None) -> Service:
    """The ops console (``python -m console``): pages over the emulator's Step Functions, the
    evpm API, MLflow, Prometheus and Alertmanager; ``outputs`` (the stacks') name the API and
    the tables (``evpm down`` needs none: it only finds the pidfile)."""
    outputs = outputs or {}
    api_id = outputs.get("ApiId")
    command = [
        sys.executable,
        "-m",
        "console",
        "--host",
        "127.0.0.1",
        "--port",
        str(cfg.console_port),
        "--state-dir",
        str(cfg.state_dir),
        "--emulator-url",
        cfg.endpoint,
        "--region",
        cfg.region,
        "--mlflow-url",
        cfg.mlflow_url,
        "--prometheus-url",
        cfg.prometheus_url,
        "--alertmanager-url",
        cfg.alertmanager_url,
    ]
    if api_id:
        stage = outputs.get("ApiStage", "v1")
        command += ["--api-url", f"{cfg.endpoint}/_aws/execute-api/{api_id}/{stage}"]
    for option, key in (
        ("--predictions-table", "PredictionsTable"),
        ("--alert-table", "AlertDedupTable"),
    ):
        if outputs.get(key):
            command += [option, outputs[key]]
    if outputs.get("StateMachineArn"):
        command += ["--state-machine", outputs["StateMachineArn"].rsplit(":", 1)[-1]]
    return Service(
        name="console",
        command=command,
        health_url=f"{cfg.console_url}/healthz",
        env={**cfg.aws_env(), "PYTHONPATH": str(REPO_ROOT)},
        startup_timeout=30.0,
    )


def console_status(cfg: CliSettings) -> dict[str, object]:
    """The console's URL, whether it answers, and its log (``evpm status``)."""
    return {
        "url": cfg.console_url,
        "running": healthy(f"{cfg.console_url}/healthz"),
        "log": str(cfg.state_dir / "logs" / "console.log"),
    }


def require_binaries() -> None:
    """Fail with the remedy when Prometheus or Alertmanager is not installed (the builders
    above do not: ``evpm down`` uses them to find pidfiles)."""
    _binary("prometheus")
    _binary("prometheus-alertmanager", "alertmanager")
