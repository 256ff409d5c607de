"""``python -m console``: serve the ops console on 127.0.0.1 (``evpm up`` starts it so)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from console.config import ConsoleConfig


def _parser() -> argparse.ArgumentParser:
    defaults = ConsoleConfig()
    p = argparse.ArgumentParser(
        prog="python -m console",
        description="The evpm ops console: lifecycle executions as graphs, the model "
        "registry, the fleet's predictions and what is alerting. Sign in with an evpm API key.",
    )
    p.add_argument("--host", default=defaults.host, help="bind address [%(default)s]")
    p.add_argument("--port", type=int, default=defaults.port, help="[%(default)s]")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=defaults.state_dir,
        help="holds the session secret (console/secret) [%(default)s]",
    )
    p.add_argument(
        "--emulator-url",
        default=str(defaults.emulator_url),
        help="AWS endpoint (the emulator) [%(default)s]",
    )
    p.add_argument("--region", default=defaults.region, help="[%(default)s]")
    p.add_argument("--api-url", default=None, help="the evpm API's stage URL")
    p.add_argument("--mlflow-url", default=str(defaults.mlflow_url), help="[%(default)s]")
    p.add_argument("--prometheus-url", default=str(defaults.prometheus_url), help="[%(default)s]")
    p.add_argument(
        "--alertmanager-url", default=str(defaults.alertmanager_url), help="[%(default)s]"
    )
    p.add_argument(
        "--state-machine",
        default=defaults.state_machine,
        help="name of the lifecycle state machine [%(default)s]",
    )
    p.add_argument("--predictions-table", default=defaults.predictions_table, help="[%(default)s]")
    p.add_argument("--alert-table", default=defaults.alert_table, help="[%(default)s]")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "log_level"}
    try:
        config = ConsoleConfig.model_validate(options)
    except ValidationError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from console.app import create_app, real_sources
    from console.logs import log_config

    app = create_app(config, real_sources(config))
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_config=log_config(args.log_level),
        access_log=True,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
