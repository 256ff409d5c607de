"""Start, stop and query the host emulator through its own control command."""

from __future__ import annotations

import json
import subprocess

from evpm_cli.config import CliSettings


class EmulatorError(Exception):
    """The emulator could not be started, stopped or queried."""


def _ctl(cfg: CliSettings, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    ctl = cfg.emulator_venv / "bin" / "evpm-emulator"
    if not ctl.exists():
        raise EmulatorError(f"{ctl} is missing: run `make up` (it builds the emulator's venv)")
    command = [str(ctl), *args, "--state-dir", str(cfg.state_dir), "--port",
               str(cfg.emulator_port)]
    return subprocess.run(command, check=False, text=True,
                          capture_output=capture)


def start(cfg: CliSettings) -> None:
    if _ctl(cfg, "start").returncode != 0:
        raise EmulatorError(f"emulator failed to start; see {cfg.state_dir}/logs/localstack.log")


def stop(cfg: CliSettings) -> None:
    if _ctl(cfg, "stop").returncode != 0:
        raise EmulatorError("emulator did not stop cleanly")


def status(cfg: CliSettings) -> dict:
    done = _ctl(cfg, "status", "--json", capture=True)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"running": False, "error": (done.stderr or done.stdout).strip()}
