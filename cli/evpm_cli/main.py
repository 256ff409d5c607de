"""``evpm``: bring the emulated cloud up, deploy the stacks, and use the running system."""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from evpm.mlflow_rest import MlflowError
from evpm.pins import MLFLOW_URI_PARAMETER, PinError
from evpm_cli import deploy as deploy_mod
from evpm_cli import emulator, endpoints, keys, loadgen, services, stream
from evpm_cli import lifecycle as lifecycle_mod
from evpm_cli.aws import client
from evpm_cli.config import CliSettings, settings

console = Console(stderr=True, soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Predictive maintenance for EV fleets, on an emulated AWS cloud on this host."""


@cli.command()
@click.option("--force-deploy", is_flag=True, help="Deploy even if nothing changed.")
@click.option(
    "--lifecycle/--no-lifecycle",
    default=True,
    show_default=True,
    help="Train, validate and promote the three models when nothing is pinned yet.",
)
def up(force_deploy: bool, lifecycle: bool) -> None:
    """Start the emulator, deploy every stack, start MLflow and the training worker, train the
    first models when none serve, and print the endpoints (a no-op when all is up)."""
    cfg = settings()
    started = time.perf_counter()
    try:
        emulator.start(cfg)
        deploy_mod.deploy(cfg, force=force_deploy)
        outputs = endpoints.stack_outputs(cfg)
        services.start(cfg, services.mlflow(cfg, outputs["MlflowBucketName"]))
        # The functions find the registry through SSM; this MLflow's address is local.
        client(cfg, "ssm").put_parameter(
            Name=MLFLOW_URI_PARAMETER, Value=cfg.mlflow_url, Type="String", Overwrite=True
        )
        services.start(
            cfg,
            services.training_worker(cfg, outputs["TrainingQueueUrl"], outputs["RawBucketName"]),
        )
    except (emulator.EmulatorError, deploy_mod.DeployError, services.ServiceError) as exc:
        console.print(f"[red]evpm up failed:[/red] {exc}")
        sys.exit(1)
    if lifecycle and not lifecycle_mod.admin(cfg).pins.read():
        console.print("no model is pinned yet: running the model lifecycle once (about 2 min)")
        result = _run_lifecycle(cfg, trigger="make-up")
        if result["status"] != "SUCCEEDED":
            console.print(f"[red]evpm up: the first lifecycle run ended {result['status']}[/red]")
            sys.exit(1)
    info = endpoints.describe(cfg, emulator.status(cfg))
    _print_summary(info)
    console.print(f"[green]evpm is up[/green] in {time.perf_counter() - started:.1f} s")


def _run_lifecycle(cfg: CliSettings, **kwargs: Any) -> dict[str, Any]:
    """Start an execution and follow it, printing each state as it is entered."""
    arn = lifecycle_mod.start(cfg, **kwargs)
    console.print(f"lifecycle execution {arn.rsplit(':', 1)[-1]}")
    t0 = time.perf_counter()

    def show(state: str) -> None:
        console.print(f"  [{time.perf_counter() - t0:6.1f} s] {state}")

    result = lifecycle_mod.wait(cfg, arn, on_state=show)
    colour = "green" if result["status"] == "SUCCEEDED" else "red"
    console.print(f"[{colour}]{result['status']}[/{colour}] in {time.perf_counter() - t0:.1f} s")
    if result.get("error"):
        console.print(f"  {result['error']}: {result.get('cause')}")
    if result.get("promotion"):
        console.print(f"  pins now {result['promotion']['after']['pins']}")
    return result


@cli.command()
def down() -> None:
    """Stop every process `evpm up` started (state is kept under the state folder)."""
    cfg = settings()
    if services.stop(cfg, services.training_worker(cfg, "unused", "unused")):
        console.print("training worker stopped")
    if services.stop(cfg, services.mlflow(cfg, "unused")):
        console.print("mlflow stopped")
    try:
        emulator.stop(cfg)
    except emulator.EmulatorError as exc:
        console.print(f"[red]{exc}[/red]")
        sys.exit(1)
    console.print("[green]evpm is down[/green]; state kept in " + str(cfg.state_dir))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Show whether the system runs, and every URL, key and name needed to use it."""
    cfg = settings()
    info = endpoints.describe(cfg, emulator.status(cfg))
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        _print_summary(info)
    sys.exit(0 if info["emulator"]["running"] else 3)


def _print_summary(info: dict) -> None:
    emu = info["emulator"]
    console.print(f"emulator      {emu['url']}  ({'running' if emu['running'] else 'stopped'})")
    if not emu["running"]:
        return
    api = info.get("api") or {}
    for label, value in (
        ("API", api.get("url")),
        ("API docs", api.get("docs")),
        ("stream", info.get("stream")),
        ("DLQ", info.get("dlq_url")),
        ("predictions", info.get("predictions_table")),
        ("state machine", info.get("state_machine_arn")),
    ):
        console.print(f"{label:<13} {value}")
    mlflow = info.get("mlflow") or {}
    console.print(
        f"{'MLflow':<13} {mlflow.get('url')}  ({'running' if mlflow.get('running') else 'stopped'})"
    )
    worker = info.get("training_worker") or {}
    console.print(
        f"{'trainer':<13} {'running' if worker.get('running') else 'stopped'}  "
        f"(log {worker.get('log')})"
    )
    console.print(f"{'serving pins':<13} {info.get('serving_pins') or 'none (rules-v1 only)'}")
    for key in info.get("api_keys", []):
        console.print(f"API key       {key['role']:<14} {key['value']}")


@cli.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON-lines file to replay (one telemetry record per line).",
)
@click.option(
    "--count",
    type=int,
    default=1000,
    show_default=True,
    help="Records to generate when no --file is given.",
)
@click.option("--vehicles", type=int, default=50, show_default=True)
@click.option(
    "--malformed",
    type=int,
    default=0,
    show_default=True,
    help="How many of the generated records to make invalid (they go to the DLQ).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--stream-name", default=None, help="Defaults to the deployed stream.")
