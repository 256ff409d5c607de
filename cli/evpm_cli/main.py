"""``evpm``: bring the emulated cloud up, deploy the stacks, and use the running system."""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from evpm.mlflow_rest import MlflowRegistry
from evpm.pins import MLFLOW_URI_PARAMETER, MODEL_NAMES, PinError
from evpm.telemetry import format_timestamp
from evpm_cli import deploy as deploy_mod
from evpm_cli import drift as drift_mod
from evpm_cli import (
    emulator,
    endpoints,
    fleet_report,
    fleet_stream,
    keys,
    loadgen,
    logs,
    monitoring,
    services,
    stream,
)
from evpm_cli import lifecycle as lifecycle_mod
from evpm_cli.alert_token import ensure_webhook_token
from evpm_cli.aws import client, resource
from evpm_cli.config import CliSettings, settings
from evpm_cli.errors import EvpmGroup, validation_message
from evpm_cli.params import (
    ModelName,
    UtcTime,
    execution_name_part,
    json_lines_file,
    json_object_file,
    key_name,
)

console = Console(stderr=True, soft_wrap=True)

ROLE = click.Choice(keys.ROLES)


@click.group(cls=EvpmGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Predictive maintenance for EV fleets, on an emulated AWS cloud on this host.

    A mistake ends a command with one line on stderr: exit 2 for a wrong command line,
    1 for an operation that failed."""


@cli.command()
@click.option("--force-deploy", is_flag=True, help="Deploy even if nothing changed.")
@click.option(
    "--lifecycle/--no-lifecycle",
    default=True,
    show_default=True,
    help="Train, validate and promote the three models when nothing is pinned yet.",
)
def up(force_deploy: bool, lifecycle: bool) -> None:
    """Start the emulator, deploy every stack, start MLflow, the training worker, monitoring
    (CloudWatch exporter, Alertmanager, Prometheus) and the ops console, train the first models when none serve,
    and print the endpoints (a no-op when all is up)."""
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
        # Alertmanager authenticates to the alert webhook with this token (SSM SecureString).
        ensure_webhook_token(client(cfg, "ssm"))
        monitoring.start(cfg, outputs)
        services.start(cfg, services.console(cfg, outputs))
    except (emulator.EmulatorError, deploy_mod.DeployError, services.ServiceError) as exc:
        console.print(f"[red]evpm up failed:[/red] {exc}")
        sys.exit(1)
    if lifecycle and not lifecycle_mod.admin(cfg).pins.read():
        console.print("no model is pinned yet: running the model lifecycle once (about 2 min)")
        result = _run_lifecycle(cfg, trigger="make-up")
        if result["status"] != "SUCCEEDED":
            console.print(f"[red]evpm up: the first lifecycle run ended {result['status']}[/red]")
            sys.exit(1)
    info = _describe(cfg)
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
    if services.stop(cfg, services.console(cfg)):
        console.print("console stopped")
    for name in monitoring.stop(cfg):
        console.print(f"{name} stopped")
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
    info = _describe(cfg)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        _print_summary(info)
    sys.exit(0 if info["emulator"]["running"] else 3)


def _describe(cfg: CliSettings) -> dict[str, Any]:
    """What ``evpm status --json`` prints: the system's endpoints and monitoring's."""
    info = endpoints.describe(cfg, emulator.status(cfg))
    info["monitoring"] = monitoring.status(cfg)
    info["console"] = services.console_status(cfg)
    return info


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
    mon = info.get("monitoring") or {}
    for label, key in (
        ("Prometheus", "prometheus"),
        ("Alertmanager", "alertmanager"),
        ("exporter", "exporter"),
    ):
        part = mon.get(key) or {}
        console.print(
            f"{label:<13} {part.get('url')}  ({'running' if part.get('running') else 'stopped'})"
        )
    ops = info.get("console") or {}
    console.print(
        f"{'console':<13} {ops.get('url')}  ({'running' if ops.get('running') else 'stopped'})"
    )
    if mon.get("alertmanager", {}).get("running"):
        hook = mon["alertmanager"].get("webhook") or "nowhere (null receiver: no webhook deployed)"
        console.print(f"{'alerts to':<13} {hook}")
    console.print(f"{'serving pins':<13} {info.get('serving_pins') or 'none (rules-v1 only)'}")
    for key in info.get("api_keys", []):
        console.print(f"API key       {key['role']:<14} {key['value']}")


@cli.command()
@click.option(
    "--source",
    type=click.Choice(["fleet", "load"]),
    default="fleet",
    show_default=True,
    help="fleet: the fleet simulator's vehicles, the telemetry the models learnt from (rates "
    "reported at the end); load: the stationary load-test generator (uniform readings, "
    "unrelated to that fleet: most are anomalies to the models).",
)
@click.option(
    "--file",
    "records",
    type=click.Path(),
    callback=json_lines_file,
    help="JSON-lines file to replay as-is (one telemetry record per line); overrides --source.",
)
@click.option(
    "--vehicles",
    type=click.IntRange(min=0),
    default=None,
    help="fleet: nominal vehicles [default: 200]; load: vehicles [default: 50].",
)
@click.option(
    "--hours",
    type=int,
    default=216,
    show_default=True,
    help="fleet: readings per vehicle, one per simulated hour; the first "
    f"{fleet_stream.WARMUP} fill the models' week-long window and are not counted.",
)
@click.option(
    "--degraded",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="fleet: vehicles whose failure comes within "
    f"{fleet_stream.DEGRADED_WITHIN_HOURS:.0f} h of their last reading.",
)
@click.option(
    "--mode",
    type=click.Choice(["any", *fleet_stream.MODES]),
    default="any",
    show_default=True,
    help="fleet: the failure mode of the degraded vehicles.",
)
@click.option(
    "--scenario",
    type=click.Choice(list(fleet_stream.SCENARIOS)),
    default="as-trained",
    show_default=True,
    help="fleet: conditions of the simulated window ("
    + "; ".join(f"{k}: {v.about}" for k, v in fleet_stream.SCENARIOS.items())
    + ").",
)
@click.option(
    "--clock",
    type=click.Choice(["replay", "wall"]),
    default="replay",
    show_default=True,
    help="fleet: replay = the simulator's hourly times, sent as fast as the stream takes "
    "them; wall = one simulated hour every --step-seconds, stamped with the time it is sent.",
)
@click.option(
    "--step-seconds",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="fleet, --clock wall: seconds between simulated hours (3600 = the fleet's cadence).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="load: records to generate.",
)
@click.option(
    "--malformed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Invalid records to mix in (they go to the DLQ); fleet: extra to the readings.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Fixes every reading [default: fleet 2026, load 7].",
)
@click.option(
    "--start",
    type=UtcTime(),
    default=None,
    help="Time of the first reading, ISO 8601 (UTC unless it has an offset). load: [default: "
    "now, so each run adds readings]; fleet, --clock replay: [default: the scenario's own "
    "calendar]; not with --clock wall or --file.",
)
@click.option(
    "--prefix",
    default=None,
    help="Vehicle ids start with it [default: fleet SIM-<random>, new vehicles each run; load EV].",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="fleet: wait for the predictions and report the rates.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="fleet: seconds to wait for every prediction to be stored.",
)
@click.option("--stream-name", default=None, help="Defaults to the deployed stream.")
def send(**options: Any) -> None:
    """Put telemetry on the ingestion stream, with progress; by default a fleet of simulated
    vehicles, then the anomaly and predicted-failure rates of what was sent beside the
    models' own rates on held-out nominal vehicles (prints a JSON summary on stdout)."""
    _send(**options)  # defined below this command


def _send(
    source: str,
    records: list[tuple[str, bytes, bool]] | None,
    vehicles: int | None,
    hours: int,
    degraded: int,
    mode: str,
    scenario: str,
    clock: str,
    step_seconds: float,
    count: int,
    malformed: int,
    seed: int | None,
    start: datetime | None,
    prefix: str | None,
    wait: bool,
    timeout: float,
    stream_name: str | None,
) -> None:
    """``send`` itself (its options as arguments): the load source or a file is put as it is;
    the fleet is planned, sent in replay or wall-clock time, and its predictions read back."""
    cfg = settings()
    if records is not None:
        if start is not None:
            raise click.UsageError("--start does not apply to --file: its records go as they are")
        _put_as_is(cfg, "file", records, stream_name)
        return
    if source == "load":
        records = _load_records(count, vehicles, malformed, seed, start, prefix)
        _put_as_is(cfg, "load", records, stream_name)
        return
    if start is not None and clock == "wall":
        raise click.UsageError(
            "--start does not apply to --clock wall: each reading carries the time it is sent"
        )
    try:
        request = fleet_stream.FleetRequest(
            vehicles=200 if vehicles is None else vehicles,
            hours=hours,
            degraded=degraded,
            mode=mode,
            scenario=scenario,
            seed=2026 if seed is None else seed,
            prefix=prefix or f"SIM-{uuid.uuid4().hex[:6]}",
            malformed=malformed,
        )
    except ValidationError as exc:
        raise click.UsageError(validation_message(exc, options=True)) from exc
    outputs = endpoints.stack_outputs(cfg)  # the system is asked only once the request is sound
    name = _stream_name(outputs, stream_name)
    kinesis = client(cfg, "kinesis")
    t0 = time.perf_counter()
    try:
        plan = fleet_stream.plan_fleet(
            request,
            on_pool=lambda k, n: console.print(
                f"  simulated pool {k + 1} of {n} vehicles ({time.perf_counter() - t0:.1f} s)"
            ),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if start is not None:
        plan = replace(plan, start=start)
    console.print(
        f"fleet {request.prefix}: {request.vehicles} nominal + {request.degraded} degraded "
        f"vehicles x {request.hours} h ({request.scenario}), {len(plan.vehicles) * request.hours:,}"
        f" readings + {request.malformed} malformed, clock {clock}"
    )
    if clock == "replay":
        stamps = [plan.replay_time(h) for h in range(plan.hours)]
        report = _put_with_progress(kinesis, name, list(plan.replay()))
    else:
        stamps, report = _put_wall_clock(kinesis, name, plan, step_seconds)
    summary: dict[str, Any] = {"source": "fleet", **_sent(name, report)}
    summary["fleet"] = {
        "prefix": request.prefix,
        "nominal": request.vehicles,
        "degraded": [v.vehicle_id for v in plan.vehicles if v.kind == "degraded"],
        "hours": request.hours,
        "scenario": request.scenario,
        "seed": request.seed,
        "clock": clock,
        "first_reading": format_timestamp(stamps[0]),
        "counted_from_reading": fleet_stream.WARMUP,
    }
    if wait:
        summary |= _fleet_rates(cfg, outputs, plan, stamps, timeout)
    click.echo(json.dumps(summary))


def _stream_name(outputs: dict[str, str], given: str | None) -> str:
    """The stream to put on: the one asked for, else the deployed one."""
    return given or outputs.get("StreamName", "ev-telemetry")


def _load_records(
    count: int,
    vehicles: int | None,
    malformed: int,
    seed: int | None,
    start: datetime | None,
    prefix: str | None,
) -> list[tuple[str, bytes, bool]]:
    """The load generator's records, starting now unless ``start`` says otherwise: a fixed
    start would give a second run the first one's keys, and overwrite its predictions."""
    if vehicles == 0:
        raise click.BadParameter("must be at least 1 with --source load", param_hint="'--vehicles'")
    if malformed > count:
        raise click.BadParameter(
            f"at most --count ({count}) with --source load", param_hint="'--malformed'"
        )
    generated = loadgen.generate(
        count,
        vehicles=50 if vehicles is None else vehicles,
        malformed=malformed,
        seed=7 if seed is None else seed,
        start=start or datetime.now(UTC),
        prefix=prefix or "EV",
    )
    return list(generated)


def _put_as_is(
    cfg: CliSettings, source: str, records: list[tuple[str, bytes, bool]], stream_name: str | None
) -> None:
    """Put records on the stream as they are, and print what was sent (file and load)."""
    name = _stream_name(endpoints.stack_outputs(cfg), stream_name)
    report = _put_with_progress(client(cfg, "kinesis"), name, records)
    click.echo(json.dumps({"source": source, **_sent(name, report)}))


def _sent(stream_name: str, report: stream.SendReport) -> dict[str, Any]:
    return {
        "stream": stream_name,
        "sent": report.sent,
        "retried": report.retried,
        "seconds": round(report.seconds, 2),
        "records_per_s": round(report.rate, 1),
    }


def _put_with_progress(
    kinesis: Any, stream_name: str, records: list[tuple[str, bytes, bool]]
) -> stream.SendReport:
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("send", total=len(records))
        return stream.put_all(
            kinesis, stream_name, records, on_progress=lambda n: progress.advance(task, n)
        )


def _put_wall_clock(
    kinesis: Any, stream_name: str, plan: fleet_stream.FleetPlan, step_seconds: float
) -> tuple[list[datetime], stream.SendReport]:
    """One simulated hour every ``step_seconds``, each reading stamped when it is sent."""
    total = stream.SendReport()
    stamps: list[datetime] = []
    bad = plan.malformed_at()
    started = time.monotonic()
    with Progress(
        TextColumn("sending (wall clock)"),
        BarColumn(),
        TextColumn("hour {task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("send", total=plan.hours)
        for hour in range(plan.hours):
            time.sleep(max(0.0, started + hour * step_seconds - time.monotonic()))
            now = datetime.now(UTC)
            # a vehicle's readings need distinct, increasing times even at a tiny step
            stamp = max(now, stamps[-1] + timedelta(milliseconds=1)) if stamps else now
            stamps.append(stamp)
            part = stream.put_all(
                kinesis, stream_name, plan.step(hour, stamp, malformed=bad.get(hour))
            )
            total.sent += part.sent
            total.retried += part.retried
            progress.advance(task)
    total.seconds = time.monotonic() - started
    return stamps, total


def _fleet_rates(
    cfg: CliSettings,
    outputs: dict[str, str],
    plan: fleet_stream.FleetPlan,
    stamps: list[datetime],
    timeout: float,
) -> dict[str, Any]:
    """Wait for the predictions of the sent readings, then print and return the rates."""
    table = outputs.get("PredictionsTable")
    if not table:
        raise click.ClickException("no predictions table deployed: run `evpm up`")
    ts = [format_timestamp(s) for s in stamps]
    sent = {v.vehicle_id: ts for v in plan.vehicles}
    with Progress(
        TextColumn("waiting for predictions"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} vehicles complete"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("wait", total=len(sent))
        stored = fleet_report.read_predictions(
            client(cfg, "dynamodb"),
            table,
            sent,
            timeout=timeout,
            on_progress=lambda n: progress.update(task, completed=n),
        )
    summary = fleet_report.summarise(plan.vehicles, sent, stored)
    reference = None
    if summary.versions:
        registry = MlflowRegistry(cfg.mlflow_url)
        reference = fleet_report.reference_rates(registry, summary.versions)
    _print_rates(summary, reference)
    return summary.as_dict(reference)


def _print_rates(
    summary: fleet_report.FleetSummary, reference: fleet_report.Reference | None
) -> None:
    if summary.stored < summary.expected:
        console.print(
            f"[yellow]{summary.expected - summary.stored:,} of {summary.expected:,} predictions "
            "not stored before the timeout: the rates cover what was[/yellow]"
        )
    if summary.anomaly_rate is None and summary.failure_rate is None:
        console.print(
            "no model scored the readings (rules only, or nothing counted): no rates to report"
        )
    else:
        console.print(
            f"nominal vehicles: {summary.counted:,} readings counted (each vehicle's first "
            f"{fleet_stream.WARMUP} fill the models' week-long window and are not)"
        )
        if summary.counted < 5000:
            console.print(
                "  [yellow]few readings: rates of about 1 % are rough at this size "
                "(the default fleet counts 9,800)[/yellow]"
            )
        for label, rate in (("anomaly", "anomaly_rate"), ("predicted failure", "failure_rate")):
            mine = getattr(summary, rate)
            model = fleet_report.REFERENCE_METRICS[rate][0]
            version = summary.versions.get(model, "-")
            ref = reference.rates.get(rate) if reference else None
            line = f"  {label:<18} {_pct(mine):>8}   {model} v{version}: "
            if ref is None:
                line += "held-out nominal rate unavailable"
            else:
                ratio = "" if mine is None or ref == 0 else f" ({mine / ref:.2f}x)"
                line += f"{_pct(ref)} on held-out nominal readings{ratio}"
            console.print(line)
        if reference is not None and reference.note:
            console.print(f"  reference: {reference.note}")
        if summary.mixed_versions:
            console.print(
                "  [yellow]the pins moved during the run: several versions scored[/yellow]"
            )
    for vehicle in summary.degraded:
        share = vehicle["flagged_share"]
        modes = ", ".join(f"{m} {n}" for m, n in vehicle["predicted_modes"].items()) or "none"
        colour = "green" if vehicle["flagged"] else "red"
        console.print(
            f"degraded {vehicle['vehicle_id']} ({vehicle['label']} "
            f"{vehicle['hours_to_failure_after_last']:.0f} h after its last reading): "
            f"[{colour}]{_pct(share)} of its last {vehicle['late_readings']} readings "
            f"flagged[/{colour}]; predicted {modes}"
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


@cli.command()
@click.option(
    "--file",
    "record",
    type=click.Path(),
    callback=json_object_file,
    help="JSON file with one telemetry record [default: a generated one, stamped now].",
)
@click.option(
    "--role",
    type=ROLE,
    default="fleet-service",
    show_default=True,
    help="Which development key to use.",
)
def predict(record: dict[str, Any] | None, role: str) -> None:
    """Score one vehicle through the deployed API and print the prediction."""
    cfg = settings()
    url, headers = _api(cfg, role)
    body = _generated_record() if record is None else record
    response = httpx.post(f"{url}/predict", json=body, timeout=30, headers=headers)
    click.echo(json.dumps(_answer(response, "POST /predict"), indent=2))


def _generated_record() -> dict[str, Any]:
    """One load-generator reading stamped now, so a second predict scores a second reading
    instead of the first one's again."""
    return json.loads(next(loadgen.generate(1, start=datetime.now(UTC)))[1])


def _api(cfg: CliSettings, role: str) -> tuple[str, dict[str, str]]:
    """The deployed API's URL, and the headers that carry ``role``'s development key."""
    url = endpoints.api_url(cfg, endpoints.stack_outputs(cfg))
    if not url:
        raise click.ClickException("the serving stack is not deployed: run `evpm up`")
    try:
        key = endpoints.key_for_role(cfg, role)
    except LookupError as exc:  # no enabled key of that role: the system's state, not usage
        raise click.ClickException(str(exc)) from exc
    return url, {"x-api-key": key}


def _answer(response: httpx.Response, call: str) -> Any:
    """The JSON of a successful answer; any other is a failure naming the call, the status
    and the API's reason."""
    if response.status_code >= 400:
        raise click.ClickException(f"{call} answered {response.status_code}: {_reason(response)}")
    return response.json()


def _reason(response: httpx.Response, limit: int = 500) -> str:
    """The ``detail`` of an error answer (FastAPI's), else its body, cut at ``limit``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return (detail if isinstance(detail, str) else json.dumps(detail))[:limit]


@cli.group(name="keys")
def keys_group() -> None:
    """API keys and their roles (viewer, fleet-service, ml-admin)."""


@keys_group.command(name="create")
@click.option("--role", required=True, type=ROLE, help="What the key may do.")
@click.option(
    "--name", required=True, callback=key_name, help="A name that says who holds the key."
)
@click.option("--json", "as_json", is_flag=True, help="Print id, name, role and value as JSON.")
def keys_create(role: str, name: str, as_json: bool) -> None:
    """Create a key with a role, add it to the usage plan, and print its value."""
    key = keys.create(settings(), role=role, name=name)
    console.print(f"created key {key['name']} ({key['id']}) with role {key['role']}")
    click.echo(json.dumps(key) if as_json else key["value"])


@keys_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def keys_list(as_json: bool) -> None:
    """Keys with a role: name, id, role, enabled; never their values, --json included
    (`keys create` prints a new key's value, `evpm status` the development keys')."""
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
    click.echo(json.dumps(keys.revoke(settings(), name_or_id)))


@cli.group(name="lifecycle")
def lifecycle_group() -> None:
    """Train, validate, register and promote models through the lifecycle state machine."""


@lifecycle_group.command(name="run")
@click.option(
    "--model",
    "models",
    multiple=True,
    type=ModelName(),
    help="Model to train, ev- prefix optional (repeat; default: all three).",
)
@click.option(
    "--trigger",
    default="manual",
    show_default=True,
    callback=execution_name_part,
    help="What started this run: manual, ci, drift, ... (starts the execution's name).",
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
def lifecycle_run(
    models: tuple[str, ...],
    trigger: str,
    trigger_id: str | None,
    corrupt_labels: bool,
    force_smoke_failure: bool,
    no_wait: bool,
    as_json: bool,
) -> None:
    """Start one execution and follow it to its end (exit 1 unless it succeeds)."""
    cfg = settings()
    kwargs = {
        "models": tuple(dict.fromkeys(models)) or MODEL_NAMES,  # `rul` and `ev-rul` are one
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
@click.argument("execution", required=False, metavar="[NAME|ARN]")
def lifecycle_status(execution: str | None) -> None:
    """One execution as JSON (states, gate report, pins, error): by the name `run` and
    `history` print, or its ARN; default: the latest."""
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
def lifecycle_history(limit: int, as_json: bool) -> None:
    """The latest executions, newest first: start, status, trigger, models, name, and why
    it failed."""
    runs = lifecycle_mod.history(settings(), limit=limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    for run in runs:
        models = ",".join(run["models"]) or "-"
        line = (
            f"{run['started'][:19]}  {run['status']:<9} {run['trigger'] or '-':<8} "
            f"{models:<32} {run['name']}"
        )
        if run["error"]:
            line += f"  {run['error']}: {run['cause']}"
        click.echo(line)


@cli.command()
@click.argument("model", type=ModelName(), metavar="MODEL")
@click.option(
    "--to",
    "to",
    type=click.IntRange(min=1),
    default=None,
    help="Version to serve (default: the one with the 'previous' alias).",
)
def rollback(model: str, to: int | None) -> None:
    """Serve the previous version of MODEL again (ev-anomaly, ev-classifier or ev-rul; the
    ev- prefix is optional): alias and pin move now; the API and the scorer pick the pin up
    within their reload interval (10 s)."""
    cfg = settings()
    try:
        result = lifecycle_mod.admin(cfg).rollback(model, to)
    except PinError as exc:
        raise click.ClickException(f"rollback refused: {exc}") from exc
    click.echo(json.dumps(result, indent=2))


@cli.command()
@click.option("--active", is_flag=True, help="Only the alerts firing now.")
@click.option(
    "--hours",
    default=24,
    show_default=True,
    type=click.IntRange(1, 720),
    help="Also list the alerts resolved in the last N hours.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option(
    "--role", type=ROLE, default="viewer", show_default=True, help="Which development key to use."
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
def alerts(active: bool, hours: int, limit: int, role: str, as_json: bool) -> None:
    """Ops alerts (from Alertmanager) through the deployed API: firing now, and resolved lately."""
    url, headers = _api(settings(), role)
    response = httpx.get(
        f"{url}/alerts",
        params={"active": str(active).lower(), "hours": hours, "limit": limit},
        timeout=30,
        headers=headers,
    )
    page = _answer(response, "GET /alerts")
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    _print_alerts("firing", page["active"])
    if not active:
        _print_alerts(f"resolved in the last {page['hours']} h", page["recent"])


def _print_alerts(title: str, found: list[dict[str, Any]]) -> None:
    click.echo(f"{title}: {len(found) or 'none'}")
    for alert in found:
        when = alert["starts_at"][:19].replace("T", " ")
        ended = f" -> {alert['ends_at'][:19].replace('T', ' ')}" if alert.get("ends_at") else ""
        click.echo(
            f"  {when}{ended}  {alert.get('severity') or '-':<8} {alert['alertname']:<28} "
            f"{alert.get('summary') or ''}"
        )


def _checked(convert: Any) -> Any:
    """A click callback that turns ``convert``'s ValueError into a usage error (exit 2)."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str) -> Any:
        try:
            return convert(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    return callback


@cli.group(name="drift")
def drift_group() -> None:
    """The drift monitor: run it now, its latest verdicts, the retraining it started."""


@drift_group.command(name="run")
@click.option(
    "--minutes",
    type=click.IntRange(1, 7 * 24 * 60),
    default=None,
    help="Window length (default: the monitor's own, 60).",
)
@click.option(
    "--no-publish",
    is_flag=True,
    help="Judge and record, but put no DriftDetected/QualityDegraded event (starts nothing).",
)
@click.option(
    "--start",
    type=UtcTime(),
    default=None,
    help="Judge what was captured since this time instead (ISO 8601, UTC by default).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the monitor's summary as JSON.")
def drift_run(minutes: int | None, no_publish: bool, start: Any, as_json: bool) -> None:
    """Judge the last window of captured data now (what the schedule does every 5 minutes)."""
    if minutes and start:
        raise click.UsageError("give --minutes or --start, not both")
    summary = drift_mod.run(
        client(settings(), "lambda", read_timeout=360),
        window_minutes=minutes,
        publish=not no_publish,
        start=start,
    )
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    window = summary["window"]
    console.print(
        f"window {window['start'][:19]} .. {window['end'][:19]}: {summary['rows']:,} rows "
        f"from {summary['objects']} capture objects ({summary['duplicates']} repeats dropped), "
        f"{summary['seconds']} s"
    )
    for v in summary["verdicts"]:
        drifted = ", ".join(v["drifted"]) or "-"
        quality = ", ".join(v["quality_problems"]) or "-"
        console.print(
            f"  {v['model']} v{v['version']}: {v['rows']:,} rows, drift {v['status']} "
            f"({drifted}), quality {v['quality_status']} ({quality})"
        )
        for c in v["top"][:3]:
            console.print(
                f"      {c['column']:<22} PSI {c['psi']:.3f} (limit {c['psi_limit']:.3f})"
                f"{'  DRIFTED' if c['drifted'] else ''}"
            )
    for model, reason in summary["missing_profiles"].items():
        console.print(f"  {model}: not judged: {reason}")
    for kind, event_id in summary["events"].items():
        console.print(f"  published {kind} {event_id}")


@drift_group.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print the windows as JSON.")
def drift_status(as_json: bool) -> None:
    """Each model's latest judged window: drift, quality, and the events it raised."""
    found = drift_mod.latest(_dynamodb())
    if as_json:
        click.echo(
            json.dumps([{k: v for k, v in f.items() if k != "report"} for f in found], indent=2)
        )
        return
    if not found:
        console.print("no window judged yet (evpm drift run judges one now)")
    for f in found:
        console.print(
            f"{f['model']} v{f['version']} {f['window_end'][:19]}: {f['rows']:,} rows, drift "
            f"{f['status']} ({', '.join(f['drifted']) or '-'}), quality {f['quality_status']} "
            f"({', '.join(f['quality_problems']) or '-'}), events {f.get('events') or '-'}"
        )


@drift_group.command(name="triggers")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
def drift_triggers(limit: int, as_json: bool) -> None:
    """What the retraining trigger did with each drift event: started a run, or why not."""
    found = drift_mod.triggers(_dynamodb(), limit)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        console.print("no drift event has reached the retraining trigger yet")
    for f in found:
        run = f.get("execution_arn", "").rsplit(":", 1)[-1]
        console.print(
            f"{f['decided_at'][:19]} {f['type']} {f['event_id'][:12]}: {f['action']} "
            f"({f['reason']}) {run or f['detail']}"
        )


@drift_group.command(name="report")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default="drift-report.html",
    show_default=True,
    help="Where to write the HTML page.",
)
@click.option(
    "--windows",
    type=click.IntRange(1, 1000),
    default=48,
    show_default=True,
    help="Recorded windows per model to chart.",
)
def drift_report(out: str, windows: int) -> None:
    """One HTML page (charts embedded, opens offline): each model's latest verdict per column,
    PSI and live quality over the recorded windows, and the retraining decisions."""
    from pathlib import Path

    from evpm_cli import drift_report as report

    dynamodb = _dynamodb()
    history = {m: drift_mod.history(dynamodb, m, windows) for m in drift_mod.MODELS}
    page = report.render(history, drift_mod.triggers(dynamodb, 100))
    Path(out).write_text(page)
    judged = sum(len(h) for h in history.values())
    console.print(f"wrote {out} ({len(page) / 1024:.0f} KiB, {judged} windows)")


def _dynamodb() -> Any:
    return resource(settings(), "dynamodb")


@cli.command(name="logs")
@click.argument("function", callback=_checked(logs.function_name))
@click.option(
    "--since",
    default="10m",
    show_default=True,
    callback=_checked(logs.parse_since),
    help="How far back: 30s, 10m, 2h, 1d.",
)
@click.option("--filter", "pattern", default=None, help="CloudWatch Logs filter pattern.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs_command(function: str, since: Any, pattern: str | None, follow: bool) -> None:
    """A function's log lines (CloudWatch Logs /aws/lambda/FUNCTION), oldest first.

    FUNCTION is scorer, api, lifecycle, monitor or retrain (or the full name: evpm-scorer,
    evpm-api, evpm-lifecycle, evpm-drift-monitor, evpm-retrain). Each line
    is printed as the function wrote it (JSON lines), after its time and worker stream.
    """
    lines = logs.read_lines(
        client(settings(), "logs"), function, since=since, pattern=pattern, follow=follow
    )
    count = 0
    try:
        for line in lines:
            count += 1
            click.echo(
                f"{line.at:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + f"Z {line.stream[-8:]} {line.message}"
            )
    except KeyboardInterrupt:
        return
    if not count:
        console.print(f"no log lines of {function} in the last {since}")


if __name__ == "__main__":
    cli()
