"""Map a Lambda runtime name to a host interpreter and a clean runtime environment.

Why: a function must run under the Python version it declares, and see what AWS's managed
runtime gives it (the SDK) but not the emulator's own packages. Each runtime gets a small
virtual environment under the state folder, built once from ``lambda-runtime-requirements.txt``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

RUNTIME_REQUIREMENTS = Path(__file__).resolve().parents[2] / "lambda-runtime-requirements.txt"
SUPPORTED = ("python3.11", "python3.12", "python3.13")
_lock = threading.Lock()


class RuntimeNotAvailableError(Exception):
    """No interpreter on this host matches the function's runtime."""


def state_dir() -> Path:
    """The project state folder, shared with the emulator's control command."""
    env = os.environ.get("EVPM_STATE_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / ".state"


def find_interpreter(runtime: str) -> str:
    """Find a host interpreter for ``runtime`` (``python3.12`` → a CPython 3.12 binary).

    Looks at ``EVPM_LAMBDA_PYTHON_3_12``-style overrides first, then pyenv's versions folder
    (pyenv shims refuse versions that are not selected), then the PATH.
    """
    if runtime not in SUPPORTED:
        raise RuntimeNotAvailableError(
            f"runtime {runtime!r} is not supported by the host executor; use one of {SUPPORTED}"
        )
    version = runtime.removeprefix("python")
    override = os.environ.get(f"EVPM_LAMBDA_PYTHON_{version.replace('.', '_')}")
    candidates = [override] if override else []
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"),
                         reverse=True)
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(f"python{version}")
    if found and "/shims/" not in found:
        return found
    raise RuntimeNotAvailableError(
        f"no Python {version} interpreter found for runtime {runtime!r}; install it or set "
        f"EVPM_LAMBDA_PYTHON_{version.replace('.', '_')}"
    )


def runtime_python(runtime: str) -> Path:
    """The interpreter of the runtime's virtual environment, built on first use."""
    venv = state_dir() / "runtimes" / runtime
    python = venv / "bin" / "python"
    stamp = venv / ".evpm-runtime.json"
    wanted = RUNTIME_REQUIREMENTS.read_text() if RUNTIME_REQUIREMENTS.exists() else ""
    with _lock:
        if (python.exists() and stamp.exists()
                and json.loads(stamp.read_text()).get("requirements") == wanted):
            return python
        interpreter = find_interpreter(runtime)
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
        if wanted.strip():
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "-r", str(RUNTIME_REQUIREMENTS)],
                check=True,
            )
        stamp.write_text(json.dumps({"interpreter": interpreter, "requirements": wanted}))
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evpm_localstack.executor.runtimes",
        description="Build the clean per-runtime environments the host Lambda executor uses.",
    )
    parser.add_argument("runtimes", nargs="*", default=["python3.12"],
                        help=f"runtimes to prepare (default python3.12; any of {SUPPORTED})")
    args = parser.parse_args(argv)
    for runtime in args.runtimes:
        print(json.dumps({"event": "runtime_ready", "runtime": runtime,
                          "python": str(runtime_python(runtime))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