def send(
    path: str | None, count: int, vehicles: int, malformed: int, seed: int, stream_name: str | None
) -> None:
    """Put telemetry on the ingestion stream, with a progress bar."""
    cfg = settings()
    name = stream_name or endpoints.stack_outputs(cfg).get("StreamName", "ev-telemetry")
    records = list(
        loadgen.read_file(path)
        if path
        else loadgen.generate(count, vehicles=vehicles, malformed=malformed, seed=seed)
    )
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("send", total=len(records))
        report = stream.put_all(
            client(cfg, "kinesis"), name, records, on_progress=lambda n: progress.advance(task, n)
        )
    click.echo(
        json.dumps(
            {
                "stream": name,
                "sent": report.sent,
                "retried": report.retried,
                "seconds": round(report.seconds, 2),
                "records_per_s": round(report.rate, 1),
            }
        )
    )


@cli.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON file with one telemetry record (default: a generated one).",
)
@click.option(
    "--role", default="fleet-service", show_default=True, help="Which development key to use."
)
def predict(path: str | None, role: str) -> None:
    """Score one vehicle through the deployed API and print the prediction."""
    cfg = settings()
    outputs = endpoints.stack_outputs(cfg)
    url = endpoints.api_url(cfg, outputs)
    if not url:
        raise click.ClickException("the serving stack is not deployed: run `evpm up`")
    body = (
        json.loads(Path(path).read_text())
        if path
        else json.loads(next(loadgen.generate(1))[1])
    )
    response = httpx.post(
        f"{url}/predict",
        json=body,
        timeout=30,
        headers={"x-api-key": endpoints.key_for_role(cfg, role)},
    )
    click.echo(json.dumps(response.json(), indent=2))
    if response.status_code >= 400:
        sys.exit(1)


@cli.group(name="keys")
def keys_group() -> None:
    """API keys and their roles (viewer, fleet-service, ml-admin)."""


@keys_group.command(name="create")
@click.option("--role", required=True, type=click.Choice(keys.ROLES), help="What the key may do.")
@click.option("--name", required=True, help="A name that says who holds the key.")
@click.option("--json", "as_json", is_flag=True, help="Print id, name, role and value as JSON.")
def keys_create(role: str, name: str, as_json: bool) -> None:
    """Create a key with a role, add it to the usage plan, and print its value."""
    try:
        key = keys.create(settings(), role=role, name=name)
    except keys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"created key {key['name']} ({key['id']}) with role {key['role']}")
    click.echo(json.dumps(key) if as_json else key["value"])


