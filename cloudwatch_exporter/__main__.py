"""``python -m cloudwatch_exporter``: serve ``/metrics``, or check a configuration.

Exit codes: 0 fine, 2 configuration refused or unreadable (``--check`` and start-up alike).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from cloudwatch_exporter.collector import CloudWatchCollector
from cloudwatch_exporter.config import ExporterConfig, load_config
from cloudwatch_exporter.exceptions import ConfigError
from cloudwatch_exporter.logs import event, setup
from cloudwatch_exporter.server import serve

log = logging.getLogger("cloudwatch_exporter")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "monitoring" / "exporter.yaml"


def _load(path: Path, delay: int | None = None) -> ExporterConfig:
    try:
        return load_config(path, delay=delay)
    except ConfigError as exc:
        click.echo(f"{exc.path}: refused", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    envvar="EVPM_EXPORTER_CONFIG",
    help="Exporter configuration (YAML).",
)
@click.option(
    "--check",
    "check_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="CONFIG",
    help="Check CONFIG, print the Prometheus metrics it would produce, and exit "
    "(0: fine, 2: refused, with the reasons).",
)
@click.option(
    "--listen-address",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve /metrics on.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=9106,
    show_default=True,
    envvar="EVPM_EXPORTER_PORT",
    help="Port to serve /metrics on.",
)
@click.option(
    "--delay",
    type=click.IntRange(0, 3600),
    default=None,
    envvar="EVPM_EXPORTER_DELAY",
    help="Seconds after a period ends before it counts as complete, for every job (default: "
    "the configuration's). CloudWatch needs 60 or more; the emulator stores metrics at once.",
)
@click.option("--once", is_flag=True, help="Scrape CloudWatch once, print /metrics, and exit.")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
def main(
    config_path: Path,
    check_path: Path | None,
    listen_address: str,
    port: int,
    delay: int | None,
    once: bool,
    log_level: str,
) -> None:
    """Export CloudWatch metrics to Prometheus: each scrape of /metrics reads CloudWatch
    (GetMetricData, in batches of at most 500 queries) for the jobs of the configuration.
    The AWS SDK's usual settings apply (AWS_ENDPOINT_URL for the emulator)."""
    if check_path is not None:
        config = _load(check_path)
        click.echo(f"{check_path}: OK, {len(config.jobs)} jobs")
        for job, metric, family in config.families():
            labels = ",".join(family.labels)
            click.echo(
                f"{family.kind:<7} {family.name}{{{labels}}}  <- {job.namespace} "
                f"{metric.name} {family.statistic}"
            )
        return
    setup(log_level)
    config = _load(config_path, delay)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(CloudWatchCollector(config))
    if once:
        sys.stdout.write(generate_latest(registry).decode())
        return
    server = serve(registry, listen_address, port)

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    event(
        log,
        logging.INFO,
        "listening",
        url=f"http://{listen_address}:{port}/metrics",
        config=str(config_path),
        jobs=[job.name for job in config.jobs],
        delay=sorted({job.delay for job in config.jobs}),
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        event(log, logging.INFO, "stopped")


if __name__ == "__main__":
    main()
