"""Everything the project starts (emulator, its workers, MLflow) listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.integration.conftest import System


def _tree(pid: int) -> set[int]:
    pids, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)],
                                  capture_output=True, text=True).stdout.split()
        for child in map(int, children):
            if child not in pids:
                pids.add(child)
                frontier.append(child)
    return pids


def test_no_listener_outside_loopback(system: System) -> None:
    state = Path(system.info["emulator"]["state_dir"])
    mlflow_pid = json.loads((state / "pids" / "mlflow.json").read_text())["pid"]
    pids = _tree(int(system.info["emulator"]["pid"])) | _tree(int(mlflow_pid))
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = []
    for line in output.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            ours.append(line.split()[3])
    assert len(ours) >= 2, f"the emulator's and MLflow's listeners were not both found: {ours}"
    assert all(address.startswith("127.0.0.1:") for address in ours), ours