@keys_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def keys_list(as_json: bool) -> None:
    """Keys with a role: name, id, role, enabled (values are not shown)."""
    found = keys.list_keys(settings())
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for key in found:
        state = "enabled" if key["enabled"] else "revoked"
        click.echo(f"{key['name']:<28} {key['id']:<12} {key['role'] or '-':<14} {state}")


@keys_group.command(name="revoke")
@click.argument("name_or_id")
def keys_revoke(name_or_id: str) -> None:
    """Disable a key and remove it from the usage plan (API Gateway then refuses it)."""
    try:
        key = keys.revoke(settings(), name_or_id)
    except keys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(key))


def _needs_system(fn: Any) -> Any:
    """A command that talks to the running system: unreachable means a clear message, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError, MlflowError) as exc:
            console.print(f"[red]the system does not answer:[/red] {exc}  (is it up? `make up`)")
            sys.exit(1)

    return wrapper


@cli.group(name="lifecycle")
def lifecycle_group() -> None:
    """Train, validate, register and promote models through the lifecycle state machine."""


@lifecycle_group.command(name="run")
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Choice(lifecycle_mod.TASKS),
    help="Model to train (repeat; default: all three).",
)
@click.option(
    "--trigger",
    default="manual",
    show_default=True,
    help="What started this run: manual, ci, drift, ...",
)
@click.option("--trigger-id", default=None, help="e.g. the drift event's id.")
@click.option(
    "--corrupt-labels",
    is_flag=True,
    help="Train on permuted labels (proves the gate refuses a bad challenger).",
)
@click.option(
    "--force-smoke-failure",
    is_flag=True,
    help="Fail the smoke test after promotion (proves the automatic rollback).",
)
@click.option("--no-wait", is_flag=True, help="Print the execution ARN and return.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@_needs_system
def lifecycle_run(
    models, trigger, trigger_id, corrupt_labels, force_smoke_failure, no_wait, as_json
) -> None:
    """Start one execution and follow it to its end (exit 1 unless it succeeds)."""
    cfg = settings()
    kwargs = {
        "models": tuple(models) or lifecycle_mod.TASKS,
        "trigger": trigger,
        "trigger_id": trigger_id,
        "corrupt_labels": corrupt_labels,
        "force_smoke_failure": force_smoke_failure,
    }
    if no_wait:
        click.echo(lifecycle_mod.start(cfg, **kwargs))
        return
    result = _run_lifecycle(cfg, **kwargs)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    sys.exit(0 if result["status"] == "SUCCEEDED" else 1)


@lifecycle_group.command(name="status")
@click.argument("execution", required=False)
@_needs_system
def lifecycle_status(execution: str | None) -> None:
    """One execution (default: the latest) as JSON: states, gate report, pins, error."""
    cfg = settings()
    if execution is None:
        runs = lifecycle_mod.history(cfg, limit=1)
        if not runs:
            click.echo("no lifecycle execution yet", err=True)
            sys.exit(3)
        execution = runs[0]["execution"]
    click.echo(json.dumps(lifecycle_mod.describe(cfg, execution), indent=2, default=str))


@lifecycle_group.command(name="history")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_needs_system
def lifecycle_history(limit: int, as_json: bool) -> None:
    """The latest executions, newest first: status, trigger, models, and why it failed."""
    runs = lifecycle_mod.history(settings(), limit=limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    for run in runs:
        line = f"{run['started'][:19]}  {run['status']:<9} {run['trigger'] or '-':<8} {run['name']}"
        if run["error"]:
            line += f"  {run['error']}: {run['cause']}"
        click.echo(line)


@cli.command()
@click.argument("model", type=click.Choice(["ev-anomaly", "ev-classifier", "ev-rul"]))
@click.option(
    "--to",
    "to",
    type=click.IntRange(min=1),
    default=None,
    help="Version to serve (default: the one with the 'previous' alias).",
)
@_needs_system
def rollback(model: str, to: int | None) -> None:
    """Serve the previous version of MODEL again: alias and pin move now; the API and the
    scorer pick the pin up within their reload interval (10 s)."""
    cfg = settings()
    try:
        result = lifecycle_mod.admin(cfg).rollback(model, to)
    except PinError as exc:
        console.print(f"[red]rollback refused:[/red] {exc}")
        sys.exit(2)
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    cli()
