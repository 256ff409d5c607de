"""Command line: ``python -m training_job {simulate,validate,train,run} --help``.

Every command is a thin shell over a job model, so ``run job.yaml`` and the flag form do the
same thing; the YAML form is what the lifecycle state machine and CI call.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from training_job.jobs.base import (
    DataRef,
    SimulateJob,
    TrainJob,
    ValidateJob,
    load_job,
)

__all__ = ["main"]

_SPECS = Path(__file__).resolve().parent / "specs"
_CONFIGS = Path(__file__).resolve().parent / "configs"


def _execute(job: TrainJob | SimulateJob | ValidateJob) -> None:
    """Run one job and print its outcome; a spec violation exits 2 with the column named."""
    from training_job.io.datasets import DataSpecError

    try:
        if isinstance(job, SimulateJob):
            import time

            from training_job.simulator import FleetConfig, simulate_fleet, write_parquet

            t0 = time.perf_counter()
            frame = simulate_fleet(
                FleetConfig(
                    vehicles=job.vehicles,
                    hours=job.hours,
                    seed=job.seed,
                    anomaly_rate=job.anomaly_rate,
                )
            )
            took = time.perf_counter() - t0
            where = write_parquet(frame, job.out)
            click.echo(f"{len(frame):,} rows in {took:.1f} s ({len(frame) / took:,.0f} rows/s)")
            click.echo(f"wrote {where}")
        elif isinstance(job, ValidateJob):
            from training_job.io.datasets import load_spec, read_table, validate

            spec = load_spec(job.data.spec)
            frame, digest = read_table(spec, job.data.path)
            validate(frame, spec)
            click.echo(f"ok: {len(frame):,} rows match {spec.name!r} (sha256 {digest})")
        else:
            from training_job.pipeline import report_json, run_training

            click.echo(report_json(run_training(job)))
    except DataSpecError as error:
        click.echo(f"refused: {error}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """evpm training job: simulate a fleet, check data against a spec, train and register."""


@main.command()
@click.argument("job_file", type=click.Path(exists=True, dir_okay=False))
def run(job_file: str) -> None:
    """Run a job YAML (KIND: simulate | validate | train)."""
    _execute(load_job(job_file))


@main.command()
@click.option("--out", required=True, help="Parquet path or s3://bucket/key.")
@click.option("--vehicles", default=500, show_default=True, type=int)
@click.option("--hours", default=2000, show_default=True, type=int)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--anomaly-rate", default=0.01, show_default=True, type=float)
def simulate(out: str, vehicles: int, hours: int, seed: int, anomaly_rate: float) -> None:
    """Simulate VEHICLES x HOURS rows of fleet telemetry with labels."""
    _execute(
        SimulateJob(out=out, vehicles=vehicles, hours=hours, seed=seed, anomaly_rate=anomaly_rate)
    )


@main.command()
@click.option("--spec", default=str(_SPECS / "fleet.yaml"), show_default=True)
@click.option("--data", required=True, help="Table path or s3:// URI.")
def validate(spec: str, data: str) -> None:
    """Check a table against its data-set spec (exit 2 naming the bad column)."""
    _execute(ValidateJob(data=DataRef(spec=spec, path=data)))


@main.command()
@click.option("--config", default=str(_CONFIGS / "train_fleet.yaml"), show_default=True)
@click.option("--data", default=None, help="Override the job's data path.")
@click.option("--spec", default=None, help="Override the job's data-set spec.")
@click.option(
    "--corrupt-labels",
    is_flag=True,
    help="Sabotage: permute the training labels (test rows keep theirs); for lifecycle tests.",
)
def train(config: str, data: str | None, spec: str | None, corrupt_labels: bool) -> None:
    """Train, evaluate, log and register the models of a train job."""
    job = load_job(config)
    if not isinstance(job, TrainJob):
        raise click.UsageError(f"{config} is not a train job (KIND: {job.KIND})")
    update: dict[str, object] = {}
    if data or spec:
        update["data"] = DataRef(spec=spec or job.data.spec, path=data or job.data.path)
    if corrupt_labels:
        update["corrupt_labels"] = True
    if update:
        job = job.model_copy(update=update)
    _execute(job)
