"""An emulator of its own for emulator-level tests: temp state folder, fixed non-default port.

Runs ``evpm-emulator`` (``python -m evpm_localstack.ctl``) from ``.venv-localstack`` as a
subprocess, exactly as users do, and talks to it with boto3 from the test interpreter. The port
(``EVPM_TEST_EMULATOR_PORT``, default 4597) differs from 4566 so a developer's emulator is
never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
EMULATOR_PYTHON = REPO / ".venv-localstack" / "bin" / "python"
PORT = int(os.environ.get("EVPM_TEST_EMULATOR_PORT", "4597"))

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

pytestmark = pytest.mark.integration


class Emulator:
    """Start/stop/status of one emulator bound to one state folder."""

    def __init__(self, state_dir: Path, port: int = PORT) -> None:
        self.state_dir = state_dir
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def ctl(self, *args: str, timeout: float = 300) -> dict[str, Any]:
        command = [str(EMULATOR_PYTHON), "-m", "evpm_localstack.ctl", *args,
                   "--state-dir", str(self.state_dir), "--port", str(self.port), "--json"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            log = self.state_dir / "logs" / "localstack.log"
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            pytest.fail(f"evpm-emulator {args} exited {done.returncode}\n{done.stderr}\n{tail}")
        return json.loads(done.stdout.strip().splitlines()[-1] if args[0] != "status"
                          else done.stdout)

    def start(self) -> dict[str, Any]:
        return self.ctl("start")

    def stop(self) -> dict[str, Any]:
        return self.ctl("stop")

    def status(self) -> dict[str, Any]:
        return self.ctl("status")

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 2}, read_timeout=120),
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    if not EMULATOR_PYTHON.exists():
        pytest.skip(f"{EMULATOR_PYTHON} missing: create the emulator venv first")
    instance = Emulator(tmp_path_factory.mktemp("emulator-state"))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
